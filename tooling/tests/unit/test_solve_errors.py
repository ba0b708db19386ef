"""A failed solve ends in the frontend's reason and one line, not conda-lock's traceback.

conda-lock's own solve runs against a replaying `conda` that answers with real conda 26.7.1's
recorded output (tests/data/frontends/conda-26.7.1, PROVENANCE there): what conda-lock prints
is then exactly what a user sees, and the reason is read back out of it."""

from __future__ import annotations

import contextlib
import io
import subprocess
import traceback
from pathlib import Path

import pytest
from tests.paths import TOOLING

from lockstep.lifecycle import solver_reason

RECORDED = TOOLING / "tests" / "data" / "frontends" / "conda-26.7.1"


def _conda_lock_output(tmp_path: Path, recorded: str) -> str:
    """conda-lock's stderr and traceback when conda answers as in ``recorded``."""
    from conda_lock.conda_solver import solve_specs_for_arch
    from conda_lock.models.channel import Channel

    conda = tmp_path / "conda"
    stdout = RECORDED / f"{recorded}.stdout"
    rc = (RECORDED / f"{recorded}.rc").read_text().strip()
    conda.write_text(f"#!/bin/sh\ncat '{stdout}'\nexit {rc}\n")
    conda.chmod(0o755)
    err = io.StringIO()
    channels = [Channel.from_string("file:///tmp/channel")]
    with (
        contextlib.redirect_stderr(err),
        contextlib.redirect_stdout(err),
        pytest.raises(subprocess.CalledProcessError),
    ):
        try:
            solve_specs_for_arch(str(conda), channels, ["x"], "linux-64")
        except subprocess.CalledProcessError:
            traceback.print_exc(file=err)  # as conda-lock's CLI ends: the traceback
            raise
    return err.getvalue()


def test_an_unsatisfiable_spec_gives_condas_own_explanation(tmp_path: Path) -> None:
    output = _conda_lock_output(tmp_path, "e6-dry-run-conflict")
    assert "Traceback (most recent call last)" in output and len(output.splitlines()) > 40
    reason = solver_reason(output)
    assert reason.splitlines()[0] == (
        "  The following specifications were found to be incompatible with each other:"
    )
    assert "  libcudart=12.9 -> cuda-version[version='>=12.9,<12.10']" in reason.splitlines()
    assert "Traceback" not in reason and "Command:" not in reason


def test_a_missing_package_names_it(tmp_path: Path) -> None:
    reason = solver_reason(_conda_lock_output(tmp_path, "e2-dry-run-unsat"))
    assert reason.splitlines()[:3] == [
        "  The following packages are not available from current channels:",
        "",
        "    - cuda-version=99",
    ]


def test_without_condas_report_the_last_error_line() -> None:
    output = "Traceback (most recent call last):\n  File x\nValueError: bad spec 'py thon'\n"
    assert solver_reason(output) == "  ValueError: bad spec 'py thon'"
