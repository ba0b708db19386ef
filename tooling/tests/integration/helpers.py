"""One way to run a real tool in the integration tests: argument list in, exit code asserted."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from lockstep.core import variables


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


# Variables of the caller's shell that would leak an env, a config or a cache into a run.
# (MAKEFLAGS and MAKELEVEL of a `make test` around the suite turn an inner make into make[1],
# which prints its directory changes.)
LEAKY_PREFIXES = (
    "CONDA_",
    "MAMBA_",
    "POETRY_",
    "PIP_",
    "VIRTUAL_ENV",
    "PYTHON",
    "MAKEFLAGS",
    "MAKELEVEL",
    "MFLAGS",
    # The variant choice and the driver probes (CI sets VARIANT=cpu; tests fake their drivers).
    "VARIANT",
    *(v.name for v in (variables.LIBCUDA, variables.NVIDIA_SMI, variables.NVIDIA_PROC)),
)


def isolated_env(state: Path, standin_bin: Path, index_url: str, root_var: str) -> dict[str, str]:
    """Variables for a tool run: stand-ins first on PATH, every cache and config under ``state``.

    The test venv's bin follows the stand-ins, so conda-lock, poetry and invoke resolve to the
    tested ones; pip and Poetry see only the local index.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(LEAKY_PREFIXES)}
    venv_bin = str(Path(sys.executable).parent)
    env.update(
        PATH=os.pathsep.join([str(standin_bin), venv_bin, env.get("PATH", "")]),
        HOME=str(state / "home"),
        XDG_CACHE_HOME=str(state / "xdg-cache"),
        XDG_CONFIG_HOME=str(state / "xdg-config"),
        XDG_DATA_HOME=str(state / "xdg-data"),
        CONDA_EXE=str(standin_bin / "conda"),
        POETRY_CACHE_DIR=str(state / "poetry-cache"),
        POETRY_CONFIG_DIR=str(state / "poetry-config"),
        POETRY_DATA_DIR=str(state / "poetry-data"),
        POETRY_NO_INTERACTION="1",
        # A keyring backend probing D-Bus can stall Poetry for seconds.
        PYTHON_KEYRING_BACKEND="keyring.backends.null.Keyring",
        PIP_CACHE_DIR=str(state / "pip-cache"),
        # The host's pip.conf points at other indexes; only the local one may be used.
        PIP_CONFIG_FILE=os.devnull,
        PIP_INDEX_URL=index_url,
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        PYTHONNOUSERSITE="1",
        # A native crash in a tool (rattler, say) then leaves a traceback in the failure message.
        PYTHONFAULTHANDLER="1",
    )
    env[root_var] = str(state / "conda-root")
    (state / "home").mkdir(parents=True, exist_ok=True)
    return env


def clone_worktree(repo: Path, dest: Path) -> bool:
    """A clone of ``repo`` at ``dest`` holding its working tree as it is: a developer's
    uncommitted work is what gets tested, not HEAD. True when the tree had such work."""
    run(["git", "clone", "--quiet", str(repo), str(dest)], dest.parent, os.environ)
    changed = run(["git", "status", "--porcelain"], repo, os.environ).stdout
    if not changed.strip():
        return False
    files = run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], repo, os.environ)
    for name in files.stdout.splitlines():
        source, target = repo / name, dest / name
        if source.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(source.read_bytes())
            os.chmod(target, source.stat().st_mode)
        elif target.exists():
            target.unlink()
    return True
