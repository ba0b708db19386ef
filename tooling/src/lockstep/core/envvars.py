"""Env variables stored in a conda env, as ``conda env config vars set`` stores them.

conda, mamba 2 and micromamba 2 apply ``conda-meta/state``'s ``env_vars`` on activation and on
``run``. Writing the file directly works for all three, and on the lock path, where
environment.yml's ``variables:`` never reach the env (conda-lock drops them).

Standard library only: it runs with the env's own interpreter right after the env is created.
The file is written like every file of the project (lockstep.core.fsutil): a new one is readable by
the other users of a shared env as the umask allows, an existing one keeps its mode.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from pathlib import Path

from lockstep.core.errors import LockstepError
from lockstep.core.fsutil import atomic_write_text, describe_os_error, read_text


def state_path(prefix: Path) -> Path:
    """Where conda keeps an env's variables."""
    return Path(prefix) / "conda-meta" / "state"


def merged_state(current: Mapping[str, object], variables: Mapping[str, str]) -> dict[str, object]:
    """The state document with ``variables`` set and everything else kept."""
    env_vars = dict(current.get("env_vars", {}) or {})  # type: ignore[call-overload]
    env_vars.update(variables)
    return {**current, "env_vars": env_vars}


def set_env_vars(prefix: Path, variables: Mapping[str, str]) -> Path:
    """Set ``variables`` in the env at ``prefix``, atomically."""
    path = state_path(prefix)
    try:
        current = json.loads(read_text(path))
    except FileNotFoundError:
        current = {}
    except ValueError:
        raise LockstepError(
            f"{path}: not valid JSON; fix or delete it (it only holds the env's variables)"
        ) from None
    if not isinstance(current, dict):
        raise LockstepError(f"{path}: expected a JSON object; fix or delete it")
    atomic_write_text(path, json.dumps(merged_state(current, variables), indent=2))
    return path


def main(argv: list[str] | None = None) -> int:
    """``python -m lockstep.core.envvars --prefix P NAME=VALUE...``"""
    parser = argparse.ArgumentParser(prog="python -m lockstep.core.envvars")
    parser.add_argument("--prefix", required=True, help="the conda env")
    parser.add_argument("assignments", nargs="+", metavar="NAME=VALUE")
    args = parser.parse_args(argv)
    pairs = dict(a.split("=", 1) for a in args.assignments if "=" in a)
    if len(pairs) != len(args.assignments):
        parser.error("each assignment must be NAME=VALUE")
    try:
        path = set_env_vars(Path(args.prefix), pairs)
    except LockstepError as exc:
        parser.exit(1, f"lockstep: error: {exc}\n")
    except OSError as exc:
        parser.exit(1, f"lockstep: error: {describe_os_error(exc)}\n")
    print(f"lockstep: set {', '.join(sorted(pairs))} in {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
