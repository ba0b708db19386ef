"""Install Poetry's side of the env from poetry.lock without Poetry's installer.

Poetry resolves and locks; this module installs exactly the locked set with ``pip --no-deps
--require-hashes`` into the conda env, minus every distribution conda already installed there and
minus the wheels that only those need (the nvidia-* and triton wheels of PyPI's torch). That is
how no wheel replaces or duplicates what conda provides (poetry issue 6408: Poetry's installer
would reinstall conda's torch and add its CUDA wheels).

The plan means what Poetry means on one target (a conda platform and a Python version): the
lock's graph is walked from the project's requirements with every marker evaluated there
(lockstep.core.markers), so a package needed only elsewhere (pywin32 on win32) gets no line, and
of a name locked at several versions the one its edges allow is taken.
tests/unit/test_plan_realworld.py holds it equal to `poetry export` and `poetry install
--dry-run` on real locks.

Standard library only: it runs inside a freshly created env, as
``python -m lockstep.core.pypi install --prefix ENV`` with ``src`` on PYTHONPATH, and before the env
exists as ``python -m lockstep.core.pypi plan --python-version 3.11.10`` (the engine calls
``plan_for`` in-process).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lockstep.core.condameta import (
    CondaRecord,
    provided_distributions,
    python_version,
    read_conda_meta,
)
from lockstep.core.errors import LockstepError
from lockstep.core.fsutil import read_text
from lockstep.core.markers import (
    MarkerError,
    Version,
    evaluate,
    target_environment,
    version_matches,
)
from lockstep.core.names import normalize, requirement_name
from lockstep.core.settings import read_toml


class PlanError(LockstepError):
    """poetry.lock or pyproject.toml cannot be turned into an install plan."""


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


@dataclass
class Plan:
    """What to install, and why the rest is left out."""

    install: list[LockedPackage] = field(default_factory=list)
    provided_by_conda: list[str] = field(default_factory=list)
    only_needed_by_conda: list[str] = field(default_factory=list)
    other_groups: list[str] = field(default_factory=list)


# The hash lists of poetry.lock: most of its bytes, and needed only to install.
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


def _edges(value: object) -> list[dict[str, Any]]:
    """The tables of one dependency edge (a constraint string, a table or a list of tables)."""
    if isinstance(value, str):
        return [{"version": value}]
    if isinstance(value, Mapping):
        return [dict(value)]
    if isinstance(value, (list, tuple)):
        return [table for item in value for table in _edges(item)]
    return []


def _markers(raw: object, groups: Sequence[str]) -> str | None:
    """The environment marker under which the selected ``groups`` need a package (lock 2.1)."""
    if isinstance(raw, str):
        return raw
    if not isinstance(raw, dict) or any(g not in raw for g in groups):
        return None  # no marker, or some selected group needs it unconditionally
    return " or ".join(f"({raw[g]})" for g in groups) or None


def _lock_version(data: Mapping[str, Any]) -> tuple[int, ...]:
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
            dependencies={k: tuple(_edges(v)) for k, v in raw.get("dependencies", {}).items()},
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


@dataclass(frozen=True)
class _Edge:
    """A requirement on the walk: who needs ``name``, with which extras, constraint, marker."""

    name: str
    extras: frozenset[str] = frozenset()
    constraint: str = "*"
    marker: str = ""
    python: str = "*"
    platform: str = ""


def _pep508(requirement: str) -> _Edge:
    """A [project] dependency string: name, extras, constraint and marker."""
    spec, _, marker = requirement.partition(";")
    name = requirement_name(spec)
    rest = spec.strip()[len(name) :]
    extras = re.match(r"\s*\[([^\]]*)\]", rest)
    if extras:
        rest = rest[extras.end() :]
    constraint = "*" if "@" in rest else rest.strip().strip("()") or "*"
    names = [e.strip() for e in extras.group(1).split(",") if e.strip()] if extras else []
    return _Edge(normalize(name), frozenset(names), constraint, marker.strip())


def _table_edges(name: str, value: object) -> list[tuple[_Edge, bool]]:
    """A [tool.poetry] or poetry.lock dependency as edges, each with whether it is optional."""
    return [
        (
            _Edge(
                normalize(name),
                frozenset(table.get("extras", [])),
                str(table.get("version", "*")),
                str(table.get("markers", "")),
                str(table.get("python", "*")),
                str(table.get("platform", "")),
            ),
            bool(table.get("optional")),
        )
        for table in _edges(value)
    ]


def _root_edges(
    pyproject: Mapping[str, Any], groups: Iterable[str], extras: Iterable[str] = ()
) -> list[_Edge]:
    """The project's own requirements in the selected groups, with the project's extras."""
    project = pyproject.get("project", {})
    poetry = pyproject.get("tool", {}).get("poetry", {})
    selected, wanted = set(groups), {normalize(e) for e in extras}
    edges: list[_Edge] = []
    if "main" in selected:
        edges += [_pep508(r) for r in project.get("dependencies", [])]
        for extra, requirements in project.get("optional-dependencies", {}).items():
            if normalize(extra) in wanted:
                edges += [_pep508(r) for r in requirements]
        # [tool.poetry.extras] names optional main dependencies (Poetry 1's way to declare extras)
        in_extras = {
            normalize(requirement_name(r))
            for extra, names in poetry.get("extras", {}).items()
            if normalize(extra) in wanted
            for r in names
        }
        for name, value in poetry.get("dependencies", {}).items():
            if normalize(name) == "python":
                continue
            edges += [
                edge for edge, optional in _table_edges(name, value)
                if not optional or edge.name in in_extras
            ]  # fmt: skip
    tables = {
        group: table.get("dependencies", {}) for group, table in poetry.get("group", {}).items()
    }
    if "dev-dependencies" in poetry:  # Poetry 1.0's table: the non-optional group "dev"
        tables["dev"] = {**poetry["dev-dependencies"], **tables.get("dev", {})}
    for group, dependencies in tables.items():
        if group in selected:
            for name, value in dependencies.items():
                edges += [edge for edge, _ in _table_edges(name, value)]
    return edges


def root_requirements(
    pyproject: Mapping[str, object], groups: Iterable[str]
) -> dict[str, set[str]]:
    """Direct dependencies of the selected groups: normalised name -> extras asked for."""
    roots: dict[str, set[str]] = {}
    for edge in _root_edges(pyproject, groups):
        roots.setdefault(edge.name, set()).update(edge.extras)
    return roots


class _Walk:
    """Poetry's locked graph walked for one target: edges whose markers hold, from the roots."""

    def __init__(
        self,
        versions: Mapping[str, Sequence[LockedPackage]],
        environment: Mapping[str, str],
        skip: Iterable[str],
    ) -> None:
        self.versions, self.environment, self.skip = versions, environment, set(skip)
        self.cache: dict[tuple[str, frozenset[str]], bool] = {}

    def holds(self, edge: _Edge, extras: frozenset[str] = frozenset()) -> bool:
        if edge.platform and edge.platform != self.environment.get("sys_platform"):
            return False
        if edge.python != "*" and not version_matches(
            self.environment["python_full_version"], edge.python
        ):
            return False
        return self.marker(edge.marker, extras)

    def marker(self, marker: str, extras: frozenset[str] = frozenset()) -> bool:
        key = (marker, extras)
        if key not in self.cache:
            try:
                self.cache[key] = evaluate(marker, self.environment, extras)
            except MarkerError as exc:
                raise PlanError(f"poetry.lock: {exc}") from exc
        return self.cache[key]

    def choose(self, edge: _Edge, chosen: Mapping[str, LockedPackage]) -> LockedPackage:
        """The locked version an edge means: the one already chosen if it fits, else the highest
        that fits its constraint and the target's Python."""
        candidates = self.versions.get(edge.name)
        if not candidates:
            raise PlanError(
                f"{edge.name} is a dependency but not in poetry.lock; "
                "run `poetry lock` to refresh it"
            )
        if len(candidates) == 1:
            return candidates[0]
        python = self.environment["python_full_version"]
        fitting = [
            p
            for p in candidates
            if version_matches(p.version, edge.constraint)
            and version_matches(python, p.python_versions)
        ]
        previous = chosen.get(edge.name)
        if previous is not None and previous in fitting:
            return previous
        return (fitting or list(candidates))[0]

    def run(self, roots: Iterable[_Edge], stop: Iterable[str] = ()) -> tuple[dict, set[str]]:
        """The packages reached (name -> package), and the names in ``stop`` that were needed."""
        stop_at, stopped = set(stop), set()
        chosen: dict[str, LockedPackage] = {}
        reached: dict[tuple[str, str], set[str]] = {}
        todo = [edge for edge in roots if self.holds(edge)]
        while todo:
            edge = todo.pop()
            if edge.name in self.skip:
                continue
            if edge.name in stop_at:
                stopped.add(edge.name)
                continue
            package = self.choose(edge, chosen)
            key = (edge.name, package.version)
            known = reached.get(key)
            if known is not None and edge.extras <= known:
                continue
            features = frozenset((known or set()) | edge.extras)
            reached[key] = set(features)
            chosen[edge.name] = package
            asked = {normalize(extra) for extra in features}
            activated = {
                normalize(requirement_name(requirement))
                for extra, requirements in package.extras.items()
                if normalize(extra) in asked
                for requirement in requirements
            }
            for name, value in package.dependencies.items():
                for dependency, optional in _table_edges(name, value):
                    if optional and dependency.name not in activated:
                        continue
                    if self.holds(dependency, features):
                        todo.append(dependency)
        packages = {key: self.package(*key) for key in reached}
        return packages, stopped

    def package(self, name: str, version: str) -> LockedPackage:
        return next(p for p in self.versions[name] if p.version == version)


def _as_versions(packages: Mapping[str, object]) -> dict[str, tuple[LockedPackage, ...]]:
    return {
        name: (value,) if isinstance(value, LockedPackage) else tuple(value)  # type: ignore[arg-type]
        for name, value in packages.items()
    }


def make_plan(
    packages: Mapping[str, Any],
    roots: Mapping[str, set[str]] | Sequence[_Edge],
    groups: Iterable[str],
    conda_provided: Iterable[str],
    environment: Mapping[str, str] | None = None,
    project: str = "",
    lock_markers: bool = False,
    extras: Iterable[str] = (),
) -> Plan:
    """Walk the lock's graph from the roots for the target ``environment`` (default: linux-64 and
    this Python), stopping at what conda provides.

    ``packages``: ``locked_versions`` (or one package per name); ``project``: the root project's
    name, skipped where a dependency needs it (a plugin in the dev group); ``lock_markers``: the
    lock has lock-version 2.1's per-group markers, which then also decide (as Poetry's exporter),
    ``extras`` being the project's extras that these markers may name.
    """
    versions = _as_versions(packages)
    environment = environment or default_environment()
    provided = {normalize(n) for n in conda_provided}
    selected = tuple(groups)
    edges = (
        [_Edge(name, frozenset(extras)) for name, extras in roots.items()]
        if isinstance(roots, Mapping)
        else list(roots)
    )
    walk = _Walk(versions, environment, skip={normalize(project)} if project else set())
    needed, _ = walk.run(edges)  # what Poetry installs on this target
    if lock_markers:
        needed = {
            key: package
            for key, package in needed.items()
            if set(package.groups) & set(selected)
            and walk.marker(
                _markers(package.markers, [g for g in selected if g in package.groups]) or "",
                frozenset(normalize(e) for e in extras),
            )
        }
    installed, stopped = walk.run(edges, stop=provided)
    plan = Plan()
    plan.install = [needed[key] for key in sorted(set(installed) & set(needed))]
    plan.provided_by_conda = sorted(stopped)
    needed_names = {name for name, _ in needed}
    plan.only_needed_by_conda = sorted(needed_names - {name for name, _ in installed} - provided)
    plan.other_groups = sorted(set(versions) - needed_names - provided)
    return plan


def plan_for(
    pyproject: Mapping[str, Any],
    lock_data: Mapping[str, Any],
    groups: Iterable[str],
    conda_provided: Iterable[str],
    environment: Mapping[str, str],
    extras: Iterable[str] = (),
) -> Plan:
    """The install plan of a project on a target: what ``poetry install`` would install there
    (``groups``, the project's ``extras``), minus what conda provides and what only it needs."""
    groups, extras = list(groups), list(extras)
    project = pyproject.get("project", {}).get("name") or pyproject.get("tool", {}).get(
        "poetry", {}
    ).get("name", "")
    return make_plan(
        locked_versions(lock_data),
        _root_edges(pyproject, groups, extras),
        groups,
        conda_provided,
        environment,
        project=str(project),
        lock_markers=_lock_version(lock_data) >= (2, 1),
        extras=extras,
    )


def lock_environment(platform: str | None, python_version: str | None) -> dict[str, str]:
    """The target of a conda lock or env: its platform and its python package's version
    (defaults: linux-64, the Python running this)."""
    try:
        if python_version is None:
            return default_environment(platform or "linux-64")
        return target_environment(platform or "linux-64", python_version)
    except MarkerError as exc:
        raise PlanError(str(exc)) from exc


def default_environment(platform: str = "linux-64") -> dict[str, str]:
    """The target when none is given: ``platform`` with the Python running this."""
    return target_environment(platform, ".".join(map(str, sys.version_info[:3])))


def requirement_line(package: LockedPackage, groups: Iterable[str] = ()) -> str:
    """A pip requirement pinned with every hash of the lock (its markers were evaluated by the
    plan: a package not needed on the target has no line at all)."""
    if package.source_type in {"git", "directory", "file", "url"}:
        raise PlanError(
            f"{package.name}: {package.source_type} sources are not installable with hashes; "
            "publish it to an index or add it as a path dependency outside the lock"
        )
    if not package.hashes:
        raise PlanError(f"{package.name}: poetry.lock has no hashes for it; run `poetry lock`")
    line = f"{package.name}=={package.version}"
    return line + "".join(f" \\\n    --hash={h}" for h in package.hashes)


def conda_provided_distributions(prefix: Path) -> dict[str, str]:
    """Python distributions that conda installed into ``prefix``: normalised name -> package."""
    return provided_distributions(read_conda_meta(prefix).values())


def pip_install_command(
    python: str, requirements: str, index_urls: Iterable[str], find_links: str | None = None
) -> list[str]:
    """pip that installs exactly the requirements file: no resolver, hashes required; with
    ``find_links`` (an offline bundle's wheels) from that folder alone."""
    command = [python, "-m", "pip", "install", "--no-deps", "--require-hashes", "--no-input"]
    command += ["--disable-pip-version-check", "--no-warn-script-location"]
    if find_links is not None:
        command += ["--no-index", "--find-links", find_links]
    else:
        for url in index_urls:
            command += ["--extra-index-url", url]
    return [*command, "-r", requirements]


def pip_download_command(
    python: str, requirements: str, dest: str, index_urls: Iterable[str], python_version: str
) -> list[str]:
    """pip that fetches exactly the requirements file's files (pip's own index settings), for the
    target's Python: --no-deps lets pip take a target version and still accept sdists."""
    command = [python, "-m", "pip", "download", "--no-deps", "--require-hashes", "--no-input"]
    command += ["--disable-pip-version-check", "--python-version", python_version, "--dest", dest]
    for url in index_urls:
        command += ["--extra-index-url", url]
    return [*command, "-r", requirements]


def pip_wheel_command(python: str, sdist: str, dest: str) -> list[str]:
    """A wheel built from one sdist, as pip would build it at install time (build isolation,
    the backend from pip's index)."""
    command = [python, "-m", "pip", "wheel", "--no-deps", "--no-input"]
    return [*command, "--disable-pip-version-check", "--wheel-dir", dest, sdist]


def root_install_command(python: str, project_dir: str) -> list[str]:
    """The project itself, editable, built with the backend that conda installed."""
    return [
        python,
        "-m",
        "pip",
        "install",
        "--no-deps",
        "--no-build-isolation",
        "--no-input",
        "--disable-pip-version-check",
        "-e",
        project_dir,
    ]


def env_python(prefix: Path) -> Path:
    """The interpreter of a conda env."""
    return Path(prefix) / "bin" / "python"


def default_groups(pyproject: Mapping[str, Any], exclude: str) -> list[str]:
    """What `poetry install` installs by default: main and every non-optional group (Poetry 1's
    [tool.poetry.dev-dependencies] is the group "dev")."""
    poetry = pyproject.get("tool", {}).get("poetry", {})
    declared = poetry.get("group", {})
    optional = {name for name, table in declared.items() if table.get("optional", False)}
    groups = set(declared) | ({"dev"} if "dev-dependencies" in poetry else set())
    return ["main", *sorted(groups - optional - {exclude})]


def env_python_version(prefix: Path, records: Mapping[str, CondaRecord] | None = None) -> str:
    """The Python version of an env: its conda-meta record (``records`` when already read), else
    (a plain venv, as the bootstrap of .venv makes) what its interpreter says."""
    version = python_version(read_conda_meta(prefix) if records is None else records)
    if version:
        return version
    try:
        answer = subprocess.run(
            python_version_command(str(env_python(Path(prefix)))),
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        raise PlanError(
            f"{prefix}: no python in this env; pass --python-version (e.g. 3.11.10)"
        ) from None
    return answer.stdout.strip()


def python_version_command(python: str) -> list[str]:
    """An interpreter's version, as markers see it (python_full_version)."""
    return [python, "-I", "-c", "import platform; print(platform.python_version())"]


def build_plan(args: argparse.Namespace, pyproject: Mapping[str, Any]) -> tuple[Plan, list[str]]:
    """Plan of the CLI arguments."""
    lock_data = read_poetry_lock(Path(args.poetry_lock))
    groups = args.groups.split(",") if args.groups else default_groups(pyproject, args.pin_group)
    prefix = Path(args.prefix) if args.prefix else None
    provided = conda_provided_distributions(prefix) if prefix else {}
    if args.python_version:
        python = args.python_version
    elif prefix is not None:
        python = env_python_version(prefix)
    else:
        raise PlanError("give --prefix (an existing env) or --python-version (e.g. 3.11.10)")
    try:
        environment = target_environment(args.platform, python)
    except MarkerError as exc:
        raise PlanError(str(exc)) from exc
    extras = [e for e in args.extras.split(",") if e]
    plan = plan_for(pyproject, lock_data, groups, provided, environment, extras)
    return plan, groups


def _run(command: list[str]) -> None:
    print("+", shlex.join(command), flush=True)
    subprocess.run(command, check=True)


def _install_root(args: argparse.Namespace) -> int:
    """The project itself into the env (an image's last layer), unless it is no package."""
    try:
        pyproject = read_toml(Path(args.pyproject))
    except LockstepError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if not pyproject.get("tool", {}).get("poetry", {}).get("package-mode", True):
        print("lockstep: package-mode = false: the project is run from its folder, not installed")
        return 0
    if not args.prefix:
        print("error: install-root needs --prefix (the conda env to install into)", file=sys.stderr)
        return 1
    python = str(env_python(Path(args.prefix)))
    try:
        _run(root_install_command(python, str(Path(args.project_dir).resolve())))
    except subprocess.CalledProcessError as exc:
        return exc.returncode or 1
    return 0


def main(argv: list[str] | None = None) -> int:
    """Command line: ``plan`` prints what would be installed, ``install`` installs it."""
    parser = argparse.ArgumentParser(prog="python -m lockstep.core.pypi", description=__doc__)
    parser.add_argument("action", choices=["plan", "install", "install-root"])
    parser.add_argument("--prefix", default="", help="conda env to install into (or to plan for)")
    parser.add_argument(
        "--python-version", default="", help="plan for this Python (default: the env's python)"
    )
    parser.add_argument("--platform", default="linux-64", help="conda platform to plan for")
    parser.add_argument("--extras", default="", help="comma-separated extras of the project")
    parser.add_argument("--poetry-lock", default="poetry.lock", help="Poetry's lock file")
    parser.add_argument("--pyproject", default="pyproject.toml", help="the project's pyproject")
    parser.add_argument(
        "--groups", default="", help="comma-separated groups (default: main and non-optional)"
    )
    parser.add_argument("--pin-group", default="conda", help="group holding conda's pins")
    parser.add_argument("--project-dir", default=".", help="the project to install editable")
    parser.add_argument("--no-root", action="store_true", help="do not install the project")
    args = parser.parse_args(argv)
    if args.action == "install-root":
        return _install_root(args)
    try:
        pyproject = read_toml(Path(args.pyproject))
        plan, groups = build_plan(args, pyproject)
        lines = [requirement_line(p, groups) for p in plan.install]
    except LockstepError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.action == "plan":
        print(
            json.dumps(
                {
                    "install": [f"{p.name}=={p.version}" for p in plan.install],
                    "provided_by_conda": plan.provided_by_conda,
                    "only_needed_by_conda": plan.only_needed_by_conda,
                    "other_groups": plan.other_groups,
                },
                indent=2,
            )
        )
        return 0
    if not args.prefix:
        print("error: install needs --prefix (the conda env to install into)", file=sys.stderr)
        return 1
    python = str(env_python(Path(args.prefix)))
    indexes = sorted({p.source_url for p in plan.install if p.source_url})
    if lines:
        fd, requirements = tempfile.mkstemp(prefix="lockstep-", suffix=".txt")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write("\n".join(lines) + "\n")
            _run(pip_install_command(python, requirements, indexes))
        except subprocess.CalledProcessError as exc:
            return exc.returncode or 1
        finally:
            Path(requirements).unlink(missing_ok=True)
    skipped = plan.provided_by_conda + plan.only_needed_by_conda
    print(
        f"lockstep: {len(plan.install)} PyPI packages installed; left to conda: "
        f"{', '.join(skipped) or 'none'}",
        flush=True,
    )
    package_mode = pyproject.get("tool", {}).get("poetry", {}).get("package-mode", True)
    if package_mode and not args.no_root:
        try:
            _run(root_install_command(python, str(Path(args.project_dir).resolve())))
        except subprocess.CalledProcessError as exc:
            return exc.returncode or 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
