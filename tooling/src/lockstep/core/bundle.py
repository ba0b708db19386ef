"""An offline bundle: both locks, every conda archive and every wheel they install, one folder.

``invoke bundle`` makes one where channels and the index are reachable (lockstep.bundlefetch);
``make reproduce BUNDLE=path`` installs from it with no network through the same engine: the conda
lock's URLs are rewritten to the bundle's files (the mirror mechanism of lockstep.core.mirrors,
so the engine's md5 check of ``file://`` archives covers them) and pip runs with ``--no-index
--find-links``, hashes still required.

Layout::

    manifest.json             what is inside and where each file came from
    locks/                    the conda lock, poetry.lock and pyproject.toml it was made from
    conda/<n>-<channel>/<subdir>/<archive>
    wheels/<wheel>            poetry.lock's own files; an sdist-only package as the wheel built
                              from it once, at bundle time (the manifest records both hashes)

Standard library only: the engine reads bundles with any Python 3.11+.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from lockstep.core import mirrors
from lockstep.core.errors import LockstepError
from lockstep.core.explicit import LockEntry
from lockstep.core.fsutil import file_digest
from lockstep.core.names import normalize
from lockstep.core.plan import requirement_line
from lockstep.core.poetrylock import LockedPackage, locked_versions

MANIFEST = "manifest.json"
FORMAT = 1
LOCKS_DIR = "locks"
CONDA_DIR = "conda"
WHEELS_DIR = "wheels"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class BundleError(LockstepError):
    """A bundle that cannot be used; the message says why and what to do."""


@dataclass(frozen=True)
class BuiltWheel:
    """A package poetry.lock has only as an sdist, built into a wheel when the bundle was made."""

    name: str
    version: str
    sdist: str
    sdist_sha256: str  # one of poetry.lock's hashes: pip checked it at download
    wheel: str
    wheel_sha256: str  # what --require-hashes checks at install time


@dataclass(frozen=True)
class Manifest:
    platform: str
    locks: Mapping[str, str]  # file name under locks/ -> sha256
    channels: Mapping[str, str]  # channel URL of the lock -> folder under conda/
    conda: list[dict[str, str]] = field(default_factory=list)  # filename, url, hash
    wheels: list[str] = field(default_factory=list)
    built: list[BuiltWheel] = field(default_factory=list)
    format: int = FORMAT

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"


def channel_folders(entries: Iterable[LockEntry]) -> dict[str, str]:
    """One folder per channel URL of the lock, numbered: two hosts may serve a same-named
    channel (a mirror and the original), and their archives must not meet in one folder."""
    folders: dict[str, str] = {}
    for entry in entries:
        if entry.channel not in folders:
            name = _UNSAFE.sub("_", entry.channel.rstrip("/").rsplit("/", 1)[-1]) or "channel"
            folders[entry.channel] = f"{len(folders)}-{name}"
    return folders


def archive_path(folder: Path, manifest: Manifest, entry: LockEntry) -> Path:
    """Where an archive of the lock lies in the bundle: its file name decoded (conda writes
    ``1!164`` as ``1%21164`` in some locks), as the engine decodes a ``file://`` URL."""
    channel = manifest.channels[entry.channel]
    return folder / CONDA_DIR / channel / entry.subdir / unquote(entry.filename)


def read_manifest(folder: Path) -> Manifest:
    """The manifest of the bundle at ``folder``; a missing or foreign one is refused."""
    path = folder / MANIFEST
    hint = "make one with `invoke bundle` where the channels and the index are reachable"
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BundleError(f"{folder}: not a bundle (no {MANIFEST}); {hint}") from None
    except (OSError, ValueError) as exc:
        raise BundleError(f"{path}: unreadable ({exc}); {hint}") from None
    if data.get("format") != FORMAT:
        raise BundleError(
            f"{path}: bundle format {data.get('format')!r}, this lockstep reads {FORMAT}; {hint}"
        )
    try:
        built = [BuiltWheel(**item) for item in data.get("built", [])]
        return Manifest(
            platform=data["platform"],
            locks=data["locks"],
            channels=data["channels"],
            conda=data["conda"],
            wheels=data["wheels"],
            built=built,
        )
    except (KeyError, TypeError) as exc:
        raise BundleError(f"{path}: damaged manifest ({exc}); {hint}") from None


def check_made_from(folder: Path, manifest: Manifest, platform: str, locks: Iterable[Path]) -> None:
    """The bundle was made from exactly these lock files, for this platform."""
    if manifest.platform != platform:
        raise BundleError(
            f"{folder}: a bundle for {manifest.platform}, this machine is {platform}; make the "
            f"bundle on a {platform} machine; nothing was changed"
        )
    for lock in locks:
        expected = manifest.locks.get(lock.name)
        if expected is None or file_digest(lock) != expected:
            raise BundleError(
                f"{lock.name} differs from the one {folder} was made from; make the bundle again "
                f"from these locks (`invoke bundle`) or reproduce from {folder}/{LOCKS_DIR}/; "
                "nothing was changed"
            )


def mirror_config(folder: Path, manifest: Manifest) -> mirrors.MirrorConfig:
    """Every channel of the lock served from the bundle: the engine installs the lock rewritten
    to these ``file://`` URLs and checks each archive's md5 against it first."""
    root = folder.absolute() / CONDA_DIR
    return mirrors.MirrorConfig(
        channels={url: (root / name).as_uri() for url, name in manifest.channels.items()}
    )


def requirement_lines(
    manifest: Manifest, packages: Iterable[LockedPackage], groups: Iterable[str]
) -> list[str]:
    """pip's requirements for the bundle: poetry.lock's hashes, except for a package built from
    its sdist, pinned to the wheel built from it (the only file the bundle has of it)."""
    built = {(normalize(b.name), b.version): b for b in manifest.built}
    lines = []
    for package in packages:
        wheel = built.get((normalize(package.name), package.version))
        if wheel is None:
            lines.append(requirement_line(package, groups))
        else:
            lines.append(f"{package.name}=={package.version} --hash=sha256:{wheel.wheel_sha256}")
    return lines


def wheels_dir(folder: Path) -> Path:
    return folder.absolute() / WHEELS_DIR


def verify_files(folder: Path, manifest: Manifest, lock_data: Mapping[str, Any]) -> int:
    """Every wheel of the bundle against a hash it must have (one of poetry.lock's, or, for a
    wheel built from an sdist, the manifest's), and every file under locks/ against the
    manifest, before anything is touched: pip's own hash check comes only after the conda side
    was rebuilt. Returns how many files were checked. The conda archives are checked against
    the lock (the engine's verify_archives)."""
    allowed = {
        digest.partition(":")[2]
        for versions in locked_versions(lock_data).values()
        for package in versions
        for digest in package.hashes
        if digest.startswith("sha256:")
    }
    built = {b.wheel: b.wheel_sha256 for b in manifest.built}
    problems = []
    for name in manifest.wheels:
        path = folder / WHEELS_DIR / name
        if not path.is_file():
            problems.append(f"{WHEELS_DIR}/{name} is missing")
            continue
        actual = file_digest(path)
        if actual not in ({built[name]} if name in built else allowed):
            source = "the manifest's (built from its sdist)" if name in built else "poetry.lock's"
            problems.append(f"{WHEELS_DIR}/{name}: sha256 {actual} is none of {source}")
    for name, expected in manifest.locks.items():
        path = folder / LOCKS_DIR / name
        if not path.is_file() or file_digest(path) != expected:
            problems.append(f"{LOCKS_DIR}/{name} differs from the manifest's sha256")
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise BundleError(
            f"{folder}: damaged bundle: {problems[0]}{more}; copy the bundle again (or make it "
            "again with `invoke bundle`); nothing was changed"
        )
    return len(manifest.wheels) + len(manifest.locks)
