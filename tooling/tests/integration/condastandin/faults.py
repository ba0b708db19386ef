"""Fault injection for the conda stand-in: failing, hanging and gated commands.

A command is named as the stand-in's dispatcher names it, spaces as dashes: `env-list`,
`info`, `create`, `env-create`, `install`, `list`, `run`, `remove`, `version`, ...

    LOCKSTEP_STANDIN_FAIL   comma list; `name` fails every call of that command, `name:N` only
                            the first N (counted in ROOT/.standin-calls/<name>). A failure is
                            exit 1 with `CondaError: ...` on stderr (and conda's JSON error on
                            stdout under --json), as real conda fails.
    LOCKSTEP_STANDIN_HANG   comma list; the command sleeps until a signal kills it.
    LOCKSTEP_STANDIN_GATE   comma list; the command writes ROOT/gate-<name>.reached and waits
                            until ROOT/gate-<name>.release exists (polled every 20 ms). For
                            commands that install (create, env-create, install) the gate opens
                            after the old prefix was deleted and part of the packages were
                            installed, so a PARTIAL env exists while it waits; for the others
                            the gate is at the start.

While hanging or gated, every signal has its default action (SIGINT included), so INT, TERM,
HUP and QUIT kill the process by that signal, like a frontend killed mid-way.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

FAIL_VAR = "LOCKSTEP_STANDIN_FAIL"
HANG_VAR = "LOCKSTEP_STANDIN_HANG"
GATE_VAR = "LOCKSTEP_STANDIN_GATE"
GATE_POLL_S = 0.02
INSTALLING = frozenset({"create", "env-create", "install"})


class InjectedFailure(Exception):
    """An injected failure of one command (the stand-in reports it as conda's CondaError)."""


def _names(var: str) -> dict[str, int | None]:
    """`a,b:2` -> {"a": None, "b": 2}: None fails always, N the first N calls."""
    found: dict[str, int | None] = {}
    for item in os.environ.get(var, "").split(","):
        name, _, count = item.strip().partition(":")
        if name:
            found[name] = int(count) if count else None
    return found


def _count_call(root: Path, command: str) -> int:
    """This call's number (1, 2, ...) among the calls of `command` under this root."""
    counter = root / ".standin-calls" / command
    counter.parent.mkdir(parents=True, exist_ok=True)
    calls = int(counter.read_text() or 0) + 1 if counter.is_file() else 1
    counter.write_text(f"{calls}\n")
    return calls


def _default_signals() -> None:
    # Python turns SIGINT into KeyboardInterrupt; a killed frontend dies by the signal itself.
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT):
        signal.signal(sig, signal.SIG_DFL)


def before_command(root: Path, command: str) -> None:
    """Apply FAIL, HANG and (for non-installing commands) GATE to `command`."""
    fail = _names(FAIL_VAR)
    if command in fail:
        limit = fail[command]
        if limit is None or _count_call(root, command) <= limit:
            raise InjectedFailure(f"injected failure of `{command}` ({FAIL_VAR})")
    if command in _names(HANG_VAR):
        _default_signals()
        while True:
            time.sleep(3600)
    if command not in INSTALLING:
        gate(root, command)


def gates(command: str) -> bool:
    return command in _names(GATE_VAR)


def gate(root: Path, command: str) -> None:
    """Block at the gate of `command` if LOCKSTEP_STANDIN_GATE names it."""
    if not gates(command):
        return
    _default_signals()
    (root / f"gate-{command}.reached").write_text(f"{os.getpid()}\n")
    release = root / f"gate-{command}.release"
    while not release.exists():
        time.sleep(GATE_POLL_S)
