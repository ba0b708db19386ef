"""uv or pip, the same env: two projects locked through the real tasks, one with `uv`
in environment.yml, reproduced by `make reproduce`; the PyPI side is read back from the env's
files (dist-info, RECORD, INSTALLER), never from log lines.

uv is the real binary (PyPI's wheel) inside a conda package of the local channel; conda is the
stand-in (a test double of the CLI over py-rattler).
"""

from __future__ import annotations

import base64
import csv
import hashlib
from pathlib import Path

import pytest

from .channel import add_packages
from .distinfo import SITE_PACKAGES
from .project import Project, build_project_channel, create_project, distributions, lock_records
from .pyindex import PackageIndex
from .uvtool import SKIP_REASON, uv_binary, uv_package

pytestmark = pytest.mark.integration

# Poetry's side of the test project (tinyapp needs tinyhelper); conda provides the rest.
PYPI_SIDE = {"tinyapp", "tinyhelper"}
# What an installer writes into a dist-info by itself: the rest comes from the wheel.
INSTALLER_FILES = {"INSTALLER", "REQUESTED", "RECORD", "direct_url.json"}


def _add_uv(project: Project) -> None:
    text = project.environment_yml.read_text(encoding="utf-8")
    assert "  - pip\n" in text
    project.environment_yml.write_text(text.replace("  - pip\n", "  - pip\n  - uv\n"))


@pytest.fixture(scope="module")
def envs(
    tmp_path_factory: pytest.TempPathFactory, standin_bin: Path, wheel_index: PackageIndex
) -> dict[str, Project]:
    """The same locked project reproduced twice: without uv in the env (pip) and with it."""
    binary = uv_binary()
    if binary is None:
        pytest.skip(SKIP_REASON)
    base = tmp_path_factory.mktemp("uv-or-pip")
    channel = build_project_channel(base / "channel")
    add_packages(channel, [uv_package(binary)])
    by_pip = create_project(
        base / "pip", base / "pip-state", channel, standin_bin, wheel_index.url, "uv-or-pip"
    )
    for task in ("lock", "poetry-init", "pin"):
        by_pip.invoke(task)
    by_uv = by_pip.copy(base / "uv", base / "uv-state", standin_bin)
    _add_uv(by_uv)
    by_uv.invoke("lock")
    by_uv.invoke("pin")
    for project in (by_pip, by_uv):
        project.make("reproduce")
    return {"pip": by_pip, "uv": by_uv}


def _record(folder: Path) -> dict[str, str]:
    """RECORD's path -> hash, minus what the installer wrote and bytecode (pip compiles, uv
    does not by default; Python compiles on first import either way)."""
    with open(folder / "RECORD", newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    return {
        path: digest
        for path, digest, *_ in rows
        if "__pycache__" not in path and Path(path).name not in INSTALLER_FILES
    }


def _file_hash(path: Path) -> str:
    digest = hashlib.sha256(path.read_bytes()).digest()
    return "sha256=" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def test_the_lock_has_uv_only_where_environment_yml_asks(envs: dict[str, Project]) -> None:
    names = {
        kind: {name for name, *_ in lock_records(project.lock)} for kind, project in envs.items()
    }
    assert names["uv"] - names["pip"] == {"uv"}
    assert names["pip"] <= names["uv"]
    assert envs["pip"].poetry_lock.read_bytes() == envs["uv"].poetry_lock.read_bytes()
    assert (envs["uv"].prefix / "bin" / "uv").is_file()
    assert not (envs["pip"].prefix / "bin" / "uv").exists()


def test_installer_says_which(envs: dict[str, Project]) -> None:
    for kind, project in envs.items():
        installers = {d.name: d.installer for d in distributions(project.prefix)}
        assert {n: installers.get(n) for n in PYPI_SIDE} == dict.fromkeys(PYPI_SIDE, kind)
        # conda's own distributions stay conda's
        assert installers["pip"] == "conda", installers


def test_same_distributions_same_record_hashes(envs: dict[str, Project]) -> None:
    found = {
        kind: {(d.name, d.version): d.folder for d in distributions(project.prefix)}
        for kind, project in envs.items()
    }
    assert found["pip"].keys() == found["uv"].keys()
    for key in found["pip"]:
        pip_record, uv_record = _record(found["pip"][key]), _record(found["uv"][key])
        assert pip_record == uv_record, key
        assert pip_record, key


def test_every_recorded_file_is_on_disk_with_its_hash(envs: dict[str, Project]) -> None:
    for project in envs.values():
        site = project.prefix / SITE_PACKAGES
        for dist in distributions(project.prefix):
            if dist.name not in PYPI_SIDE:
                continue
            for path, digest in _record(dist.folder).items():
                assert _file_hash(site / path) == digest, (dist.name, path)
