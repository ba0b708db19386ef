"""What changed between two locks: package, old -> new, and which side (conda or PyPI).

The report ``invoke update`` prints and the lock-refresh workflow's PR body.

``python -m lockstep.lockdiff --old DIR --new DIR`` compares ``conda-<platform>.lock`` and
``poetry.lock`` of two folders, by package and version; a lock missing on one side counts as
empty, so the first lock reports every package as added. Standard library only.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from lockstep.core.errors import LockstepError
from lockstep.core.explicit import parse_explicit
from lockstep.core.poetrylock import parse_poetry_lock, read_poetry_lock

POETRY_LOCK = "poetry.lock"
CONDA_LOCK_GLOB = "conda-*.lock"


@dataclass(frozen=True, order=True)
class Change:
    """One package that was added, removed or changed."""

    side: str
    name: str
    old: str | None
    new: str | None

    @property
    def kind(self) -> str:
        """added, removed or changed."""
        if self.old is None:
            return "added"
        if self.new is None:
            return "removed"
        return "changed"


def diff_versions(old: Mapping[str, str], new: Mapping[str, str], side: str) -> list[Change]:
    """Every package whose version differs between two name -> version maps."""
    return sorted(
        Change(side, name, old.get(name), new.get(name))
        for name in set(old) | set(new)
        if old.get(name) != new.get(name)
    )


def format_report(changes: list[Change]) -> str:
    """Human-readable table of changes."""
    if not changes:
        return "No package changed."
    width = max(len(c.name) for c in changes)
    lines = [f"{len(changes)} package(s) changed:"]
    for c in changes:
        lines.append(f"  {c.side:<5} {c.name:<{width}}  {c.old or '-'} -> {c.new or '-'}")
    return "\n".join(lines)


def conda_versions(path: Path) -> dict[str, str]:
    """name -> version of an explicit lock; {} when the file does not exist."""
    if not path.is_file():
        return {}
    lock = parse_explicit(path.read_text(encoding="utf-8"), str(path))
    return {e.name: e.version for e in lock.entries}


def poetry_versions(path: Path) -> dict[str, str]:
    """name -> version of a poetry.lock; {} when the file does not exist."""
    if not path.is_file():
        return {}
    data = read_poetry_lock(path, hashes=False)
    return {name: p.version for name, p in parse_poetry_lock(data).items()}


def lock_changes(old: Path, new: Path) -> list[Change]:
    """Every package added, removed or changed between the locks in ``old`` and ``new``."""
    names = sorted({p.name for d in (old, new) for p in d.glob(CONDA_LOCK_GLOB)})
    changes: list[Change] = []
    for name in names:
        # The side says which platform's lock, when there are several.
        side = "conda" if len(names) == 1 else name.removesuffix(".lock").removeprefix("conda-")
        changes += diff_versions(conda_versions(old / name), conda_versions(new / name), side)
    changes += diff_versions(
        poetry_versions(old / POETRY_LOCK), poetry_versions(new / POETRY_LOCK), "pypi"
    )
    return changes


def main(argv: list[str] | None = None) -> int:
    """Print the report; exit 1 on an unreadable lock."""
    parser = argparse.ArgumentParser(prog="python -m lockstep.lockdiff", description=__doc__)
    parser.add_argument("--old", type=Path, required=True, help="folder with the old locks")
    parser.add_argument("--new", type=Path, required=True, help="folder with the new locks")
    args = parser.parse_args(argv)
    try:
        print(format_report(lock_changes(args.old, args.new)))
    except LockstepError as exc:
        print(f"error: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
