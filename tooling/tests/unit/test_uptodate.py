"""lockstep.core.uptodate: when an env already matches both locks, and what a change touches."""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path

import pytest

from lockstep.core import uptodate
from lockstep.core.condameta import CondaRecord
from lockstep.core.explicit import parse_explicit

MD5 = {"python": "a" * 32, "filelock": "b" * 32, "zlib": "c" * 32}
LOCK = parse_explicit(
    "@EXPLICIT\n"
    + "".join(
        f"file:///ch/linux-64/{name}-{version}-0.tar.bz2#{MD5[name]}\n"
        for name, version in [("python", "3.11.9"), ("filelock", "3.17.0"), ("zlib", "1.3")]
    )
)


def _record(
    name: str, version: str, md5: str | None = None, files: tuple[str, ...] = ()
) -> CondaRecord:
    return CondaRecord(name, version, "0", md5 or MD5[name], "", files)


def _records(*records: CondaRecord) -> dict[str, CondaRecord]:
    return {r.name: r for r in records}


def test_the_lock_installed_is_no_change() -> None:
    diff = uptodate.conda_diff(
        LOCK,
        _records(
            _record("python", "3.11.9"), _record("filelock", "3.17.0"), _record("zlib", "1.3")
        ),
    )
    assert diff.empty and diff.unchanged == ("filelock", "python", "zlib")


@pytest.mark.parametrize(
    ("env", "install", "remove"),
    [
        ([("filelock", "3.16.1", None)], ("filelock",), ()),
        ([("filelock", "3.17.0", "d" * 32)], ("filelock",), ()),
        ([("filelock", "3.17.0", None), ("old", "1", "e" * 32)], (), ("old",)),
        ([], ("filelock",), ()),
    ],
    ids=["other-version", "other-md5", "not-in-the-lock", "missing"],
)
def test_what_differs(
    env: list[tuple[str, str, str | None]], install: tuple, remove: tuple
) -> None:
    records = _records(
        _record("python", "3.11.9"), _record("zlib", "1.3"), *(_record(*e) for e in env)
    )
    diff = uptodate.conda_diff(LOCK, records)
    assert (diff.install, diff.remove) == (install, remove)
    assert not diff.empty


def test_pypi_distributions_leave_out_what_conda_owns(tmp_path: Path) -> None:
    site = tmp_path / "lib" / "python3.11" / "site-packages"
    for folder in (
        "tinyapp-1.0.dist-info",
        "Filelock-3.17.0.dist-info",
        "my_project-0.1.0.dist-info",
    ):
        (site / folder).mkdir(parents=True)
    (site / "notes-1.0.dist-info").write_text("a file, not a folder")
    owned = _record(
        "filelock",
        "3.17.0",
        files=("lib/python3.11/site-packages/Filelock-3.17.0.dist-info/METADATA",),
    )
    assert uptodate.pypi_distributions(tmp_path, [owned]) == {
        "tinyapp": "1.0",
        "my-project": "0.1.0",
    }


def test_pypi_differences_name_each() -> None:
    installed = {"tinyapp": "1.0", "tinyhelper": "1.0", "by-hand": "2.0"}
    planned = {"tinyapp": "1.0", "tinyhelper": "1.1", "rich": "13.0"}
    assert uptodate.pypi_differences(installed, planned) == [
        "rich 13.0 missing",
        "tinyhelper 1.0 instead of 1.1",
        "by-hand 2.0 not in the plan",
    ]
    assert uptodate.pypi_differences(planned, dict(planned)) == []


@pytest.mark.parametrize(
    ("state", "off"),
    [
        ({"env_vars": {"PYTHONNOUSERSITE": "1"}}, True),
        ({"env_vars": {"PYTHONNOUSERSITE": "0"}}, False),
        ({}, False),
        (None, False),
    ],
    ids=["set", "zero", "no-vars", "no-file"],
)
def test_user_site_off(tmp_path: Path, state: dict | None, off: bool) -> None:
    (tmp_path / "conda-meta").mkdir()
    if state is not None:
        (tmp_path / "conda-meta" / "state").write_text(json.dumps(state))
    assert uptodate.user_site_off(tmp_path) is off


def test_no_run_under_way_reads_the_lock_without_writing(tmp_path: Path) -> None:
    lock, journal = tmp_path / "lock", tmp_path / "journal.json"
    with uptodate.no_run_under_way(lock, journal) as free:
        assert free
    assert not lock.exists()  # nothing was created
    lock.write_text("123")
    with uptodate.no_run_under_way(lock, journal) as free:
        assert free
    assert lock.read_text() == "123"
    fd = os.open(lock, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # a run holds it
        with uptodate.no_run_under_way(lock, journal) as free:
            assert not free
    finally:
        os.close(fd)
    journal.write_text("{}")  # an interrupted run left its journal
    with uptodate.no_run_under_way(lock, journal) as free:
        assert not free
