"""Install Poetry's side of the env from poetry.lock without Poetry's installer.

Poetry resolves and locks; this module installs exactly the locked set with ``pip --no-deps
--require-hashes`` into the conda env, minus every distribution conda already installed there and
minus the wheels that only those need (the nvidia-* and triton wheels of PyPI's torch). That is
how no wheel replaces or duplicates what conda provides (poetry issue 6408: Poetry's installer
would reinstall conda's torch and add its CUDA wheels).

Standard library only: it runs inside a freshly created env, as
``python -m lockstep.pypi install --prefix ENV`` with ``src`` on PYTHONPATH.
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

from lockstep.errors import LockstepError
from lockstep.fsutil import read_text
from lockstep.names import normalize, requirement_name
from lockstep.settings import read_toml

_DIST_DIR_RE = re.compile(r"site-packages/([^/]+)\.(?:dist-info|egg-info)(?:/|$)")


class PlanError(LockstepError):
    """poetry.lock or pyproject.toml cannot be turned into an install plan."""


@dataclass(frozen=True)
class LockedPackage:
    """One [[package]] of poetry.lock, reduced to what installing needs."""

    name: str
    version: str
    groups: tuple[str, ...]
    markers: str | None
    hashes: tuple[str, ...]
    dependencies: Mapping[str, Mapping[str, object]]
    extras: Mapping[str, tuple[str, ...]]
    source_type: str | None = None
    source_url: str | None = None


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


def _dependency_table(value: object) -> dict[str, object]:
    if isinstance(value, str):
        return {"version": value}
    if isinstance(value, list):  # one entry per marker set; any of them may apply
        merged: dict[str, object] = {
            "optional": all(_dependency_table(v).get("optional") for v in value)
        }
        extras = sorted({e for v in value for e in _dependency_table(v).get("extras", [])})
        return {**merged, "extras": extras}
    if isinstance(value, dict):
        return dict(value)
    return {}


def _markers(raw: object, groups: Sequence[str]) -> str | None:
    """The environment marker under which the selected ``groups`` need a package."""
    if isinstance(raw, str):
        return raw
    if not isinstance(raw, dict) or any(g not in raw for g in groups):
        return None  # no marker, or some selected group needs it unconditionally
    return " or ".join(f"({raw[g]})" for g in groups) or None


def parse_poetry_lock(data: Mapping[str, object]) -> dict[str, LockedPackage]:
    """Locked packages by normalised name."""
    packages: dict[str, LockedPackage] = {}
    for raw in data.get("package", []):  # type: ignore[union-attr]
        source = raw.get("source") or {}
        package = LockedPackage(
            name=raw["name"],
            version=raw["version"],
            groups=tuple(raw.get("groups", ["main"])),
            markers=raw.get("markers"),  # type: ignore[arg-type]
            hashes=tuple(f["hash"] for f in raw.get("files", []) if "hash" in f),
            dependencies={k: _dependency_table(v) for k, v in raw.get("dependencies", {}).items()},
            extras={k: tuple(v) for k, v in raw.get("extras", {}).items()},
            source_type=source.get("type"),
            source_url=source.get("url"),
        )
        packages[normalize(package.name)] = package
    return packages


def root_requirements(
    pyproject: Mapping[str, object], groups: Iterable[str]
) -> dict[str, set[str]]:
    """Direct dependencies of the selected groups: normalised name -> extras asked for."""
    roots: dict[str, set[str]] = {}

    def add(name: str, extras: Iterable[str] = ()) -> None:
        roots.setdefault(normalize(name), set()).update(extras)

    project = pyproject.get("project", {})
    poetry = pyproject.get("tool", {}).get("poetry", {})  # type: ignore[union-attr]
    selected = set(groups)
    if "main" in selected:
        for requirement in project.get("dependencies", []):  # type: ignore[union-attr]
            name = requirement_name(requirement)
            extras = re.search(r"\[([^\]]*)\]", requirement.split(";")[0])
            add(name, [e.strip() for e in extras.group(1).split(",")] if extras else [])
        for name, value in poetry.get("dependencies", {}).items():
            if normalize(name) != "python":
                add(name, _dependency_table(value).get("extras", []))  # type: ignore[arg-type]
    for group, table in poetry.get("group", {}).items():
        if group in selected:
            for name, value in table.get("dependencies", {}).items():
                add(name, _dependency_table(value).get("extras", []))  # type: ignore[arg-type]
    return roots


def make_plan(
    packages: Mapping[str, LockedPackage],
    roots: Mapping[str, set[str]],
    groups: Iterable[str],
    conda_provided: Iterable[str],
) -> Plan:
    """Walk the lock's dependency graph from the roots, stopping at what conda provides."""
    provided = {normalize(n) for n in conda_provided}
    selected = tuple(groups)
    plan = Plan()
    reached: dict[str, set[str]] = {}
    todo = [(name, set(extras)) for name, extras in roots.items()]
    while todo:
        name, extras = todo.pop()
        if name in provided:
            if name not in plan.provided_by_conda:
                plan.provided_by_conda.append(name)
            continue
        if name not in packages:
            raise PlanError(
                f"{name} is a dependency but not in poetry.lock; run `poetry lock` to refresh it"
            )
        known = reached.get(name)
        if known is not None and extras <= known:
            continue
        reached[name] = (known or set()) | extras
        package = packages[name]
        wanted_optional = {
            normalize(requirement_name(dep))
            for extra in reached[name]
            for dep in package.extras.get(extra, ())
        }
        for dep_name, table in package.dependencies.items():
            dep = normalize(dep_name)
            if table.get("optional") and dep not in wanted_optional:
                continue
            todo.append((dep, set(table.get("extras", []))))  # type: ignore[arg-type]
    plan.install = [packages[name] for name in sorted(reached)]
    in_selected = {n for n, p in packages.items() if set(p.groups) & set(selected)}
    plan.only_needed_by_conda = sorted(in_selected - set(reached) - provided)
    plan.other_groups = sorted(set(packages) - in_selected - provided)
    plan.provided_by_conda.sort()
    return plan


def requirement_line(package: LockedPackage, groups: Iterable[str]) -> str:
    """A pip requirement with the lock's markers and every hash of the lock."""
    if package.source_type in {"git", "directory", "file", "url"}:
        raise PlanError(
            f"{package.name}: {package.source_type} sources are not installable with hashes; "
            "publish it to an index or add it as a path dependency outside the lock"
        )
    if not package.hashes:
        raise PlanError(f"{package.name}: poetry.lock has no hashes for it; run `poetry lock`")
    line = f"{package.name}=={package.version}"
    markers = _markers(package.markers, [g for g in groups if g in package.groups])
    if markers:
        line += f" ; {markers}"
    return line + "".join(f" \\\n    --hash={h}" for h in package.hashes)


def conda_provided_distributions(prefix: Path) -> dict[str, str]:
    """Python distributions that conda installed into ``prefix``: normalised name -> package."""
    provided: dict[str, str] = {}
    meta = Path(prefix) / "conda-meta"
    for record_path in sorted(meta.glob("*.json")):
        try:
            record = json.loads(record_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        for path in record.get("files", []):
            match = _DIST_DIR_RE.search(path)
            if match:
                dist = match.group(1).rsplit("-", 1)[0]
                provided[normalize(dist)] = record.get("name", record_path.stem)
    return provided


def pip_install_command(python: str, requirements: str, index_urls: Iterable[str]) -> list[str]:
    """pip that installs exactly the requirements file: no resolver, hashes required."""
    command = [python, "-m", "pip", "install", "--no-deps", "--require-hashes", "--no-input"]
    command += ["--disable-pip-version-check", "--no-warn-script-location"]
    for url in index_urls:
        command += ["--extra-index-url", url]
    return [*command, "-r", requirements]


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


def default_groups(pyproject: Mapping[str, object], exclude: str) -> list[str]:
    """What `poetry install` installs by default: main and every non-optional group."""
    declared = pyproject.get("tool", {}).get("poetry", {}).get("group", {})  # type: ignore[union-attr]
    optional = {name for name, table in declared.items() if table.get("optional", False)}
    return ["main", *sorted(set(declared) - optional - {exclude})]


def build_plan(args: argparse.Namespace, pyproject: Mapping[str, Any]) -> tuple[Plan, list[str]]:
    """Plan of the CLI arguments."""
    packages = parse_poetry_lock(read_poetry_lock(Path(args.poetry_lock)))
    groups = args.groups.split(",") if args.groups else default_groups(pyproject, args.pin_group)
    provided = conda_provided_distributions(Path(args.prefix))
    plan = make_plan(packages, root_requirements(pyproject, groups), groups, provided)
    return plan, groups


def _run(command: list[str]) -> None:
    print("+", shlex.join(command), flush=True)
    subprocess.run(command, check=True)


def main(argv: list[str] | None = None) -> int:
    """Command line: ``plan`` prints what would be installed, ``install`` installs it."""
    parser = argparse.ArgumentParser(prog="python -m lockstep.pypi", description=__doc__)
    parser.add_argument("action", choices=["plan", "install"])
    parser.add_argument("--prefix", required=True, help="conda env to install into")
    parser.add_argument("--poetry-lock", default="poetry.lock", help="Poetry's lock file")
    parser.add_argument("--pyproject", default="pyproject.toml", help="the project's pyproject")
    parser.add_argument(
        "--groups", default="", help="comma-separated groups (default: main and non-optional)"
    )
    parser.add_argument("--pin-group", default="conda", help="group holding conda's pins")
    parser.add_argument("--project-dir", default=".", help="the project to install editable")
    parser.add_argument("--no-root", action="store_true", help="do not install the project")
    args = parser.parse_args(argv)
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
