"""TEST DOUBLE of the conda / mamba command line. It is not conda.

No conda can be installed where these tests run, yet conda-lock and the project's tasks shell
out to one. This module answers the small subset of the CLI they use, with py-rattler's real
solver and installer behind it, so solves and installs against a local channel are real while
the command line itself is simulated. Anything outside that subset exits 2 and names what is
not implemented, so a test never passes on a silently ignored flag.

Environment:
    LOCKSTEP_STANDIN_ROOT   required; the "root prefix": envs under ROOT/envs, cache ROOT/pkgs.
    CONDA_SUBDIR            target platform of solves (conda-lock sets it); default: host.
    CONDA_PKGS_DIRS         reported by `info --json` (conda-lock sets it), as conda does.
    CONDA_CHANNELS          comma-separated channels used when no -c is given (as conda reads it).
    CONDA_OVERRIDE_<NAME>   virtual packages: "" removes one, a version overrides detection.
    LOCKSTEP_STANDIN_MAMBA_VERSION   what `mamba --version` prints (default 2.5.0).
    LOCKSTEP_STANDIN_CONDA_VERSION   the conda version it behaves as (default 26.1.0). From 26.7
                            on, `env create` is `create` (conda PR 16210): the existing env is
                            deleted before solving and `nodefaults` is sent to the solver as a
                            channel, failing with conda 26.7's CondaHTTPError.
    CONDA_EXCLUDE_NEWER     conda's exclude_newer setting, honoured from 26.9 on (older conda
                            ignores the variable, as an unknown setting): a duration (7d, 1w,
                            3d12h), a date (the start of the next UTC day) or an RFC 3339
                            timestamp; records newer than the cutoff are left out of the solve
                            and records without a timestamp pass, as conda's ExcludeNewerPolicy.
    LOCKSTEP_STANDIN_FAIL, LOCKSTEP_STANDIN_HANG, LOCKSTEP_STANDIN_GATE   fault injection, see
                            faults.py.

What it shares with real conda 26.7.1 is checked against that conda's captured output
(tests/data/frontends/conda-26.7.1) by tests/integration/test_standin.py: the listing (an env
is a folder with conda-meta/history; names from envs dirs only; backups listed), `create --yes`
deleting an existing env before it solves or fetches, dry-run and error JSON, conda-meta's
`paths_data`, and no md5 check of `file://` archives. Known differences from 26.7.1: FETCH of
a dry run lists every package (conda: only those not in the package cache yet); `envs_dirs`
lacks `~/.conda/envs`; an UnsatisfiableError has no `unsatisfiable`/`guidance` keys and gives
rattler's explanation; conda-meta/history stays empty.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import unquote, urlsplit

import rattler
import yaml
from rattler.explicit_environment import ExplicitEnvironmentSpec

from . import faults

CONDA_VERSION = "26.1.0"
CONDA_VERSION_VAR = "LOCKSTEP_STANDIN_CONDA_VERSION"
ENV_CREATE_IS_CREATE = (26, 7)  # conda PR 16210
# conda's PREFIX_NAME_DISALLOWED_CHARS and RESERVED_ENV_NAMES, for the last path component.
NAME_DISALLOWED = frozenset("/ #:")
RESERVED_NAMES = frozenset({"base", "root"})
MAMBA_VERSION = "2.5.0"  # below 2.6, whose mamba path conda-lock cannot use (issue 906)
ROOT_VAR = "LOCKSTEP_STANDIN_ROOT"


class StandinError(Exception):
    """A conda-like failure: exit 1, JSON error on stdout under --json (extra keys as conda's)."""

    def __init__(self, exception_name: str, message: str, **extra: object) -> None:
        super().__init__(message)
        self.exception_name = exception_name
        self.extra = extra


def conda_version() -> str:
    return os.environ.get(CONDA_VERSION_VAR) or CONDA_VERSION


def _at_least(version: tuple[int, int]) -> bool:
    major, minor = conda_version().split(".")[:2]
    return (int(major), int(minor)) >= version


EXCLUDE_NEWER_SINCE = (26, 9)  # conda PR 15761
_DURATION = re.compile(r"^(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


def exclude_newer() -> datetime | None:
    """conda's exclude_newer cutoff from CONDA_EXCLUDE_NEWER (None: unset, or a conda without
    the setting)."""
    raw = os.environ.get("CONDA_EXCLUDE_NEWER", "").strip()
    if not raw or not _at_least(EXCLUDE_NEWER_SINCE):
        return None
    duration = _DURATION.match(raw)
    if duration and any(duration.groups()):
        w, d, h, m, sec = (int(g or 0) for g in duration.groups())
        span = timedelta(weeks=w, days=d, hours=h, minutes=m, seconds=sec)
        return datetime.now(UTC) - span
    if "T" not in raw:
        day = date.fromisoformat(raw)
        return datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1)
    return datetime.fromisoformat(raw.replace("Z", "+00:00"))


class NotImplementedInStandin(Exception):
    """Outside the implemented subset: exit 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise NotImplementedInStandin(f"{self.prog}: {message}")


# --- locations ----------------------------------------------------------------------------


def root_prefix() -> Path:
    root = os.environ.get(ROOT_VAR)
    if not root:
        raise NotImplementedInStandin(f"{ROOT_VAR} is not set; the stand-in needs its own root")
    # conda always has a base env; an empty conda-meta makes the root one.
    (Path(root) / "conda-meta").mkdir(parents=True, exist_ok=True)
    return Path(root)


def envs_dir() -> Path:
    return root_prefix() / "envs"


def pkgs_dir() -> Path:
    return root_prefix() / "pkgs"


def subdir() -> str:
    return os.environ.get("CONDA_SUBDIR") or str(rattler.Platform.current())


def target_prefix(args: argparse.Namespace) -> Path:
    """-p wins, then -n (base is the root prefix); an activated env is never assumed."""
    if getattr(args, "prefix", None):
        return Path(args.prefix).absolute()
    name = getattr(args, "name", None)
    if not name:
        raise NotImplementedInStandin("the stand-in needs -n NAME or -p PREFIX")
    return root_prefix() if name == "base" else envs_dir() / name


def _registry() -> Path:
    # conda keeps envs created with -p outside envs_dirs in ~/.conda/environments.txt.
    return root_prefix() / "environments.txt"


def is_environment(prefix: Path) -> bool:
    """conda's test: a FILE conda-meta/history (a bare conda-meta folder is no env)."""
    return (prefix / "conda-meta" / "history").is_file()


def list_envs() -> list[Path]:
    """As conda lists them: the root always, then every env in envs dirs or the registry.

    Folders directly in the envs dir count whatever their name (a `*.lockstep-backup` too);
    registered prefixes that are gone are dropped; the whole list is sorted as strings.
    """
    found = set()
    if envs_dir().is_dir():
        found |= {p for p in envs_dir().iterdir() if is_environment(p)}
    if _registry().is_file():
        lines = _registry().read_text().splitlines()
        found |= {Path(line) for line in lines if line and is_environment(Path(line))}
    found.add(root_prefix())
    return sorted(found, key=str)


def _iso_time(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, tz=UTC).isoformat()


def env_details(prefix: Path) -> dict[str, Any]:
    """One `envs_details` entry of conda 26 (`env list --json`, `info --json`)."""
    meta = prefix / "conda-meta"
    history = meta / "history"
    try:
        created: float | None = float((meta / "created_at").read_text().strip())
    except (OSError, ValueError):
        created = None
    env = is_environment(prefix)
    active = os.environ.get("CONDA_PREFIX")
    return {
        "name": env_name(prefix),
        "created": _iso_time(created),
        "last_modified": _iso_time(history.stat().st_mtime if env else None),
        "active": bool(active) and Path(active) == prefix,
        "base": prefix == root_prefix(),
        "frozen": (meta / "frozen").is_file(),
        "writable": os.access(history, os.W_OK) if env else None,
    }


def env_name(prefix: Path) -> str:
    if prefix == root_prefix():
        return "base"
    return prefix.name if prefix.parent == envs_dir() else ""


def validate_new_prefix(prefix: Path, args: argparse.Namespace) -> None:
    """conda's name rules for create: the LAST path component only (spaces above it are fine)."""
    if getattr(args, "name", None) in RESERVED_NAMES and not getattr(args, "prefix", None):
        raise StandinError("CondaValueError", f"'{args.name}' is a reserved environment name")
    if NAME_DISALLOWED & set(prefix.name):
        chars = "{" + ", ".join(repr(c) for c in sorted(NAME_DISALLOWED)) + "}"
        message = f"Environment names cannot contain any of these characters: {chars}"
        raise StandinError("CondaValueError", message)


def _require_env(prefix: Path) -> None:
    if not (prefix / "conda-meta").is_dir():
        raise StandinError("EnvironmentLocationNotFound", f"Not a conda environment: {prefix}")


# --- solving and installing ---------------------------------------------------------------


def virtual_packages() -> list[rattler.GenericVirtualPackage]:
    """Host detection with conda's overrides.

    conda-lock sets CONDA_OVERRIDE_<NAME>="" for every virtual package of its spec and passes
    the spec's packages as a fake channel; dropping those here lets the channel's records stand
    in for the host, which is the outcome conda-lock asks conda for.
    """
    detected = rattler.VirtualPackage.detect(rattler.VirtualPackageOverrides.from_env())
    generic = [vp.into_generic() for vp in detected]
    cleared = {k for k, v in os.environ.items() if k.startswith("CONDA_OVERRIDE_") and v == ""}
    return [
        vp
        for vp in generic
        if f"CONDA_OVERRIDE_{vp.name.normalized.lstrip('_').upper()}" not in cleared
    ]


def _gateway() -> rattler.Gateway:
    return rattler.Gateway(cache_dir=pkgs_dir() / "cache")


def channels_from(args: argparse.Namespace, extra: Sequence[str] = ()) -> list[str]:
    given = [*(getattr(args, "channel", None) or []), *extra]
    if not given and not getattr(args, "override_channels", False):
        given = [c for c in os.environ.get("CONDA_CHANNELS", "").split(",") if c]
    # `nodefaults` is conda's token for "none of the default channels", not a channel.
    given = [c for c in given if c != "nodefaults"]
    if not given:
        raise NotImplementedInStandin("no channel: the stand-in has no defaults; pass -c")
    return given


def _spec(text: str) -> rattler.MatchSpec:
    """A spec read as conda reads it: `python 3.11.7` (conda-lock's spelling of
    `python==3.11.7`) is exactly 3.11.7, where rattler's strict parser refuses it."""
    return rattler.MatchSpec(text, strict=False)


def _not_in_channels(channels: Sequence[str], specs: Sequence[str]) -> list[str]:
    """Specs that no record of the channels matches (conda: PackagesNotFoundInChannelsError)."""
    real = [s for s in specs if not s.startswith("__")]
    found = asyncio.run(
        _gateway().query(
            list(channels), [subdir(), "noarch"], [_spec(s) for s in real], recursive=False
        )
    )
    records = [r for group in found for r in group]
    return [s for s in real if not any(_spec(s).matches(r) for r in records)]


def solve(channels: Sequence[str], specs: Sequence[str]) -> list[rattler.RepoDataRecord]:
    missing = _not_in_channels(channels, specs)
    if missing:
        listed = "".join(f"\n  - {s}" for s in missing)
        raise StandinError(
            "PackagesNotFoundInChannelsError",
            f"The following packages are not available from current channels:\n{listed}",
            packages=missing,
            channel_urls=[f"{c.rstrip('/')}/{s}" for c in channels for s in (subdir(), "noarch")],
        )
    try:
        return asyncio.run(
            rattler.solve(
                list(channels),
                [_spec(s) for s in specs],
                gateway=_gateway(),
                platforms=[subdir(), "noarch"],
                virtual_packages=virtual_packages(),
                exclude_newer=exclude_newer(),
                timestamp_policy="allow-missing",
            )
        )
    except Exception as exc:  # rattler raises SolverError, channel errors, ...
        raise StandinError("UnsatisfiableError", str(exc)) from exc


def _split_url(url: str) -> tuple[str, str, str]:
    """channel URL, subdir and file name of a package URL."""
    base, sub, filename = url.rsplit("/", 2)
    return base, sub, filename


def _package_name(filename: str) -> str:
    return filename.removesuffix(".tar.bz2").removesuffix(".conda").rsplit("-", 2)[0]


def explicit_records(lock: Path) -> list[rattler.RepoDataRecord]:
    """Records for the url#md5 lines of an explicit lock, read from each channel's repodata.

    conda reads the metadata from the downloaded archive; the channel's repodata holds the same
    metadata, and the md5 in the lock is checked against it as conda checks the download.
    """
    spec = ExplicitEnvironmentSpec.from_path(lock)
    records = []
    for entry in spec.packages:
        url, _, md5 = entry.url.partition("#")
        base, sub, filename = _split_url(url)
        if _is_bare_folder(base, sub):
            records.append(_record_from_archive(url, md5))
            continue
        found = asyncio.run(
            _gateway().query([base], [sub], [_package_name(filename)], recursive=False)
        )
        # conda's own `list --explicit` writes URLs only partly percent-encoded.
        matches = [r for group in found for r in group if unquote(r.url) == unquote(url)]
        if not matches:
            raise StandinError("PackagesNotFoundError", f"not in its channel: {url}")
        if md5 and matches[0].md5 is not None and matches[0].md5.hex() != md5:
            raise StandinError("ChecksumMismatchError", f"md5 mismatch for {url}")
        records.append(matches[0])
    return records


def _is_bare_folder(base: str, sub: str) -> bool:
    """A ``file://`` folder of archives with no repodata (an offline bundle's, say)."""
    if not base.startswith("file://"):
        return False
    return not (Path(unquote(urlsplit(base).path)) / sub / "repodata.json").exists()


def _record_from_archive(url: str, md5: str) -> rattler.RepoDataRecord:
    """conda reads an explicit URL's metadata from the archive itself (info/index.json), so
    a folder without repodata installs; as for any ``file://`` URL, the md5 it records is the
    lock's, unchecked (the sha256 is the file's, as its package cache computes it)."""
    path = Path(unquote(urlsplit(url).path))
    base, _, filename = _split_url(url)
    if not path.is_file():
        raise StandinError("PackagesNotFoundError", f"no such file: {url}")
    if not filename.endswith(".tar.bz2"):
        raise NotImplementedInStandin("only .tar.bz2 archives can be read outside a channel")
    with tempfile.TemporaryDirectory() as tmp, tarfile.open(path, "r:bz2") as archive:
        archive.extract("info/index.json", tmp, filter="data")
        record = rattler.PackageRecord.from_index_json(
            Path(tmp, "info", "index.json"),
            size=path.stat().st_size,
            sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
            md5=md5 or None,
        )
    return rattler.RepoDataRecord(record, filename, url, base)


def installed_records(prefix: Path) -> list[rattler.PrefixRecord]:
    meta = prefix / "conda-meta"
    return [rattler.PrefixRecord.from_path(p) for p in sorted(meta.glob("*.json"))]


def install(records: Sequence[rattler.RepoDataRecord], prefix: Path, command: str) -> None:
    """Install records into prefix; a gated command waits with part of them installed.

    rattler, like conda for `file://` URLs, does not check an archive against the md5 of the
    repodata or the lock; conda-meta then records the repodata's md5.
    """
    real = [r for r in records if not r.name.normalized.startswith("__")]
    fresh = not is_environment(prefix)
    if faults.gates(command) and real:
        _rattler_install(real[: max(1, len(real) // 2)], prefix)
        faults.gate(root_prefix(), command)
    _rattler_install(real, prefix)
    meta = prefix / "conda-meta"
    meta.mkdir(parents=True, exist_ok=True)
    if fresh:
        _write_public(meta / "created_at", f"{datetime.now(UTC).timestamp()}\n")
    (meta / "history").touch()
    for r in real:
        _conda_meta_like_conda(meta / f"{r.name.normalized}-{r.version}-{r.build}.json")
    if prefix.parent != envs_dir() and prefix != root_prefix():
        with _registry().open("a") as registry:
            registry.write(f"{prefix}\n")


def _rattler_install(records: Sequence[rattler.RepoDataRecord], prefix: Path) -> None:
    for record in records:
        # conda names a `file://` archive that is gone by its path (PathNotFoundError).
        if record.url.startswith("file://") and not Path(rattler_path(record.url)).exists():
            raise StandinError("PathNotFoundError", rattler_path(record.url))
    try:
        asyncio.run(
            rattler.install(list(records), prefix, cache_dir=pkgs_dir(), show_progress=False)
        )
    except Exception as exc:  # a broken archive, a full disk, ...: conda fails with exit 1
        raise StandinError("CondaError", f"install into {prefix} failed: {exc}") from exc


def rattler_path(url: str) -> str:
    """The file behind a `file://` URL, however much of it is percent-encoded."""
    return unquote(url.removeprefix("file://"))


def _write_public(path: Path, text: str) -> None:
    """Write with the umask's mode, as conda writes conda-meta (rattler writes 0600)."""
    umask = os.umask(0)
    os.umask(umask)
    path.write_text(text)
    path.chmod(0o666 & ~umask)


def _conda_meta_like_conda(path: Path) -> None:
    """Give rattler's conda-meta record conda's `paths_data` shape and the umask's mode.

    conda records, per hardlinked file, `sha256` and `size_in_bytes` of the archive's file and
    `sha256_in_prefix` of the installed one (equal unless a prefix placeholder was replaced), and
    nothing but the path and type of a symlink; rattler records the installed size, omits
    `sha256_in_prefix` for unchanged files and records a symlink's target digest.
    """
    record = json.loads(path.read_text())
    shipped_paths = Path(record.get("extracted_package_dir", "")) / "info" / "paths.json"
    shipped = {}
    if shipped_paths.is_file():
        shipped = {e["_path"]: e for e in json.loads(shipped_paths.read_text())["paths"]}
    for entry in record.get("paths_data", {}).get("paths", []):
        if entry.get("path_type") == "softlink":  # conda 26.7.1 records no digest for a link
            for key in ("sha256", "sha256_in_prefix", "size_in_bytes"):
                entry.pop(key, None)
        if entry.get("path_type") != "hardlink":
            continue
        entry.setdefault("sha256_in_prefix", entry.get("sha256"))
        if "size_in_bytes" in shipped.get(entry["_path"], {}):
            entry["size_in_bytes"] = shipped[entry["_path"]]["size_in_bytes"]
    _write_public(path, json.dumps(record, indent=2) + "\n")


def _replace_existing(prefix: Path, yes: bool) -> None:
    """conda create deletes an existing env BEFORE it solves or fetches (asked unless --yes).

    A folder that is not an env (no conda-meta/history) is kept and installed into, as conda
    does after its "Continue creating environment" prompt.
    """
    if is_environment(prefix):
        if not yes:
            raise StandinError("CondaValueError", f"prefix already exists: {prefix} (use --yes)")
        shutil.rmtree(prefix)


def is_explicit(path: Path) -> bool:
    return any(line.strip() == "@EXPLICIT" for line in path.read_text().splitlines())


def _file_specs(files: Sequence[str]) -> list[str]:
    lines = [line.strip() for f in files for line in Path(f).read_text().splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


# --- output -------------------------------------------------------------------------------


def _record_dict(record: rattler.RepoDataRecord) -> dict[str, Any]:
    """One FETCH entry, with the keys conda 26.7 prints."""
    data = json.loads(record.to_json())
    channel = f"{record.channel.rstrip('/')}/{record.subdir}" if record.channel else ""
    keys = ("name", "version", "build", "build_number", "subdir", "fn", "md5", "url", "sha256")
    # A record without a hash (conda-lock's virtual packages) has no such key, as in conda.
    entry = {key: data[key] for key in keys if data.get(key) is not None}
    entry.update(
        channel=channel,
        arch=None,
        platform=None,
        depends=data.get("depends", []),
        constrains=data.get("constrains", []),
        license=data.get("license"),
        timestamp=data.get("timestamp"),
        size=data.get("size"),
    )
    return entry


def _link_entry(record: rattler.RepoDataRecord) -> dict[str, Any]:
    """One entry of `conda list --json` (and of a dry run's LINK actions)."""
    base_url = record.channel.rstrip("/") if record.channel else ""
    return {
        "base_url": base_url,
        "build_number": record.build_number,
        "build_string": str(record.build),
        "channel": base_url.rsplit("/", 1)[-1],
        "dist_name": f"{record.name.normalized}-{record.version}-{record.build}",
        "name": record.name.normalized,
        "platform": record.subdir,
        "version": str(record.version),
    }


def _pypi_base_url() -> str:
    """What conda lists as the base_url of pip-installed packages, computed, not written down."""
    from pip._internal.models.index import PyPI

    return PyPI.url


def pip_entries(prefix: Path) -> list[dict[str, Any]]:
    """Python distributions that no conda package owns, listed as conda lists them (pypi)."""
    owned = {f for rec in installed_records(prefix) for f in map(str, rec.files)}
    entries = []
    for meta in sorted(prefix.glob("lib/python*/site-packages/*.dist-info/METADATA")):
        if str(meta.relative_to(prefix)) in owned:
            continue
        fields = dict(line.split(": ", 1) for line in meta.read_text().splitlines() if ": " in line)
        name = fields.get("Name", "").lower()
        entries.append(
            {
                "base_url": _pypi_base_url(),
                "build_number": 0,
                "build_string": "pypi_0",
                "channel": "pypi",
                "dist_name": f"{name}-{fields.get('Version')}-pypi_0",
                "name": name,
                "platform": "pypi",
                "version": fields.get("Version"),
            }
        )
    return entries


def _print_json(data: object) -> None:
    print(json.dumps(data, indent=2, sort_keys=True))


def _read_state(prefix: Path) -> dict[str, Any]:
    state = prefix / "conda-meta" / "state"
    return json.loads(state.read_text()) if state.is_file() else {}


def _write_state(prefix: Path, state: dict[str, Any]) -> None:
    (prefix / "conda-meta" / "state").write_text(json.dumps(state, indent=4) + "\n")


# --- commands -----------------------------------------------------------------------------


def info_json() -> dict[str, Any]:
    vpkgs = [
        [vp.name.normalized, str(vp.version), str(vp.build_string)] for vp in virtual_packages()
    ]
    pkgs = [p for p in os.environ.get("CONDA_PKGS_DIRS", "").split(",") if p]
    return {
        "active_prefix": os.environ.get("CONDA_PREFIX"),
        "channels": [c for c in os.environ.get("CONDA_CHANNELS", "").split(",") if c],
        "conda_version": conda_version(),
        "default_prefix": str(root_prefix()),
        "envs": [str(p) for p in list_envs()],
        "envs_details": {str(p): env_details(p) for p in list_envs()},
        "envs_dirs": [str(envs_dir())],
        "pkgs_dirs": pkgs or [str(pkgs_dir())],
        "platform": subdir(),
        "python_version": ".".join(map(str, sys.version_info[:3])),
        "root_prefix": str(root_prefix()),
        "virtual_pkgs": vpkgs,
    }


def print_env_list(as_json: bool) -> None:
    envs = list_envs()
    if as_json:
        details = {str(p): env_details(p) for p in envs}
        print(json.dumps({"envs": [str(p) for p in envs], "envs_details": details}, indent=2))
        return
    lines = ["", "# conda environments:", "#", "# * -> active", "# + -> frozen"]
    for prefix in envs:
        details = env_details(prefix)
        active = "*" if details["active"] else " "
        frozen = "+" if details["frozen"] else " "
        lines.append(f"{details['name']:20} {active} {frozen} {prefix}")
    print("\n".join(lines) + "\n")


def cmd_info(args: argparse.Namespace) -> None:
    if args.envs and not args.json:
        print_env_list(as_json=False)
    elif args.json:
        _print_json(info_json())
    else:
        for key, value in info_json().items():
            print(f"{key:>20} : {value}")


def cmd_create(args: argparse.Namespace) -> None:
    prefix = target_prefix(args)
    validate_new_prefix(prefix, args)
    explicit = [f for f in args.file if is_explicit(Path(f))]
    if explicit and (args.specs or len(explicit) < len(args.file)):
        raise NotImplementedInStandin("an explicit --file cannot be mixed with specs")
    if args.dry_run and is_environment(prefix):
        raise StandinError(
            "CondaValueError", "Cannot `create --dry-run` with an existing conda environment"
        )
    if not args.dry_run:
        _replace_existing(prefix, args.yes)
    if explicit:
        records = [r for f in explicit for r in explicit_records(Path(f))]
    else:
        records = solve(channels_from(args), [*_file_specs(args.file), *args.specs])
    if args.dry_run:
        actions = {
            "FETCH": [_record_dict(r) for r in records],
            "LINK": [_link_entry(r) for r in records],
            "PREFIX": str(prefix),
        }
        _print_json({"actions": actions, "dry_run": True, "prefix": str(prefix), "success": True})
        return
    install(records, prefix, "create")
    _report_done(args, prefix)


def _report_done(args: argparse.Namespace, prefix: Path) -> None:
    if getattr(args, "json", False):
        _print_json({"prefix": str(prefix), "success": True})
    else:
        print(f"done: {prefix}")


def cmd_install(args: argparse.Namespace) -> None:
    prefix = target_prefix(args)
    _require_env(prefix)
    if args.specs or not args.file or not all(is_explicit(Path(f)) for f in args.file):
        raise NotImplementedInStandin("install supports only --file <explicit lock>")
    new = [r for f in args.file for r in explicit_records(Path(f))]
    # conda install --file adds and replaces, it never removes.
    existing = installed_records(prefix)
    by_name: dict[str, rattler.RepoDataRecord] = {r.name.normalized: r for r in existing}
    by_name.update({r.name.normalized: r for r in new})
    install(list(by_name.values()), prefix, "install")
    _report_done(args, prefix)


def _nodefaults_error() -> StandinError:
    """What conda 26.7 answers when `nodefaults` reaches the solver as a channel name."""
    url = f"{rattler.Channel('nodefaults').base_url}{subdir()}/current_repodata.json"
    return StandinError("CondaHTTPError", f"HTTP 000 CONNECTION FAILED for url <{url}>", url=url)


def cmd_env_create(args: argparse.Namespace) -> None:
    if len(args.file) != 1:
        raise NotImplementedInStandin("env create supports exactly one -f FILE")
    spec = yaml.safe_load(Path(args.file[0]).read_text()) or {}
    for key in set(spec) - {"name", "channels", "dependencies", "variables", "prefix"}:
        print(f"EnvironmentSectionNotValid: ignoring unknown key {key!r}", file=sys.stderr)
    deps = spec.get("dependencies") or []
    if any(not isinstance(d, str) for d in deps):
        raise NotImplementedInStandin("pip: sections of environment.yml are not implemented")
    args.name = args.name or (None if args.prefix else spec.get("name"))
    prefix = target_prefix(args)
    channels = [*(args.channel or []), *(spec.get("channels") or [])]
    if _at_least(ENV_CREATE_IS_CREATE):
        # 26.7: `conda create` with yes=True, so the env goes first, then the solve, which
        # takes `nodefaults` for a channel.
        validate_new_prefix(prefix, args)
        _replace_existing(prefix, yes=True)
        if "nodefaults" in channels:
            raise _nodefaults_error()
        records = solve(channels_from(args, spec.get("channels") or []), deps)
    else:
        # Before 26.7 env create solved first and then replaced the env without asking.
        records = solve(channels_from(args, spec.get("channels") or []), deps)
        _replace_existing(prefix, yes=True)
        if prefix.exists():
            shutil.rmtree(prefix)
    install(records, prefix, "env-create")
    if spec.get("variables"):
        _write_state(prefix, {"env_vars": {k: str(v) for k, v in spec["variables"].items()}})
    _report_done(args, prefix)


def cmd_list(args: argparse.Namespace) -> None:
    prefix = target_prefix(args)
    _require_env(prefix)
    records = sorted(installed_records(prefix), key=lambda r: r.name.normalized)
    if args.explicit:
        print(f"# platform: {subdir()}\n@EXPLICIT")
        for r in records:
            print(f"{r.url}#{r.md5.hex()}" if args.md5 and r.md5 else r.url)
        return
    entries = [_link_entry(r) for r in records]
    if not args.no_pip:
        entries = sorted(entries + pip_entries(prefix), key=lambda e: e["name"])
    if args.json:
        _print_json(entries)
        return
    print(f"# packages in environment at {prefix}:\n#")
    for e in entries:
        print(f"{e['name']:<26}{e['version']:<26}{e['build_string']:>16}  {e['channel']}")


def cmd_remove(args: argparse.Namespace) -> None:
    if not getattr(args, "all", True) or getattr(args, "specs", None):
        raise NotImplementedInStandin("remove supports only --all (whole environment)")
    prefix = target_prefix(args)
    _require_env(prefix)
    if prefix == root_prefix():
        raise StandinError("CondaEnvironmentError", "cannot remove the base environment")
    shutil.rmtree(prefix)
    print(f"Removed {prefix}")


def cmd_clean(args: argparse.Namespace) -> None:
    """`clean --all --yes`: the package cache goes (images drop it after an install)."""
    if not (args.all and args.yes):
        raise NotImplementedInStandin("clean supports only --all --yes")
    shutil.rmtree(pkgs_dir(), ignore_errors=True)


def cmd_run(args: argparse.Namespace) -> int:
    prefix = target_prefix(args)
    _require_env(prefix)
    if not args.cmd:
        raise NotImplementedInStandin("run needs a command")
    env = dict(os.environ)
    env.update(_read_state(prefix).get("env_vars", {}))
    env["PATH"] = os.pathsep.join([str(prefix / "bin"), env.get("PATH", "")])
    env["CONDA_PREFIX"] = str(prefix)
    # conda names a -p env by its path here.
    env["CONDA_DEFAULT_ENV"] = args.name if args.name and not args.prefix else str(prefix)
    env["CONDA_SHLVL"] = "1"
    exe = shutil.which(args.cmd[0], path=env["PATH"])
    if exe is None:
        print(f"conda run: command not found: {args.cmd[0]}", file=sys.stderr)
        return 127
    return subprocess.run([exe, *args.cmd[1:]], env=env, cwd=args.cwd).returncode


def cmd_env_vars(args: argparse.Namespace) -> None:
    prefix = target_prefix(args)
    _require_env(prefix)
    state = _read_state(prefix)
    env_vars: dict[str, str] = state.setdefault("env_vars", {})
    if args.vars_command == "list":
        if args.json:
            _print_json(env_vars)
        for key, value in env_vars.items():
            if not args.json:
                print(f"{key} = {value}")
        return
    for item in args.items:
        if args.vars_command == "set":
            key, sep, value = item.partition("=")
            if not sep:
                raise StandinError("CondaValueError", f"expected KEY=VALUE, got {item!r}")
            env_vars[key] = value
        else:
            env_vars.pop(item, None)
    _write_state(prefix, state)
    print("To make your changes take effect please reactivate your environment")


# --- parser -------------------------------------------------------------------------------


def _target(p: argparse.ArgumentParser) -> None:
    group = p.add_mutually_exclusive_group()
    group.add_argument("-n", "--name")
    group.add_argument("-p", "--prefix")


def _common(p: argparse.ArgumentParser, *, yes: bool = True, json_flag: bool = True) -> None:
    _target(p)
    if yes:
        p.add_argument("-y", "--yes", action="store_true")
    if json_flag:
        p.add_argument("--json", action="store_true")
    p.add_argument("-q", "--quiet", action="store_true")


def _solve_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("-c", "--channel", action="append")
    p.add_argument("--override-channels", action="store_true")
    p.add_argument("--file", action="append", default=[])
    p.add_argument("--dry-run", action="store_true")
    p.add_argument("specs", nargs="*")


def build_parser(prog: str) -> argparse.ArgumentParser:
    parser = _Parser(prog=prog, description="Test double of the conda CLI (py-rattler).")
    parser.add_argument("--version", action="store_true")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)

    info = sub.add_parser("info")
    info.add_argument("--json", action="store_true")
    info.add_argument("-e", "--envs", action="store_true")
    for name in ("create", "install"):
        p = sub.add_parser(name)
        _common(p)
        _solve_flags(p)
    lst = sub.add_parser("list")
    _common(lst, yes=False)
    lst.add_argument("--no-pip", action="store_true")
    lst.add_argument("--explicit", action="store_true")
    lst.add_argument("--md5", action="store_true")
    rm = sub.add_parser("remove", aliases=["uninstall"])
    _common(rm)
    rm.add_argument("--all", action="store_true")
    rm.add_argument("specs", nargs="*")
    clean = sub.add_parser("clean")
    clean.add_argument("-a", "--all", action="store_true")
    clean.add_argument("-y", "--yes", action="store_true")
    run = sub.add_parser("run")
    _target(run)
    run.add_argument("--no-capture-output", "--live-stream", action="store_true")
    run.add_argument("--cwd")
    run.add_argument("cmd", nargs=argparse.REMAINDER)

    env = sub.add_parser("env").add_subparsers(dest="env_command", parser_class=_Parser)
    env.add_parser("list").add_argument("--json", action="store_true")
    env_create = env.add_parser("create")
    _common(env_create)
    env_create.add_argument("-f", "--file", nargs="*", default=["environment.yml"])
    env_create.add_argument("-c", "--channel", action="append")
    _common(env.add_parser("remove"))
    config = env.add_parser("config").add_subparsers(dest="config_command", parser_class=_Parser)
    vars_ = config.add_parser("vars").add_subparsers(dest="vars_command", parser_class=_Parser)
    for name in ("set", "unset", "list"):
        p = vars_.add_parser(name)
        _common(p, yes=False)
        if name != "list":
            p.add_argument("items", nargs="+")
    return parser


def dispatch(args: argparse.Namespace, prog: str) -> int:
    if args.version:
        mamba = os.environ.get("LOCKSTEP_STANDIN_MAMBA_VERSION", MAMBA_VERSION)
        # mamba 2 prints the bare version, like micromamba.
        faults.before_command(root_prefix(), "version")
        print(mamba if prog == "mamba" else f"conda {conda_version()}")
        return 0
    command = args.command
    if command == "env":
        command = f"env {args.env_command or ''}".strip()
        if command == "env config":
            command = f"env config {args.config_command or ''}".strip()
    handlers = {
        "info": cmd_info,
        "create": cmd_create,
        "install": cmd_install,
        "list": cmd_list,
        "remove": cmd_remove,
        "uninstall": cmd_remove,
        "clean": cmd_clean,
        "env create": cmd_env_create,
        "env remove": cmd_remove,
        "env config vars": cmd_env_vars,
        "env list": lambda a: print_env_list(a.json),
    }
    if command not in handlers and command != "run":
        raise NotImplementedInStandin(f"command not implemented: {command or '(none)'}")
    faults.before_command(root_prefix(), command.replace(" ", "-"))
    if command == "run":
        return cmd_run(args)
    handlers[command](args)
    return 0


def main(argv: Sequence[str] | None = None, prog: str = "conda") -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    as_json = "--json" in argv
    try:
        return dispatch(build_parser(prog).parse_args(argv), prog)
    except NotImplementedInStandin as exc:
        print(f"{prog} (test stand-in): not implemented: {exc}", file=sys.stderr)
        return 2
    except faults.InjectedFailure as exc:
        return _report_error(StandinError("CondaError", str(exc)), as_json)
    except StandinError as exc:
        return _report_error(exc, as_json)


def _report_error(exc: StandinError, as_json: bool) -> int:
    """conda's error report: JSON on stdout under --json (no `success` key), text on stderr."""
    if as_json:
        error = {
            "caused_by": "None",
            "error": f"{exc.exception_name}: {exc}",
            "exception_name": exc.exception_name,
            "exception_type": f"<class 'conda.exceptions.{exc.exception_name}'>",
            "message": str(exc),
            **exc.extra,
        }
        print(json.dumps(error, indent=2))
    print(f"\n{exc.exception_name}: {exc}\n", file=sys.stderr)
    return 1


def exit_now(code: int) -> NoReturn:
    """Exit without interpreter finalization.

    rattler's native worker threads can still be winding down at exit; finalizing Python under
    them segfaults now and then (seen under load), after the work is done. Skipping
    finalization is safe here: output is flushed and every file is already closed.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def write_executables(bin_dir: Path, names: Sequence[str] = ("conda", "mamba")) -> list[Path]:
    """Write `conda`/`mamba` wrapper scripts into bin_dir (put it first on PATH)."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    here = Path(__file__).resolve().parent
    written = []
    for name in names:
        script = bin_dir / name
        script.write_text(
            f"#!{sys.executable}\n"
            f'"""{name}: test stand-in of the CLI (see conda_standin.py), not the real one."""\n'
            "import sys\n"
            f"sys.path.insert(0, {str(here.parent)!r})\n"
            f"from {here.name}.conda_standin import exit_now, main\n"
            f"exit_now(main(prog={name!r}))\n"
        )
        script.chmod(0o755)
        written.append(script)
    return written
