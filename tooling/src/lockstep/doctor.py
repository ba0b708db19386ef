"""`invoke doctor`: an installed env against both locks, read from the env's own files.

conda-meta/*.json says what conda installed (name, version, build, md5, files, and in
``paths_data`` the sha256 and size of each file); each site-packages/*.dist-info says which Python
distributions are there, and its INSTALLER (with conda's file lists) says who put it there. The
only process started is the env's python, once, to ask whether the user site is enabled under the
env's own variables.
"""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lockstep.core.condameta import (
    CondaRecord,
    InstalledFile,
    provided_distributions,
    read_conda_meta,
)
from lockstep.core.envvars import state_path
from lockstep.core.errors import LockstepError
from lockstep.core.explicit import ExplicitLock
from lockstep.core.fsutil import describe_os_error, file_digest
from lockstep.core.installer import env_python
from lockstep.core.names import normalize
from lockstep.core.plan import PlanError, default_groups, lock_environment, plan_for
from lockstep.findings import Finding, error, warning

_SHARED_LIB = re.compile(r"(?:^|/)(lib[A-Za-z0-9_+-]+?)\.so(?:\.[0-9.]+)?$")
_USER_SITE_CODE = "import site; print(site.ENABLE_USER_SITE)"

Runner = Callable[[list[str], Mapping[str, str]], str]
# conda doctor leaves these out too: python rewrites its bytecode whenever it likes.
_VOLATILE_SUFFIXES = (".pyc", ".pyo")


@dataclass(frozen=True)
class FileCheck:
    """What the installed-file check did, for the JSON inventory."""

    files: int = 0
    hashed: int = 0
    bytes_hashed: int = 0
    seconds: float = 0.0


@dataclass(frozen=True)
class Distribution:
    """One installed Python distribution (a *.dist-info folder)."""

    name: str  # normalised
    version: str
    path: str  # relative to the prefix
    installer: str  # "conda" when a conda-meta record owns it, else INSTALLER's first line


@dataclass
class DoctorReport:
    """Findings plus the inventory behind them."""

    findings: list[Finding] = field(default_factory=list)
    distributions: list[Distribution] = field(default_factory=list)
    file_check: FileCheck | None = None


# --------------------------------------------------------------------------- reading the env


def _metadata_field(text: str, key: str) -> str:
    prefix = f"{key}:"
    for line in text.splitlines():
        if not line.strip():
            break  # headers end at the first blank line
        if line.startswith(prefix):
            return line[len(prefix) :].strip()
    return ""


def _rewritten(dist_info: Path, relative: str, shipped: Mapping[str, str]) -> bool:
    """True when a file conda shipped in this dist-info has other bytes now.

    pip rewrites RECORD and INSTALLER when it installs over a conda package into the same folder
    (`pip install --force-reinstall torch==<conda's version>`), so ownership by path alone would
    call that copy conda's.
    """
    for name in ("RECORD", "INSTALLER", "METADATA"):
        digest = shipped.get(f"{relative}/{name}")
        if digest is None:
            continue
        path = dist_info / name
        if not path.is_file() or file_digest(path) != digest:
            return True
    return False


def read_distributions(
    prefix: Path, conda_owned: Mapping[str, str], shipped: Mapping[str, str] | None = None
) -> list[Distribution]:
    """Every *.dist-info under the env's site-packages, with who installed it.

    ``shipped`` maps prefix-relative paths to the sha256 conda recorded for them.
    """
    prefix = Path(prefix)
    found = []
    for dist_info in sorted(prefix.glob("lib/python*/site-packages/*.dist-info")):
        relative = dist_info.relative_to(prefix).as_posix()
        metadata = dist_info / "METADATA"
        text = metadata.read_text(encoding="utf-8", errors="replace") if metadata.is_file() else ""
        name = _metadata_field(text, "Name") or dist_info.name.rsplit("-", 1)[0]
        version = _metadata_field(text, "Version") or dist_info.stem.rsplit("-", 1)[-1]
        installer_file = dist_info / "INSTALLER"
        installer = (
            installer_file.read_text(encoding="utf-8").strip().splitlines()[0:1]
            if installer_file.is_file()
            else []
        )
        by_conda = relative in conda_owned and not _rewritten(dist_info, relative, shipped or {})
        who = "conda" if by_conda else (installer[0] if installer else "unknown")
        found.append(Distribution(normalize(name), version, relative, who))
    return found


def state_env_vars(prefix: Path) -> dict[str, str]:
    """The variables conda applies on activate and `conda run` (conda-meta/state)."""
    path = state_path(Path(prefix))
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in (data.get("env_vars") or {}).items()}


def user_site_command(prefix: Path) -> list[str]:
    """The env's python, asked whether it would import from the user site."""
    return [str(env_python(Path(prefix))), "-c", _USER_SITE_CODE]


def user_site_environ(prefix: Path, base: Mapping[str, str]) -> dict[str, str]:
    """A user's environment inside the env: the caller's PYTHONNOUSERSITE must not hide the
    env's own setting (the tasks and the Makefile export it), so only the env's state counts."""
    environ = {k: v for k, v in base.items() if k != "PYTHONNOUSERSITE"}
    environ.update(state_env_vars(prefix))
    return environ


def run_python(command: list[str], environ: Mapping[str, str]) -> str:
    """The one subprocess of doctor."""
    result = subprocess.run(command, env=dict(environ), capture_output=True, text=True, check=False)
    return result.stdout.strip() if result.returncode == 0 else f"error: {result.stderr.strip()}"


# --------------------------------------------------------------------------- findings


def conda_findings(lock: ExplicitLock, records: Mapping[str, CondaRecord]) -> list[Finding]:
    """Missing, extra and different conda packages (by md5 where the lock has one)."""
    fix = "rebuild the env from the locks: `invoke reproduce` (or `make reproduce`)"
    lock_file = Path(lock.path).name
    expected = lock.by_name()
    found = []
    for name in sorted(set(expected) | set(records)):
        entry, record = expected.get(name), records.get(name)
        if record is None:
            assert entry is not None
            found.append(
                error(
                    "conda-missing",
                    lock_file,
                    f"{name} {entry.version} {entry.build} is locked but not installed",
                    fix,
                )
            )
        elif entry is None:
            found.append(
                error(
                    "conda-extra",
                    lock_file,
                    f"{name} {record.version} {record.build} is installed but not locked",
                    fix,
                )
            )
        elif _differs(entry.md5, entry.version, entry.build, record):
            found.append(
                error(
                    "conda-different",
                    lock_file,
                    f"{name}: installed {record.version} {record.build} (md5 {record.md5 or '?'}), "
                    f"locked {entry.version} {entry.build} (md5 {entry.md5 or '?'})",
                    fix,
                )
            )
    return found


def _differs(md5: str, version: str, build: str, record: CondaRecord) -> bool:
    if len(md5) == 32 and record.md5:
        return md5 != record.md5
    return (version, build) != (record.version, record.build)


def pypi_findings(
    poetry_lock_file: str,
    poetry_lock: Mapping[str, Any],
    pyproject: Mapping[str, Any],
    pin_group: str,
    provided: Mapping[str, str],
    distributions: list[Distribution],
    environment: Mapping[str, str] | None = None,
) -> list[Finding]:
    """The non-conda distributions against exactly what `lockstep.core.installer install`
    installs."""
    groups = default_groups(pyproject, pin_group)
    try:
        environment = environment or lock_environment(None, None)
        plan = plan_for(pyproject, poetry_lock, groups, provided, environment)
    except PlanError as exc:
        return [error("poetry-plan", poetry_lock_file, str(exc), "run `poetry lock`")]
    expected = {normalize(p.name): p.version for p in plan.install}
    project = normalize(str(pyproject.get("project", {}).get("name", "")))
    installed = {d.name: d.version for d in distributions if d.installer != "conda"}
    fix = "reinstall Poetry's side: `invoke reproduce` (never `pip install` into the env by hand)"
    found = []
    for name in sorted(set(expected) | set(installed)):
        want, have = expected.get(name), installed.get(name)
        if name == project or want == have or (want is None and name in provided):
            continue  # a pip copy of a conda distribution is reported as conda-overwritten
        if have is None:
            what = f"{name} {want} is in poetry.lock's install set but not installed"
        elif want is None:
            what = f"{name} {have} is installed by pip but not in poetry.lock's install set"
        else:
            what = f"{name}: installed {have}, poetry.lock has {want}"
        code = (
            "pypi-missing" if have is None else "pypi-extra" if want is None else "pypi-different"
        )
        found.append(error(code, poetry_lock_file, what, fix))
    return found


def duplicate_findings(distributions: list[Distribution]) -> list[Finding]:
    """A distribution with two dist-info folders: which one imports is an accident."""
    by_name: dict[str, list[Distribution]] = {}
    for dist in distributions:
        by_name.setdefault(dist.name, []).append(dist)
    found = []
    for name, dists in sorted(by_name.items()):
        if len(dists) > 1:
            shown = ", ".join(f"{d.version} by {d.installer} ({Path(d.path).name})" for d in dists)
            found.append(
                error(
                    "installed-twice",
                    "env",
                    f"{name} is installed {len(dists)} times: {shown}",
                    "rebuild the env with `invoke reproduce`",
                )
            )
    return found


def overwritten_findings(
    records: Mapping[str, CondaRecord], distributions: list[Distribution], prefix: Path
) -> list[Finding]:
    """conda's Python distributions replaced or removed by pip."""
    by_name: dict[str, list[Distribution]] = {}
    for dist in distributions:
        by_name.setdefault(dist.name, []).append(dist)
    found = []
    for record in records.values():
        for dist_dir in record.dist_dirs:
            dist_name = normalize(Path(dist_dir).name[: -len(".dist-info")].rsplit("-", 1)[0])
            others = [d for d in by_name.get(dist_name, []) if d.installer != "conda"]
            if not others and (Path(prefix) / dist_dir).is_dir():
                continue
            by = ", ".join(f"{d.installer} installed {d.version}" for d in others) or "it is gone"
            found.append(
                error(
                    "conda-overwritten",
                    "env",
                    f"conda's {record.name} {record.version} ({dist_name}) was overwritten: {by}",
                    "rebuild the env with `invoke reproduce`; if Poetry's side needs another "
                    f"{dist_name}, change it in environment.yml and run `invoke lock`",
                )
            )
    return found


def cuda_findings(records: Mapping[str, CondaRecord], prefix: Path) -> list[Finding]:
    """The same CUDA library from conda and from an nvidia-* wheel."""
    conda_libs: dict[str, str] = {}
    for record in records.values():
        for path in record.files:
            match = _SHARED_LIB.search(path)
            if match and path.startswith("lib/") and path.count("/") == 1:
                conda_libs.setdefault(match.group(1), record.name)
    found = []
    seen: set[str] = set()
    for wheel_lib in sorted(Path(prefix).glob("lib/python*/site-packages/nvidia/*/lib/lib*.so*")):
        match = _SHARED_LIB.search(wheel_lib.name)
        if not match or match.group(1) not in conda_libs or match.group(1) in seen:
            continue
        lib = match.group(1)
        seen.add(lib)
        found.append(
            error(
                "duplicate-cuda-lib",
                "env",
                f"{lib} is installed twice: by conda's {conda_libs[lib]} and by the wheel in "
                f"{wheel_lib.parent.parent.relative_to(prefix).as_posix()}",
                "remove what pulled the nvidia-* wheels (a PyPI torch): `invoke check` names it; "
                "then `invoke reproduce`",
            )
        )
    return found


def user_site_findings(prefix: Path, runner: Runner, base: Mapping[str, str]) -> list[Finding]:
    """The env's python must not import from ~/.local."""
    python = env_python(Path(prefix))
    if not python.exists():
        return [error("no-python", "env", f"{python} does not exist", "run `invoke reproduce`")]
    answer = runner(user_site_command(prefix), user_site_environ(prefix, base))
    if answer == "False":
        return []
    if answer == "True":
        return [
            error(
                "user-site-enabled",
                "env",
                "the env's python imports from the user site (~/.local): PYTHONNOUSERSITE is not "
                "set in the env's variables",
                f"`python -m lockstep.core.envvars --prefix {prefix} PYTHONNOUSERSITE=1` "
                "(PYTHONPATH=tooling/src), or "
                "`conda env config vars set PYTHONNOUSERSITE=1 -p PREFIX`",
            )
        ]
    return [
        warning(
            "user-site-unknown",
            "env",
            f"could not ask the env's python: {answer}",
            "check that the env's python runs",
        )
    ]


def _file_state(prefix: Path, expected: InstalledFile, stats: dict[str, int]) -> str:
    """The state of one installed file: "ok", "missing" or "altered"."""
    path = prefix / expected.path
    try:
        info = path.lstat()
    except FileNotFoundError:
        return "missing"
    if expected.path_type == "directory":
        return "ok" if stat.S_ISDIR(info.st_mode) else "altered"
    if expected.path_type != "hardlink":
        return "ok"  # a link's recorded digest is of its target path, not of the file it names
    if not stat.S_ISREG(info.st_mode) or expected.differs_from_archive:
        return "altered"
    if not expected.sha256:
        return "ok"
    if expected.size is not None and info.st_size != expected.size:
        return "altered"  # no need to read it
    stats["hashed"] += 1
    stats["bytes_hashed"] += info.st_size
    try:
        return "ok" if file_digest(path) == expected.sha256 else "altered"
    except FileNotFoundError:
        return "missing"  # removed since the lstat above
    except OSError as exc:
        raise LockstepError(
            describe_os_error(exc, path, action="read") + " (or skip this: --no-file-check)"
        ) from None


def installed_file_findings(
    records: Mapping[str, CondaRecord], prefix: Path
) -> tuple[list[Finding], FileCheck]:
    """Files of conda packages that were changed or removed after (or before) the install.

    As `conda doctor` does (its altered-files and missing-files health checks), against
    paths_data's digests; unlike it, a file whose size differs is not read, and a link's digest
    is not compared with the bytes of the file it points to.
    """
    started = time.perf_counter()
    prefix = Path(prefix)
    stats = {"files": 0, "hashed": 0, "bytes_hashed": 0}
    found = []
    for record in sorted(records.values(), key=lambda r: r.name):
        expected = record.paths or tuple(InstalledFile(f, "") for f in record.files)
        states: dict[str, list[str]] = {"missing": [], "altered": []}
        for entry in expected:
            if entry.path.endswith(_VOLATILE_SUFFIXES):
                continue
            stats["files"] += 1
            state = _file_state(prefix, entry, stats)
            if state != "ok":
                states[state].append(entry.path)
        for state, paths in states.items():
            if paths:
                found.append(_file_finding(record, state, paths))
    seconds = round(time.perf_counter() - started, 3)
    return found, FileCheck(seconds=seconds, **stats)


def _file_finding(record: CondaRecord, state: str, paths: list[str]) -> Finding:
    shown = ", ".join(paths[:3]) + (f" and {len(paths) - 3} more" if len(paths) > 3 else "")
    count = f"{len(paths)} file{'s' if len(paths) > 1 else ''}"
    what = "changed since the install" if state == "altered" else "gone"
    return error(
        f"conda-file-{state}",
        "env",
        f"{record.name} {record.version} {record.build}: {count} {what}: {shown}",
        "rebuild the env from the locks: `invoke reproduce`; if the files come back "
        f"{state}, the archive of {record.name} in the package cache or file:// channel is not "
        "the one the lock names: delete it there and run `invoke reproduce` again",
    )


def examine(
    prefix: Path,
    lock: ExplicitLock,
    poetry_lock_file: str,
    poetry_lock: Mapping[str, Any] | None,
    pyproject: Mapping[str, Any],
    pin_group: str = "conda",
    runner: Runner | None = None,
    environ: Mapping[str, str] | None = None,
    check_files: bool = True,
) -> DoctorReport:
    """Every finding about the env at ``prefix``; ``check_files`` hashes conda's files."""
    prefix = Path(prefix)
    records = read_conda_meta(prefix)
    owned = {d: r.name for r in records.values() for d in r.dist_dirs}
    shipped = {path: digest for r in records.values() for path, digest in r.sha256.items()}
    distributions = read_distributions(prefix, owned, shipped)
    found = conda_findings(lock, records)
    if poetry_lock is None:
        found.append(
            warning(
                "poetry-lock-missing",
                poetry_lock_file,
                "no poetry.lock to compare",
                "run `poetry lock`",
            )
        )
    else:
        provided = provided_distributions(records.values())
        python = records.get("python")
        try:
            environment = lock_environment(lock.platform, python.version if python else None)
        except PlanError as exc:
            found.append(error("poetry-plan", poetry_lock_file, str(exc), "run `poetry lock`"))
        else:
            found += pypi_findings(
                poetry_lock_file,
                poetry_lock,
                pyproject,
                pin_group,
                provided,
                distributions,
                environment,
            )
    found += duplicate_findings(distributions)
    found += overwritten_findings(records, distributions, prefix)
    found += cuda_findings(records, prefix)
    file_check = None
    if check_files:
        altered, file_check = installed_file_findings(records, prefix)
        found += altered
    found += user_site_findings(
        prefix, runner or run_python, os.environ if environ is None else environ
    )
    return DoctorReport(found, distributions, file_check)
