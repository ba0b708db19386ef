"""Undo for a change made in place: an env brought to the lock by a transaction of only what
differs (py-rattler's), not rebuilt.

Before the transaction, every entry of the env is recorded by path and inode (``pre-state``), and
every file the transaction may delete or replace is hard-linked into a snapshot folder beside the
env: all of them except the files of conda packages that stay as they are (the transaction never
relinks those). A hard link costs no copy; it keeps the old bytes because rattler, pip and uv
replace a file by unlinking or renaming over it and never write into an existing one
(tests/integration/test_snapshot.py checks that on real runs of all three), and because Lockstep
writes the env's own files (conda-meta/state, history) by rename too (lockstep.core.fsutil).

The undo walks the env: a path whose inode is the recorded one is untouched; another is put back
from the snapshot, or from where a clobber rename moved it in the env; every path that was not
there is removed, then every folder that was not there. A recorded inode found nowhere means
something replaced a file outside the snapshot: the undo says which and keeps its records (a
file outside it deleted and its inode number reused by a new one is not seen: the files outside
are those of packages the transaction does not relink).

Standard library only, like the engine that calls it.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from lockstep.core.errors import LockstepError
from lockstep.core.fsutil import atomic_write_text

PRE_STATE = "pre-state.json"
FILES = "files"


def walk(root: Path) -> tuple[dict[str, int], list[str]]:
    """(relative path -> inode of every file and symlink, every folder) under ``root``; the
    inode comes from the directory entry, so no file is opened or stat-ed."""
    entries: dict[str, int] = {}
    folders: list[str] = []
    stack = [""]
    while stack:
        relative = stack.pop()
        with os.scandir(root / relative if relative else root) as listing:
            for entry in listing:
                path = f"{relative}/{entry.name}" if relative else entry.name
                if entry.is_dir(follow_symlinks=False):
                    folders.append(path)
                    stack.append(path)
                else:
                    entries[path] = entry.inode()
    return entries, folders


def take(prefix: Path, folder: Path, kept: Iterable[str]) -> int:
    """Record the env at ``prefix`` and hard-link every file not in ``kept`` (paths relative to
    the prefix) into ``folder``; returns how many were linked."""
    entries, folders = walk(prefix)
    keep = set(kept)
    # Plain strings, not Paths: 2,500 links of a 30,000-file env spent a third of their time in
    # pathlib. The relative paths are walk's, joined by "/".
    files, source = os.fspath(folder / FILES), os.fspath(prefix)
    made: set[str] = set()
    linked = 0
    for path in entries:
        if path in keep:
            continue
        target = f"{files}/{path}"
        parent = target.rpartition("/")[0]
        if parent not in made:
            os.makedirs(parent, exist_ok=True)
            made.add(parent)
        os.link(f"{source}/{path}", target, follow_symlinks=False)
        linked += 1
    state = {"entries": entries, "folders": folders}
    atomic_write_text(folder / PRE_STATE, json.dumps(state, separators=(",", ":")))
    return linked


def restore(prefix: Path, folder: Path) -> int:
    """Put the env at ``prefix`` back as :func:`take` recorded it; returns the paths restored.

    Safe to run again after an interruption: each step is a rename or an unlink that the next
    run finds done."""
    try:
        state = json.loads((folder / PRE_STATE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return 0  # interrupted before the record was complete: the env was not touched yet
    entries: dict[str, int] = state["entries"]
    before_folders = set(state["folders"])
    current, _folders = walk(prefix)
    saved, _ = walk(folder / FILES) if (folder / FILES).is_dir() else ({}, [])
    where = {inode: path for path, inode in current.items() if entries.get(path) != inode}
    lost, restored = [], 0
    for path, inode in entries.items():
        if current.get(path) == inode:
            continue
        if saved.get(path) == inode:
            source = folder / FILES / path
        elif inode in where:
            source = prefix / where.pop(inode)
        else:
            lost.append(path)
            continue
        target = prefix / path
        target.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(IsADirectoryError):
            if target.is_dir() and not target.is_symlink():
                _remove_folder(target)
        os.replace(source, target)
        restored += 1
    if lost:
        more = f" (and {len(lost) - 1} more)" if len(lost) > 1 else ""
        raise LockstepError(
            f"{prefix}: {lost[0]}{more} was written over outside the snapshot and cannot be put "
            f"back; the rest is back, and the record of the old env stays in {folder}"
        )
    now, folders = walk(prefix)
    for path, inode in now.items():
        if entries.get(path) != inode:
            (prefix / path).unlink()
    for path in sorted(set(folders) - before_folders, key=len, reverse=True):
        with contextlib.suppress(OSError):
            (prefix / path).rmdir()
    for path in sorted(before_folders):
        (prefix / path).mkdir(parents=True, exist_ok=True)
    return restored


def _remove_folder(path: Path) -> None:
    for child in _deepest_first(path):
        child.rmdir() if child.is_dir() and not child.is_symlink() else child.unlink()
    path.rmdir()


def _deepest_first(path: Path) -> Iterator[Path]:
    for root, dirs, files in os.walk(path, topdown=False):
        for name in files:
            yield Path(root, name)
        for name in dirs:
            yield Path(root, name)
