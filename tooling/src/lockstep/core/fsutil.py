"""File reads and writes that fail in one line and never leave a half-written file behind.

Standard library only: lockstep.core.envvars imports it inside a freshly created env.
"""

from __future__ import annotations

import contextlib
import difflib
import errno
import hashlib
import os
import secrets
import shutil
import stat
from collections.abc import Mapping, Sequence
from pathlib import Path

from lockstep.core.errors import LockstepError

# What open() asks for; the kernel takes the umask (and a default ACL) off, as for any editor.
# tempfile.mkstemp asks for 0600, which made every new lock file private under umask 022.
_NEW_FILE_MODE = 0o666


def user_cache_dir(environ: Mapping[str, str] = os.environ) -> Path:
    """``$XDG_CACHE_HOME/lockstep`` (default ``~/.cache/lockstep``): what runs remember for the
    next one. Nothing in it is trusted without a check, and losing it costs only time."""
    base = environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "lockstep"


def file_digest(path: Path, algorithm: str = "sha256") -> str:
    """The hex digest of a file's bytes, read in chunks (conda archives are large)."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, algorithm).hexdigest()


def read_text(path: Path) -> str:
    """The text of a UTF-8 file; any other encoding or an unreadable file is a LockstepError.

    FileNotFoundError propagates: each caller knows what the file is for and how to create it.
    """
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise LockstepError(describe_os_error(exc, path, action="read")) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise LockstepError(
            f"{path}: not UTF-8 (byte 0x{data[exc.start]:02x} on line {line}); "
            "save it as UTF-8 and run again"
        ) from None


def describe_os_error(exc: OSError, path: Path | str | None = None, action: str = "write") -> str:
    """One line for an OSError: what failed, on which file, and what to do about it.

    ``action`` is "write" or "read"; neither changes a file, so both end "nothing was changed".
    """
    where = str(path if path is not None else exc.filename if exc.filename else "a file")
    unchanged = "nothing was changed"
    code = exc.errno
    if code in (errno.ENOSPC, errno.EDQUOT):
        doing = {"write": "writing", "read": "reading"}.get(action, action)
        return f"no space left {doing} {where}; free space and run again; {unchanged}"
    if code in (errno.EACCES, errno.EPERM):
        able = {"write": "writable", "read": "readable"}.get(action, f"{action}able")
        return (
            f"cannot {action} {where}: permission denied; make it and its folder {able} for "
            f"you (chmod u+{action[0]}) or run as their owner; {unchanged}"
        )
    if code == errno.EROFS:
        return (
            f"cannot {action} {where}: read-only file system; run in a writable copy of the "
            f"project; {unchanged}"
        )
    if code == errno.ENOENT:
        folder = Path(where).parent
        if not folder.is_dir():
            return (
                f"cannot {action} {where}: folder {folder} does not exist; create it or fix the "
                f"path in [tool.lockstep] of pyproject.toml; {unchanged}"
            )
        return f"cannot {action} {where}: no such file; check the path; {unchanged}"
    return f"cannot {action} {where}: {exc.strerror or exc}; {unchanged}"


def describe_error(exc: BaseException) -> str:
    """One phrase for an error: a LockstepError's message, or what an OSError means."""
    return describe_os_error(exc) if isinstance(exc, OSError) else str(exc)


def atomic_write_text(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` in one rename (see write_files_atomically)."""
    write_files_atomically({Path(path): text})


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` in one rename (see write_files_atomically)."""
    _replace_all({Path(path): data})


def replace_unsynced(path: Path, data: bytes, mode: int) -> None:
    """Replace ``path`` with ``data`` (mode ``mode``) in one rename, without an fsync: for the
    files of an env under a transaction, whose journal undoes a crash (a new inode, so a hard
    link to the old file, as a snapshot holds, keeps the old bytes)."""
    temp = _write_temp(path, data, sync=False)
    try:
        os.chmod(temp, mode)
        os.replace(temp, path)
    except BaseException:
        _unlink_quietly(temp)
        raise


def write_files_atomically(files: Mapping[Path, str]) -> None:
    """Write every file of ``files`` (path -> UTF-8 text), or none of them.

    Each new content is written to a temp file beside its target and synced first; then all are
    renamed into place. If any step fails, every target already replaced gets its original back
    (the same inode, kept as a hard link until the end), the temp files are removed and the one
    exception propagates, naming the target. A new file gets 0666 minus the umask; a replaced
    file keeps its mode; an existing file you cannot write is refused, as an editor would.
    """
    _replace_all({Path(path): text.encode("utf-8") for path, text in files.items()})


def _replace_all(contents: Mapping[Path, bytes]) -> None:
    temps: dict[Path, Path] = {}
    originals: dict[Path, Path | None] = {}
    replaced: list[Path] = []
    try:
        for target, data in contents.items():
            temps[target] = _named(_write_temp, target, data)
        for target in contents:
            originals[target] = _named(_keep_original, target)
        for target, temp in temps.items():
            _named(os.replace, temp, target, report=target)
            replaced.append(target)
    except BaseException as exc:
        _roll_back(replaced, originals, exc)
        for temp in temps.values():
            _unlink_quietly(temp)
        raise
    for kept in originals.values():
        if kept is not None:
            _unlink_quietly(kept)
    for folder in {target.parent for target in contents}:
        sync_folder(folder)


def _named(function, *args, report: Path | None = None):  # type: ignore[no-untyped-def]
    """Call ``function``; an OSError names the target, not a temp file beside it."""
    target = report if report is not None else args[0]
    try:
        return function(*args)
    except OSError as exc:
        if exc.errno is None or (exc.filename == str(target) and exc.filename2 is None):
            raise
        raise OSError(exc.errno, exc.strerror, str(target)) from exc


def _temp_path(target: Path, tag: str) -> Path:
    return target.parent / f".{target.name}.{tag}.{secrets.token_hex(4)}"


def _write_temp(target: Path, data: bytes, sync: bool = True) -> Path:
    """A file beside ``target`` holding ``data`` (synced unless ``sync`` is False), with the mode
    ``target`` should get."""
    try:
        mode: int | None = stat.S_IMODE(os.stat(target).st_mode)
    except FileNotFoundError:
        mode = None
    while True:
        temp = _temp_path(target, "new")
        try:
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, _NEW_FILE_MODE)
            break
        except FileExistsError:
            continue
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            if sync:
                handle.flush()
                os.fsync(handle.fileno())
        if mode is not None:
            if not os.access(target, os.W_OK):
                raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(target))
            os.chmod(temp, mode)
    except BaseException:
        _unlink_quietly(temp)
        raise
    return temp


def _keep_original(target: Path) -> Path | None:
    """A second name for ``target``'s current file, to put back if a later step fails."""
    if not os.path.lexists(target):
        return None
    kept = _temp_path(target, "orig")
    try:
        os.link(target, kept, follow_symlinks=False)
    except OSError:
        # A file system without hard links: a byte copy restores the same content and mode.
        shutil.copy2(target, kept, follow_symlinks=False)
    return kept


def _roll_back(
    replaced: list[Path], originals: Mapping[Path, Path | None], exc: BaseException
) -> None:
    for target in reversed(replaced):
        kept = originals[target]
        try:
            if kept is None:
                target.unlink()
            else:
                os.replace(kept, target)
        except OSError as failure:  # the kept copy stays: it may be the only one left
            exc.add_note(f"could not restore {target} ({failure}); its original is at {kept}")
    for target, kept in originals.items():
        if kept is not None and target not in replaced:
            _unlink_quietly(kept)


def _unlink_quietly(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink()


def sync_folder(folder: Path) -> None:
    """Make the renames durable: a rename lives in the folder's entry, not the file."""
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    # Some file systems refuse fsync on a folder; the rename itself is done by then.
    with contextlib.suppress(OSError):
        os.fsync(fd)
    os.close(fd)


def text_diff(old: str, new: str, path: str) -> str:
    """A unified diff of two versions of a file ('' when equal)."""
    return "".join(
        difflib.unified_diff(
            old.splitlines(keepends=True), new.splitlines(keepends=True), path, path
        )
    )


def move_and_write_atomically(
    moves: Sequence[tuple[Path, Path]], files: Mapping[Path, str]
) -> None:
    """Rename each path of ``moves`` (old -> new: one rename each, so a folder moves whole and
    its files keep their inodes), then write ``files`` (paths as they are after the moves) with
    write_files_atomically; or none of it.

    A target that exists is refused before anything moves (a rename would replace an empty
    folder). If a later step fails, or the run is interrupted, every move is undone in reverse
    order and the one exception propagates, naming the path.
    """
    for _, new in moves:
        if os.path.lexists(new):
            raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(new))
    moved: list[tuple[Path, Path]] = []
    try:
        for old, new in moves:
            _named(os.rename, old, new, report=old)
            moved.append((old, new))
        write_files_atomically(files)
    except BaseException as exc:
        for old, new in reversed(moved):
            try:
                os.rename(new, old)
            except OSError as failure:  # the content is intact, only at the new path
                exc.add_note(f"could not move {new} back to {old} ({failure}); move it by hand")
        raise
    for old, new in moved:
        sync_folder(old.parent)
        sync_folder(new.parent)
