"""What conda installed into an env, from its ``conda-meta/*.json`` records: the one reader.

Everything else is derived from :func:`read_conda_meta`: the distributions conda provides (the
installer leaves them to conda), who owns a dist-info folder and which files to hash (doctor), the
conda-to-PyPI names an env really ships (``pin --from-env``) and the env's Python version.
conda, mamba and rattler write the same records; an unreadable one is skipped, as conda does.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from lockstep.core.names import normalize

# A distribution's metadata folder at the top of a site-packages (dist-info, or the egg-info of
# an older build); deeper ones are a package's vendored copies and do not count.
_DIST_DIR = re.compile(r"^((?:.*/)?site-packages/([^/]+)\.(?:dist-info|egg-info))(?:/|$)")


@dataclass(frozen=True)
class InstalledFile:
    """One entry of a record's ``paths_data``: what the file should be in the env.

    ``sha256`` and ``size`` describe the file as installed. conda and rattler rewrite a file with
    a prefix placeholder at install time and record its new digest as ``sha256_in_prefix``; the
    archive's own ``sha256`` and ``size_in_bytes`` then describe the file before the rewrite, so
    the size is unknown (None) for such a file, and its digest is unknown ("") where no
    ``sha256_in_prefix`` was recorded.
    """

    path: str
    path_type: str = "hardlink"
    sha256: str = ""
    size: int | None = None
    # The archive's paths.json said other bytes than those installed, with no placeholder to
    # explain it: the payload was altered before the install (a tampered archive or cache).
    differs_from_archive: bool = False


@dataclass(frozen=True)
class CondaRecord:
    """One conda-meta/*.json record."""

    name: str
    version: str
    build: str
    md5: str
    url: str
    files: tuple[str, ...]
    # The record's "paths_data" as written; read into sha256 and paths only when asked (the
    # engine's match check needs neither: 30,000 entries cost 0.05 s per read of an env).
    paths_data: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @cached_property
    def _where(self) -> Callable[[str], str]:
        return _installed_path(self.files)

    @cached_property
    def sha256(self) -> Mapping[str, str]:
        """prefix-relative path -> sha256 the package shipped (where paths_data has it)."""
        return {
            self._where(p["_path"]): p["sha256"]
            for p in self.paths_data.get("paths", [])
            if "_path" in p and "sha256" in p
        }

    @cached_property
    def paths(self) -> tuple[InstalledFile, ...]:
        """paths_data as the file check reads it; empty for a record without paths_data."""
        return _installed_files(self.paths_data, self._where)

    @property
    def dist_dirs(self) -> list[str]:
        """The prefix-relative dist-info (and egg-info) folders this conda package installed."""
        return sorted({m.group(1) for f in self.files if (m := _DIST_DIR.match(f))})

    @property
    def distributions(self) -> tuple[str, ...]:
        """The normalised names of the Python distributions this package installed."""
        # NAME-VERSION.dist-info, NAME-VERSION[-pyX.Y].egg-info: the name's own dashes are
        # escaped to "_" in both, so it ends at the first dash.
        folders = (Path(d).name.rsplit(".", 1)[0] for d in self.dist_dirs)
        return tuple(dict.fromkeys(normalize(f.split("-", 1)[0]) for f in folders))


def signature(prefix: Path) -> tuple[int, ...] | None:
    """What changes whenever a record is added, removed or written: conda-meta's own inode and
    mtime, then each record's inode, size, mtime and ctime (ns); None without conda-meta. Taken
    before the records are read and compared later, a change in between reads as a change."""
    folder = Path(prefix) / "conda-meta"
    try:
        own = os.stat(folder)
        with os.scandir(folder) as entries:
            stats = sorted(
                (e.name, e.stat(follow_symlinks=False)) for e in entries if e.name.endswith(".json")
            )
    except OSError:
        return None
    parts = [own.st_ino, own.st_mtime_ns]
    for _name, st in stats:
        parts += [st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]
    return tuple(parts)


def read_conda_meta(prefix: Path) -> dict[str, CondaRecord]:
    """conda package name -> its record."""
    records: dict[str, CondaRecord] = {}
    for path in sorted((Path(prefix) / "conda-meta").glob("*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        record = CondaRecord(
            name=data.get("name", ""),
            version=data.get("version", ""),
            build=data.get("build", data.get("build_string", "")),
            md5=data.get("md5", ""),
            url=data.get("url", ""),
            files=tuple(data.get("files") or ()),
            paths_data=data.get("paths_data") or {},
        )
        records[record.name] = record
    return records


def provided_distributions(records: Iterable[CondaRecord]) -> dict[str, str]:
    """Python distributions conda installed: normalised name -> the conda package."""
    return {dist: record.name for record in records for dist in record.distributions}


def distribution_names(records: Iterable[CondaRecord]) -> dict[str, tuple[str, ...]]:
    """conda name -> the distributions it installed: what the env holds, so it beats the bundled
    name mapping (lockstep.core.names.mapping_for)."""
    return {record.name: record.distributions for record in records}


def python_version(records: Mapping[str, CondaRecord]) -> str | None:
    """The version of the env's python package; None without one (a plain venv)."""
    python = records.get("python")
    return python.version if python and python.version else None


def _installed_path(files: Sequence[str]) -> Callable[[str], str]:
    """Where a paths_data path lives in the env.

    conda records a noarch python package's files in paths_data as the archive names them
    (site-packages/..., python-scripts/...) and in "files" as installed
    (lib/python3.X/site-packages/..., bin/...); rattler records the installed path in both.
    """
    installed = set(files)
    site = next((f[: f.index("site-packages/")] for f in files if "/site-packages/" in f), None)

    def where(path: str) -> str:
        if path in installed:
            return path
        if site is not None and path.startswith("site-packages/") and site + path in installed:
            return site + path
        script = "bin/" + path.removeprefix("python-scripts/")
        return script if path.startswith("python-scripts/") and script in installed else path

    return where


def _installed_files(
    paths_data: Mapping[str, Any], where: Callable[[str], str]
) -> tuple[InstalledFile, ...]:
    if paths_data.get("paths_version", 1) != 1:
        return ()  # a format this reader does not know: claim nothing about its files
    found = []
    for entry in paths_data.get("paths") or ():
        if not isinstance(entry, dict) or not isinstance(entry.get("_path"), str):
            continue
        in_prefix = entry.get("sha256_in_prefix") or ""
        shipped = entry.get("sha256") or ""
        rewritten = bool(entry.get("prefix_placeholder"))
        size = entry.get("size_in_bytes")
        found.append(
            InstalledFile(
                path=where(entry["_path"]),
                path_type=entry.get("path_type") or "hardlink",
                sha256=in_prefix or ("" if rewritten else shipped),
                size=size if isinstance(size, int) and not rewritten else None,
                differs_from_archive=bool(
                    in_prefix and shipped and in_prefix != shipped and not rewritten
                ),
            )
        )
    return tuple(found)
