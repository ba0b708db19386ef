"""The conda side of an env installed by py-rattler (pixi's engine) instead of a frontend.

conda's ``create --prefix --file <explicit lock>`` costs a start-up, a link prepare and verify and
a full relink of every package (6.8 s warm for 150 packages where rattler takes 0.77 s, 1.15x
a ``cp -al`` of the finished tree, on a 2-core machine). rattler downloads, extracts and links
each package as one pipeline, and installs into an existing env as a transaction of only what
differs.

What it writes must be what conda, mamba and micromamba read as their own env:
- ``conda-meta/<name>-<version>-<build>.json`` records (rattler writes conda's format, with
  ``paths_data`` sha256 per file, which ``conda doctor`` and ``invoke doctor`` check), made
  readable as the umask allows (rattler creates them 0600: other users of a shared env could not
  list it);
- ``conda-meta/history``: conda lists only folders that have it as envs; a revision per
  transaction that changed something, as conda writes it (a dated block of ``-``/``+``
  ``channel/subdir::name-version-build`` lines and the specs), replaced, never appended in place;
- ``~/.conda/environments.txt``: the prefix registered as conda's ``register_env`` does.

py-rattler is imported here only, and only when the engine chose it (:func:`choose`): the rest of
the engine runs on the standard library alone, and without py-rattler the frontend path is used.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from lockstep.core import variables
from lockstep.core.errors import LockstepError
from lockstep.core.explicit import ExplicitLock, LockEntry, local_archive, read_explicit
from lockstep.core.fsutil import atomic_write_text, describe_error, replace_unsynced
from lockstep.core.signals import hold

RATTLER = "rattler"
FRONTEND = "frontend"


def importable() -> bool:
    """py-rattler can be imported by this Python (without importing it: that costs 0.1 s)."""
    return importlib.util.find_spec("rattler") is not None


def choose(setting: str, can_import: bool) -> str:
    """``rattler`` or ``frontend`` for the [tool.lockstep] ``installer`` setting."""
    if setting == FRONTEND:
        return FRONTEND
    if setting == RATTLER and not can_import:
        raise LockstepError(
            "installer = 'rattler', but py-rattler does not import in this Python; run "
            "`make .venv/.installed` (the tooling venv has it), or set installer = 'frontend' in "
            "[tool.lockstep]; nothing was changed"
        )
    return RATTLER if can_import else FRONTEND


def describe() -> str:
    """py-rattler and its version, for messages and conda-meta/history."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"py-rattler {version('py-rattler')}"
    except PackageNotFoundError:
        return "py-rattler"


# --------------------------------------------------------------------------- records


def _local_folder(entry: LockEntry) -> Path | None:
    """The subdir folder of a ``file://`` channel, or None for a remote one."""
    channel = local_archive(entry.channel)
    return channel / entry.subdir if channel is not None else None


def lock_records(lock: ExplicitLock) -> list[Any]:
    """The lock's packages as rattler records, each from its channel's repodata (a folder of
    archives without one, an offline bundle's: from the archive's own info/index.json, as conda
    reads an explicit URL); the lock's md5 must be the channel's."""
    import asyncio

    import rattler

    by_channel: dict[str, list[LockEntry]] = {}
    from_archive: list[LockEntry] = []
    for entry in lock.entries:
        folder = _local_folder(entry)
        if folder is not None and not (folder / "repodata.json").is_file():
            from_archive.append(entry)
        else:
            by_channel.setdefault(entry.channel, []).append(entry)
    gateway = rattler.Gateway()

    async def query(channel: str, entries: list[LockEntry]) -> list[Any]:
        subdirs = [rattler.Subdir(s) for s in sorted({e.subdir for e in entries})]
        names = sorted({e.name for e in entries})
        found = await gateway.query([channel], subdirs, names, recursive=False)
        return [r for group in found for r in group]

    async def gather() -> tuple[list[list[Any]], list[Any]]:
        queried = asyncio.gather(*(query(c, es) for c, es in by_channel.items()))
        archives = asyncio.gather(
            *(rattler.RepoDataRecord.from_package_archive(_archive(e)) for e in from_archive)
        )
        return await queried, await archives

    try:
        queried, archived = asyncio.run(gather())
    except Exception as exc:  # rattler's channel and archive errors share no base class
        raise LockstepError(
            f"{lock.path}: rattler cannot read the channels of the lock ({_first_line(exc)}); "
            "check the channel URLs (or set installer = 'frontend'); nothing was changed"
        ) from None
    known = {unquote(r.url): r for group in queried for r in group}
    for entry, record in zip(from_archive, archived, strict=True):
        digest = entry.md5.rpartition(":")[2]
        if record.md5 is None and len(digest) == 32:
            # conda records the lock's md5 for an explicit URL; the engine checked the file
            # against it before anything was touched
            record.md5 = bytes.fromhex(digest)
        known[unquote(entry.url)] = record
    records = []
    for entry in lock.entries:
        record = known.get(unquote(entry.url))
        if record is None:
            raise LockstepError(
                f"{lock.path}: {entry.filename} is not in its channel's repodata ({entry.channel}/"
                f"{entry.subdir}); the channel changed since the lock was made: run `invoke lock`; "
                "nothing was changed"
            )
        _check_md5(lock, entry, record)
        records.append(record)
    return records


def _archive(entry: LockEntry) -> Path:
    path = local_archive(entry.url)
    assert path is not None  # only file:// entries are read from their archive
    return path


def _first_line(exc: BaseException) -> str:
    """rattler's error in one line: what failed, and the deepest of its ``Caused by:`` lines
    (where the reason is: "failed to fetch X" alone reads like the network, and was a full
    disk)."""
    lines = [ln.strip() for ln in (str(exc).strip() or type(exc).__name__).splitlines()]
    first = lines[0]
    causes = [
        ln.removeprefix("Caused by:").strip() for ln in lines[1:] if ln.startswith("Caused by:")
    ]
    root = causes[-1] if causes else ""
    return f"{first}: {root}" if root and root not in first else first


def _hint(exc: BaseException) -> str:
    """What to do about an install that failed for want of room, else nothing."""
    if "No space left on device" in str(exc) or "os error 28" in str(exc):
        return "; free space on the disk of the env and of rattler's package cache"
    return ""


def _check_md5(lock: ExplicitLock, entry: LockEntry, record: Any) -> None:
    algorithm, _, expected = entry.md5.rpartition(":")
    if not expected:
        return
    if (algorithm or ("md5" if len(expected) == 32 else "sha256")) == "md5":
        actual = record.md5.hex() if record.md5 is not None else None
    else:
        actual = record.sha256.hex() if record.sha256 is not None else None
    if actual is not None and actual != expected:
        raise LockstepError(
            f"{lock.path}: {entry.filename}: the channel's repodata says {actual}, the lock "
            f"{expected}; the channel was altered or the lock is not from it: run `invoke lock`; "
            "nothing was changed"
        )


# --------------------------------------------------------------------------- installing


def install(
    prefix: Path,
    records: Sequence[Any],
    installed: Sequence[Any] | None = None,
    ignored: Iterable[str] = (),
) -> None:
    """Bring the env at ``prefix`` to exactly ``records`` as one rattler transaction (removing
    what is not in them, linking what is new, leaving the rest alone); ``installed`` is what the
    env holds (None: rattler reads the env's conda-meta itself). Post-link scripts run, as conda
    runs them."""
    import asyncio

    import rattler

    try:
        asyncio.run(
            rattler.install(
                list(records),
                prefix,
                installed_packages=None if installed is None else list(installed),
                ignored_packages=set(ignored) or None,
                show_progress=False,
                execute_link_scripts=True,
            )
        )
    except Exception as exc:  # a broken archive, a full disk, a download error, ...
        raise LockstepError(
            f"rattler could not install into {prefix}: {_first_line(exc)}{_hint(exc)}"
        ) from None


def record_inodes(prefix: Path) -> dict[str, int]:
    """conda-meta/*.json by name -> inode: which records a transaction wrote anew."""
    meta = Path(prefix) / "conda-meta"
    return {p.name: p.stat().st_ino for p in meta.glob("*.json")} if meta.is_dir() else {}


def finish_conda_meta(
    prefix: Path,
    records: Sequence[Any],
    command: str,
    home: Path | None = None,
    before: Mapping[str, int] | None = None,
    removed: Sequence[str] = (),
) -> None:
    """What conda writes beside rattler's records: softlink entries without digests, records
    readable as the umask allows, created_at, a revision of the history (when the transaction
    changed something) and the env's registration. Only the records written since ``before``
    (record_inodes) are read; ``removed``: the ``source::dist`` of the records it removed."""
    meta = Path(prefix) / "conda-meta"
    umask = os.umask(0)
    os.umask(umask)
    old = before or {}
    written = {p.name for p in meta.glob("*.json") if old.get(p.name) != p.stat().st_ino}
    for name in written:
        _conda_paths_data(meta / name, 0o666 & ~umask)
    created = meta / "created_at"
    if not created.exists():
        atomic_write_text(created, f"{time.time()}\n")
    history = meta / "history"
    added = [r for r in records if f"{_dist(r)}.json" in written]
    if added or removed or not history.is_file():
        # conda appends a revision per transaction; replaced, never appended in place: the
        # snapshot of a change in place shares the old file's inode
        previous = history.read_text(encoding="utf-8") if history.is_file() else ""
        revision = history_block(added, command, removed=removed, specs=records)
        atomic_write_text(history, previous + revision)
    register(prefix, home)


def removed_by(prefix: Path, records: Sequence[Any]) -> list[str]:
    """``source::dist`` of each record in the env that ``records`` do not have (read before the
    transaction removes it), for the history."""
    wanted = {f"{_dist(r)}.json" for r in records}
    meta = Path(prefix) / "conda-meta"
    found = []
    for path in sorted(meta.glob("*.json")) if meta.is_dir() else ():
        if path.name in wanted:
            continue
        try:
            url = str(json.loads(path.read_text(encoding="utf-8")).get("url") or "")
        except (OSError, ValueError):
            url = ""
        found.append(f"{url.rsplit('/', 1)[0] or '<unknown>'}::{path.stem}")
    return found


def _dist(record: Any) -> str:
    return f"{record.name.normalized}-{record.version}-{record.build}"


def _conda_paths_data(path: Path, mode: int) -> None:
    """paths_data as conda 26.7 writes it: a symlink without digests (rattler records the
    target's, which `conda doctor` compares with the file the link points to and calls altered),
    a hard-linked file with ``sha256_in_prefix`` (rattler omits it where the bytes are the
    archive's; it records it for a file whose prefix placeholder it replaced). The record gets
    ``mode``; it is written compact (the C encoder: indent=2 costs 4x for 10 MB of records)."""
    data = json.loads(path.read_text(encoding="utf-8"))
    changed = False
    for entry in (data.get("paths_data") or {}).get("paths") or ():
        if entry.get("path_type") == "softlink":
            for key in ("sha256", "sha256_in_prefix", "size_in_bytes"):
                changed |= entry.pop(key, None) is not None
        elif entry.get("sha256") and not entry.get("sha256_in_prefix"):
            entry["sha256_in_prefix"] = entry["sha256"]
            changed = True
    if changed:
        replace_unsynced(path, (json.dumps(data) + "\n").encode("utf-8"), mode)
    else:
        path.chmod(mode)


def history_block(
    added: Sequence[Any],
    command: str,
    when: float | None = None,
    removed: Sequence[str] = (),
    specs: Sequence[Any] | None = None,
) -> str:
    """One revision of conda-meta/history as conda writes it (conda.history.History): what was
    removed (``-``) and added (``+``) as ``channel/subdir::name-version-build``, and the explicit
    specs (every package of the lock) that `conda env export --from-history` reads back."""
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(when))
    lines = [f"==> {stamp} <==", f"# cmd: {command}"]
    lines += [f"-{line}" for line in sorted(removed)]
    lines += sorted(f"+{_source(r)}::{_dist(r)}" for r in added)
    every = sorted(added if specs is None else specs, key=lambda r: (_source(r), _dist(r)))
    wanted = [f"{_source(r)}::{r.name.normalized}=={r.version}={r.build}" for r in every]
    lines.append(f"# update specs: {wanted}")
    return "\n".join(lines) + "\n"


def _source(record: Any) -> str:
    """The channel and subdir of a record's URL (what conda writes before ``::``)."""
    return str(record.url).rsplit("/", 1)[0]


def environments_txt(home: Path | None = None) -> Path:
    """conda's registry of envs (conda.core.envs_manager.get_user_environments_txt_file)."""
    return (home or Path(os.path.expanduser("~"))) / ".conda" / "environments.txt"


def register(prefix: Path, home: Path | None = None) -> None:
    """Add the prefix to ~/.conda/environments.txt as conda's register_env does (an unwritable
    registry is skipped, as conda skips it: the env still works, and is listed where it is in
    an envs dir)."""
    registry = environments_txt(home)
    location = os.path.normpath(prefix)
    try:
        lines = registry.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        lines = []
    except OSError:
        return
    if location in lines:
        return
    try:
        registry.parent.mkdir(parents=True, exist_ok=True)
        with registry.open("a", encoding="utf-8") as handle:
            handle.write(location + "\n")
    except OSError:
        return


# --------------------------------------------------------------------------- command line


def _hold_at_linking() -> bool:
    """Test seam (tests/integration/test_faults.py): the engine's hold (variables.ENGINE_HOLD)
    at the phase ``linking``; True when it held."""
    if not os.environ.get(variables.ENGINE_HOLD.name, "").startswith("linking:"):
        return False
    hold("linking")
    return True


# The child started before the env is found (--prefix-from-fd) holds the env's lock from then on.
_HELD_FDS: list[int] = []


def await_prefix(fd: int) -> Path | None:
    """The engine's side of a prepared child: say ``ready`` on the socket ``fd``, then wait for
    the prefix (a 4-byte length, then the path) and the env's lock fd beside it (SCM_RIGHTS);
    None where the engine closed the socket instead (it did not go on: nothing is touched)."""
    import socket

    sock = socket.socket(fileno=fd)
    try:
        sock.sendall(b"ready\n")
        data, fds, _flags, _address = socket.recv_fds(sock, 1 << 16, 4)
        _HELD_FDS.extend(fds)
        while data and len(data) < 4 + int.from_bytes(data[:4], "big"):
            more = sock.recv(1 << 16)
            if not more:
                return None
            data += more
    except OSError:
        return None
    finally:
        sock.close()
    return Path(os.fsdecode(data[4:])) if data else None


def _refuse(fd: int, message: str) -> int:
    """A failure before the prefix is known goes to the engine, which reports it once; where
    the engine no longer listens it has stopped on a reason of its own, already said."""
    import socket

    with contextlib.suppress(OSError), socket.socket(fileno=fd) as sock:
        sock.sendall(b"error " + message.replace("\n", " ").encode("utf-8") + b"\n")
    return 1


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m lockstep.core.rattlerinstall --prefix P --lock L``: the env at P brought to
    the explicit lock L in one rattler transaction (a new env where P does not exist).

    The engine runs it as a child, as it runs a frontend: a signal then stops it for certain
    before the engine puts the old env back (rattler's threads cannot be stopped in-process).
    With ``--prefix-from-fd FD`` instead of ``--prefix``, it is started before the engine has
    found the env: it reads the lock and rattler's records of it (0.2 s of start-up, side by side
    with the frontend's listing), then waits for the prefix on the socket FD (await_prefix)."""
    parser = argparse.ArgumentParser(prog="python -m lockstep.core.rattlerinstall")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--prefix", type=Path)
    where.add_argument("--prefix-from-fd", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--lock", required=True, type=Path)
    args = parser.parse_args(argv)
    try:
        lock = read_explicit(args.lock)
        records = lock_records(lock)
    except (LockstepError, OSError) as exc:
        if args.prefix_from_fd is not None:
            return _refuse(args.prefix_from_fd, describe_error(exc))
        print(f"error: {describe_error(exc)}", file=sys.stderr)
        return 1
    if args.prefix_from_fd is not None:
        given = await_prefix(args.prefix_from_fd)
        if given is None:
            return 0
        prefix = given.absolute()
    else:
        prefix = args.prefix.absolute()
    try:
        fresh = not (prefix / "conda-meta").is_dir()
        before = record_inodes(prefix)
        removed = removed_by(prefix, records)
        if fresh and len(records) > 1 and os.environ.get(variables.ENGINE_HOLD.name):
            install(prefix, records[: len(records) // 2])  # half a new env, as a kill leaves it
            _hold_at_linking()
        install(prefix, records)
        if not fresh:
            _hold_at_linking()  # changed in place, its conda-meta not finished yet
        command = f"lockstep reproduce --file {args.lock} ({describe()})"
        finish_conda_meta(prefix, records, command, before=before, removed=removed)
    except (LockstepError, OSError) as exc:
        print(f"error: {describe_error(exc)}", file=sys.stderr)
        return 1
    done = "linked into a new env at" if fresh else "in place at"
    print(f"lockstep: {len(records)} conda packages of {args.lock.name} {done} {prefix}")
    return 0


if __name__ == "__main__":
    # rattler's native threads can still be winding down at exit; finalizing the interpreter
    # under them can crash after the work is done (every file is closed by then).
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
