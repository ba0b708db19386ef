"""engine.PreparedInstall with the child's real side (rattlerinstall.await_prefix and _refuse):
a child started before the env is found touches nothing until it is handed the prefix, gets the
env's lock with it, and a child that was not needed exits having done nothing."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

import pytest

from lockstep.core import commands, engine
from lockstep.core.errors import LockstepError

SRC = str(Path(engine.__file__).resolve().parents[2])

# The child: the protocol of lockstep.core.rattlerinstall, with the install replaced by a note of
# what it was given (the prefix, and whether it holds the env's lock: flock on its own open of
# the lock file must fail while the fd it was handed is open).
CHILD = r"""
import fcntl, os, sys
from pathlib import Path
from lockstep.core import rattlerinstall
fd, out, mode = int(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
if mode == "refuse":
    sys.exit(rattlerinstall._refuse(fd, "the lock's channel cannot be read; nothing was changed"))
if mode == "crash":
    sys.exit(7)
prefix = rattlerinstall.await_prefix(fd)
if prefix is None:
    out.write_text("nothing asked")
    sys.exit(0)
held = rattlerinstall._HELD_FDS
with open(sys.argv[4], "a") as other:
    try:
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
        locked = "lock free"
    except BlockingIOError:
        locked = "lock held elsewhere"
out.write_text(f"{prefix}|{len(held)}|{locked}")
"""


@pytest.fixture
def child(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    out = tmp_path / "out.txt"
    lock_file = tmp_path / "env.lock"
    lock_file.touch()

    def start(mode: str = "install") -> engine.PreparedInstall:
        def prepare(python: str, fd: int, lock: str) -> list[str]:
            return [python, str(script), str(fd), str(out), mode, str(lock_file)]

        monkeypatch.setattr(commands, "rattler_prepare", prepare)
        return engine.PreparedInstall("/some/lock", {**os.environ, "PYTHONPATH": SRC})

    return start, out, lock_file


def test_the_child_waits_for_the_prefix_and_gets_the_env_lock(child, tmp_path: Path) -> None:
    start, out, lock_file = child
    prepared = start()
    prepared.ready()
    assert not out.exists()  # ready, and nothing done yet
    with open(lock_file, "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        engine._LOCK_FD.append(held.fileno())
        try:
            prepared.go(tmp_path / "my envs" / "ml")
        finally:
            engine._LOCK_FD.clear()
    assert out.read_text() == f"{tmp_path / 'my envs' / 'ml'}|1|lock held elsewhere"
    prepared.close()  # after go: nothing left to do


def test_a_child_not_needed_is_ended_having_done_nothing(child) -> None:
    start, out, _lock = child
    prepared = start()
    prepared.ready()
    proc = prepared.proc
    prepared.close()
    assert proc is not None and proc.returncode is not None  # ended and reaped
    assert not out.exists() or "|" not in out.read_text()  # it was given no prefix


def test_closed_before_it_is_ready_it_touches_nothing(child) -> None:
    start, out, _lock = child
    start().close()
    assert not out.exists() or "|" not in out.read_text()


@pytest.mark.parametrize(
    ("mode", "message"),
    [
        ("refuse", r"^the lock's channel cannot be read; nothing was changed$"),  # its one line
        ("crash", r"^the py-rattler installer stopped \(exit 7; its reason is above\)$"),
    ],
)
def test_a_child_that_cannot_install_is_one_line_before_anything(
    child, mode: str, message: str
) -> None:
    start, out, _lock = child
    prepared = start(mode)
    with pytest.raises(LockstepError, match=message):
        prepared.ready()
    prepared.close()
    assert not out.exists()


def test_the_prepared_command_is_the_module_with_the_fd() -> None:
    assert commands.rattler_prepare("/v/bin/python", 5, "/p/conda.lock") == [
        "/v/bin/python",
        "-s",
        "-m",
        "lockstep.core.rattlerinstall",
        "--prefix-from-fd",
        "5",
        "--lock",
        "/p/conda.lock",
    ]
