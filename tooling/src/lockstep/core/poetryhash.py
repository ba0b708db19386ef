"""Poetry's content hash of pyproject.toml (``content-hash`` in poetry.lock), without Poetry.

``poetry check --lock`` answers "is poetry.lock fresh?" but costs about a second as a subprocess.
Poetry's Locker hashes only the parts of pyproject.toml that change resolution; this module
computes the same sha256 from the parsed TOML. tests/unit/test_poetryhash.py proves it equal to
Poetry's own Locker on many pyproject variants.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

# What Poetry's Locker reads, in [project] and [tool.poetry].
PROJECT_KEYS = ("requires-python", "dependencies", "optional-dependencies")
LEGACY_POETRY_KEYS = ("dependencies", "source", "extras", "dev-dependencies")
POETRY_KEYS = (*LEGACY_POETRY_KEYS, "group")


def relevant_content(pyproject: Mapping[str, Any]) -> dict[str, Any]:
    """The part of pyproject.toml that Poetry hashes."""
    project = pyproject.get("project", {})
    poetry = pyproject.get("tool", {}).get("poetry", {})
    from_project = {k: project[k] for k in PROJECT_KEYS if project.get(k) is not None}
    from_poetry: dict[str, Any] = {}
    for key in POETRY_KEYS:
        value = poetry.get(key)
        # Absent legacy keys are hashed as null, but only for a project without [project] keys
        # (Poetry 1 lock files stay fresh that way).
        if value is None and (key not in LEGACY_POETRY_KEYS or from_project):
            continue
        from_poetry[key] = value
    if from_project:
        return {"project": from_project, "tool": {"poetry": from_poetry}}
    return from_poetry


def content_hash(pyproject: Mapping[str, Any]) -> str:
    """sha256 of the relevant content, serialised as Poetry does (sorted keys, json defaults)."""
    text = json.dumps(relevant_content(pyproject), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def locked_hash(poetry_lock: Mapping[str, Any]) -> str | None:
    """The ``content-hash`` recorded in poetry.lock, if any."""
    value = poetry_lock.get("metadata", {}).get("content-hash")
    return value if isinstance(value, str) else None
