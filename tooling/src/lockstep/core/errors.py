"""The one exception type the tasks turn into a one-line message and a non-zero exit."""

import os

from lockstep.core import variables


class LockstepError(Exception):
    """Something the user can fix: the message says what is wrong and how to fix it.

    ``reason``: what the tool that failed said about why (a solver's explanation), printed
    above the one line."""

    def __init__(self, message: str, reason: str = "") -> None:
        super().__init__(message)
        self.reason = reason


def verbose() -> bool:
    """Whether the user asked for tools' whole output (LOCKSTEP_VERBOSE=1)."""
    return os.environ.get(variables.VERBOSE.name, "") not in ("", "0")
