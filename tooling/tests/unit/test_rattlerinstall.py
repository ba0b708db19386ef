"""lockstep.core.rattlerinstall without installing: which installer runs, and what it writes
beside rattler's records for conda (history, softlinks, records' modes, environments.txt)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import SimpleNamespace

import pytest

from lockstep.core import rattlerinstall
from lockstep.core.errors import LockstepError


@pytest.mark.parametrize(
    ("setting", "importable", "chosen"),
    [
        ("auto", True, "rattler"),
        ("auto", False, "frontend"),
        ("rattler", True, "rattler"),
        ("frontend", True, "frontend"),
        ("frontend", False, "frontend"),
    ],
)
def test_choose(setting: str, importable: bool, chosen: str) -> None:
    assert rattlerinstall.choose(setting, importable) == chosen


def test_rattler_asked_for_but_missing_is_one_line() -> None:
    with pytest.raises(
        LockstepError, match=r"py-rattler does not import .* installer = 'frontend'"
    ):
        rattlerinstall.choose("rattler", False)


def _record(name: str, version: str, url: str) -> SimpleNamespace:
    return SimpleNamespace(
        name=SimpleNamespace(normalized=name), version=version, build="h0_0", url=url
    )


def test_history_is_conda_s_format() -> None:
    records = [
        _record("zlib", "1.3", "file:///ch/linux-64/zlib-1.3-h0_0.conda"),
        _record("filelock", "3.17.0", "https://repo/conda-forge/noarch/filelock-3.17.0-h0_0.conda"),
    ]
    block = rattlerinstall.history_block(records, "lockstep reproduce", when=0)
    lines = block.splitlines()
    assert lines[0].startswith("==> 19") and lines[0].endswith(" <==")
    assert lines[1:] == [
        "# cmd: lockstep reproduce",
        "+file:///ch/linux-64::zlib-1.3-h0_0",
        "+https://repo/conda-forge/noarch::filelock-3.17.0-h0_0",
        "# update specs: ['file:///ch/linux-64::zlib==1.3=h0_0', "
        "'https://repo/conda-forge/noarch::filelock==3.17.0=h0_0']",
    ]


def test_finish_conda_meta(tmp_path: Path) -> None:
    prefix = tmp_path / "envs" / "ml"
    meta = prefix / "conda-meta"
    meta.mkdir(parents=True)
    record = meta / "python-3.11.9-0.json"
    paths = [
        {
            "_path": "bin/python",
            "path_type": "softlink",
            "sha256_in_prefix": "f" * 64,
            "size_in_bytes": 9,
        },
        {"_path": "lib/x.so", "path_type": "hardlink", "sha256": "a" * 64, "size_in_bytes": 3},
    ]
    record.write_text(json.dumps({"name": "python", "paths_data": {"paths": paths}}))
    record.chmod(0o600)  # as rattler writes it
    old = os.umask(0o022)
    try:
        rattlerinstall.finish_conda_meta(prefix, [], "lockstep reproduce", home=tmp_path / "home")
    finally:
        os.umask(old)
    written = json.loads(record.read_text())["paths_data"]["paths"]
    assert written == [
        {"_path": "bin/python", "path_type": "softlink"},
        {**paths[1], "sha256_in_prefix": "a" * 64},
    ]
    assert record.stat().st_mode & 0o777 == 0o644
    assert (meta / "history").read_text().startswith("==> ")
    assert float((meta / "created_at").read_text())
    registry = tmp_path / "home" / ".conda" / "environments.txt"
    assert registry.read_text() == f"{prefix}\n"
    rattlerinstall.register(prefix, home=tmp_path / "home")
    assert registry.read_text() == f"{prefix}\n"  # once, as conda's register_env


def test_history_gets_a_revision_only_when_something_changed(tmp_path: Path) -> None:
    prefix = tmp_path / "env"
    meta = prefix / "conda-meta"
    meta.mkdir(parents=True)
    zlib = _record("zlib", "1.3", "file:///ch/linux-64/zlib-1.3-h0_0.conda")
    (meta / "zlib-1.3-h0_0.json").write_text("{}")
    home = tmp_path / "home"
    rattlerinstall.finish_conda_meta(prefix, [zlib], "first", home=home)
    first = (meta / "history").read_text()
    assert first.count("==> ") == 1 and "+file:///ch/linux-64::zlib-1.3-h0_0" in first
    unchanged = rattlerinstall.record_inodes(prefix)
    rattlerinstall.finish_conda_meta(prefix, [zlib], "again", home=home, before=unchanged)
    assert (meta / "history").read_text() == first  # nothing changed: no revision
    (meta / "old-1-0.json").write_text(json.dumps({"url": "file:///ch/noarch/old-1-0.conda"}))
    removed = rattlerinstall.removed_by(prefix, [zlib])
    assert removed == ["file:///ch/noarch::old-1-0"]
    (meta / "old-1-0.json").unlink()
    rattlerinstall.finish_conda_meta(
        prefix, [zlib], "third", home=home, before=unchanged, removed=removed
    )
    history = (meta / "history").read_text()
    assert history.startswith(first) and history.count("==> ") == 2
    assert history.splitlines()[-3:] == [
        "# cmd: third",
        "-file:///ch/noarch::old-1-0",
        "# update specs: ['file:///ch/linux-64::zlib==1.3=h0_0']",
    ]


# py-rattler 0.28.0's own text for an install whose package cache sat on a full tmpfs (captured
# here: rattler.install into a 2 MiB tmpfs that filled while it unpacked).
FULL_DISK = (
    "failed to fetch libbench011-1.11.0-h0_0.conda\n"
    "Caused by: failed to interact with the package cache layer.\n"
    "Caused by: an io error occurred: failed to unpack `lib/bench011/f00000.dat`: No space left "
    "on device (os error 28)\n"
    "Caused by: failed to unpack `lib/bench011/f00000.dat`: No space left on device (os error 28)"
)


def test_rattler_s_reason_is_its_deepest_cause_on_the_same_line() -> None:
    exc = RuntimeError(FULL_DISK)
    assert rattlerinstall._first_line(exc) == (
        "failed to fetch libbench011-1.11.0-h0_0.conda: failed to unpack "
        "`lib/bench011/f00000.dat`: No space left on device (os error 28)"
    )
    assert "free space" in rattlerinstall._hint(exc)
    plain = RuntimeError("package archive is corrupt")
    assert rattlerinstall._first_line(plain) == "package archive is corrupt"
    assert rattlerinstall._hint(plain) == ""
