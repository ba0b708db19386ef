"""The install plan: what `poetry install` would install on one target (a conda platform and a
Python version), minus what conda provides and what only it needs.

The lock's graph (lockstep.core.poetrylock) is walked from the project's requirements with every
marker evaluated on the target (lockstep.core.markers), so a package needed only elsewhere
(pywin32 on win32) is not planned, and of a name locked at several versions the one its edges
allow is taken. tests/unit/test_plan_realworld.py holds it equal to `poetry export` and `poetry
install --dry-run` on real locks.

Standard library only (lockstep.core): the engine calls ``plan_for`` before the env exists.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lockstep.core.errors import LockstepError
from lockstep.core.explicit import ExplicitLock
from lockstep.core.markers import (
    MarkerError,
    evaluate,
    target_environment,
    version_matches,
)
from lockstep.core.names import normalize, pypi_names, requirement_name
from lockstep.core.poetrylock import (
    LockedPackage,
    edge_tables,
    group_markers,
    lock_version,
    locked_versions,
    parse_poetry_lock,
    read_poetry_lock,
)
from lockstep.core.settings import read_toml


class PlanError(LockstepError):
    """poetry.lock or pyproject.toml cannot be turned into an install plan."""


@dataclass
class Plan:
    """What to install, and why the rest is left out."""

    install: list[LockedPackage] = field(default_factory=list)
    provided_by_conda: list[str] = field(default_factory=list)
    only_needed_by_conda: list[str] = field(default_factory=list)
    other_groups: list[str] = field(default_factory=list)


# The hash lists of poetry.lock: most of its bytes, and needed only to install.
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
        for table in edge_tables(value)
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
                group_markers(package.markers, [g for g in selected if g in package.groups]) or "",
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
        lock_markers=lock_version(lock_data) >= (2, 1),
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
        # Refused, not installed unchecked: pip --require-hashes is the promise of reproduce,
        # and Poetry's own installer would install it without a check (tooling/README.md).
        raise PlanError(
            f"{package.name} {package.version}: poetry.lock has no hashes for it (its index "
            "served none when it was locked), so it cannot be installed with its hashes "
            "checked; lock it from an index that serves hashes (PyPI does: `poetry lock "
            "--regenerate`), or move it to environment.yml; nothing was changed"
        )
    line = f"{package.name}=={package.version}"
    return line + "".join(f" \\\n    --hash={h}" for h in package.hashes)


def default_groups(pyproject: Mapping[str, Any], exclude: str) -> list[str]:
    """What `poetry install` installs by default: main and every non-optional group (Poetry 1's
    [tool.poetry.dev-dependencies] is the group "dev")."""
    poetry = pyproject.get("tool", {}).get("poetry", {})
    declared = poetry.get("group", {})
    optional = {name for name, table in declared.items() if table.get("optional", False)}
    groups = set(declared) | ({"dev"} if "dev-dependencies" in poetry else set())
    return ["main", *sorted(groups - optional - {exclude})]


def package_mode(pyproject: Mapping[str, Any]) -> bool:
    """Whether the project itself is installed (Poetry's ``package-mode``, true unless set)."""
    return bool(pyproject.get("tool", {}).get("poetry", {}).get("package-mode", True))


# --------------------------------------------------------------------------- the Poetry side


@dataclass
class PoetrySide:
    """pyproject.toml and poetry.lock, read and planned before anything is touched."""

    pyproject_path: Path
    poetry_lock_path: Path
    pyproject: Mapping[str, Any]
    lock_data: Mapping[str, Any]
    packages: Mapping[str, LockedPackage]
    groups: list[str]
    pin_group: str

    def plan(self, conda_provided: Sequence[str], environment: Mapping[str, str]) -> Plan:
        """What pip installs on ``environment`` (markers evaluated there), minus conda's."""
        return plan_for(self.pyproject, self.lock_data, self.groups, conda_provided, environment)

    def requirement_lines(self, plan: Plan) -> list[str]:
        return [requirement_line(p, self.groups) for p in plan.install]

    @property
    def package_mode(self) -> bool:
        return package_mode(self.pyproject)


def read_poetry_side(pyproject_path: Path, poetry_lock_path: Path, pin_group: str) -> PoetrySide:
    if not poetry_lock_path.is_file():
        raise LockstepError(
            f"{poetry_lock_path}: not found; create it with `poetry lock` (or `invoke pin`)"
        )
    pyproject = read_toml(pyproject_path)
    data = read_poetry_lock(poetry_lock_path)
    packages = parse_poetry_lock(data)
    groups = default_groups(pyproject, pin_group)
    return PoetrySide(
        pyproject_path, poetry_lock_path, pyproject, data, packages, groups, pin_group
    )


def python_version_of(lock: ExplicitLock) -> str | None:
    """The version of the ``python`` package the lock installs."""
    entry = lock.by_name().get("python")
    return entry.version if entry else None


def planned_from_lock(side: PoetrySide, lock: ExplicitLock, overrides: Mapping[str, str]) -> Plan:
    """The install plan on the lock's target, before any env exists (conda-meta decides for real
    once the env is built; the name mapping stands in for it here)."""
    provided = [n for e in lock.entries for n in pypi_names(e.name, overrides)]
    environment = lock_environment(lock.platform, python_version_of(lock))
    plan = side.plan(provided, environment)
    side.requirement_lines(plan)  # hashes present, sources installable
    return plan
