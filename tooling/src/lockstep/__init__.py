"""Lockstep: a conda + Poetry environment that is locked on both sides.

The package holds every piece of logic that needs no shell: parsing specs and locks, mapping
conda names to PyPI names, computing pins and comparing locks. It returns data; tasks.py turns
arguments into commands and prints.

Only the standard library may be imported at this level and in ``lockstep.core`` (the engine and
the installer, which run in a fresh conda env before any other package is installed there);
docs/architecture.md maps the modules; the version is [project] version in tooling/pyproject.toml.
"""

from pathlib import Path as _Path

# Where this package lies (tooling/src) and the tooling folder around it: the engine and the GPU
# check run from here, never from an install in the project's conda env.
SRC_DIR = _Path(__file__).resolve().parent.parent
TOOLING_DIR = SRC_DIR.parent
