"""Env variables stored in a conda env, as ``conda env config vars set`` stores them.

conda, mamba 2 and micromamba 2 apply ``conda-meta/state``'s ``env_vars`` on activation and on
``run``. Writing the file directly works for all three, and on the lock path, where
environment.yml's ``variables:`` never reach the env (conda-lock drops them).

Standard library only: it runs with the env's own interpreter right after the env is created.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path


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
    current = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".state.")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(merged_state(current, variables), handle, indent=2)
    os.replace(tmp, path)
    return path


def main(argv: list[str] | None = None) -> int:
    """``python -m lockstep.envvars --prefix P NAME=VALUE...``"""
    parser = argparse.ArgumentParser(prog="python -m lockstep.envvars")
    parser.add_argument("--prefix", required=True, help="the conda env")
    parser.add_argument("assignments", nargs="+", metavar="NAME=VALUE")
    args = parser.parse_args(argv)
    pairs = dict(a.split("=", 1) for a in args.assignments if "=" in a)
    if len(pairs) != len(args.assignments):
        parser.error("each assignment must be NAME=VALUE")
    print(f"lockstep: set {', '.join(sorted(pairs))} in {set_env_vars(Path(args.prefix), pairs)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
