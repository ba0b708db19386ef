"""Driver detection (lockstep.core.nvidia) and the variant choice (lockstep.core.variants), with
fake drivers: a compiled fake libcuda.so loaded through the real ctypes path, fake nvidia-smi
executables on a temporary PATH (one that hangs, one that fails), fake /proc text."""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import time
from pathlib import Path

import pytest

from lockstep.core import nvidia, variants
from lockstep.core.errors import LockstepError
from lockstep.core.explicit import parse_explicit
from lockstep.core.nvidia import Driver, Gpu, Probes
from lockstep.core.variables import LIBCUDA, NVIDIA_PROC, NVIDIA_SMI

# The two shapes of the kernel module line: the proprietary and the open module.
PROC_PROPRIETARY = (
    "NVRM version: NVIDIA UNIX x86_64 Kernel Module  575.57.08  Sat May 24 07:21:18 UTC 2025\n"
    "GCC version:  gcc version 12.2.0 (Debian 12.2.0-14)\n"
)
PROC_OPEN = (
    "NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  535.183.01  Release Build  "
    "(dvs-builder@U16-I3-B03-4-3)  Sun May 12 19:39:15 UTC 2024\n"
    "GCC version:  gcc version 12.2.0 (Debian 12.2.0-14)\n"
)
OFF = Probes(libcuda="", nvidia_smi=None, proc_file="")

FAKE_LIBCUDA_C = r"""
#include <string.h>
static int caps[][2] = {CAPS};
int cuDriverGetVersion(int *v) { *v = CUDA_VERSION; return 0; }
int cuInit(unsigned f) { return sizeof(caps) / sizeof(caps[0]) ? 0 : 100; }
int cuDeviceGetCount(int *n) { *n = sizeof(caps) / sizeof(caps[0]); return 0; }
int cuDeviceGet(int *d, int i) { *d = i; return 0; }
int cuDeviceGetAttribute(int *v, int attr, int d) {
  if (attr == 75) { *v = caps[d][0]; return 0; }
  if (attr == 76) { *v = caps[d][1]; return 0; }
  return 1;
}
int cuDeviceGetName(char *name, int len, int d) { strncpy(name, "Fake GPU", len); return 0; }
"""


def fake_libcuda(tmp_path: Path, cuda_version: int, caps: list[tuple[int, int]]) -> str:
    """A shared library with the CUDA driver API's calls, compiled here."""
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        pytest.skip("no C compiler to build the fake libcuda.so")
    source = tmp_path / "fakecuda.c"
    body = ", ".join(f"{{{a}, {b}}}" for a, b in caps) or "{0, 0}"
    text = FAKE_LIBCUDA_C.replace("CUDA_VERSION", str(cuda_version)).replace(
        "{CAPS}", f"{{{body}}}"
    )
    if not caps:  # a driver without a device: cuInit fails with CUDA_ERROR_NO_DEVICE
        text = text.replace("sizeof(caps) / sizeof(caps[0]) ? 0 : 100", "100")
    source.write_text(text)
    library = tmp_path / f"libcuda-{cuda_version}.so"
    subprocess.run([compiler, "-shared", "-fPIC", "-o", library, source], check=True)
    return str(library)


def fake_smi(tmp_path: Path, body: str) -> str:
    """An nvidia-smi on a bin/ of its own that runs ``body`` (sh)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    smi = bin_dir / "nvidia-smi"
    smi.write_text(f"#!/bin/sh\n{body}\n")
    smi.chmod(0o755)
    return str(smi)


def smi_printing(tmp_path: Path, lines: list[str]) -> str:
    printed = "".join(f"echo '{line}'\n" for line in lines)
    return fake_smi(tmp_path, f'[ "$1" = "{nvidia.SMI_QUERY[0]}" ] || exit 9\n{printed}')


def lock_with_cuda(version: str | None) -> variants.Needs:
    lines = ["# platform: linux-64", "@EXPLICIT"]
    if version:
        lines.append(f"https://example.invalid/linux-64/cuda-version-{version}-h0_0.tar.bz2")
    return variants.needs_of(parse_explicit("\n".join(lines)))


# --------------------------------------------------------------------------- probes


def test_fake_libcuda_through_ctypes(tmp_path: Path):
    library = fake_libcuda(tmp_path, 12090, [(8, 0), (9, 0)])
    found = nvidia.detect(Probes(libcuda=library, nvidia_smi=None, proc_file=""))
    assert found == Driver(
        "libcuda", (12, 9), None, (Gpu("Fake GPU", (8, 0)), Gpu("Fake GPU", (9, 0)))
    )


def test_libcuda_without_a_device_means_no_gpu(tmp_path: Path):
    library = fake_libcuda(tmp_path, 12090, [])
    found = nvidia.detect(Probes(libcuda=library, nvidia_smi=None, proc_file=""))
    assert found == Driver("libcuda", (12, 9), None, ())
    assert variants.choose(found, lock_with_cuda("12.9")).variant == "cpu"


def test_a_library_that_is_not_libcuda_is_no_driver():
    assert nvidia.probe_libcuda("libc.so.6") is None
    assert nvidia.probe_libcuda("/nonexistent/libcuda.so.1") is None


def test_fake_nvidia_smi(tmp_path: Path):
    smi = smi_printing(tmp_path, ["NVIDIA H100 80GB HBM3, 9.0, 575.57.08"])
    found = nvidia.detect(Probes(libcuda="", nvidia_smi=smi, proc_file=""))
    assert found == Driver(
        "nvidia-smi", (12, 9), "575.57.08", (Gpu("NVIDIA H100 80GB HBM3", (9, 0)),)
    )


def test_hanging_nvidia_smi_is_stopped(tmp_path: Path):
    smi = fake_smi(tmp_path, "sleep 30")
    started = time.monotonic()
    assert nvidia.detect(Probes(libcuda="", nvidia_smi=smi, proc_file="", timeout=0.5)) is None
    assert time.monotonic() - started < 5


def test_failing_nvidia_smi_falls_back_to_proc(tmp_path: Path):
    smi = fake_smi(tmp_path, "echo 'NVIDIA-SMI has failed' >&2; exit 9")
    proc = tmp_path / "version"
    proc.write_text(PROC_PROPRIETARY)
    found = nvidia.detect(Probes(libcuda="", nvidia_smi=smi, proc_file=str(proc)))
    assert found == Driver("/proc/driver/nvidia/version", (12, 9), "575.57.08", None)


@pytest.mark.parametrize(
    ("text", "version", "cuda"),
    [(PROC_PROPRIETARY, "575.57.08", (12, 9)), (PROC_OPEN, "535.183.01", (12, 2))],
    ids=["proprietary", "open-module"],
)
def test_proc_text(tmp_path: Path, text: str, version: str, cuda: tuple[int, int]):
    found = nvidia.parse_proc(text)
    assert found is not None and (found.version, found.cuda) == (version, cuda)


def test_no_probe_answers_on_a_laptop(tmp_path: Path):
    missing = Probes(
        libcuda=str(tmp_path / "none.so"), nvidia_smi=None, proc_file=str(tmp_path / "x")
    )
    assert nvidia.detect(missing) is None


def test_mixed_probes_gpus_from_smi_when_libcuda_cannot_list(tmp_path: Path):
    smi = smi_printing(tmp_path, ["Tesla V100-SXM2-16GB, 7.0, 580.65.06"])
    gpu_less = Driver("libcuda", (13, 0), None, None)
    found = nvidia.detect(Probes(libcuda="x", nvidia_smi=smi, proc_file=""), lambda _: gpu_less)
    assert found == Driver("libcuda", (13, 0), None, (Gpu("Tesla V100-SXM2-16GB", (7, 0)),))


def test_environment_seams(tmp_path: Path):
    smi = smi_printing(tmp_path, ["x, 8.0, 580.65.06"])
    probes = Probes.from_environ(
        {LIBCUDA.name: "", NVIDIA_SMI.name: smi, NVIDIA_PROC.name: "/nonexistent"}
    )
    assert probes == Probes(libcuda="", nvidia_smi=smi, proc_file="/nonexistent")


# --------------------------------------------------------------------------- the driver's version
# (verify-gpu's report: lockstep.gpu asks here)


def test_driver_version_from_nvidia_smi_takes_the_first_gpu(tmp_path: Path):
    smi = smi_printing(
        tmp_path,
        ["NVIDIA H100 80GB HBM3, 9.0, 570.124.06", "NVIDIA H100 80GB HBM3, 9.0, 570.124.06"],
    )
    probes = Probes(libcuda="", nvidia_smi=smi, proc_file=str(tmp_path / "missing"))
    assert nvidia.driver_version(probes) == "570.124.06"


@pytest.mark.parametrize(
    ("proc_text", "version"),
    [(PROC_PROPRIETARY, "575.57.08"), (PROC_OPEN, "535.183.01")],
    ids=["proprietary", "open"],
)
@pytest.mark.parametrize("smi", ["none", "fails", "hangs"])
def test_driver_version_falls_back_to_proc(tmp_path: Path, proc_text: str, version: str, smi: str):
    bodies = {"fails": "echo 'NVIDIA-SMI has failed' >&2; exit 9", "hangs": "sleep 30"}
    proc = tmp_path / "version"
    proc.write_text(proc_text)
    executable = fake_smi(tmp_path, bodies[smi]) if smi in bodies else None
    probes = Probes(libcuda="", nvidia_smi=executable, proc_file=str(proc), timeout=0.5)
    assert nvidia.driver_version(probes) == version


def test_driver_version_is_none_without_any_source(tmp_path: Path):
    probes = Probes(libcuda="", nvidia_smi=None, proc_file=str(tmp_path / "missing"))
    assert nvidia.driver_version(probes) is None
    assert nvidia.driver_version(OFF) is None


@pytest.mark.parametrize(
    ("driver", "cuda"),
    [("575.51.03", (12, 9)), ("575.51.02", (12, 8)), ("580.95.05", (13, 0)), ("470.1", None)],
)
def test_driver_version_to_cuda(driver: str, cuda: tuple[int, int] | None):
    assert nvidia.cuda_of_driver(driver) == cuda


# --------------------------------------------------------------------------- the choice

NEW_ENOUGH = Driver("libcuda", (12, 9), None, (Gpu("A100", (8, 0)),))


def test_new_enough_driver_gets_the_cuda_lock():
    assert variants.choose(NEW_ENOUGH, lock_with_cuda("12.9")).variant == "cuda"


def test_no_driver_gets_the_cpu_lock():
    choice = variants.choose(None, lock_with_cuda("12.9"))
    assert choice == variants.Choice("cpu", "no NVIDIA driver found")


def test_too_old_driver_is_refused_with_the_ways_out():
    old = Driver("nvidia-smi", (12, 2), "535.183.01", (Gpu("A100", (8, 0)),))
    with pytest.raises(LockstepError) as refused:
        variants.choose(old, lock_with_cuda("12.9"))
    message = str(refused.value)
    assert "\n" not in message
    for part in ("535.183.01", "CUDA 12.2", "CUDA 12.9 (driver >= 575.51.03)", "VARIANT=cpu"):
        assert part in message
    assert "older cuda-version" in message and "nothing was downloaded" in message


def test_cuda_13_on_sm_70_is_refused():
    volta = Driver("libcuda", (13, 0), None, (Gpu("Tesla V100", (7, 0)),))
    with pytest.raises(LockstepError, match=r"Tesla V100 \(sm_70\).*compute capability >= 7\.5"):
        variants.choose(volta, lock_with_cuda("13.0"))
    assert variants.choose(volta, lock_with_cuda("12.9")).variant == "cuda"


def test_mixed_gpus_name_the_one_that_cannot_run_the_build():
    mixed = Driver("libcuda", (13, 0), None, (Gpu("H100", (9, 0)), Gpu("Tesla V100", (7, 0))))
    with pytest.raises(LockstepError, match=r"^Tesla V100 \(sm_70\): "):
        variants.choose(mixed, lock_with_cuda("13.0"))


def test_override_beats_the_driver():
    assert variants.choose(None, lock_with_cuda("12.9"), "cuda").variant == "cuda"
    assert variants.choose(NEW_ENOUGH, lock_with_cuda("12.9"), "CPU").variant == "cpu"
    with pytest.raises(LockstepError, match="not one of auto, cuda, cpu"):
        variants.choose(None, lock_with_cuda("12.9"), "rocm")


def test_a_lock_without_cuda_version_needs_no_driver_version():
    assert variants.choose(Driver("x", None, "1", None), lock_with_cuda(None)).variant == "cuda"


@pytest.mark.parametrize(
    ("build", "kind"),
    [("cuda126_py311_h1234_300", "cuda"), ("cpu_generic_py311_h5678_0", "cpu"), ("pyh0_0", None)],
)
def test_build_kind(build: str, kind: str | None):
    assert variants.build_kind(build) == kind


# --------------------------------------------------------------------------- speed


def _median_ms(probes: Probes, runs: int = 20) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        nvidia.detect(probes)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def test_detection_takes_well_under_100_ms(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    proc = tmp_path / "version"
    proc.write_text(PROC_PROPRIETARY)
    cases = {
        "this machine": Probes.from_environ(os.environ),
        "fake libcuda": Probes(
            libcuda=fake_libcuda(tmp_path, 12090, [(8, 0)]), nvidia_smi=None, proc_file=""
        ),
        "fake nvidia-smi": Probes(
            libcuda="", nvidia_smi=smi_printing(tmp_path, ["x, 8.0, 575.57.08"]), proc_file=""
        ),
        "fake /proc": Probes(libcuda="", nvidia_smi=None, proc_file=str(proc)),
    }
    medians = {label: _median_ms(probes) for label, probes in cases.items()}
    with capsys.disabled():
        print(
            "\ndetection, median of 20: " + ", ".join(f"{k} {v:.2f} ms" for k, v in medians.items())
        )
    assert max(medians.values()) < 100, medians
