"""One way to run a real tool in the integration tests: argument list in, exit code asserted."""

from __future__ import annotations

import os
import shlex
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path


def run(
    cmd: Sequence[str | os.PathLike[str]],
    cwd: Path,
    env: Mapping[str, str],
    *,
    expect_rc: int | None = 0,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """Run cmd and assert its exit code (None: any non-zero), with stdout/stderr on failure."""
    args = [os.fspath(part) for part in cmd]
    proc = subprocess.run(
        args, cwd=cwd, env=dict(env), capture_output=True, text=True, timeout=timeout
    )
    ok = proc.returncode != 0 if expect_rc is None else proc.returncode == expect_rc
    wanted = "non-zero" if expect_rc is None else str(expect_rc)
    assert ok, (
        f"`{shlex.join(args)}` exited {proc.returncode}, expected {wanted}\n"
        f"--- stdout ---\n{proc.stdout}\n--- stderr ---\n{proc.stderr}"
    )
    return proc
