"""uv for the tests and benchmarks: the binary from PyPI's wheel, repacked as a conda package.

conda-forge's `uv` package is that same binary under bin/uv; no conda channel is reachable here,
so the local channel gets one built at run time from the uv that is installed in this Python
(the `uv` wheel from PyPI), or from LOCKSTEP_TEST_UV. Nothing binary is committed.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from lockstep.core.variables import TEST_UV

from .channel import CondaPackage

UV_VAR = TEST_UV.name


def uv_binary() -> Path | None:
    """uv from LOCKSTEP_TEST_UV, else from the `uv` wheel installed in this Python, else None."""
    given = os.environ.get(UV_VAR)
    if given:
        return Path(given)
    try:
        import uv  # the PyPI wheel's module only knows where its binary is
    except ImportError:
        return None
    return Path(uv.find_uv_bin())


SKIP_REASON = (
    "uv is not installed in the test venv (the `uv` wheel from PyPI) and LOCKSTEP_TEST_UV is not "
    "set: set LOCKSTEP_TEST_UV=/path/to/uv to run the uv tests"
)


def uv_version(binary: Path) -> str:
    """`uv 0.13.9 (...)` -> 0.13.9."""
    answer = subprocess.run([binary, "--version"], capture_output=True, text=True, check=True)
    return answer.stdout.split()[1]


def uv_package(binary: Path) -> CondaPackage:
    """conda-forge's shape of uv: a linux-64 package holding bin/uv and nothing else."""
    return CondaPackage(
        name="uv",
        version=uv_version(binary),
        build="h0_0",
        subdir="linux-64",
        files={"bin/uv": binary.read_bytes()},
    )
