"""Lockstep: a conda + Poetry environment that is locked on both sides.

The package holds every piece of logic that needs no shell: parsing specs and locks, mapping
conda names to PyPI names, computing pins and comparing locks. It returns data; tasks.py turns
arguments into commands and prints.

Only the standard library may be imported at this level and in ``lockstep.core`` (the engine and
the installer, which run in a fresh conda env before any other package is installed there);
docs/architecture.md maps the modules.
"""

__version__ = "0.1.0"
