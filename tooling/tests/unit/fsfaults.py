"""Real file-system faults for the tests: a umask, a full disk, a user who may not write.

Each fault is the kernel's, not a mock: a tmpfs of a few KiB fills up for real (ENOSPC), and a
read-only file or folder is refused to an unprivileged user (EACCES). Where the machine does not
allow the fault (no permission to mount, no user to switch to), the test skips with the reason.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from tests.paths import PROJECT, SRC, TOOLING

REPO = PROJECT
# The user that owns nothing: root's writes go through any mode, so the permission tests run the
# writing code as this user when the suite runs as root (as in a container).
NOBODY = 65534


@contextlib.contextmanager
def umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def snapshot(folder: Path) -> dict[str, tuple[bytes, int, int]]:
    """Every entry below ``folder``: bytes, permission bits and inode, so a restored file must
    be the original itself, not a copy."""
    found = {}
    for path in sorted(folder.rglob("*")):
        info = path.lstat()
        data = path.read_bytes() if path.is_file() else b""
        found[path.relative_to(folder).as_posix()] = (data, stat.S_IMODE(info.st_mode), info.st_ino)
    return found


@contextlib.contextmanager
def tmpfs(mountpoint: Path, size: str = "64k") -> Iterator[Path]:
    """A small tmpfs at ``mountpoint``; skips the test where mounting is not permitted."""
    import pytest

    mountpoint.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mountpoint)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs for the full-disk case: {done.stderr.strip()}")
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", str(mountpoint)], check=True)


def fill(folder: Path) -> Path:
    """Write a filler file until the file system is full (ENOSPC); return it."""
    filler = folder / "filler"
    chunk = b"\0" * 4096
    with open(filler, "wb", buffering=0) as handle, contextlib.suppress(OSError):
        while True:
            handle.write(chunk)
    with open(filler, "ab", buffering=0) as handle, contextlib.suppress(OSError):
        while True:  # the last partial block
            handle.write(b"\0")
    return filler


@contextlib.contextmanager
def unprivileged_folder() -> Iterator[Path]:
    """A folder the unprivileged user owns (pytest's tmp_path is private to root)."""
    folder = Path(tempfile.mkdtemp(prefix="lockstep-perm-"))
    try:
        os.chmod(folder, 0o755)
        if os.geteuid() == 0:
            os.chown(folder, NOBODY, NOBODY)
        yield folder
    finally:
        for path in [folder, *folder.rglob("*")]:
            with contextlib.suppress(OSError):
                os.chmod(path, 0o755 if path.is_dir() else 0o644)
        shutil.rmtree(folder)


def give_away(folder: Path) -> None:
    """Make everything below ``folder`` the unprivileged user's (when we are root)."""
    if os.geteuid() == 0:
        for path in [folder, *folder.rglob("*")]:
            os.lchown(path, NOBODY, NOBODY)


_READABLE: list[str] = []
# What the unprivileged process imports besides the standard library (tasks.py and its imports).
# (The code the tests run there imports tests.unit.test_tasks, and so pytest.)
_THIRD_PARTY = (
    "invoke",
    "tomlkit",
    "yaml",
    "_yaml",
    "pytest",
    "_pytest",
    "pluggy",
    "iniconfig",
    "packaging",
    "py",
)


def _readable_code_path() -> str:
    """PYTHONPATH of a copy of the code that any user may read.

    The checkout itself may sit below a folder only its owner can enter (a clone made in
    `mktemp -d`, 0700): the unprivileged user could then import nothing from it. So src/,
    tasks.py and the few packages tasks.py imports are copied once into a world-readable folder.
    """
    if not _READABLE:
        import atexit
        import importlib.util

        mirror = Path(tempfile.mkdtemp(prefix="lockstep-code-"))
        atexit.register(shutil.rmtree, mirror, True)
        ignore = shutil.ignore_patterns("__pycache__")
        # The project's layout: tasks.py at the top puts tooling/src on its own path.
        shutil.copytree(SRC, mirror / "tooling" / "src", ignore=ignore)
        shutil.copy2(PROJECT / "tasks.py", mirror / "tasks.py")
        for module in [*TOOLING.glob("tests/*.py"), *TOOLING.glob("tests/unit/*.py")]:
            target = mirror / module.relative_to(TOOLING)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(module, target)
        for name in _THIRD_PARTY:
            spec = importlib.util.find_spec(name)
            if spec is None:
                continue
            if spec.submodule_search_locations:
                source = Path(next(iter(spec.submodule_search_locations)))
                shutil.copytree(source, mirror / "site" / name, ignore=ignore)
            elif spec.origin:
                (mirror / "site").mkdir(exist_ok=True)
                shutil.copy2(spec.origin, mirror / "site" / Path(spec.origin).name)
        # Their metadata too: invoke (and pytest) read their own version at import.
        from importlib import metadata

        for dist in ("invoke", "tomlkit", "PyYAML", "pytest", "pluggy", "iniconfig", "packaging"):
            with contextlib.suppress(metadata.PackageNotFoundError):
                info = Path(str(metadata.distribution(dist)._path))  # type: ignore[attr-defined]
                shutil.copytree(info, mirror / "site" / info.name, ignore=ignore)
        for path in [mirror, *mirror.rglob("*")]:
            os.chmod(path, 0o755 if path.is_dir() else 0o644)
        _READABLE.append(f"{mirror / 'tooling' / 'src'}:{mirror}:{mirror / 'site'}")
    return _READABLE[0]


def run_unprivileged(code: str, cwd: Path) -> dict:
    """Run ``code`` as a user who cannot override modes; its last line of output is JSON."""
    import pytest

    command = [sys.executable, "-c", code]
    if os.geteuid() == 0:
        # setpriv, not subprocess's user=: the latter cannot exec this interpreter here.
        if shutil.which("setpriv") is None:
            pytest.skip("running as root and setpriv (util-linux) is not installed")
        ids = [f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
        command = ["setpriv", *ids, *command]
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": _readable_code_path()}
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])
