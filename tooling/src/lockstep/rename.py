"""`invoke rename`: turn the starter into the user's project, as data (which file becomes what).

What is renamed is the user's project: [project] name and description and [tool.lockstep]
env-name in pyproject.toml, ``name:`` in environment.yml, the README's title and mentions, and
the user's package: ``src/ml_project/`` becomes ``src/my_project/`` (the import name of the
project name), ``[tool.poetry] packages`` names it, and every reference to it in src/, tests/,
notebooks/ and the README follows. The tooling's files (the Makefile among them: a later
`invoke upgrade` replaces it) are never edited; the image name comes from env-name.

Every planning function takes and returns text, so the task can show a diff, write nothing on
--dry-run, and a second run with the same name changes nothing. ``apply`` writes the plan in one
transaction (lockstep.core.fsutil.move_and_write_atomically): all of it or none.
"""

from __future__ import annotations

import keyword
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import tomlkit

from lockstep.core.errors import LockstepError
from lockstep.core.fsutil import move_and_write_atomically, read_text
from lockstep.core.names import is_valid_distribution_name, normalize
from lockstep.core.settings import check_env_name

PYPROJECT = "pyproject.toml"
ENVIRONMENT = "environment.yml"
README = "README.md"
# In the order the task shows them.
RENAMED_FILES = (PYPROJECT, ENVIRONMENT, README)
# Where the user's package lives, and the folders whose references to it follow it.
PACKAGE_ROOT = "src"
CODE_FOLDERS = (PACKAGE_ROOT, "tests", "notebooks")
# Files read as text for references to the package; any other file (data, images) is left alone.
TEXT_SUFFIXES = frozenset(
    {
        ".py",
        ".pyi",
        ".md",
        ".rst",
        ".txt",
        ".toml",
        ".cfg",
        ".ini",
        ".yml",
        ".yaml",
        ".json",
        ".ipynb",
    }
)
# The starter's own description: replaced by default; a description the user wrote is kept.
STARTER_DESCRIPTION = "ml-project: a machine learning project."

_ENV_NAME_LINE = re.compile(r"^(name:[ \t]*)([^\s#]*)", re.MULTILINE)


@dataclass(frozen=True)
class FileChange:
    """One file's text before and after the rename; ``path`` is relative to the project."""

    path: str
    old: str
    new: str


@dataclass(frozen=True)
class RenamePlan:
    """Everything a rename does: folder moves (relative, old -> new), then file texts, each
    change's ``path`` being where the file is after the moves."""

    moves: list[tuple[str, str]] = field(default_factory=list)
    changes: list[FileChange] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.moves or self.changes)


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


def import_name(name: str) -> str:
    """The package name of a project name: PEP 503 form with ``-`` as ``_`` (my-project ->
    my_project), refused where Python could not import it or it would shadow the stdlib."""
    package = normalize(name).replace("-", "_")
    if not package.isidentifier() or keyword.iskeyword(package):
        raise LockstepError(
            f"project name {name!r} gives the package name {package!r}, which Python cannot "
            "import; start it with a letter (e.g. my-project)"
        )
    if package in sys.stdlib_module_names or package in {"torch", "lockstep"}:
        raise LockstepError(
            f"project name {name!r} gives the package name {package!r}, which would shadow "
            f"the module {package!r}; choose another name"
        )
    return package


def current_package(pyproject_text: str) -> str | None:
    """The package under src/ that [tool.poetry] packages names (the first one), or None."""
    poetry = tomlkit.parse(pyproject_text).get("tool", {}).get("poetry", {})
    for entry in poetry.get("packages", []):
        if entry.get("from") == PACKAGE_ROOT and str(entry.get("include", "")).isidentifier():
            return str(entry["include"])
    return None


def rename_packages_entry(text: str, old: str, new: str) -> str:
    """``[tool.poetry] packages``: the entry that includes ``old`` from src/ includes ``new``."""
    doc = tomlkit.parse(text)
    for entry in doc["tool"]["poetry"]["packages"]:
        if entry.get("from") == PACKAGE_ROOT and entry.get("include") == old:
            entry["include"] = new
    return tomlkit.dumps(doc)


def rename_references(text: str, old: str, new: str) -> str:
    """Every whole-word ``old`` (``import old``, ``old.train``, ``src/old/``) as ``new``."""
    return re.sub(rf"(?<![\w.]){re.escape(old)}\b", new, text)


def rename_mentions(text: str, old: str, new: str) -> str:
    """The old project name where it stands alone (``ml-project:``), not inside a longer name."""
    return re.sub(rf"(?<![\w.-]){re.escape(old)}(?![\w-])", new, text)


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
    """The spec files that change, given the current text of those in RENAMED_FILES that exist.

    Raises before anything is planned if a name is invalid or pyproject.toml is missing.
    """
    check_project_name(name)
    env_name = check_env_name(env_name or name)
    if description is not None and ("\n" in description or not description.strip()):
        raise LockstepError("the description must be one non-empty line")
    if PYPROJECT not in files:
        raise LockstepError(f"{PYPROJECT} not found; run the task from the project root")
    old_name = str(tomlkit.parse(files[PYPROJECT]).get("project", {}).get("name", ""))
    renamers = {
        PYPROJECT: lambda text: rename_pyproject(text, name, env_name, description),
        ENVIRONMENT: lambda text: rename_environment(text, env_name),
        README: lambda text: rename_readme(
            rename_mentions(text, old_name, name) if old_name else text, name
        ),
    }
    changes = []
    for path in RENAMED_FILES:
        if path in files:
            new = renamers[path](files[path])
            if new != files[path]:
                changes.append(FileChange(path, files[path], new))
    return changes


def plan_project_rename(
    files: Mapping[str, str],
    code: Mapping[str, str],
    package_folders: Sequence[str],
    name: str,
    env_name: str | None = None,
    description: str | None = None,
) -> RenamePlan:
    """The whole rename: the spec files (plan_rename) and the user's package.

    ``files``: RENAMED_FILES' texts; ``code``: the text files under CODE_FOLDERS by relative
    path (read_code); ``package_folders``: the folders under src/ that exist. The package moves
    only where its folder is there (a project may have dropped it) and the new one is not.
    """
    spec_changes = {c.path: c for c in plan_rename(files, name, env_name, description)}
    old = current_package(files[PYPROJECT])
    new = import_name(name)
    if old is None or old == new or old not in package_folders:
        return RenamePlan(changes=list(spec_changes.values()))
    if new in package_folders:
        raise LockstepError(
            f"{PACKAGE_ROOT}/{new}/ exists already; move it away or pick another name; "
            "nothing was changed"
        )
    texts = {path: c.new for path, c in spec_changes.items()}
    texts[PYPROJECT] = rename_packages_entry(texts.get(PYPROJECT, files[PYPROJECT]), old, new)
    if README in files:
        texts[README] = rename_references(texts.get(README, files[README]), old, new)
    changes = [FileChange(p, files[p], t) for p, t in texts.items() if t != files[p]]
    moved_from, moved_to = f"{PACKAGE_ROOT}/{old}/", f"{PACKAGE_ROOT}/{new}/"
    old_name = str(tomlkit.parse(files[PYPROJECT]).get("project", {}).get("name", ""))
    for path, text in sorted(code.items()):
        renamed = rename_references(text, old, new)
        # The starter's docstrings name the project too ("ml-project: your ... code").
        renamed = rename_mentions(renamed, old_name, name) if old_name else renamed
        if renamed != text:
            where = moved_to + path[len(moved_from) :] if path.startswith(moved_from) else path
            changes.append(FileChange(where, text, renamed))
    return RenamePlan([(moved_from.rstrip("/"), moved_to.rstrip("/"))], changes)


def read_code(root: Path) -> tuple[dict[str, str], list[str]]:
    """The inputs of plan_project_rename under ``root``: the text files of CODE_FOLDERS (by
    relative path, caches skipped) and the folders under src/."""
    code: dict[str, str] = {}
    for folder in CODE_FOLDERS:
        for path in sorted((root / folder).rglob("*")):
            rel = path.relative_to(root)
            if path.suffix in TEXT_SUFFIXES and path.is_file() and "__pycache__" not in rel.parts:
                code[rel.as_posix()] = read_text(path)
    src = root / PACKAGE_ROOT
    folders = sorted(p.name for p in src.iterdir() if p.is_dir()) if src.is_dir() else []
    return code, folders


def apply(root: Path, plan: RenamePlan) -> None:
    """Write ``plan`` under ``root``: the moves, then every file, or nothing at all."""
    move_and_write_atomically(
        [(root / old, root / new) for old, new in plan.moves],
        {root / change.path: change.new for change in plan.changes},
    )
