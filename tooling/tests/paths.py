"""Where things are: this suite's tooling folder and the project around it (the starter)."""

from __future__ import annotations

import shutil
from pathlib import Path

TOOLING = Path(__file__).resolve().parents[1]
PROJECT = TOOLING.parent
SRC = TOOLING / "src"


def copy_tooling(dest: Path) -> None:
    """What the tasks need of the tooling in a project at ``dest``: tasks.py, the Makefile and
    tooling/ (its package, without caches, its scripts and Poetry's own project)."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in ("tasks.py", "Makefile"):
        shutil.copy2(PROJECT / name, dest / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("src", "scripts", "poetry-cli"):
        shutil.copytree(TOOLING / name, dest / "tooling" / name, ignore=ignore)
    for name in ("pyproject.toml", "poetry.lock"):
        shutil.copy2(TOOLING / name, dest / "tooling" / name)


# The starter's spec files before the tooling moved into tooling/ (their PROVENANCE says which
# commit): a complete, real project for the tests of the tasks.
STARTER_0_1 = TOOLING / "tests" / "data" / "starter-0.1"


def cpu_torch_python() -> str | None:
    """A Python that imports a real torch (CI: .ci/run puts torch 2.13.0+cpu into .venv), for
    running the user's example tests; None where this one has none."""
    import importlib.util
    import sys

    return sys.executable if importlib.util.find_spec("torch") is not None else None
