"""pyproject.toml made usable by Poetry 2 and the tasks (`invoke poetry-init`), nothing else
touched: tomlkit keeps the user's comments and layout."""

from __future__ import annotations

import tomlkit
from tomlkit.toml_document import TOMLDocument

from lockstep.core.plan import package_mode


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
    if "build-system" not in doc and package_mode(doc):
        build = tomlkit.table()
        build["requires"] = ["poetry-core>=2.0,<3"]
        build["build-backend"] = "poetry.core.masonry.api"
        doc["build-system"] = build
        changes.append("added [build-system] (poetry-core)")
    return doc, changes
