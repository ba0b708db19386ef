"""`invoke rename`: turn the starter into the user's project, as data (which file becomes what).

What is renamed is the user's project: [project] name and description and [tool.lockstep]
env-name in pyproject.toml, ``name:`` in environment.yml, the Makefile's ``IMAGE ?=`` default
and the README's title. The ``lockstep`` package under src/ keeps its name: it is the tooling the
tasks import, not the user's code.

Every function takes and returns text, so the task can show a diff, write nothing on --dry-run,
and a second run with the same name changes nothing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import tomlkit

from lockstep.core.errors import LockstepError
from lockstep.core.names import is_valid_distribution_name
from lockstep.core.settings import check_env_name

PYPROJECT = "pyproject.toml"
ENVIRONMENT = "environment.yml"
MAKEFILE = "Makefile"
README = "README.md"
# In the order the task shows them.
RENAMED_FILES = (PYPROJECT, ENVIRONMENT, MAKEFILE, README)
# The starter's own description: replaced by default; a description the user wrote is kept.
STARTER_DESCRIPTION = "ml-project: a machine learning project."

_ENV_NAME_LINE = re.compile(r"^(name:[ \t]*)([^\s#]*)", re.MULTILINE)
_MAKE_IMAGE = re.compile(r"^(IMAGE[ \t]*\?=[ \t]*)(\S*)", re.MULTILINE)


@dataclass(frozen=True)
class FileChange:
    """One file's text before and after the rename; ``path`` is relative to the project."""

    path: str
    old: str
    new: str


def check_project_name(name: str) -> str:
    """``name`` if it is both a PEP 508 distribution name and a safe conda env name."""
    if not is_valid_distribution_name(name):
        raise LockstepError(
            f"invalid project name {name!r}: use letters, digits and . _ - , starting and ending "
            "with a letter or digit (PEP 508), e.g. my-project"
        )
    return check_env_name(name)


def rename_pyproject(text: str, name: str, env_name: str, description: str | None) -> str:
    """[project] name (and description) and [tool.lockstep] env-name; comments kept."""
    doc = tomlkit.parse(text)
    project = doc.get("project")
    if project is None:
        raise LockstepError(f"{PYPROJECT} has no [project] table; run `invoke poetry-init` first")
    project["name"] = name
    if description is not None:
        project["description"] = description
    elif project.get("description") == STARTER_DESCRIPTION:
        project["description"] = f"{name}: a machine learning project."
    tool = doc.setdefault("tool", tomlkit.table(is_super_table=True))
    tool.setdefault("lockstep", tomlkit.table())["env-name"] = env_name
    return tomlkit.dumps(doc)


def rename_environment(text: str, env_name: str) -> str:
    """The top-level ``name:`` of environment.yml, comments and layout kept; added if missing."""
    if _ENV_NAME_LINE.search(text):
        return _ENV_NAME_LINE.sub(lambda m: m.group(1) + env_name, text, count=1)
    lines = text.splitlines(keepends=True)
    # After the leading comment block, so the file's header stays on top.
    at = next((i for i, line in enumerate(lines) if line.strip() and line[0] != "#"), len(lines))
    return "".join([*lines[:at], f"name: {env_name}\n", *lines[at:]])


def rename_makefile(text: str, env_name: str) -> str:
    """The default image name (``IMAGE ?=``); a Makefile without one is left as it is. The env
    name itself is not in the Makefile: make reads env-name from pyproject.toml."""
    return _MAKE_IMAGE.sub(lambda m: m.group(1) + env_name, text, count=1)


def rename_readme(text: str, title: str) -> str:
    """The first line as ``# <title>``; one is added when the README has no title line."""
    first, newline, rest = text.partition("\n")
    if first.startswith("# "):
        return f"# {title}{newline}{rest}"
    return f"# {title}\n\n{text}"


def plan_rename(
    files: Mapping[str, str],
    name: str,
    env_name: str | None = None,
    description: str | None = None,
) -> list[FileChange]:
    """The files that change, given the current text of those in RENAMED_FILES that exist.

    Raises before anything is planned if a name is invalid or pyproject.toml is missing.
    """
    check_project_name(name)
    env_name = check_env_name(env_name or name)
    if description is not None and ("\n" in description or not description.strip()):
        raise LockstepError("the description must be one non-empty line")
    if PYPROJECT not in files:
        raise LockstepError(f"{PYPROJECT} not found; run the task from the project root")
    renamers = {
        PYPROJECT: lambda text: rename_pyproject(text, name, env_name, description),
        ENVIRONMENT: lambda text: rename_environment(text, env_name),
        MAKEFILE: lambda text: rename_makefile(text, env_name),
        README: lambda text: rename_readme(text, name),
    }
    changes = []
    for path in RENAMED_FILES:
        if path in files:
            new = renamers[path](files[path])
            if new != files[path]:
                changes.append(FileChange(path, files[path], new))
    return changes
