"""Names of packages: PEP 503 normalisation and the conda -> PyPI mapping."""

from __future__ import annotations

import re
from collections.abc import Mapping

# conda-forge names whose Python distribution is called differently on PyPI, or that are not a
# Python distribution at all (""). Settings ([tool.lockstep.pypi-names]) extend and override this.
DEFAULT_PYPI_NAMES: Mapping[str, str] = {
    "pytorch": "torch",
    "pytorch-gpu": "",
    "pytorch-cpu": "",
    "python": "",
    "cuda-version": "",
    "libtorch": "",
    # C/C++ libraries whose names a PyPI project could also use.
    "nccl": "",
    "cudnn": "",
    "magma": "",
    "mkl": "",
    "openblas": "",
    "ffmpeg": "",
    "sleef": "",
}

_NAME_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?$")
_REQUIREMENT_NAME_RE = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def normalize(name: str) -> str:
    """PEP 503 normalised form: lower case, runs of ``-_.`` folded to ``-``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def is_valid_distribution_name(name: str) -> bool:
    """True for a name that PyPI would accept."""
    return bool(_NAME_RE.match(name))


def requirement_name(requirement: str) -> str:
    """The distribution name at the start of a PEP 508 requirement string."""
    match = _REQUIREMENT_NAME_RE.match(requirement)
    if not match:
        raise ValueError(f"not a requirement: {requirement!r}")
    return match.group(1)


def conda_to_pypi(conda_name: str, overrides: Mapping[str, str] | None = None) -> str | None:
    """The PyPI distribution name of a conda package, or None when it is not one.

    Names not in the mapping are taken to be the same on both sides, which holds for nearly
    every conda-forge Python package (numpy, filelock, jinja2, ...).
    """
    table = {**DEFAULT_PYPI_NAMES, **(overrides or {})}
    mapped = table.get(conda_name, conda_name)
    return normalize(mapped) if mapped else None
