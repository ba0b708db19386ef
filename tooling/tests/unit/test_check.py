"""`invoke check`'s findings: each on a small project with exactly that defect."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from tests.testdata import PYPI, VIRTUAL_PACKAGES, Project

from lockstep import check
from lockstep.core.settings import Settings
from lockstep.findings import error, to_json, to_table


def codes(root: Path) -> list[str]:
    return sorted(f.code for f in check.run_checks(root, Settings()))


def test_clean_project_has_no_findings(tmp_path: Path) -> None:
    Project().write(tmp_path)
    assert check.run_checks(tmp_path, Settings()) == []


def test_environment_yml_name_differs_from_env_name(tmp_path: Path) -> None:
    Project().write(tmp_path)
    env = tmp_path / "environment.yml"
    env.write_text(env.read_text().replace("name: lockstep\n", "name: other\n"), encoding="utf-8")
    found = check.run_checks(tmp_path, Settings())
    assert [(f.code, f.severity) for f in found] == [("env-name-mismatch", "warning")]
    assert "name: lockstep" in found[0].fix
    assert check.run_checks(tmp_path, Settings(env_name="other")) == []


def test_environment_yml_without_a_name_is_fine(tmp_path: Path) -> None:
    Project().write(tmp_path)
    env = tmp_path / "environment.yml"
    env.write_text(env.read_text().replace("name: lockstep\n", ""), encoding="utf-8")
    assert check.run_checks(tmp_path, Settings()) == []


# --------------------------------------------------------------------------- conda lock


def test_missing_conda_lock(tmp_path: Path) -> None:
    Project().write(tmp_path)
    (tmp_path / "conda-linux-64.lock").unlink()
    assert codes(tmp_path) == ["conda-lock-missing"]


def test_conda_lock_for_another_platform(tmp_path: Path) -> None:
    Project(lock_platform="osx-arm64").write(tmp_path)
    assert codes(tmp_path) == ["conda-lock-platform"]


def test_conda_lock_without_input_hash(tmp_path: Path) -> None:
    Project().write(tmp_path)
    lock = tmp_path / "conda-linux-64.lock"
    lock.write_text(re.sub(r"# input_hash: .*\n", "", lock.read_text()), encoding="utf-8")
    assert codes(tmp_path) == ["conda-lock-no-hash"]


def test_conda_lock_stale_after_environment_yml_changed(tmp_path: Path) -> None:
    Project().write(tmp_path)
    env = tmp_path / "environment.yml"
    env.write_text(env.read_text().replace("  - pyyaml\n", "  - pyyaml>=6\n"), encoding="utf-8")
    found = check.run_checks(tmp_path, Settings())
    assert [f.code for f in found] == ["conda-lock-stale"]
    assert "invoke lock" in found[0].fix


def test_conda_lock_stale_after_virtual_packages_changed(tmp_path: Path) -> None:
    Project().write(tmp_path)
    vp = tmp_path / "virtual-packages.yml"
    vp.write_text(vp.read_text().replace('"2.28"', '"2.34"'), encoding="utf-8")
    assert codes(tmp_path) == ["conda-lock-stale"]


def test_missing_virtual_packages_file(tmp_path: Path) -> None:
    Project().write(tmp_path)
    (tmp_path / "virtual-packages.yml").unlink()
    # Without the file the solver would see no __cuda either.
    assert codes(tmp_path) == ["cuda-too-old", "virtual-packages-missing"]


# --------------------------------------------------------------------------- poetry lock


def test_missing_poetry_lock(tmp_path: Path) -> None:
    Project().write(tmp_path)
    (tmp_path / "poetry.lock").unlink()
    assert codes(tmp_path) == ["poetry-lock-missing"]


def test_poetry_lock_stale_after_pyproject_changed(tmp_path: Path) -> None:
    Project().write(tmp_path)
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('"rich>=14"', '"rich>=14.1"'), "utf-8")
    assert codes(tmp_path) == ["poetry-lock-stale"]


# --------------------------------------------------------------------------- across locks


def test_poetry_locks_another_version_of_a_conda_package(tmp_path: Path) -> None:
    Project(poetry_version_override={"invoke": "2.2.0"}).write(tmp_path)
    found = check.run_checks(tmp_path, Settings())
    assert [f.code for f in found] == ["version-conflict"]
    assert "invoke" in found[0].what and "2.2.0" in found[0].what and "3.0.1" in found[0].what


def test_poetry_would_install_a_cuda_wheel_beside_conda(tmp_path: Path) -> None:
    pypi = {**PYPI, "bitsandbytes": ("0.46.0", "main", {"nvidia-cublas-cu12": ">=12"})}
    Project(pypi=pypi, roots=["rich>=14", "bitsandbytes>=0.46"]).write(tmp_path)
    found = check.run_checks(tmp_path, Settings())
    assert [f.code for f in found] == ["duplicate-wheel"]
    assert found[0].what.startswith("nvidia-cublas-cu12")


def test_poetry_would_install_triton_beside_conda_pytorch(tmp_path: Path) -> None:
    pypi = {**PYPI, "flash-kernels": ("1.0.0", "main", {"triton": ">=3"})}
    Project(pypi=pypi, roots=["rich>=14", "flash-kernels"]).write(tmp_path)
    assert codes(tmp_path) == ["duplicate-wheel"]


def test_pins_out_of_line_with_the_conda_lock(tmp_path: Path) -> None:
    Project(pins_override={"invoke": None}).write(tmp_path)
    found = check.run_checks(tmp_path, Settings())
    assert [f.code for f in found] == ["pin-mismatch"]
    assert "lacks invoke 3.0.1" in found[0].what and found[0].fix == "run `invoke pin`"


def test_pin_of_another_version(tmp_path: Path) -> None:
    Project(pins_override={"torch": "2.6.0"}, poetry_version_override={"torch": "2.6.0"}).write(
        tmp_path
    )
    assert codes(tmp_path) == ["pin-mismatch", "version-conflict"]


# --------------------------------------------------------------------------- spec lint


def test_pytorch_channel(tmp_path: Path) -> None:
    Project(channels=["pytorch", "nvidia", "conda-forge", "nodefaults"]).write(tmp_path)
    assert codes(tmp_path) == ["pytorch-channel"]


def test_defaults_channel(tmp_path: Path) -> None:
    Project(channels=["conda-forge", "defaults"]).write(tmp_path)
    assert codes(tmp_path) == ["defaults-channel"]


def test_no_nodefaults_is_a_warning(tmp_path: Path) -> None:
    Project(channels=["conda-forge"]).write(tmp_path)
    found = check.run_checks(tmp_path, Settings())
    assert [(f.code, f.severity) for f in found] == [("no-nodefaults", "warning")]


def test_cuda_packages_without_cuda_version(tmp_path: Path) -> None:
    deps = [d for d in Project().dependencies if not d.startswith("cuda-version")]
    Project(dependencies=deps).write(tmp_path)
    assert codes(tmp_path) == ["no-cuda-version"]


def test_cuda_virtual_package_older_than_cuda_version(tmp_path: Path) -> None:
    Project(virtual_packages={**VIRTUAL_PACKAGES, "__cuda": "12.4"}).write(tmp_path)
    found = check.run_checks(tmp_path, Settings())
    assert [f.code for f in found] == ["cuda-too-old"]
    assert found[0].file == "virtual-packages.yml" and '"12.9"' in found[0].fix


def test_cuda_virtual_package_missing(tmp_path: Path) -> None:
    vp = {k: v for k, v in VIRTUAL_PACKAGES.items() if k != "__cuda"}
    Project(virtual_packages=vp).write(tmp_path)
    assert codes(tmp_path) == ["cuda-too-old"]


def test_pip_section(tmp_path: Path) -> None:
    Project(pip=["rich"]).write(tmp_path)
    assert codes(tmp_path) == ["pip-section"]


@pytest.mark.parametrize("variables", [None, {"PYTHONNOUSERSITE": "0"}, {"OTHER": "1"}])
def test_user_site_not_disabled(tmp_path: Path, variables: dict | None) -> None:
    Project(variables=variables).write(tmp_path)
    assert codes(tmp_path) == ["user-site"]


# --------------------------------------------------------------------------- helpers, output


@pytest.mark.parametrize(
    ("conda", "pypi", "same"),
    [
        ("1.26", "1.26.0", True),
        ("2.5.1", "2.5.1+cu124", True),
        ("2.5.1", "2.5.0", False),
        ("1.0rc1", "1.0", False),
        ("6.0.2", "6.0.2", True),
    ],
)
def test_same_version(conda: str, pypi: str, same: bool) -> None:
    assert check.same_version(conda, pypi) is same


def test_json_schema_is_stable() -> None:
    finding = error("conda-lock-stale", "conda-linux-64.lock", "old", "run `invoke lock`")
    document = json.loads(to_json("check", [finding]))
    assert document == {
        "schema": 1,
        "tool": "check",
        "clean": False,
        "findings": [
            {
                "code": "conda-lock-stale",
                "severity": "error",
                "file": "conda-linux-64.lock",
                "what": "old",
                "fix": "run `invoke lock`",
            }
        ],
    }
    assert json.loads(to_json("check", []))["clean"] is True


def test_table_names_severity_file_and_fix() -> None:
    table = to_table("check", [error("x", "poetry.lock", "what is wrong", "how to fix")])
    assert "error" in table and "poetry.lock" in table and "fix: how to fix" in table
    assert to_table("check", []) == "check: clean, nothing found"
