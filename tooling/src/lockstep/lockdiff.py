"""What changed between two locks: package, old -> new, and which side (conda or PyPI).

The report ``invoke update`` prints and the lock-refresh workflow's PR body.

``python -m lockstep.lockdiff --old DIR --new DIR`` compares ``conda-<platform>.lock`` and
``poetry.lock`` of two folders, by package and version; a lock missing on one side counts as
empty, so the first lock reports every package as added. Standard library only.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from lockstep.core.errors import LockstepError
from lockstep.core.explicit import ExplicitLock, parse_explicit
from lockstep.core.poetrylock import parse_poetry_lock, read_poetry_lock
from lockstep.core.settings import load_settings
from lockstep.core.variants import build_kind, needs_of

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


def format_report(changes: list[Change], notes: Sequence[str] = ()) -> str:
    """Human-readable table of changes, then what they mean for the hardware."""
    lines = [f"{len(changes)} package(s) changed:"] if changes else ["No package changed."]
    width = max((len(c.name) for c in changes), default=0)
    for c in changes:
        lines.append(f"  {c.side:<5} {c.name:<{width}}  {c.old or '-'} -> {c.new or '-'}")
    lines += [f"  note: {note}" for note in notes]
    return "\n".join(lines)


def _size(lock: ExplicitLock, pkgs_dirs: Sequence[Path]) -> tuple[int, int]:
    """(bytes of the archives whose size is known, how many are not): an explicit lock has no
    sizes, so a size comes from a file:// archive or a copy in a package cache."""
    from lockstep.core.explicit import local_archive

    known = unknown = 0
    for entry in lock.entries:
        local = local_archive(entry.url)
        candidates = [local] if local else [d / entry.filename for d in pkgs_dirs]
        found = next((c for c in candidates if c.is_file()), None)
        if found is None:
            unknown += 1
        else:
            known += found.stat().st_size
    return known, unknown


def _mb(size: int) -> str:
    return f"{size / 1e6:.1f} MB" if size >= 100_000 else f"{size / 1e3:.1f} kB"


def hardware_notes(
    old: ExplicitLock | None,
    new: ExplicitLock | None,
    label: str,
    pkgs_dirs: Iterable[Path] = (),
) -> list[str]:
    """What a lock change means for the machine: a build that flips between CUDA and CPU, a
    cuda-version that needs another driver, and the download size where it is known."""
    notes = []
    old_by = old.by_name() if old else {}
    new_by = new.by_name() if new else {}
    for name in sorted(set(old_by) & set(new_by)):
        before, after = build_kind(old_by[name].build), build_kind(new_by[name].build)
        if before != after:
            notes.append(
                f"{label}: {name} flips from a {before or 'plain'} build to a {after or 'plain'} "
                f"build ({old_by[name].build} -> {new_by[name].build})"
            )
    before_cuda = old_by.get("cuda-version")
    after_cuda = new_by.get("cuda-version")
    if new is not None and (before_cuda and before_cuda.version) != (
        after_cuda and after_cuda.version
    ):
        was = before_cuda.version if before_cuda else "none"
        now = after_cuda.version if after_cuda else "none"
        notes.append(f"{label}: cuda-version {was} -> {now}: needs {needs_of(new).describe()}")
    dirs = list(pkgs_dirs)
    sizes = [(_size(lock, dirs) if lock else (0, 0)) for lock in (old, new)]
    if any(known for known, _ in sizes):
        (old_known, old_unknown), (new_known, new_unknown) = sizes
        delta = new_known - old_known
        text = (
            f"{label}: download size {_mb(old_known)} -> {_mb(new_known)} "
            f"({'+' if delta >= 0 else '-'}{_mb(abs(delta))}; from the file:// archives and the "
            "package cache"
        )
        missing = old_unknown + new_unknown
        notes.append(text + (f"; {missing} archives of unknown size)" if missing else ")"))
    elif new is not None and new.entries:
        notes.append(
            f"{label}: download size unknown (an explicit lock has no sizes, and none of its "
            "archives is local or in the package cache)"
        )
    return notes


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


def _read(path: Path) -> ExplicitLock | None:
    return parse_explicit(path.read_text(encoding="utf-8"), str(path)) if path.is_file() else None


def lock_changes(
    old: Path, new: Path, pkgs_dirs: Iterable[Path] = ()
) -> tuple[list[Change], list[str]]:
    """Every package added, removed or changed between the locks in ``old`` and ``new``, and
    the hardware notes of each conda lock."""
    names = sorted({p.name for d in (old, new) for p in d.glob(CONDA_LOCK_GLOB)})
    changes: list[Change] = []
    notes: list[str] = []
    for name in names:
        # The side says which platform's lock, when there are several.
        side = "conda" if len(names) == 1 else name.removesuffix(".lock").removeprefix("conda-")
        changes += diff_versions(conda_versions(old / name), conda_versions(new / name), side)
        notes += hardware_notes(_read(old / name), _read(new / name), name, pkgs_dirs)
    changes += diff_versions(
        poetry_versions(old / POETRY_LOCK), poetry_versions(new / POETRY_LOCK), "pypi"
    )
    return changes, notes


def main(argv: list[str] | None = None) -> int:
    """Print the report; exit 1 on an unreadable lock."""
    parser = argparse.ArgumentParser(prog="python -m lockstep.lockdiff", description=__doc__)
    parser.add_argument("--old", type=Path, required=True, help="folder with the old locks")
    parser.add_argument("--new", type=Path, required=True, help="folder with the new locks")
    parser.add_argument(
        "--pkgs-dir",
        type=Path,
        action="append",
        default=[],
        help="a conda package cache to read archive sizes from (repeatable)",
    )
    args = parser.parse_args(argv)
    try:
        changes, notes = lock_changes(args.old, args.new, args.pkgs_dir)
        cooldown = load_settings(args.new).cooldown()
        if cooldown is not None:  # resolved now: the solves ran minutes before the report
            notes.append(f"cooldown: {cooldown.describe()}, as resolved for this report")
        print(format_report(changes, notes))
    except LockstepError as exc:
        print(f"error: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
