"""lockstep.core.snapshot: the undo of an env changed in place, against every way a transaction
changes files (unlink, rename over, a clobber rename, new files and folders, removed folders)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lockstep.core import snapshot
from lockstep.core.errors import LockstepError


def _tree(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): (f"-> {os.readlink(p)}" if p.is_symlink() else p.read_text())
        for p in sorted(root.rglob("*"))
        if p.is_file() or p.is_symlink()
    }


def _folders(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_dir() and not p.is_symlink()}


@pytest.fixture
def env(tmp_path: Path) -> Path:
    prefix = tmp_path / "env"
    for path, text in {
        "conda-meta/old-1.0-0.json": "old record",
        "conda-meta/stays-1.0-0.json": "stays record",
        "conda-meta/history": "==> then <==\n",
        "lib/old/a.py": "old a",
        "lib/old/sub/b.py": "old b",
        "lib/stays/c.py": "stays c",
        "lib/shared.h": "from stays",
        "marker.txt": "user data",
    }.items():
        (prefix / path).parent.mkdir(parents=True, exist_ok=True)
        (prefix / path).write_text(text)
    (prefix / "empty").mkdir()
    os.symlink("stays/c.py", prefix / "lib" / "link.py")
    return prefix


KEPT = ["lib/stays/c.py", "lib/shared.h", "conda-meta/stays-1.0-0.json"]


def _transaction(prefix: Path) -> None:
    """What a rattler transaction from old-1.0 to new-2.0 does, with a clobber of shared.h."""
    for path in ("lib/old/a.py", "lib/old/sub/b.py", "conda-meta/old-1.0-0.json"):
        (prefix / path).unlink()
    (prefix / "lib" / "old" / "sub").rmdir()
    (prefix / "lib" / "new").mkdir()
    (prefix / "lib" / "new" / "a.py").write_text("new a")
    (prefix / "conda-meta" / "new-2.0-0.json").write_text("new record")
    os.rename(prefix / "lib" / "shared.h", prefix / "lib" / "shared.h__clobber-from-stays")
    (prefix / "lib" / "shared.h").write_text("from new")
    replaced = prefix / "conda-meta" / "history.tmp"
    replaced.write_text("==> now <==\n")
    os.replace(replaced, prefix / "conda-meta" / "history")
    (prefix / "empty").rmdir()


def test_take_links_all_but_the_kept_files(env: Path, tmp_path: Path) -> None:
    linked = snapshot.take(env, tmp_path / "snap", KEPT)
    held = tmp_path / "snap" / snapshot.FILES
    assert linked == 6
    assert sorted(_tree(held)) == [
        "conda-meta/history",
        "conda-meta/old-1.0-0.json",
        "lib/link.py",
        "lib/old/a.py",
        "lib/old/sub/b.py",
        "marker.txt",
    ]
    assert (held / "lib/old/a.py").stat().st_ino == (env / "lib/old/a.py").stat().st_ino


def test_restore_undoes_a_transaction(env: Path, tmp_path: Path) -> None:
    before, folders = _tree(env), _folders(env)
    snapshot.take(env, tmp_path / "snap", KEPT)
    _transaction(env)
    assert _tree(env) != before
    # a.py, b.py, the record, history; shared.h from where the clobber rename moved it
    assert snapshot.restore(env, tmp_path / "snap") == 5
    assert _tree(env) == before and _folders(env) == folders


def test_restore_twice_is_harmless(env: Path, tmp_path: Path) -> None:
    """An undo interrupted and run again by the next run finds its work done."""
    before = _tree(env)
    snapshot.take(env, tmp_path / "snap", KEPT)
    _transaction(env)
    snapshot.restore(env, tmp_path / "snap")
    assert snapshot.restore(env, tmp_path / "snap") == 0
    assert _tree(env) == before


def test_restore_before_the_record_was_written_changes_nothing(env: Path, tmp_path: Path) -> None:
    before = _tree(env)
    (tmp_path / "snap" / snapshot.FILES).mkdir(parents=True)  # killed while linking
    assert snapshot.restore(env, tmp_path / "snap") == 0
    assert _tree(env) == before


def test_a_kept_file_deleted_by_the_change_is_named(env: Path, tmp_path: Path) -> None:
    snapshot.take(env, tmp_path / "snap", KEPT)
    # Replaced by rename, as an installer replaces a file (a new inode while the old one lives).
    (env / "lib" / "stays" / "c.py.new").write_text("written over")
    os.replace(env / "lib" / "stays" / "c.py.new", env / "lib" / "stays" / "c.py")
    with pytest.raises(LockstepError, match=r"lib/stays/c.py was written over outside the snap"):
        snapshot.restore(env, tmp_path / "snap")
