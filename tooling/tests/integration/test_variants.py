"""Hardware-aware locks end to end: one environment.yml, a CUDA and a CPU lock, and
reproduce picking one by the driver. Real conda-lock, invoke, make, Poetry and pip against a
local channel that holds CUDA and CPU builds of the torch-like `pytorch` and a `cuda-version`
that constrains __cuda; conda itself is the py-rattler stand-in (a test double of the CLI).

The driver is faked the way the engine reads it: a fake `nvidia-smi` (LOCKSTEP_NVIDIA_SMI), no
libcuda (LOCKSTEP_LIBCUDA empty) and no /proc file (LOCKSTEP_NVIDIA_PROC), so a GPU host runs
these tests the same way.
"""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
from pathlib import Path

import pytest

from .channel import PYTORCH_VERSIONS, build_channel, default_packages, pytorch_cpu_package
from .project import (
    LOCK,
    POETRY_LOCK,
    Project,
    conda_meta_records,
    create_project,
    file_hashes,
    lock_records,
    user_site_python,
)
from .pyindex import PackageIndex

pytestmark = pytest.mark.integration

CPU_LOCK = "conda-linux-64-cpu.lock"
CPU_SPECS = """
# The CPU variant: the CUDA build swapped for a CPU one, cuda-version dropped (and __cuda).
[tool.lockstep.cpu-specs]
pytorch = "pytorch=*=cpu*"
cuda-version = ""
"""
# The driver probes of lockstep.core.nvidia, switched to what each test fakes.
NO_DRIVER = {"LOCKSTEP_LIBCUDA": "", "LOCKSTEP_NVIDIA_SMI": "", "LOCKSTEP_NVIDIA_PROC": "/none"}
REPRODUCE_INPUTS = ("Makefile", "tooling", "pyproject.toml", LOCK, CPU_LOCK, POETRY_LOCK)


def lock_versions(lock: Path) -> dict[str, tuple[str, str]]:
    return {name: (version, build) for name, version, build, *_ in lock_records(lock)}


def set_spec_line(project: Project, name: str, line: str) -> None:
    """Change one dependency line of environment.yml, as a user would."""
    text = project.environment_yml.read_text(encoding="utf-8")
    lines = [f"  - {line}" if ln.startswith(f"  - {name}=") else ln for ln in text.split("\n")]
    assert lines != text.split("\n")
    project.environment_yml.write_text("\n".join(lines), encoding="utf-8")


def fake_nvidia_smi(folder: Path, driver: str, capability: str = "8.0") -> str:
    """An nvidia-smi that answers the engine's query as a real one does (CSV, no header)."""
    folder.mkdir(parents=True, exist_ok=True)
    smi = folder / "nvidia-smi"
    smi.write_text(
        "#!/bin/sh\n"
        '[ "$1" = --query-gpu=name,compute_cap,driver_version ] || exit 6\n'
        f"echo 'NVIDIA Fake GPU, {capability}, {driver}'\n"
    )
    smi.chmod(0o755)
    return str(smi)


def with_driver(project: Project, smi: str | None) -> Project:
    env = {**project.env, **NO_DRIVER}
    if smi:
        env["LOCKSTEP_NVIDIA_SMI"] = smi
    return dataclasses.replace(project, env=env)


@pytest.fixture(scope="module")
def variant_channel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project channel plus a CPU build of every pytorch version."""
    packages = [p for p in default_packages() if p.name != "python"]
    cpu = [pytorch_cpu_package(v) for v in PYTORCH_VERSIONS]
    return build_channel(
        tmp_path_factory.mktemp("variant-channel"), [user_site_python(), *packages, *cpu]
    )


@pytest.fixture(scope="module")
def locked(
    tmp_path_factory: pytest.TempPathFactory,
    variant_channel: Path,
    standin_bin: Path,
    wheel_index: PackageIndex,
) -> Project:
    """A new project with a CPU variant: `invoke lock`, `invoke poetry-init`, `invoke pin`."""
    base = tmp_path_factory.mktemp("variants")
    project = create_project(
        base / "project", base / "state", variant_channel, standin_bin, wheel_index.url, "lc-var"
    )
    # The 2.5 series as a CUDA build; a free CPU solve would take 2.6.0, the newest CPU build.
    set_spec_line(project, "pytorch", "pytorch=2.5.*=cuda*")
    with project.pyproject.open("a", encoding="utf-8") as handle:
        handle.write(CPU_SPECS)
    project.invoke("lock")
    project.invoke("poetry-init")
    project.invoke("pin")
    return project


def fresh_copy(project: Project, tmp_path: Path, standin_bin: Path, smi: str | None) -> Project:
    """Another machine: only what `make reproduce` needs, no Python tools, no env yet."""
    copy = project.copy(tmp_path / "project", tmp_path / "state", standin_bin, REPRODUCE_INPUTS)
    return with_driver(copy.without_python_tools(), smi)


# --------------------------------------------------------------------------- lock and check


def test_one_lock_writes_both_locks_with_the_same_shared_versions(locked: Project):
    cuda = lock_versions(locked.lock)
    cpu = lock_versions(locked.root / CPU_LOCK)
    assert cuda["pytorch"] == ("2.5.1", "cuda126_py311_0")
    # Held at the CUDA lock's version, not the newest CPU build (2.6.0).
    assert cpu["pytorch"] == ("2.5.1", "cpu_py311_0")
    assert {"cuda-version", "libcudart"} <= cuda.keys()
    assert not {"cuda-version", "libcudart"} & cpu.keys()
    shared = cuda.keys() & cpu.keys()
    assert shared == cpu.keys()
    assert {n: cuda[n][0] for n in shared} == {n: cpu[n][0] for n in shared}


def test_check_is_clean_with_both_locks(locked: Project):
    done = locked.invoke("check", "--json")
    assert json.loads(done.stdout)["findings"] == []


def _codes(done: subprocess.CompletedProcess[str]) -> dict[str, str]:
    return {f["code"]: f["what"] for f in json.loads(done.stdout)["findings"]}


def test_check_catches_a_cpu_lock_that_drifted_from_the_cuda_lock(
    locked: Project, tmp_path: Path, standin_bin: Path
):
    project = locked.copy(tmp_path / "project", tmp_path / "state", standin_bin)
    old_cpu = (project.root / CPU_LOCK).read_text(encoding="utf-8")
    set_spec_line(project, "pytorch", "pytorch=2.6.*=cuda*")
    project.invoke("lock")
    assert lock_versions(project.lock)["pytorch"][0] == "2.6.0"
    # The CUDA lock moved on, the CPU lock is the one of before (both real solves).
    (project.root / CPU_LOCK).write_text(old_cpu, encoding="utf-8")
    before = file_hashes(project.root)

    done = project.invoke("check", "--json", expect_rc=1)

    codes = _codes(done)
    assert "pytorch 2.6.0 vs 2.5.1" in codes["cpu-lock-mismatch"], codes
    assert "cpu-lock-stale" in codes, codes
    assert "conda-lock-stale" not in codes, codes
    assert file_hashes(project.root) == before


# --------------------------------------------------------------------------- reproduce


def test_reproduce_without_a_driver_installs_the_cpu_lock(
    locked: Project, tmp_path: Path, standin_bin: Path
):
    project = fresh_copy(locked, tmp_path, standin_bin, None)

    proc = project.make("reproduce")

    assert conda_meta_records(project.prefix) == lock_records(project.root / CPU_LOCK)
    assert f"CPU variant, {CPU_LOCK}: no NVIDIA driver found" in proc.stdout, proc.stdout


def test_reproduce_with_a_new_enough_driver_installs_the_cuda_lock(
    locked: Project, tmp_path: Path, standin_bin: Path
):
    smi = fake_nvidia_smi(tmp_path / "driver", "575.57.08")
    project = fresh_copy(locked, tmp_path, standin_bin, smi)

    proc = project.make("reproduce")

    assert conda_meta_records(project.prefix) == lock_records(project.lock)
    assert re.search(r"CUDA variant, conda-linux-64\.lock: NVIDIA driver 575\.57\.08", proc.stdout)


def test_reproduce_refuses_an_old_driver_with_nothing_downloaded_and_nothing_changed(
    locked: Project, tmp_path: Path, standin_bin: Path
):
    project = fresh_copy(locked, tmp_path, standin_bin, None)
    project.make("reproduce")  # an env (the CPU one) that must stay as it is
    old = with_driver(project, fake_nvidia_smi(tmp_path / "driver", "535.183.01"))
    before = file_hashes(project.root), file_hashes(project.conda_root)

    proc = old.make("reproduce", expect_rc=None)

    assert proc.returncode != 0
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error: ")]
    assert len(errors) == 1, proc.stderr
    for part in ("535.183.01", "CUDA 12.2", "CUDA 12.6", "VARIANT=cpu", "nothing was downloaded"):
        assert part in errors[0], errors[0]
    assert "+ " not in proc.stdout, "a command ran before the refusal"
    assert (file_hashes(project.root), file_hashes(project.conda_root)) == before


def test_variant_overrides_the_driver(locked: Project, tmp_path: Path, standin_bin: Path):
    old = fresh_copy(locked, tmp_path, standin_bin, fake_nvidia_smi(tmp_path / "d", "535.183.01"))

    proc = old.make("reproduce", "VARIANT=cpu")
    assert conda_meta_records(old.prefix) == lock_records(old.root / CPU_LOCK)
    assert "CPU variant, conda-linux-64-cpu.lock: VARIANT=cpu asked for it" in proc.stdout

    with_driver(old, None).make("reproduce", "VARIANT=cuda")
    assert conda_meta_records(old.prefix) == lock_records(old.lock)


def test_invoke_reproduce_variant(locked: Project, tmp_path: Path, standin_bin: Path):
    project = with_driver(locked.copy(tmp_path / "p", tmp_path / "s", standin_bin), None)
    project.invoke("reproduce", "--variant", "cuda")
    assert conda_meta_records(project.prefix) == lock_records(project.lock)


# --------------------------------------------------------------------------- update


def test_update_report_shows_a_cuda_to_cpu_flip_and_a_cuda_version_change(
    locked: Project, tmp_path: Path, standin_bin: Path
):
    project = locked.copy(tmp_path / "project", tmp_path / "state", standin_bin)
    set_spec_line(project, "pytorch", "pytorch=2.5.*=cpu*")
    set_spec_line(project, "cuda-version", "cuda-version=12.9")
    before = file_hashes(project.root)

    proc = project.invoke("update", "--dry-run")

    out = proc.stdout
    assert re.search(
        r"note: conda-linux-64\.lock: pytorch flips from a cuda build to a cpu build "
        r"\(cuda126_py311_0 -> cpu_py311_0\)",
        out,
    ), out
    assert re.search(
        r"note: conda-linux-64\.lock: cuda-version 12\.6 -> 12\.9: needs CUDA 12\.9 "
        r"\(driver >= 575\.51\.03\)",
        out,
    ), out
    # The local channel's archives are file:// URLs: their sizes are known.
    assert re.search(
        r"note: conda-linux-64\.lock: download size [\d.]+ [kM]B -> [\d.]+ [kM]B", out
    ), out
    assert file_hashes(project.root) == before


def test_doctor_compares_a_cpu_env_with_the_cpu_lock(
    locked: Project, tmp_path: Path, standin_bin: Path
):
    project = with_driver(locked.copy(tmp_path / "p", tmp_path / "s", standin_bin), None)
    project.invoke("reproduce")
    assert conda_meta_records(project.prefix) == lock_records(project.root / CPU_LOCK)

    done = project.invoke("doctor", "--json")

    assert json.loads(done.stdout)["findings"] == []


def test_update_moves_both_locks_and_rebuilds_the_machines_variant(
    locked: Project, tmp_path: Path, standin_bin: Path
):
    project = with_driver(locked.copy(tmp_path / "p", tmp_path / "s", standin_bin), None)
    project.invoke("reproduce")
    set_spec_line(project, "pytorch", "pytorch=2.6.*=cuda*")

    proc = project.invoke("update")

    assert lock_versions(project.lock)["pytorch"] == ("2.6.0", "cuda126_py311_0")
    assert lock_versions(project.root / CPU_LOCK)["pytorch"] == ("2.6.0", "cpu_py311_0")
    # No driver here: the env is rebuilt from the new CPU lock, and every file agrees again.
    assert conda_meta_records(project.prefix) == lock_records(project.root / CPU_LOCK)
    assert re.search(r"cpu +pytorch +2\.5\.1 -> 2\.6\.0", proc.stdout), proc.stdout
    assert json.loads(project.invoke("check", "--json").stdout)["findings"] == []
