"""poetry.lock as Poetry writes it (lock-version 1.1, 2.0, 2.1): every locked version of every
name, with its hashes (1.1 keeps them in [metadata.files]), its dependency edges and markers.

Standard library only (lockstep.core).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lockstep.core.fsutil import read_text
from lockstep.core.markers import (
    MarkerError,
    Version,
)
from lockstep.core.names import normalize
from lockstep.core.settings import read_toml


@dataclass(frozen=True)
class LockedPackage:
    """One [[package]] of poetry.lock, reduced to what installing needs.

    ``dependencies`` maps a name to its edge: one table, or several (lock-version 1.1/2.0 write a
    list when the constraint differs by marker), each with version, markers, extras, optional.
    """

    name: str
    version: str
    groups: tuple[str, ...]
    markers: object
    hashes: tuple[str, ...]
    dependencies: Mapping[str, object]
    extras: Mapping[str, tuple[str, ...]]
    source_type: str | None = None
    source_url: str | None = None
    python_versions: str = "*"


_FILES_RE = re.compile(r"^files = \[\n(?:.*\n)*?\]\n", re.MULTILINE)


def read_poetry_lock(path: Path, hashes: bool = True) -> dict[str, Any]:
    """Parse poetry.lock; without ``hashes`` its files lists are skipped (tomllib is 10x faster).

    Errors name the file and the line, counted in the file as it is.
    """
    if hashes:
        return read_toml(path)
    try:
        text = read_text(path)
    except FileNotFoundError:
        return read_toml(path)
    try:
        return tomllib.loads(_FILES_RE.sub("", text))
    except tomllib.TOMLDecodeError:
        return read_toml(path)  # the error again, with the line numbers of the whole file


def edge_tables(value: object) -> list[dict[str, Any]]:
    """The tables of one dependency edge (a constraint string, a table or a list of tables)."""
    if isinstance(value, str):
        return [{"version": value}]
    if isinstance(value, Mapping):
        return [dict(value)]
    if isinstance(value, (list, tuple)):
        return [table for item in value for table in edge_tables(item)]
    return []


def group_markers(raw: object, groups: Sequence[str]) -> str | None:
    """The environment marker under which the selected ``groups`` need a package (lock 2.1)."""
    if isinstance(raw, str):
        return raw
    if not isinstance(raw, dict) or any(g not in raw for g in groups):
        return None  # no marker, or some selected group needs it unconditionally
    return " or ".join(f"({raw[g]})" for g in groups) or None


def lock_version(data: Mapping[str, Any]) -> tuple[int, ...]:
    raw = str(data.get("metadata", {}).get("lock-version", "1.0"))
    return tuple(int(p) for p in raw.split(".") if p.isdigit())


def locked_versions(data: Mapping[str, Any]) -> dict[str, tuple[LockedPackage, ...]]:
    """Every locked version by normalised name, highest first (a name may be locked several
    times, under different markers)."""
    # lock-version 1.1 keeps the hashes apart, by name: every file of every version of it.
    legacy_files = {
        normalize(name): files for name, files in data.get("metadata", {}).get("files", {}).items()
    }
    found: dict[str, list[LockedPackage]] = {}
    for raw in data.get("package", []):
        source = raw.get("source") or {}
        name = normalize(raw["name"])
        files = raw.get("files", legacy_files.get(name, []))
        package = LockedPackage(
            name=raw["name"],
            version=raw["version"],
            groups=tuple(raw.get("groups", [raw.get("category", "main")])),
            markers=raw.get("markers"),
            hashes=tuple(f["hash"] for f in files if "hash" in f),
            dependencies={k: tuple(edge_tables(v)) for k, v in raw.get("dependencies", {}).items()},
            extras={k: tuple(v) for k, v in raw.get("extras", {}).items()},
            source_type=source.get("type"),
            source_url=source.get("url"),
            python_versions=raw.get("python-versions", "*"),
        )
        found.setdefault(name, []).append(package)
    return {
        name: tuple(sorted(packages, key=lambda p: _version_key(p.version), reverse=True))
        for name, packages in found.items()
    }


def _version_key(version: str) -> tuple:
    try:
        return (1, Version.parse(version).key())
    except MarkerError:
        return (0, version)  # not PEP 440: below every version that is


def parse_poetry_lock(data: Mapping[str, object]) -> dict[str, LockedPackage]:
    """Locked packages by normalised name; of a name locked twice, the highest version (the
    install plan takes every version: ``locked_versions``)."""
    return {name: versions[0] for name, versions in locked_versions(data).items()}
