"""Digests of local archives, remembered by the file's identity so a warm run hashes nothing.

The engine checks every ``file://`` archive against the lock before anything is touched (conda
checks only what it downloads). Hashing 500 MB of archives costs about 0.5 s on every run, on
files that did not change. A digest is kept here with what identifies the bytes it was taken
from: device, inode, size, mtime and ctime in nanoseconds. Any write to the file, a copy over
it, a rename onto it or a ``touch`` changes at least one of them (ctime cannot be set back from
user space), and the file is hashed again: a flipped byte is still found, as it is on the first
run. The same bytes on disk that the kernel did not see change (a fault below the file
system) are not re-read; the package cache the installer links from is not re-read either.

The cache is one JSON file, ``$XDG_CACHE_HOME/lockstep/archive-digests.json`` (default
``~/.cache``), written atomically; an unreadable or unwritable one is ignored (everything is
hashed). Standard library only.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from pathlib import Path

from lockstep.core.fsutil import atomic_write_text, file_digest, user_cache_dir

VERSION = 1
# Entries kept at most (the newest checked first); one per archive of every env on the machine.
LIMIT = 20_000
# A file changed less than this before it was hashed is not remembered: the kernel stamps times
# from a coarse clock, so a second write in the same tick could leave every field as it was.
SETTLED_NS = 2_000_000_000


def cache_file(environ: Mapping[str, str] = os.environ) -> Path:
    return user_cache_dir(environ) / "archive-digests.json"


def _identity(stat: os.stat_result) -> list[int]:
    return [stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns]


class Digests:
    """``digest(path, algorithm)``, from the cache where the file is the one hashed before."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or cache_file()
        self.known: dict[str, list] = {}
        self.fresh: dict[str, list] = {}
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return
        if isinstance(data, dict) and data.get("version") == VERSION:
            entries = data.get("archives")
            if isinstance(entries, dict):
                self.known = entries

    def digest(self, path: Path, algorithm: str) -> str:
        key = os.path.abspath(path)
        before = _identity(os.stat(path))
        entry = self.known.get(key)
        if (
            isinstance(entry, list)
            and len(entry) == 3
            and entry[0] == algorithm
            and entry[2] == before
            and isinstance(entry[1], str)
        ):
            self.fresh[key] = entry
            return entry[1]
        started = time.time_ns()
        value = file_digest(path, algorithm)
        # A file that changed while it was read, or just before, is hashed again next time.
        settled = max(before[3], before[4]) < started - SETTLED_NS
        if settled and _identity(os.stat(path)) == before:
            self.fresh[key] = [algorithm, value, before]
        return value

    def save(self) -> None:
        """Write what this run checked, then older entries up to LIMIT; failures are ignored."""
        if all(self.known.get(k) == v for k, v in self.fresh.items()):
            return
        merged = dict(self.fresh)
        for key, entry in self.known.items():
            if len(merged) >= LIMIT:
                break
            merged.setdefault(key, entry)
        text = json.dumps({"version": VERSION, "archives": merged}, separators=(",", ":"))
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(self.path, text + "\n")
        except OSError:
            pass
