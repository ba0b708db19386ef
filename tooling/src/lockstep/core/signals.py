"""Signals, one-line output and the fault tests' hold, for every transaction of the tooling (the
engine, the conda installer run as its child, upgrade): standard library only, and small, so a
module that needs them does not import the engine.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lockstep.core import variables

HANDLED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)


class Interrupted(BaseException):
    """A signal arrived; the transaction is undone, then the process exits 128 + signum."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def say(message: str, err: bool = False) -> None:
    """Print one line; a closed terminal (SSH gone) must not stop a rollback."""
    with contextlib.suppress(OSError, ValueError):
        stream = sys.stderr if err else sys.stdout
        stream.write(message + "\n")
        stream.flush()


class _Signals:
    """While armed, a handled signal raises Interrupted; while deferred, it is remembered."""

    def __init__(self) -> None:
        self.pending: int | None = None
        self.deferring = False
        self._old: dict[int, Any] = {}

    def _handler(self, signum: int, _frame: object) -> None:
        if not self.deferring:
            raise Interrupted(signum)
        if self.pending is None:
            self.pending = signum

    def arm(self) -> None:
        for signum in HANDLED_SIGNALS:
            self._old[signum] = signal.signal(signum, self._handler)

    def disarm(self) -> None:
        for signum, old in self._old.items():
            signal.signal(signum, old)
        self._old.clear()

    @contextlib.contextmanager
    def deferred(self) -> Iterator[None]:
        """Nothing interrupts the block (an undo, a commit); a signal is acted on after it."""
        before, self.deferring = self.deferring, True
        try:
            yield
        finally:
            self.deferring = before
        if self.pending is not None and not self.deferring:
            signum, self.pending = self.pending, None
            raise Interrupted(signum)


SIGNALS = _Signals()


def hold(phase: str) -> None:
    """Test seam (tests/integration/test_faults.py): with LOCKSTEP_ENGINE_HOLD=phase:DIR,
    announce the phase and wait for its release file."""
    wanted, _, folder = os.environ.get(variables.ENGINE_HOLD.name, "").partition(":")
    if wanted != phase or not folder:
        return
    Path(folder, f"{phase}.reached").write_text(str(os.getpid()))
    while not Path(folder, f"{phase}.release").exists():
        time.sleep(0.02)
