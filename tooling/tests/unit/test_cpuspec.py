"""The CPU variant's derived spec files (lockstep.cpuspec), on a real project's files: the
environment.yml, virtual-packages.yml and CUDA lock of Alek96/ultrasound_fetal_images (see
tests/data/conda/PROVENANCE). conda-lock's own library is the oracle of the derived input hash."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from lockstep import cpuspec, inputhash
from lockstep.core import condalockhash
from lockstep.core.explicit import read_explicit
from lockstep.core.settings import settings_from_table

REAL = (
    Path(__file__).resolve().parents[1]
    / "data"
    / "conda"
    / "Alek96__ultrasound_fetal_images-849ebd46"
)
SETTINGS = settings_from_table(
    {
        "cpu-specs": {
            "pytorch": "pytorch::pytorch=*=*cpu*",
            "pytorch-cuda": "",
            "pytorch-mutex": "pytorch::pytorch-mutex=*=cpu",
        }
    }
)


@pytest.fixture(scope="module")
def cuda_lock():
    return read_explicit(REAL / "conda-linux-64.lock", "linux-64")


def _derived(cuda_lock, cpu_names):
    pins = cpuspec.shared_pins(cuda_lock, cpu_names, SETTINGS)
    env_text = (REAL / "environment.yml").read_text(encoding="utf-8")
    vp_text = (REAL / "virtual-packages.yml").read_text(encoding="utf-8")
    return pins, cpuspec.cpu_inputs(env_text, vp_text, SETTINGS, pins)


def test_free_solve_swaps_drops_and_keeps_the_rest(cuda_lock):
    _pins, (env_text, vp_text) = _derived(cuda_lock, [])
    env = yaml.safe_load(env_text)
    assert env["dependencies"] == [
        "python=3.10.*",
        "conda-lock",
        "mamba",
        "pip",
        "setuptools",
        "poetry=1.8.*",
        "pytorch::pytorch=*=*cpu*",
        "conda-forge::opencv",
    ]
    assert env["channels"] == ["pytorch", "nvidia", "conda-forge", "nodefaults"]
    assert yaml.safe_load(vp_text) == {"subdirs": {"linux-64": {"packages": {}}}}


def test_held_solve_pins_every_shared_package_to_the_cuda_lock(cuda_lock):
    # As if the CPU solve had installed what the CUDA lock holds, less its CUDA packages.
    cpu_names = [e.name for e in cuda_lock.entries if not e.name.startswith(("cuda", "libcu"))]
    pins, (env_text, _vp) = _derived(cuda_lock, cpu_names)
    dependencies = yaml.safe_load(env_text)["dependencies"]
    assert "pytorch::pytorch=2.3.1=*cpu*" in dependencies
    assert "pytorch::pytorch-mutex=1.0=cpu" in dependencies
    assert not any(d.startswith(("pytorch-cuda", "pytorch::pytorch-cuda")) for d in dependencies)
    assert "python==3.10.14" in dependencies and "setuptools==70.0.0" in dependencies
    assert len(dependencies) == len(pins)
    assert "pytorch-cuda" not in pins and "cuda-version" not in pins


def test_conda_lock_hashes_the_derived_files_as_check_does(cuda_lock, tmp_path: Path):
    _pins, (env_text, vp_text) = _derived(cuda_lock, [e.name for e in cuda_lock.entries])
    env, vp = tmp_path / "environment.yml", tmp_path / "virtual-packages.yml"
    env.write_text(env_text, encoding="utf-8")
    vp.write_text(vp_text, encoding="utf-8")
    oracle = inputhash.conda_lock_input_hash(env, vp, "linux-64")
    # x264's `1!164.3095` (an epoch) is beyond the fast path: check asks conda-lock then.
    with pytest.raises(condalockhash.Unsupported):
        condalockhash.fast_input_hash(env_text, vp_text, "linux-64")
    assert oracle in inputhash.accepted_hashes(env, vp, "linux-64")


def test_the_fast_hash_of_plain_pins_is_conda_locks(cuda_lock, tmp_path: Path):
    plain = settings_from_table({"cpu-specs": {"pytorch-cuda": "", "pytorch": "pytorch=*=*cpu*"}})
    names = [e.name for e in cuda_lock.entries if "!" not in e.version]
    pins = cpuspec.shared_pins(cuda_lock, names, plain)
    env_text, vp_text = cpuspec.cpu_inputs(
        (REAL / "environment.yml").read_text(encoding="utf-8"),
        (REAL / "virtual-packages.yml").read_text(encoding="utf-8"),
        plain,
        pins,
    )
    assert "pytorch=2.3.1=*cpu*" in yaml.safe_load(env_text)["dependencies"]
    env, vp = tmp_path / "environment.yml", tmp_path / "virtual-packages.yml"
    env.write_text(env_text, encoding="utf-8")
    vp.write_text(vp_text, encoding="utf-8")
    oracle = inputhash.conda_lock_input_hash(env, vp, "linux-64")
    assert condalockhash.fast_input_hash(env_text, vp_text, "linux-64") == oracle


def test_version_mismatches(cuda_lock):
    assert cpuspec.version_mismatches(cuda_lock, cuda_lock) == []
