"""`lockstep-check` / `python -m lockstep.precommit`: the findings of `invoke check` without
invoke's start-up, for the pre-commit hook and CI.

One implementation: `invoke check` calls ``run`` too, so both print the same text and exit the
same way. Imports only the checks and their readers (no invoke, no tasks.py).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from lockstep.core.errors import LockstepError
from lockstep.core.settings import Settings


def run(project: Path, as_json: bool) -> tuple[str, int]:
    """The report of the checks on ``project`` and the exit code: 1 when anything was found."""
    from lockstep.check import run_checks
    from lockstep.core.settings import load_settings
    from lockstep.findings import to_json, to_table

    settings = load_settings(project)
    findings = run_checks(project, settings)
    if as_json:
        return to_json("check", findings), 1 if findings else 0
    return f"{to_table('check', findings)}\n{cooldown_policy(settings)}", 1 if findings else 0


def cooldown_policy(settings: Settings) -> str:
    """The release-age policy that lock and update apply, in one line."""
    cooldown = settings.cooldown()
    if cooldown is None:
        return "cooldown: none (exclude-newer in [tool.lockstep], e.g. '7d', holds back releases)"
    return f"cooldown: {cooldown.describe()}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="lockstep-check",
        description="Check the spec files and both locks: stale, conflicting, risky (no solve).",
    )
    parser.add_argument("--json", action="store_true", help="print the findings as JSON")
    parser.add_argument("--project-dir", default=".", help="the project (default: .)")
    args = parser.parse_args(argv)
    try:
        text, code = run(Path(args.project_dir).absolute(), args.json)
    except LockstepError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        from lockstep.core.fsutil import describe_os_error

        print(f"error: {describe_os_error(exc)}", file=sys.stderr)
        return 1
    print(text)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
