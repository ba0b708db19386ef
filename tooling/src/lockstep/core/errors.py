"""The one exception type the tasks turn into a one-line message and a non-zero exit."""


class LockstepError(Exception):
    """Something the user can fix: the message says what is wrong and how to fix it."""
