"""Pins: the versions conda installs, written into pyproject.toml so Poetry resolves around them.

The pins live in one Poetry dependency group (``conda`` by default) that is optional, so Poetry
resolves every other group against them but its installer never installs them; the group is owned
by `invoke pin` and rewritten as a whole, with comments and layout elsewhere kept (tomlkit).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping

import tomlkit
from tomlkit.items import Table
from tomlkit.toml_document import TOMLDocument

from lockstep.names import conda_to_pypi, normalize
from lockstep.spec import EnvSpec

# A conda version that PEP 440 also accepts; others cannot be pinned in Poetry.
_PEP440_RE = re.compile(
    r"^\d+(?:\.\d+)*(?:(?:a|b|rc)\d+)?(?:\.post\d+)?(?:\.dev\d+)?$", re.IGNORECASE
)
# conda packages that are never Python distributions, by prefix.
_NOT_PYTHON_PREFIXES = ("lib", "_", "cuda-", "ca-certificates", "openssl", "ld_impl")
# Tools of the env itself: Poetry must never resolve them into the project's lock.
TOOLING = frozenset({"pip", "poetry", "conda-lock", "setuptools", "wheel"})

PIN_GROUP_COMMENT = "Written by `invoke pin` from the conda lock: do not edit by hand."


def _is_python_candidate(conda_name: str, overrides: Mapping[str, str]) -> bool:
    if conda_name in overrides:
        return bool(overrides[conda_name])
    return not conda_name.startswith(_NOT_PYTHON_PREFIXES) and conda_name not in TOOLING


def desired_pins(
    conda_packages: Iterable[tuple[str, str]],
    spec: EnvSpec,
    poetry_names: Iterable[str] = (),
    overrides: Mapping[str, str] | None = None,
    extra: Iterable[str] = (),
) -> dict[str, str]:
    """PyPI name -> exact version for every conda package that Poetry must not replace.

    A conda package is pinned when environment.yml names it, when poetry.lock also holds it (so
    both locks agree on one version), or when settings list it in ``pin-extra``.
    """
    overrides = dict(overrides or {})
    direct = {d.name for d in spec.dependencies} | set(extra)
    in_poetry = {normalize(n) for n in poetry_names}
    pins: dict[str, str] = {}
    for conda_name, version in conda_packages:
        if not _is_python_candidate(conda_name, overrides):
            continue
        pypi = conda_to_pypi(conda_name, overrides)
        if pypi is None or pypi in {normalize(t) for t in TOOLING}:
            continue
        if (conda_name in direct or pypi in in_poetry) and _PEP440_RE.match(version):
            pins[pypi] = version
    return dict(sorted(pins.items()))


def current_pins(doc: TOMLDocument, group: str) -> dict[str, str]:
    """The pins now in pyproject.toml."""
    table = doc.get("tool", {}).get("poetry", {}).get("group", {}).get(group, {})
    deps = table.get("dependencies", {})
    return {normalize(k): str(v) for k, v in deps.items()}


def apply_pins(doc: TOMLDocument, pins: Mapping[str, str], group: str) -> TOMLDocument:
    """Make the pin group hold exactly ``pins``; every other table is left as it was."""
    tool = doc.setdefault("tool", tomlkit.table())
    poetry = tool.setdefault("poetry", tomlkit.table())
    groups = poetry.setdefault("group", tomlkit.table(is_super_table=True))
    if group not in groups:
        table = tomlkit.table()
        table.add(tomlkit.comment(PIN_GROUP_COMMENT))
        table.add("optional", True)
        groups[group] = table
    table: Table = groups[group]
    table["optional"] = True
    created = "dependencies" not in table
    deps = table.setdefault("dependencies", tomlkit.table())
    for name in [k for k in deps if normalize(k) not in pins]:
        del deps[name]
    existing = {normalize(k): k for k in deps}
    for name, version in pins.items():
        deps[existing.get(name, name)] = version
    if created:
        deps.add(tomlkit.nl())  # keep a blank line before whatever table follows
    return doc


def ensure_poetry_project(
    doc: TOMLDocument, python_range: str, name: str
) -> tuple[TOMLDocument, list[str]]:
    """Create or repair the parts of pyproject.toml that Poetry 2 and the tasks need.

    Returns the changes made, as sentences; what the user wrote elsewhere is not touched.
    """
    changes: list[str] = []
    project = doc.get("project")
    if project is None:
        project = tomlkit.table()
        project["name"] = name
        project["version"] = "0.1.0"
        project["dependencies"] = tomlkit.array()
        doc["project"] = project
        changes.append("added [project]")
    for key, default in (("name", name), ("version", "0.1.0")):
        if key not in project:
            project[key] = default
            changes.append(f"set project.{key} = {default!r}")
    if project.get("requires-python") != python_range:
        old = project.get("requires-python")
        project["requires-python"] = python_range
        changes.append(f"set requires-python {old!r} -> {python_range!r} (from environment.yml)")
    tool = doc.setdefault("tool", tomlkit.table(is_super_table=True))
    poetry = tool.get("poetry")
    if poetry is None:
        poetry = tomlkit.table()
        poetry["package-mode"] = False
        tool["poetry"] = poetry
        changes.append("added [tool.poetry] with package-mode = false")
    if "build-system" not in doc and poetry.get("package-mode", True):
        build = tomlkit.table()
        build["requires"] = ["poetry-core>=2.0,<3"]
        build["build-backend"] = "poetry.core.masonry.api"
        doc["build-system"] = build
        changes.append("added [build-system] (poetry-core)")
    return doc, changes


def text_diff(old: str, new: str, path: str) -> str:
    """A unified diff of two versions of a file ('' when equal)."""
    return "".join(
        difflib.unified_diff(
            old.splitlines(keepends=True), new.splitlines(keepends=True), path, path
        )
    )
