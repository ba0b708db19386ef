"""The engine's lock choice (lockstep.core.engine.choose_lock), the variant settings, the image's
lock (lockstep.core.variants.lock_file), check's CPU lock findings and the update report's
hardware notes, on generated locks (tests/testdata.py) and fake drivers."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.testdata import generated_lock_text

from lockstep.check import variant_findings
from lockstep.core import variants
from lockstep.core.engine import choose_lock
from lockstep.core.errors import LockstepError
from lockstep.core.explicit import parse_explicit
from lockstep.core.nvidia import Driver, Gpu
from lockstep.core.settings import Settings, settings_from_table
from lockstep.lockdiff import hardware_notes

CUDA_PACKAGES = [
    ("python", "3.11.9", "h_0"),
    ("cuda-version", "12.9", "h_3"),
    ("libcublas", "12.9.1.4", "h_0"),
    ("pytorch", "2.7.1", "cuda129_py311_h_300"),
]
CPU_PACKAGES = [("python", "3.11.9", "h_0"), ("pytorch", "2.7.1", "cpu_generic_py311_h_0")]
VARIANT = settings_from_table({"cpu-specs": {"pytorch": "pytorch=*=cpu*", "cuda-version": ""}})
NEW = Driver("nvidia-smi", (12, 9), "575.57.08", (Gpu("L4", (8, 9)),))


def _write(folder: Path, name: str, packages: list[tuple[str, str, str]]) -> Path:
    path = folder / name
    path.write_text(generated_lock_text(packages), encoding="utf-8")
    return path


@pytest.fixture
def locks(tmp_path: Path) -> tuple[Path, Path]:
    return (
        _write(tmp_path, "conda-linux-64.lock", CUDA_PACKAGES),
        _write(tmp_path, "conda-linux-64-cpu.lock", CPU_PACKAGES),
    )


def _never() -> Driver | None:
    raise AssertionError("the driver was probed")


def test_no_cpu_variant_means_the_one_lock_and_no_probe(locks: tuple[Path, Path]):
    cuda, cpu = locks
    assert choose_lock(Settings(), cuda, cpu, "linux-64", "", _never) == cuda
    with pytest.raises(LockstepError, match=r"VARIANT=cpu, but \[tool.lockstep\] declares no CPU"):
        choose_lock(Settings(), cuda, cpu, "linux-64", "cpu", _never)


@pytest.mark.parametrize(
    ("driver", "chosen"), [(None, 1), (NEW, 0)], ids=["no-driver", "new-enough"]
)
def test_choice_by_driver(locks, driver, chosen, capsys):
    assert choose_lock(VARIANT, *locks, "linux-64", "auto", lambda: driver) == locks[chosen]
    assert capsys.readouterr().out.startswith(f"lockstep: {('CUDA', 'CPU')[chosen]} variant, ")


def test_an_override_asks_no_driver(locks):
    assert choose_lock(VARIANT, *locks, "linux-64", "cpu", _never) == locks[1]
    assert choose_lock(VARIANT, *locks, "linux-64", "cuda", _never) == locks[0]


def test_a_missing_cpu_lock_says_to_lock(locks):
    locks[1].unlink()
    with pytest.raises(LockstepError, match=r"conda-linux-64-cpu.lock not found .*`invoke lock`"):
        choose_lock(VARIANT, *locks, "linux-64", "", lambda: None)


def test_settings_refuse_a_cpu_template_without_platform_or_equal_to_the_cuda_one():
    with pytest.raises(LockstepError, match="cpu-lock-file-template 'cpu.lock' must contain"):
        settings_from_table({"cpu-lock-file-template": "cpu.lock"})
    with pytest.raises(LockstepError, match="equals lock-file-template"):
        settings_from_table({"cpu-lock-file-template": "conda-{platform}.lock"})
    assert VARIANT.has_cpu_variant and not Settings().has_cpu_variant


def test_image_lock_file():
    assert variants.lock_file(VARIANT, "linux-64", "") == "conda-linux-64.lock"
    assert variants.lock_file(VARIANT, "linux-64", "cpu") == "conda-linux-64-cpu.lock"
    assert variants.main(["lock-file", "gpu"]) == 1


# --------------------------------------------------------------------------- check


def _findings(tmp_path: Path, cpu_packages: list[tuple[str, str, str]] | None) -> dict[str, str]:
    from lockstep.check import read_inputs

    cuda = parse_explicit(generated_lock_text(CUDA_PACKAGES))
    if cpu_packages is not None:
        _write(tmp_path, "conda-linux-64-cpu.lock", cpu_packages)
    inputs, _ = read_inputs(tmp_path, VARIANT)
    return {f.code: f.what for f in variant_findings(inputs, cuda, "linux-64")}


def test_check_missing_cpu_lock(tmp_path: Path):
    assert "cpu-lock-missing" in _findings(tmp_path, None)


def test_check_mismatch_and_cuda_build(tmp_path: Path):
    drifted = [("python", "3.11.10", "h_0"), ("pytorch", "2.7.1", "cuda129_py311_h_300")]
    found = _findings(tmp_path, drifted)
    assert "python 3.11.9 vs 3.11.10" in found["cpu-lock-mismatch"]
    assert found["cpu-lock-cuda-build"] == "the CPU lock installs CUDA builds: pytorch"


def test_check_consistent_cpu_lock(tmp_path: Path):
    assert _findings(tmp_path, CPU_PACKAGES) == {}


# --------------------------------------------------------------------------- update report


def test_notes_flip_and_cuda_version():
    old = parse_explicit(generated_lock_text(CUDA_PACKAGES))
    newer = [(n, "13.0" if n == "cuda-version" else v, b) for n, v, b in CPU_PACKAGES]
    new = parse_explicit(generated_lock_text([*newer, ("cuda-version", "13.0", "h_3")]))
    notes = hardware_notes(old, new, "conda-linux-64.lock")
    assert notes[0] == (
        "conda-linux-64.lock: pytorch flips from a cuda build to a cpu build "
        "(cuda129_py311_h_300 -> cpu_generic_py311_h_0)"
    )
    assert notes[1] == (
        "conda-linux-64.lock: cuda-version 12.9 -> 13.0: needs CUDA 13.0 (driver >= 580.65.06) "
        "and compute capability >= 7.5"
    )
    assert "download size unknown" in notes[2]


def test_notes_size_from_the_package_cache(tmp_path: Path):
    old = parse_explicit(generated_lock_text(CPU_PACKAGES, channel="https://example.invalid/c"))
    for entry in old.entries[:1]:
        (tmp_path / entry.filename).write_bytes(b"x" * 2000)
    [note] = hardware_notes(old, old, "conda-linux-64-cpu.lock", [tmp_path])
    assert note == (
        "conda-linux-64-cpu.lock: download size 2.0 kB -> 2.0 kB (+0.0 kB; from the file:// "
        "archives and the package cache; 2 archives of unknown size)"
    )


def test_doctor_reads_the_lock_the_env_was_built_from():
    cuda = parse_explicit(generated_lock_text(CUDA_PACKAGES))
    cpu = parse_explicit(generated_lock_text(CPU_PACKAGES))
    assert variants.installed_lock(CPU_PACKAGES, [cuda, cpu]) is cpu
    assert variants.installed_lock(CUDA_PACKAGES, [cuda, cpu]) is cuda
