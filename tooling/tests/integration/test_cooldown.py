"""exclude-newer on both sides, against real conda-lock and real Poetry: a local channel whose
repodata carries `timestamp`s (solved by the conda stand-in, which honours CONDA_EXCLUDE_NEWER
from conda 26.9 on, as conda does) and a local index whose JSON pages carry PEP 700
`upload-time`s (read by Poetry's solver.min-release-age). Released after the cutoff: filelock
3.18.0 on both sides and tinyhelper 1.2 on the index."""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from .channel import TIMESTAMP_MS, default_packages, filelock_package
from .project import Project, build_channel, create_project, lock_records, poetry_lock_versions
from .pyindex import PackageIndex, Wheel, build_index, default_wheels, serve_index

pytestmark = pytest.mark.integration

RELEASED = "2026-09-01T00:00:00Z"  # after the cutoff
OLD = "2026-01-01T00:00:00Z"  # before it (the channel's TIMESTAMP_MS)
CUTOFF = "2026-06-01"
NEW_MS = int(datetime(2026, 9, 1, tzinfo=UTC).timestamp() * 1000)


@pytest.fixture(scope="module")
def dated_index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PackageIndex]:
    dated = {("tinyhelper", "1.1"): OLD, ("filelock", "3.17.0"): OLD}
    wheels = [
        dataclasses.replace(w, uploaded=dated.get((w.name, w.version))) for w in default_wheels()
    ]
    wheels += [
        Wheel("tinyhelper", "1.2", uploaded=RELEASED),
        Wheel("filelock", "3.18.0", uploaded=RELEASED),
    ]
    with serve_index(build_index(tmp_path_factory.mktemp("dated-index"), wheels)) as index:
        yield index


@pytest.fixture(scope="module")
def dated_channel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    newer = dataclasses.replace(filelock_package("3.18.0"), timestamp_ms=NEW_MS)
    assert newer.timestamp_ms > TIMESTAMP_MS
    return build_channel(tmp_path_factory.mktemp("dated-channel"), [*default_packages(), newer])


def _project(
    tmp_path: Path, channel: Path, index: PackageIndex, standin_bin: Path, conda: str
) -> Project:
    project = create_project(
        tmp_path / "project", tmp_path / "state", channel, standin_bin, index.url, "cooldown"
    )
    project = dataclasses.replace(
        project, env={**project.env, "LOCKSTEP_STANDIN_CONDA_VERSION": conda}
    )
    project.invoke("poetry-init")
    return project


def _set_cooldown(project: Project, value: str) -> None:
    text = project.pyproject.read_text()
    project.pyproject.write_text(
        text.replace("[tool.lockstep]\n", f'[tool.lockstep]\nexclude-newer = "{value}"\n')
    )


def _conda_versions(project: Project) -> dict[str, str]:
    return {name: version for name, version, *_ in lock_records(project.lock)}


def test_without_a_cutoff_the_newest_releases_are_chosen(
    tmp_path: Path, dated_channel: Path, dated_index: PackageIndex, standin_bin: Path
) -> None:
    # The control: the fixtures really offer the newer releases to both solvers.
    project = _project(tmp_path, dated_channel, dated_index, standin_bin, "26.9.0")
    project.invoke("lock")
    project.invoke("pin")
    assert _conda_versions(project)["filelock"] == "3.18.0"
    assert poetry_lock_versions(project.poetry_lock)["tinyhelper"] == "1.2"


def test_a_cutoff_holds_back_what_was_released_after_it_on_both_sides(
    tmp_path: Path, dated_channel: Path, dated_index: PackageIndex, standin_bin: Path
) -> None:
    project = _project(tmp_path, dated_channel, dated_index, standin_bin, "26.9.0")
    _set_cooldown(project, CUTOFF)
    locked = project.invoke("lock")
    assert (
        "cooldown: exclude-newer = '2026-06-01': nothing published after 2026-06-02 00:00 UTC"
        in locked.stdout
    )
    project.invoke("pin")
    assert _conda_versions(project)["filelock"] == "3.17.0"
    versions = poetry_lock_versions(project.poetry_lock)
    assert versions["tinyhelper"] == "1.1" and versions["filelock"] == "3.17.0"
    pins = tomllib.loads(project.pyproject.read_text())["tool"]["poetry"]["group"]["conda"]
    assert pins["dependencies"]["filelock"] == "3.17.0"
    checked = project.invoke("check")
    assert checked.stdout.splitlines()[-1].startswith("cooldown: exclude-newer = '2026-06-01'")


def test_update_reports_the_cutoff_it_used(
    tmp_path: Path, dated_channel: Path, dated_index: PackageIndex, standin_bin: Path
) -> None:
    project = _project(tmp_path, dated_channel, dated_index, standin_bin, "26.9.0")
    project.invoke("lock")
    project.invoke("pin")
    before = {p: p.read_bytes() for p in (project.lock, project.poetry_lock, project.pyproject)}
    _set_cooldown(project, CUTOFF)
    before[project.pyproject] = project.pyproject.read_bytes()
    report = project.invoke("update", "--dry-run").stdout
    print(report)  # the report as the user reads it (pytest -s)
    assert "  conda filelock  3.18.0 -> 3.17.0\n  pypi  filelock  3.18.0 -> 3.17.0\n" in report
    # `poetry lock` keeps what poetry.lock already holds (Poetry's min-release-age filters the
    # candidates it resolves, not the locked ones): tinyhelper 1.2 stays.
    assert "tinyhelper" not in report
    assert (
        "note: cooldown: exclude-newer = '2026-06-01': nothing published after 2026-06-02 00:00 UTC"
        in report
    )
    assert {p: p.read_bytes() for p in before} == before


def test_a_conda_too_old_for_the_cutoff_stops_with_one_line(
    tmp_path: Path, dated_channel: Path, dated_index: PackageIndex, standin_bin: Path
) -> None:
    project = _project(tmp_path, dated_channel, dated_index, standin_bin, "26.7.1")
    _set_cooldown(project, CUTOFF)
    done = project.invoke("lock", expect_rc=1)
    assert done.stderr.strip().splitlines() == [
        "error: exclude-newer needs conda 26.9 or newer (its exclude_newer setting); this is conda "
        "26.7.1: `conda update -n base conda`, or remove exclude-newer from [tool.lockstep]"
    ]
    assert not project.lock.exists()
