"""Does an env already match both locks? Then `make reproduce` has nothing to do.

"Matches", as checked here, without hashing a file (the file-level check is `invoke doctor`'s):
- conda side: the env's conda-meta records are exactly the lock's packages, each with the lock's
  name, version, build and md5 (lockstep.core.condameta reads them);
- PyPI side: the distributions no conda package owns (``site-packages/*.dist-info`` folders) are
  exactly the plan's, each at the locked version, plus the project itself in package mode;
- the env's variables hold PYTHONNOUSERSITE=1 (conda-meta/state, as the engine sets it);
- no run of this env is under way or was interrupted (no journal; its lock is free).

Standard library only, like the engine that asks.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from lockstep.core.condameta import CondaRecord
from lockstep.core.explicit import ExplicitLock, LockEntry
from lockstep.core.names import normalize

# <name>-<version>.dist-info at the top of a site-packages (the name's dashes escaped to "_").
_DIST_INFO = re.compile(r"^(?P<name>[^-]+)-(?P<version>[^-]+)\.dist-info$")


@dataclass(frozen=True)
class CondaDiff:
    """What a transaction from the env to the lock changes, by conda package name."""

    install: tuple[str, ...]  # new, or another version, build or md5
    remove: tuple[str, ...]  # in the env, not in the lock
    unchanged: tuple[str, ...]

    @property
    def empty(self) -> bool:
        return not (self.install or self.remove)


def conda_diff(lock: ExplicitLock, records: Mapping[str, CondaRecord]) -> CondaDiff:
    """The lock against conda-meta (lockstep.core.condameta.read_conda_meta)."""
    wanted = lock.by_name()
    same = sorted(n for n, e in wanted.items() if n in records and same_package(e, records[n]))
    install = sorted(set(wanted) - set(same))
    remove = sorted(set(records) - set(wanted))
    return CondaDiff(tuple(install), tuple(remove), tuple(same))


def same_package(entry: LockEntry, record: CondaRecord) -> bool:
    """Name, version, build and md5 as locked (a lock with sha256 only: name, version, build)."""
    digest = entry.md5.rpartition(":")[2]
    md5_matches = len(digest) != 32 or record.md5 == digest
    return (record.name, record.version, record.build) == (
        entry.name,
        entry.version,
        entry.build,
    ) and md5_matches


def pypi_distributions(prefix: Path, records: Iterable[CondaRecord]) -> dict[str, str]:
    """Normalised name -> version of every top-level dist-info that no conda package owns."""
    owned = {d for record in records for d in record.dist_dirs}
    found: dict[str, str] = {}
    for site in sorted(Path(prefix).glob("lib/python*/site-packages")):
        with contextlib.suppress(OSError):
            for entry in os.scandir(site):
                match = _DIST_INFO.match(entry.name)
                relative = f"{site.relative_to(prefix)}/{entry.name}"
                if match and entry.is_dir() and relative not in owned:
                    found[normalize(match["name"])] = match["version"]
    return found


def pypi_differences(installed: Mapping[str, str], planned: Mapping[str, str]) -> list[str]:
    """What differs between the env's PyPI distributions and the plan's, one phrase each."""
    problems = []
    for name, version in sorted(planned.items()):
        have = installed.get(name)
        if have is None:
            problems.append(f"{name} {version} missing")
        elif normalize(have) != normalize(version):
            problems.append(f"{name} {have} instead of {version}")
    problems += [
        f"{name} {installed[name]} not in the plan"
        for name in sorted(set(installed) - set(planned))
    ]
    return problems


def user_site_off(prefix: Path) -> bool:
    """conda-meta/state sets PYTHONNOUSERSITE=1 (lockstep.core.envvars writes it)."""
    try:
        state = json.loads((Path(prefix) / "conda-meta" / "state").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    env_vars = state.get("env_vars") if isinstance(state, dict) else None
    return isinstance(env_vars, dict) and env_vars.get("PYTHONNOUSERSITE") == "1"


@contextlib.contextmanager
def no_run_under_way(lock_file: Path, journal: Path) -> Iterator[bool]:
    """True while no run of the env holds its lock and none left a journal: a shared flock on
    the existing lock file, opened read-only (nothing is created or written), held for the
    check so that no run starts in the middle of it."""
    if journal.exists():
        yield False
        return
    try:
        fd = os.open(lock_file, os.O_RDONLY)
    except FileNotFoundError:
        yield True  # no run ever took it: a run creates it before it touches the env
        return
    except OSError:
        yield False
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            yield False
            return
        yield not journal.exists()
    finally:
        os.close(fd)  # releases the shared lock


def planned_versions(names_and_versions: Sequence[tuple[str, str]]) -> dict[str, str]:
    return {normalize(name): version for name, version in names_and_versions}
