"""Writes that respect the umask and either write every file or none, under real faults."""

from __future__ import annotations

import errno
import json
import os
import stat
from pathlib import Path

import pytest
from tests.unit.fsfaults import (
    fill,
    give_away,
    run_unprivileged,
    snapshot,
    tmpfs,
    umask,
    unprivileged_folder,
)

from lockstep.core import fsutil
from lockstep.core.envvars import set_env_vars
from lockstep.core.errors import LockstepError
from lockstep.core.fsutil import (
    atomic_write_text,
    describe_os_error,
    read_text,
    write_files_atomically,
)

OLD = {"pyproject.toml": "[project]\nname = 'old'\n", "environment.yml": "name: old\n"}
NEW = {"pyproject.toml": "[project]\nname = 'new'\n", "environment.yml": "name: new\n"}


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _project(folder: Path) -> Path:
    for name, text in OLD.items():
        (folder / name).write_text(text)
    return folder


# ----------------------------------------------------------------------------- modes


@pytest.mark.parametrize(("mask", "expected"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_a_new_file_gets_0666_minus_the_umask(tmp_path: Path, mask: int, expected: int) -> None:
    with umask(mask):
        atomic_write_text(tmp_path / "conda-linux-64.lock", "x\n")
        write_files_atomically({tmp_path / "a": "1", tmp_path / "b": "2"})
        fsutil.atomic_write_bytes(tmp_path / "pypi-names.tsv.gz", b"\x1f\x8b")
    names = ("conda-linux-64.lock", "a", "b", "pypi-names.tsv.gz")
    assert [_mode(tmp_path / n) for n in names] == [expected] * 4
    assert (tmp_path / "pypi-names.tsv.gz").read_bytes() == b"\x1f\x8b"


@pytest.mark.parametrize("mask", [0o022, 0o077])
def test_an_existing_file_keeps_its_mode(tmp_path: Path, mask: int) -> None:
    target = tmp_path / "pyproject.toml"
    target.write_text("old\n")
    target.chmod(0o640)
    with umask(mask):
        atomic_write_text(target, "new\n")
    assert (_mode(target), target.read_text()) == (0o640, "new\n")


@pytest.mark.parametrize(("mask", "expected"), [(0o022, 0o644), (0o077, 0o600)])
def test_conda_meta_state_is_readable_by_the_env_users_the_umask_allows(
    tmp_path: Path, mask: int, expected: int
) -> None:
    (tmp_path / "conda-meta").mkdir()
    with umask(mask):
        state = set_env_vars(tmp_path, {"PYTHONNOUSERSITE": "1"})
    assert _mode(state) == expected
    state.chmod(0o640)
    with umask(mask):
        set_env_vars(tmp_path, {"X": "1"})
    assert _mode(state) == 0o640
    assert json.loads(state.read_text()) == {"env_vars": {"PYTHONNOUSERSITE": "1", "X": "1"}}


# ----------------------------------------------------------------------------- all or none


def test_writes_every_file_and_leaves_no_temp_file(tmp_path: Path) -> None:
    _project(tmp_path)
    write_files_atomically(
        {tmp_path / n: t for n, t in NEW.items()} | {tmp_path / "README.md": "#"}
    )
    assert {p.name: p.read_text() for p in tmp_path.iterdir()} == NEW | {"README.md": "#"}


@pytest.mark.parametrize("failing", [1, 2, 3])
def test_a_failed_rename_puts_back_every_original(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing: int
) -> None:
    """Three targets (one of them new); the Nth rename fails: the originals come back."""
    _project(tmp_path)
    (tmp_path / "environment.yml").chmod(0o640)
    before = snapshot(tmp_path)
    real_replace = os.replace
    calls = []

    def replace(src, dst):  # type: ignore[no-untyped-def]
        calls.append(dst)
        if len(calls) == failing:
            raise OSError(errno.EIO, "Input/output error", str(src))
        return real_replace(src, dst)

    monkeypatch.setattr(fsutil.os, "replace", replace)
    files = {tmp_path / n: t for n, t in NEW.items()} | {tmp_path / "README.md": "# new\n"}
    with pytest.raises(OSError) as info:
        write_files_atomically(files)
    assert info.value.errno == errno.EIO
    assert info.value.filename == str(list(files)[failing - 1]), "names the target, not a temp"
    assert snapshot(tmp_path) == before, "same bytes, modes and inodes; no temp file left"


def test_an_interrupt_between_renames_puts_back_every_original(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _project(tmp_path)
    before = snapshot(tmp_path)
    real_replace = os.replace
    calls = []

    def replace(src, dst):  # type: ignore[no-untyped-def]
        calls.append(dst)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_replace(src, dst)

    monkeypatch.setattr(fsutil.os, "replace", replace)
    with pytest.raises(KeyboardInterrupt):
        write_files_atomically({tmp_path / n: t for n, t in NEW.items()})
    assert snapshot(tmp_path) == before


_UNPRIVILEGED_WRITE = """
import json, sys
from pathlib import Path
from lockstep.core.fsutil import describe_os_error, write_files_atomically
files = {Path(p): t for p, t in json.loads(sys.argv[1] if len(sys.argv) > 1 else %r).items()}
try:
    write_files_atomically(files)
    print(json.dumps({"ok": True}))
except OSError as exc:
    print(json.dumps({"errno": exc.errno, "filename": exc.filename,
                      "line": describe_os_error(exc)}))
"""


def _write_as_unprivileged(folder: Path, files: dict[Path, str]) -> dict:
    payload = json.dumps({str(p): t for p, t in files.items()})
    return run_unprivileged(_UNPRIVILEGED_WRITE % payload, folder)


def test_a_read_only_file_among_several_stops_the_write_before_any_change() -> None:
    with unprivileged_folder() as folder:
        _project(folder)
        (folder / "README.md").write_text("# old\n")
        give_away(folder)
        (folder / "environment.yml").chmod(0o444)
        before = snapshot(folder)
        files = {folder / n: t for n, t in NEW.items()} | {folder / "README.md": "# new\n"}
        answer = _write_as_unprivileged(folder, files)
        target = folder / "environment.yml"
        assert answer == {
            "errno": errno.EACCES,
            "filename": str(target),
            "line": f"cannot write {target}: permission denied; make it and its folder writable "
            "for you (chmod u+w) or run as their owner; nothing was changed",
        }
        assert snapshot(folder) == before


def test_a_read_only_folder_stops_the_write_before_any_change() -> None:
    with unprivileged_folder() as folder:
        _project(folder)
        (folder / "locks").mkdir()
        (folder / "locks" / "conda-linux-64.lock").write_text("old lock\n")
        give_away(folder)
        (folder / "locks").chmod(0o555)
        before = snapshot(folder)
        files = {folder / n: t for n, t in NEW.items()}
        files[folder / "locks" / "conda-linux-64.lock"] = "new lock\n"
        answer = _write_as_unprivileged(folder, files)
        assert answer["errno"] == errno.EACCES
        assert answer["filename"] == str(folder / "locks" / "conda-linux-64.lock")
        assert snapshot(folder) == before


def test_a_full_disk_changes_nothing(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "disk") as disk:
        _project(disk)
        filler = fill(disk)
        before = snapshot(disk)
        target = disk / "pyproject.toml"
        files = {target: NEW["pyproject.toml"], disk / "environment.yml": "x" * 8192}
        with pytest.raises(OSError) as info:
            write_files_atomically(files)
        assert info.value.errno == errno.ENOSPC
        assert describe_os_error(info.value) == (
            f"no space left writing {target}; free space and run again; nothing was changed"
        )
        assert snapshot(disk) == before
        filler.unlink()
        write_files_atomically(files)
        assert (disk / "environment.yml").read_text() == "x" * 8192


# ----------------------------------------------------------------------------- messages


def test_read_text_names_a_file_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "environment.yml"
    path.write_bytes("name: x\n# café\n".encode("latin-1"))
    with pytest.raises(LockstepError) as info:
        read_text(path)
    assert str(info.value) == (
        f"{path}: not UTF-8 (byte 0xe9 on line 2); save it as UTF-8 and run again"
    )


def test_read_text_leaves_a_missing_file_to_its_caller(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_text(tmp_path / "nope.toml")


@pytest.mark.parametrize(
    ("code", "action", "line"),
    [
        (
            errno.EROFS,
            "write",
            "cannot write {p}: read-only file system; run in a writable copy "
            "of the project; nothing was changed",
        ),
        (
            errno.EACCES,
            "read",
            "cannot read {p}: permission denied; make it and its folder "
            "readable for you (chmod u+r) or run as their owner; nothing was changed",
        ),
        (errno.EIO, "write", "cannot write {p}: Input/output error; nothing was changed"),
        (
            errno.EDQUOT,
            "write",
            "no space left writing {p}; free space and run again; nothing was changed",
        ),
    ],
)
def test_describe_os_error(tmp_path: Path, code: int, action: str, line: str) -> None:
    path = tmp_path / "poetry.lock"
    exc = OSError(code, os.strerror(code), str(path))
    assert describe_os_error(exc, action=action) == line.format(p=path)


def test_describe_a_missing_folder(tmp_path: Path) -> None:
    path = tmp_path / "locks" / "poetry.lock"
    with pytest.raises(OSError) as info:
        atomic_write_text(path, "x")
    assert describe_os_error(info.value) == (
        f"cannot write {path}: folder {path.parent} does not exist; create it or fix the path in "
        "[tool.lockstep] of pyproject.toml; nothing was changed"
    )


def test_a_symlinked_target_comes_back_as_the_same_link(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "pyproject.toml").write_text(OLD["pyproject.toml"])
    (tmp_path / "project").mkdir()
    link = tmp_path / "project" / "pyproject.toml"
    link.symlink_to(tmp_path / "shared" / "pyproject.toml")
    (tmp_path / "project" / "environment.yml").write_text(OLD["environment.yml"])
    before = snapshot(tmp_path)

    def replace(src, dst):  # type: ignore[no-untyped-def]
        if Path(dst).name == "environment.yml":
            raise OSError(errno.EIO, "Input/output error", str(src))
        return os.rename(src, dst)

    monkeypatch.setattr(fsutil.os, "replace", replace)
    with pytest.raises(OSError):
        write_files_atomically({link: NEW["pyproject.toml"], link.parent / "environment.yml": "x"})
    assert snapshot(tmp_path) == before and link.is_symlink()


def test_envvars_and_fsutil_need_only_the_standard_library(tmp_path: Path) -> None:
    """They run with a fresh env's own python, before any package is installed there."""
    import subprocess
    import sys

    src = Path(__file__).resolve().parents[2] / "src"
    (tmp_path / "conda-meta").mkdir()
    code = f"import sys; sys.path.insert(0, {str(src)!r}); from lockstep.core.envvars import main; "
    code += f"main(['--prefix', {str(tmp_path)!r}, 'PYTHONNOUSERSITE=1'])"
    # -S: no site-packages, so any import beyond the standard library fails here.
    done = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True)
    assert (done.returncode, done.stderr) == (0, "")
    assert json.loads((tmp_path / "conda-meta" / "state").read_text())["env_vars"] == {
        "PYTHONNOUSERSITE": "1"
    }


def test_envvars_says_in_one_line_what_is_wrong(tmp_path: Path, capsys) -> None:
    from lockstep.core.envvars import main

    state = tmp_path / "conda-meta" / "state"
    state.parent.mkdir()
    state.write_text("{not json")
    with pytest.raises(SystemExit) as info:
        main(["--prefix", str(tmp_path), "PYTHONNOUSERSITE=1"])
    assert info.value.code == 1
    assert capsys.readouterr().err == (
        f"lockstep: error: {state}: not valid JSON; fix or delete it (it only holds the env's "
        "variables)\n"
    )
    assert state.read_text() == "{not json"
    with pytest.raises(SystemExit):
        main(["--prefix", str(tmp_path / "missing"), "X=1"])
    assert capsys.readouterr().err.startswith(
        f"lockstep: error: cannot write {tmp_path / 'missing' / 'conda-meta' / 'state'}: folder "
    )


@pytest.mark.parametrize("algorithm", ["sha256", "md5"])
def test_file_digest_is_hashlibs_of_the_bytes(tmp_path: Path, algorithm: str) -> None:
    import hashlib

    data = os.urandom(3 * 2**20 + 7)  # more than one read's worth
    path = tmp_path / "archive.conda"
    path.write_bytes(data)
    assert fsutil.file_digest(path, algorithm) == hashlib.new(algorithm, data).hexdigest()
    assert fsutil.file_digest(path) == hashlib.sha256(data).hexdigest()


def test_replace_unsynced_writes_a_new_inode_with_the_mode_given(tmp_path: Path) -> None:
    target = tmp_path / "record.json"
    target.write_text("old")
    snapshot = tmp_path / "snapshot.json"
    os.link(target, snapshot)  # as lockstep.core.snapshot keeps a file it may replace
    fsutil.replace_unsynced(target, b"new", 0o640)
    assert target.read_text() == "new" and snapshot.read_text() == "old"
    assert target.stat().st_ino != snapshot.stat().st_ino
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["record.json", "snapshot.json"]
