"""The one engine that replaces a conda env: reproduce, update and env-create all go through it.

Its promise: an existing env is kept until its replacement is complete, and the project's files
are never half-written. How:

1. Validate before touching: settings, the variant (the CUDA or the CPU lock by the NVIDIA
   driver, lockstep.core.variants: an old driver is refused here), both locks (any line ending,
   this machine's platform), the archives a ``file://`` URL points at (md5/sha256 against the
   lock: conda checks only what it downloads over http), pyproject.toml, poetry.lock and the
   Poetry-side install plan.
2. Find the env by its real name from the frontend's own JSON (lockstep.core.envs); a listing that
   fails, hangs or cannot be read stops here. An env that already matches both locks
   (lockstep.core.uptodate) is left alone: one line, nothing written.
3. One at a time: an advisory lock (flock) in a folder beside the env, ``.<name>.lockstep/``.
4. A journal in that folder records each phase (fsynced before the step it announces). An
   interrupted run (SIGKILL, power loss) is found and undone by the next run, before anything
   else, on its own: the partial env goes, the old env and the old files come back.
5. The old env is moved into that folder (one rename), the new one built at the same prefix (conda
   envs are not relocatable, so they are never built elsewhere and moved), then the Poetry side,
   the env's variables, and for ``update`` the new lock files: all of them, or none. With
   py-rattler (lockstep.core.rattlerinstall) an existing env is changed in place instead, by one
   transaction of what differs, after a hard-link snapshot of what it may replace
   (lockstep.core.snapshot): the undo puts that back.
6. INT, TERM, HUP and QUIT undo everything before the process exits (128 + signal number).

Standard library only: `make reproduce` runs it with any Python 3.11+ (tooling/scripts/env-engine.sh
finds one), and the tasks run the same module, so every rule has one implementation.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import errno
import fcntl
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lockstep.core import (
    bundle,
    commands,
    condalockhash,
    condameta,
    digests,
    envs,
    envvars,
    mirrors,
    nvidia,
    rattlerinstall,
    snapshot,
    uptodate,
    variants,
)
from lockstep.core.commands import REPRODUCE_VALUES, ReproduceRequest
from lockstep.core.envs import EnvListing, child_environ, list_envs, machine_platform
from lockstep.core.errors import LockstepError
from lockstep.core.explicit import ExplicitLock, local_archive, pip_lines_error, read_explicit
from lockstep.core.frontend import Frontend, find_frontend
from lockstep.core.fsutil import (
    atomic_write_text,
    describe_error,
    describe_os_error,
    read_text,
    write_files_atomically,
)
from lockstep.core.installer import (
    env_python,
    env_python_version,
    env_uv,
    install_locked,
    uninstall_command,
)
from lockstep.core.names import normalize
from lockstep.core.plan import (
    Plan,
    PoetrySide,
    lock_environment,
    planned_from_lock,
    read_poetry_side,
)
from lockstep.core.poetrylock import LockedPackage
from lockstep.core.settings import Settings, check_env_name, load_settings
from lockstep.core.signals import SIGNALS, Interrupted, hold, say

# Exit status of `reproduce` when there is no conda lock yet and --locked was not given: the
# launcher then runs the first-time path (lock, pin, reproduce) with the tooling.
NEEDS_FIRST_LOCK = 3
STATE_SUFFIX = ".lockstep"
# What the shell script of earlier versions left beside an env it was replacing.
LEGACY_BACKUP_SUFFIX = ".lockstep-backup"
JOURNAL_VERSION = 1
# The journal's mode of a change made in place (snapshot, not a move aside).
PATCH = "patch"
# The folder that holds the lockstep package this engine runs from.
_PACKAGE_ROOT = Path(__file__).resolve().parents[2]


class PhaseClock:
    """One line per phase of a run with the seconds it took (the engine is standard library
    only: no progress library; a phase's own tool shows its progress)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.start()

    def start(self) -> None:
        self._last = self.clock()

    def done(self, phase: str) -> None:
        now = self.clock()
        say(f"lockstep: {phase}: {now - self._last:.1f} s")
        self._last = now


PHASES = PhaseClock()


# The fd of the env's lock while it is held: every step inherits it, so an orphaned frontend
# (its engine killed) keeps the env locked until it exits.
_LOCK_FD: list[int] = []


def run_step(command: Sequence[str], env: Mapping[str, str] | None = None) -> None:
    """A command that changes the env, echoed once; a signal reaches it, then interrupts us."""
    say("+ " + shlex.join(command))
    try:
        proc = subprocess.Popen(
            list(command), env=dict(env or child_environ()), pass_fds=tuple(_LOCK_FD)
        )
    except OSError as exc:
        raise LockstepError(f"cannot run {command[0]}: {exc.strerror}") from None
    _wait_step(proc, command)


def _wait_step(proc: subprocess.Popen, command: Sequence[str]) -> None:
    """Wait for a step; a signal is passed on to it (killed after 30 s), then re-raised."""
    try:
        code = proc.wait()
    except Interrupted as exc:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(exc.signum)
        try:
            proc.wait(timeout=30)
        except (subprocess.TimeoutExpired, Interrupted):
            proc.kill()
            proc.wait()
        raise
    if code != 0:
        shown = " ".join([Path(command[0]).name, *command[1:4]])
        raise LockstepError(f"`{shown}` failed (exit {code}; its reason is above)")


class PreparedInstall:
    """The py-rattler child, started before the env is found so that its start-up (Python,
    rattler, the lock's records: 0.2 s) runs beside the frontend's listing; it touches nothing
    until :meth:`go` hands it the prefix and the env's lock (SCM_RIGHTS over a socket pair), so
    it holds the lock as a child started later would. :meth:`ready` (before the env is touched)
    reports a lock rattler cannot read as one line; :meth:`close` (always) ends a child that was
    not needed (an env that matches, a failure before the build): it exits without a change."""

    def __init__(self, lock_file: str, env: Mapping[str, str]) -> None:
        import socket

        self._sock, theirs = socket.socketpair()
        command = commands.rattler_prepare(sys.executable, theirs.fileno(), lock_file)
        try:
            self.proc: subprocess.Popen | None = subprocess.Popen(
                command, env=dict(env), pass_fds=(theirs.fileno(),)
            )
        except OSError as exc:
            self._sock.close()
            raise LockstepError(f"cannot run {sys.executable}: {exc.strerror}") from None
        finally:
            theirs.close()
        self.lock_file = lock_file

    def ready(self) -> None:
        """Its answer: ready, or the reason it cannot install the lock (nothing was touched)."""
        answer = b""
        while not answer.endswith(b"\n"):
            chunk = self._sock.recv(1 << 16)
            if not chunk:
                break
            answer += chunk
        if answer == b"ready\n":
            return
        if answer.startswith(b"error "):
            raise LockstepError(answer[6:].decode("utf-8", "replace").strip())
        assert self.proc is not None
        code = self.proc.wait()
        raise LockstepError(f"the py-rattler installer stopped (exit {code}; its reason is above)")

    def go(self, prefix: Path) -> None:
        """Install into ``prefix`` now, as run_step would; the env's lock goes with it."""
        import socket

        assert self.proc is not None
        shown = commands.rattler_install(sys.executable, str(prefix), self.lock_file)
        say("+ " + shlex.join(shown))
        data = os.fsencode(str(prefix))
        with contextlib.suppress(OSError):  # it is gone: its exit status below says why
            socket.send_fds(self._sock, [len(data).to_bytes(4, "big") + data], list(_LOCK_FD))
        self._sock.close()
        proc, self.proc = self.proc, None
        _wait_step(proc, shown)

    def close(self) -> None:
        """Send nothing and end the child: before :meth:`go` it has only read files, so a
        kill is as safe as its own exit, and an env that matches does not wait for its start-up."""
        self._sock.close()
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        proc.wait()


# --------------------------------------------------------------------------- validation


def verify_archives(lock: ExplicitLock) -> int:
    """Check every ``file://`` archive against the lock's md5 or sha256 before conda sees it.

    conda verifies what it downloads over http(s) but copies a ``file://`` archive unchecked and
    then records the lock's md5 as if it had matched. A file hashed by an earlier run and not
    changed since (lockstep.core.digests) is not read again. Returns how many were checked.
    """
    local = [(e, path) for e in lock.entries if (path := local_archive(e.url)) is not None]
    known = digests.Digests()

    def problem(item: tuple[Any, Path]) -> str | None:
        entry, path = item
        if not path.is_file():
            return f"{entry.filename}: {path} does not exist"
        if not entry.md5:
            return None
        algorithm, expected = entry.digest
        actual = known.digest(path, algorithm)
        if actual != expected:
            return f"{entry.filename}: {algorithm} {actual} differs from the lock's {expected}"
        return None

    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        problems = [p for p in pool.map(problem, local) if p]
    known.save()
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise LockstepError(
            f"{lock.path}: archive does not match the lock: {problems[0]}{more}; the channel or "
            "mirror copy is damaged or was altered: restore it (or remove it so it is fetched "
            "again); nothing was changed"
        )
    return len(local)


def _conda_lock_is_stale(project: Path, settings: Settings, lock: ExplicitLock) -> bool:
    """conda-lock's input hash of the spec files differs from the lock's header.

    That hash needs PyYAML: it is checked where PyYAML imports (the tooling venv, a conda base)
    and not elsewhere; a spelling only conda-lock itself can hash is not checked here either.
    """
    env_file = project / settings.environment_file
    vp_file = project / settings.virtual_packages_file
    if not (lock.input_hash and env_file.is_file() and vp_file.is_file()):
        return False
    try:
        expected = condalockhash.fast_input_hash(
            env_file.read_text(encoding="utf-8"),
            vp_file.read_text(encoding="utf-8"),
            lock.platform or "",
        )
    except (condalockhash.Unsupported, LockstepError, UnicodeDecodeError):
        return False
    return expected != lock.input_hash


def _warn_if_stale(project: Path, settings: Settings, lock: ExplicitLock, side: PoetrySide) -> None:
    """A lock is installed as locked, never re-solved; if `check` would call it stale, say so."""
    from lockstep.core import poetryhash

    stale = []
    if _conda_lock_is_stale(project, settings, lock):
        stale.append(Path(lock.path).name)
    if poetryhash.locked_hash(side.lock_data) != poetryhash.content_hash(side.pyproject):
        stale.append(side.poetry_lock_path.name)
    if stale:
        say(
            f"warning: {' and '.join(stale)} {'is' if len(stale) == 1 else 'are'} older than the "
            "spec files; installing as locked (run `invoke update` to re-lock)",
            err=True,
        )


# --------------------------------------------------------------------------- state beside the env


@dataclass
class EnvState:
    """The folder beside an env that holds its lock, journal, backup and saved files."""

    prefix: Path

    @property
    def folder(self) -> Path:
        return self.prefix.parent / f".{self.prefix.name}{STATE_SUFFIX}"

    @property
    def lock_file(self) -> Path:
        return self.folder / "lock"

    @property
    def journal(self) -> Path:
        return self.folder / "journal.json"

    @property
    def backup(self) -> Path:
        return self.folder / "previous-env"

    @property
    def snapshot(self) -> Path:
        """Hard links of what an in-place change may replace (lockstep.core.snapshot)."""
        return self.folder / "snapshot"

    @property
    def saved_files(self) -> Path:
        return self.folder / "previous-files"

    @property
    def legacy_backup(self) -> Path:
        return self.prefix.with_name(self.prefix.name + LEGACY_BACKUP_SUFFIX)


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_journal(state: EnvState, data: Mapping[str, Any]) -> None:
    atomic_write_text(state.journal, json.dumps(data, indent=2) + "\n")
    _fsync_dir(state.folder)


def read_journal(state: EnvState) -> dict[str, Any] | None:
    try:
        data = json.loads(state.journal.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise LockstepError(
            f"{state.journal}: unreadable journal of an interrupted run ({exc}); the previous env "
            f"is kept at {state.backup} if it exists: look at both, then delete the journal"
        ) from None
    return data if isinstance(data, dict) else None


@contextlib.contextmanager
def exclusive(state: EnvState, name: str) -> Iterator[None]:
    """One run per env: a second one is refused at once, with who holds it."""
    try:
        state.folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(state.lock_file, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as exc:
        raise LockstepError(
            f"cannot create {state.folder}: {exc.strerror}; the envs folder must be writable to "
            "replace an env there"
        ) from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "?"
            raise LockstepError(
                f"another reproduce/update/env-create of '{name}' is running (pid {holder}); "
                "wait for it to finish, then run this again"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        _LOCK_FD.append(fd)
        yield
    finally:
        if fd in _LOCK_FD:
            _LOCK_FD.remove(fd)
        os.close(fd)  # closing releases the flock


def _remove_tree(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path)


def _restore_files(files: Sequence[Mapping[str, Any]]) -> list[str]:
    """Put back each file the journal saved; returns the ones that could not be (yet)."""
    failed = []
    for item in files:
        dest = Path(item["dest"])
        saved = Path(item["saved"]) if item.get("saved") else None
        try:
            if saved is not None and saved.exists():
                if not dest.exists() or dest.read_bytes() != saved.read_bytes():
                    _copy_over(saved, dest)
            elif not item.get("existed") and dest.exists():
                dest.unlink()
        except OSError as exc:
            failed.append(f"{dest} ({describe_os_error(exc, dest).split(';')[0]})")
    return failed


def _copy_over(source: Path, dest: Path) -> None:
    atomic_write_text(dest, read_text(source))


def undo(state: EnvState, journal: Mapping[str, Any]) -> str:
    """Put back what the journal says was there before; returns what was done, as a phrase.

    The env first (a rename: it needs no free space), then the files. A file that cannot be put
    back yet (a disk still full) keeps the journal and its saved copy, so the next run finishes
    the job; the error says where the copy is.
    """
    prefix = Path(journal["prefix"])
    if journal.get("phase") == "committed":
        _remove_tree(state.backup)
        shutil.rmtree(state.snapshot, ignore_errors=True)
        shutil.rmtree(state.saved_files, ignore_errors=True)
        state.journal.unlink(missing_ok=True)
        return "finished the clean-up of a completed run"
    if journal.get("mode") == PATCH and journal.get("phase") == "moving":
        # Stopped while the snapshot was taken (or before: the journal could not be written):
        # the env itself was not touched yet.
        shutil.rmtree(state.snapshot, ignore_errors=True)
        done = "found nothing to undo"
    elif journal.get("mode") == PATCH:
        restored = snapshot.restore(prefix, state.snapshot)
        shutil.rmtree(state.snapshot, ignore_errors=True)
        done = f"put the previous env back at {prefix} ({restored} files from its snapshot)"
    elif state.backup.exists():
        if prefix.exists() or prefix.is_symlink():
            _remove_tree(prefix)
        os.rename(state.backup, prefix)
        done = f"put the previous env back at {prefix}"
    elif journal.get("phase") == "building" and journal.get("had_env") is False:
        _remove_tree(prefix)  # a partial new env where there was none
        done = "removed a partial env"
    else:
        done = "found nothing to undo"
    _fsync_dir(prefix.parent)
    failed = _restore_files(journal.get("files", []))
    if failed:
        raise LockstepError(
            f"{done}, but could not put back {', '.join(failed)} yet; the originals are kept in "
            f"{state.saved_files}, and the next run of this env restores them"
        )
    shutil.rmtree(state.saved_files, ignore_errors=True)
    state.journal.unlink(missing_ok=True)
    return done


def recover(state: EnvState, name: str) -> None:
    """Undo an interrupted run of this env, if there was one (call with the lock held)."""
    journal = read_journal(state)
    if journal is not None:
        with SIGNALS.deferred():
            done = undo(state, journal)
        say(f"lockstep: an earlier run of '{name}' was interrupted; {done}")
        return
    # A backup without its journal: the journal was deleted by hand, or an older Lockstep left it.
    for orphan in (state.backup, state.legacy_backup):
        if not (orphan / "conda-meta").is_dir():
            continue
        if state.prefix.exists():
            raise LockstepError(
                f"{orphan} (an env left by an interrupted run) and {state.prefix} both exist; look "
                "at both, keep the one you want at its place and delete the other"
            )
        with SIGNALS.deferred():
            os.rename(orphan, state.prefix)
        say(f"lockstep: put the env an interrupted run had left at {orphan} back at {state.prefix}")


# --------------------------------------------------------------------------- the transaction


@dataclass
class Commit:
    """Files to put in place with the new env: dest <- the text of source."""

    pairs: list[tuple[Path, Path]] = field(default_factory=list)


class Transaction:
    """Replace the env at ``prefix``: keep the old one until everything new is in place."""

    def __init__(
        self,
        state: EnvState,
        name: str,
        keep_old: bool = True,
        kept: Sequence[str] | None = None,
    ) -> None:
        self.state = state
        self.name = name
        self.keep_old = keep_old
        # In place (PATCH): the env stays where it is, a snapshot of all but these files undoes.
        self.kept = kept
        self.journal: dict[str, Any] = {
            "version": JOURNAL_VERSION,
            "name": name,
            "prefix": str(state.prefix),
            "pid": os.getpid(),
            "phase": "moving",
            "had_env": state.prefix.exists(),
            "files": [],
        }
        if kept is not None:
            self.journal["mode"] = PATCH

    def begin(self) -> None:
        """Move the old env aside (or, with keep_old False, delete it: --force), or snapshot it
        to change it in place."""
        write_journal(self.state, self.journal)
        hold("moving")
        with SIGNALS.deferred():
            if self.kept is not None:
                linked = snapshot.take(self.state.prefix, self.state.snapshot, self.kept)
                say(
                    f"lockstep: changing '{self.name}' in place; {linked} files it may replace "
                    "are kept as hard links until it matches the locks"
                )
            elif self.journal["had_env"]:
                if self.keep_old:
                    say(f"lockstep: keeping the current '{self.name}' until the new one is built")
                    os.rename(self.state.prefix, self.state.backup)
                else:
                    say(f"lockstep: --force: deleting the current '{self.name}' first")
                    _remove_tree(self.state.prefix)
                    self.journal["had_env"] = False
            self.journal["phase"] = "building"
            write_journal(self.state, self.journal)
        hold("building")

    def commit(self, files: Commit) -> None:
        """Write the new files (all or none), then let the old env go."""
        hold("committing")
        with SIGNALS.deferred():
            if files.pairs:
                self._save_files(files)
                write_files_atomically({dest: read_text(source) for dest, source in files.pairs})
            self.journal["phase"] = "committed"
            write_journal(self.state, self.journal)
        with SIGNALS.deferred():
            undo(self.state, self.journal)  # phase committed: drops the backup and saved files

    def _save_files(self, files: Commit) -> None:
        saved = self.state.saved_files
        saved.mkdir(parents=True, exist_ok=True)
        for number, (dest, _source) in enumerate(files.pairs):
            copy = saved / f"{number}-{dest.name}"
            existed = dest.exists()
            if existed:
                shutil.copyfile(dest, copy)
            self.journal["files"].append(
                {"dest": str(dest), "saved": str(copy) if existed else None, "existed": existed}
            )
        write_journal(self.state, self.journal)

    def rollback(self) -> str:
        with SIGNALS.deferred():
            return undo(self.state, self.journal)


# --------------------------------------------------------------------------- building


@dataclass(frozen=True)
class BundleSource:
    """An offline bundle to install from instead of channels and indexes."""

    folder: Path
    manifest: bundle.Manifest


def install_poetry_side(
    prefix: Path, side: PoetrySide, project_dir: Path, offline: BundleSource | None = None
) -> None:
    """poetry.lock minus what conda installed (conda-meta decides), hashes required: by the
    env's uv when it has one, else by pip (same requirement file, same guarantees); from a
    bundle's wheels only (pip, --no-index) when installing offline."""
    records = condameta.read_conda_meta(prefix)
    provided = condameta.provided_distributions(records.values())
    python = env_python_version(prefix, records)
    environment = lock_environment(machine_platform(), python)
    plan = side.plan(list(provided), environment)
    # What is there at the locked version stays (an env changed in place); what neither lock
    # has goes, as it would from a new env.
    installed = uptodate.pypi_distributions(prefix, records.values())
    planned = _planned(side, plan)
    missing = dataclasses.replace(plan, install=[p for p in plan.install if _differs(p, installed)])
    if offline is None:
        lines = side.requirement_lines(missing)
    else:
        lines = bundle.requirement_lines(offline.manifest, missing.install, side.groups)
    env = child_environ()
    if lines:
        hold("pypi")
    project_name = normalize(str(side.pyproject.get("project", {}).get("name", "")))
    editable = side.package_mode and installed.get(project_name) != planned.get(project_name)
    install_locked(
        lambda command: run_step(command, env),
        str(env_python(prefix)),
        missing,
        lines,
        env,
        uv=env_uv(prefix),
        find_links=str(bundle.wheels_dir(offline.folder)) if offline else None,
        project_dir=project_dir if editable else None,
        report=say,
    )
    extra = sorted(set(installed) - set(planned))
    if extra:
        run_step(uninstall_command(str(env_python(prefix)), extra, env_uv(prefix)), env)


def _differs(package: LockedPackage, installed: Mapping[str, str]) -> bool:
    have = installed.get(normalize(package.name))
    return have is None or normalize(have) != normalize(package.version)


# --------------------------------------------------------------------------- the actions


@dataclass
class Request:
    """What to build and where; every path absolute."""

    name: str
    frontend: Frontend
    force: bool = False
    commit: Commit = field(default_factory=Commit)
    env_vars: dict[str, str] = field(default_factory=dict)
    # Change the existing env in place, these files (of the packages that stay) untouched.
    kept: list[str] | None = None


def _find(fe: Frontend, name: str) -> tuple[EnvListing, EnvState]:
    listing = list_envs(fe)
    return listing, EnvState(listing.target(name))


def replace_env(
    request: Request,
    build: Any,
    preflight: Any = None,
    found: tuple[EnvListing, EnvState] | None = None,
) -> Path:
    """Lock, recover, check, move aside, build, commit; undo on any failure or signal."""
    _listing, state = found or _find(request.frontend, request.name)
    with exclusive(state, request.name):
        recover(state, request.name)
        if preflight is not None:
            preflight(state)
        PHASES.done("validate")
        transaction = Transaction(
            state, request.name, keep_old=not request.force, kept=request.kept
        )
        try:
            transaction.begin()
            PHASES.done("move aside")
            build(state.prefix)
            envvars.set_env_vars(state.prefix, {"PYTHONNOUSERSITE": "1", **request.env_vars})
            transaction.commit(request.commit)
            PHASES.done("commit")
        except (Exception, Interrupted) as exc:
            done = transaction.rollback()
            if isinstance(exc, Interrupted):
                name = signal.Signals(exc.signum).name
                say(f"lockstep: interrupted by {name}; {done}; every file is as it was", err=True)
                raise
            if isinstance(exc, LockstepError | OSError):
                raise LockstepError(
                    f"{describe_error(exc)}; {done}; every file is as it was"
                ) from None
            say(f"lockstep: failed; {done}; every file is as it was", err=True)
            raise
    return state.prefix


def _settings(
    project_dir: str, name: str | None, frontend: str | None, installer: str | None = None
) -> Settings:
    """[tool.lockstep] of the project, with the arguments given (an empty one means unset: make
    passes its variables whether set or not)."""
    return load_settings(
        Path(project_dir).absolute(),
        env_name=name or None,
        frontend=frontend or None,
        installer=installer or None,
    )


def _writable(paths: Sequence[Path]) -> None:
    """Every file update will write can be written: checked before the env is touched."""
    for path in paths:
        target = path if path.exists() else path.parent
        # No write bit for anyone means "do not touch" even to root, who passes os.access.
        if not os.access(target, os.W_OK) or not target.stat().st_mode & 0o222:
            denied = PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
            raise LockstepError(describe_os_error(denied, path))


def _resolve(project_dir: Path, value: str | None, default: str) -> Path:
    return (project_dir / (value or default)).absolute()


class EnvChanged(LockstepError):
    """The env's records moved between the read that planned a change in place and the env's
    lock: raised before anything is touched."""


def reproduce(request: ReproduceRequest) -> int:
    """Recreate the env from the conda lock and poetry.lock: validate everything, then build.
    An env that another run changed while this one planned is read again, once."""
    try:
        return _reproduce(request)
    except EnvChanged as exc:
        say(f"lockstep: {exc}; reading it again")
    try:
        return _reproduce(request)
    except EnvChanged as exc:
        raise LockstepError(f"{exc}; nothing was changed: run it again") from None


def _reproduce(request: ReproduceRequest) -> int:
    project = Path(request.project_dir).absolute()
    settings = _settings(request.project_dir, request.name, request.frontend, request.installer)
    platform = machine_platform()
    lock_path = _resolve(project, request.conda_lock, settings.lock_file(platform))
    variants.check_requested(request.variant)
    fe = find_frontend(settings.frontend, shutil.which)  # first: nothing else helps without one
    if not lock_path.exists() and not request.commit:
        if request.bundle:
            raise LockstepError(
                f"{lock_path.name} not found; a bundle installs the locks it was made from: "
                f"copy them from {request.bundle}/{bundle.LOCKS_DIR}/ into the project; nothing "
                "was written"
            )
        if request.locked:
            raise LockstepError(
                f"{lock_path.name} not found and --locked (LOCKED=1) forbids making it; run "
                "`make reproduce` without LOCKED=1 where conda channels are reachable, commit the "
                "locks, then try again; nothing was written"
            )
        say(f"lockstep: no {lock_path.name} yet: locking environment.yml first (LOCKED=1 refuses)")
        return NEEDS_FIRST_LOCK
    cpu_lock = _resolve(project, request.cpu_lock, settings.cpu_lock_file(platform))
    cuda_lock, lock_path = (
        lock_path,
        choose_lock(settings, lock_path, cpu_lock, platform, request.variant),
    )
    lock = read_explicit(lock_path, platform)
    if lock.pip:  # conda skips them; the Poetry side is where PyPI packages belong
        raise LockstepError(f"{pip_lines_error(lock)}; nothing was changed")
    side = read_poetry_side(
        _resolve(project, request.pyproject, "pyproject.toml"),
        _resolve(project, request.poetry_lock, settings.poetry_lock_file),
        settings.pin_group,
    )
    planned_from_lock(side, lock, settings.pypi_names)
    offline = _bundle_source(
        request.bundle, platform, [lock_path, side.poetry_lock_path], side.lock_data
    )
    commit = Commit([(Path(d).absolute(), Path(s).absolute()) for d, s in request.commit])
    _writable([dest for dest, _ in commit.pairs])
    installer = rattlerinstall.choose(settings.installer, rattlerinstall.importable())
    with (
        tempfile.TemporaryDirectory(prefix="lockstep-") as tmp,
        ThreadPoolExecutor(max_workers=3) as background,
        contextlib.ExitStack() as stack,
    ):
        found = background.submit(_find, fe, settings.env_name)
        # While the frontend answers, the env at the prefix it gave last time is read (read
        # only); what was read counts only where the answer is that prefix again.
        checks = not (commit.pairs or request.force)
        guess = envs.remembered(fe, settings.env_name) if checks else None
        early = background.submit(_matches, EnvState(guess), lock, side) if guess else None
        install_lock = _mirrored(lock_path, Path(tmp), offline)
        to_install = lock if install_lock == lock_path else read_explicit(install_lock)
        prepared = None
        if installer == rattlerinstall.RATTLER:
            # The child imports this very package, wherever it was run from.
            env = {**child_environ(), "PYTHONPATH": str(_PACKAGE_ROOT)}
            prepared = stack.enter_context(
                contextlib.closing(PreparedInstall(str(install_lock), env))
            )
        state = found.result()[1]
        envs.remember(fe, settings.env_name, state.prefix)
        seen: Seen | None = None  # the env's records, read once
        if checks:
            if early is not None and state.prefix == guess:
                matched, seen = early.result()
            else:
                matched, seen = _matches(state, lock, side)
            if matched:
                say(
                    f"lockstep: '{settings.env_name}' at {matched} already matches "
                    f"{lock_path.name} and {side.poetry_lock_path.name}; nothing to do"
                )
                return 0
        kept, changing = None, {e.name for e in to_install.entries}
        if installer == rattlerinstall.RATTLER and not request.force:
            kept, changing, seen = _in_place(state.prefix, lock, seen)
        hold("planned")  # test seam: what changes is known; the env's lock is not taken yet
        # Only the archives that will be read are hashed (every one for a new env, those of the
        # changed packages in place), after the listing: an env that matches needs none. It
        # ends before the env is touched, so a mismatch still changes nothing.
        subset = tuple(e for e in to_install.entries if kept is None or e.name in changing)
        hashing = background.submit(
            verify_archives, dataclasses.replace(to_install, entries=subset)
        )

        def archives_match(locked: EnvState) -> None:
            # What changes in place was read before the env's lock was taken: another run
            # that ended in between makes it stale, and the snapshot would miss files.
            if seen is not None and kept is not None and seen.changed(locked.prefix):
                raise EnvChanged(
                    f"'{settings.env_name}' changed while this run was reading it (another "
                    "reproduce, update or conda run ended just then)"
                )
            checked = hashing.result()
            if checked:
                say(f"lockstep: {checked} local archives match {lock_path.name}")
            if prepared is not None:
                prepared.ready()
                hold("prepared")  # the child waits for the prefix; nothing is touched yet

        job = Request(settings.env_name, fe, request.force, commit, kept=kept)

        def build(prefix: Path) -> None:
            # update's new locks are fresh by construction; the CPU lock's inputs are derived
            # (`invoke check` hashes them: that needs the tooling).
            if not commit.pairs and lock_path == cuda_lock:
                _warn_if_stale(project, settings, lock, side)
            if prepared is not None:
                prepared.go(prefix)
            else:
                run_step(commands.create_from_lock(fe, str(prefix), str(install_lock)))
            if not env_python(prefix).exists():
                raise LockstepError(
                    f"the env from {lock_path.name} has no bin/python; add python to "
                    "environment.yml and run `invoke lock`"
                )
            PHASES.done("install conda side")
            install_poetry_side(prefix, side, project, offline)
            PHASES.done("install PyPI side")

        prefix = replace_env(job, build, archives_match, (found.result()[0], state))
    locks = f"{lock_path.name} and {side.poetry_lock_path.name}"
    say(f"lockstep: '{settings.env_name}' at {prefix} matches {locks}")
    return 0


def _planned(side: PoetrySide, plan: Plan) -> dict[str, str]:
    """Normalised name -> version of every distribution the PyPI side puts into the env: the
    plan's, and the project itself (editable) in package mode."""
    planned = {normalize(p.name): p.version for p in plan.install}
    if side.package_mode:
        project = side.pyproject.get("project", {})
        planned[normalize(str(project.get("name", "")))] = str(project.get("version", ""))
    return planned


@dataclass(frozen=True)
class Seen:
    """An env's conda-meta as read before its lock was taken, with its signature from just
    before the read (lockstep.core.condameta.signature)."""

    prefix: Path
    records: dict[str, condameta.CondaRecord]
    signature: tuple[int, ...] | None

    @classmethod
    def read(cls, prefix: Path) -> Seen:
        signature = condameta.signature(prefix)
        return cls(prefix, condameta.read_conda_meta(prefix), signature)

    def changed(self, prefix: Path) -> bool:
        """True where ``prefix`` is another env, or its records moved since they were read."""
        return prefix != self.prefix or condameta.signature(prefix) != self.signature


def _in_place(
    prefix: Path, lock: ExplicitLock, seen: Seen | None = None
) -> tuple[list[str] | None, set[str], Seen | None]:
    """For an env that exists: the files of its packages that stay as locked (a transaction in
    place leaves them alone), the names of the packages that change and the records they come
    from; (None, set(), None) where there is no env to change. ``seen``: its conda-meta, where
    the match check read it."""
    if not (prefix / "conda-meta" / "history").is_file():
        return None, set(), None
    if seen is None or seen.prefix != prefix:
        seen = Seen.read(prefix)
    records = seen.records
    diff = uptodate.conda_diff(lock, records)
    return [f for name in diff.unchanged for f in records[name].files], set(diff.install), seen


def _matches(
    state: EnvState, lock: ExplicitLock, side: PoetrySide
) -> tuple[Path | None, Seen | None]:
    """The env's prefix when it already matches both locks (lockstep.core.uptodate says what
    that checks), else None; nothing is written, not even the lock file beside the env. Second:
    the env's records where they were read with no run under way (for the in-place diff)."""
    prefix = state.prefix
    if not (prefix / "conda-meta" / "history").is_file():
        return None, None
    with uptodate.no_run_under_way(state.lock_file, state.journal) as free:
        if not free or not uptodate.user_site_off(prefix):
            return None, None
        seen = Seen.read(prefix)
        records = seen.records
        if not uptodate.conda_diff(lock, records).empty:
            return None, seen
        python = condameta.python_version(records)
        environment = lock_environment(machine_platform(), python)
        plan = side.plan(list(condameta.provided_distributions(records.values())), environment)
        installed = uptodate.pypi_distributions(prefix, records.values())
        if uptodate.pypi_differences(installed, _planned(side, plan)):
            return None, seen
    return prefix, seen


def choose_lock(
    settings: Settings,
    cuda_lock: Path,
    cpu_lock: Path,
    platform: str,
    requested: str | None,
    detect: Callable[[], nvidia.Driver | None] = nvidia.detect,
) -> Path:
    """The lock this machine installs, chosen before anything is moved or downloaded: the CUDA
    lock where the driver runs it, the CPU lock where there is no driver; a driver too old for
    the CUDA lock is refused (lockstep.core.variants)."""
    if not settings.has_cpu_variant:
        if variants.check_requested(requested) == variants.CPU:
            raise LockstepError(
                "VARIANT=cpu, but [tool.lockstep] declares no CPU variant (cpu-specs); "
                "declare one and run `invoke lock`, or leave VARIANT unset"
            )
        return cuda_lock
    needs = variants.needs_of(read_explicit(cuda_lock, platform))
    wanted = variants.check_requested(requested)
    driver = detect() if wanted == variants.AUTO else None
    choice = variants.choose(driver, needs, wanted)
    chosen = cuda_lock if choice.variant == variants.CUDA else cpu_lock
    if not chosen.is_file():
        raise LockstepError(
            f"{chosen.name} not found ({choice.reason}); run `invoke lock` (it writes the CUDA "
            "and the CPU lock) and commit both; nothing was changed"
        )
    say(f"lockstep: {choice.variant.upper()} variant, {chosen.name}: {choice.reason}")
    return chosen


def _bundle_source(
    folder: str | None, platform: str, locks: Sequence[Path], lock_data: Mapping[str, Any]
) -> BundleSource | None:
    """The bundle named by --bundle, checked against the locks it must have been made from,
    its wheels and lock copies against their hashes (its archives: verify_archives)."""
    if not folder:
        return None
    path = Path(folder).absolute()
    manifest = bundle.read_manifest(path)
    bundle.check_made_from(path, manifest, platform, locks)
    checked = bundle.verify_files(path, manifest, lock_data)
    say(f"lockstep: {checked} bundle files (wheels, lock copies) match their hashes")
    return BundleSource(path, manifest)


def _mirrored(lock_path: Path, tmp: Path, offline: BundleSource | None = None) -> Path:
    """The lock as it will be installed: from a bundle's files, mirrored into a temporary copy,
    or as it is."""
    try:
        if offline is not None:
            config = bundle.mirror_config(offline.folder, offline.manifest)
        else:
            config = mirrors.config_from_env(os.environ)
        if not config.active:
            return lock_path
        text = lock_path.read_text(encoding="utf-8")
        rewritten, changed = mirrors.rewrite_lock(text, config, str(lock_path))
    except mirrors.MirrorError as exc:
        raise LockstepError(f"{exc}; nothing was changed") from None
    copy = tmp / lock_path.name
    copy.write_text(rewritten, encoding="utf-8")
    say(f"lockstep: {changed} package URLs of {lock_path.name} from {mirrors.describe(config)}")
    return copy


def create(args: argparse.Namespace) -> int:
    """A new env solved from specs (env-create); an existing one is replaced only with --force."""
    check_env_name(args.name or "")
    fe = find_frontend(args.frontend or "auto", shutil.which)
    overrides = dict(pair for pair in args.virtual)
    env = {**child_environ(), **solver_overrides(overrides, os.environ)}
    request = Request(args.name, fe, False, Commit(), dict(args.env_var))

    def preflight(state: EnvState) -> None:
        if state.prefix.exists() and not args.force:
            raise LockstepError(
                f"env '{args.name}' already exists at {state.prefix}; keep it, rebuild it from the "
                "locks with `invoke reproduce`, or pass --force to replace it"
            )
        # Solve first, into a prefix that does not exist: a spec that cannot be solved stops
        # here, with the old env untouched (`create --yes` deletes its prefix before solving).
        scratch = str(state.folder / "dry-run")
        dry = commands.create_from_specs(fe, scratch, args.channel, args.spec, dry_run=True)
        _solve_check(dry, env)

    def build(prefix: Path) -> None:
        run_step(commands.create_from_specs(fe, str(prefix), args.channel, args.spec), env)

    prefix = replace_env(request, build, preflight)
    say(f"lockstep: created '{args.name}' at {prefix} from {len(args.spec)} specs")
    return 0


def _solve_check(command: list[str], env: Mapping[str, str]) -> None:
    say("+ " + shlex.join(command))
    proc = subprocess.run(command, capture_output=True, text=True, env=dict(env))
    if proc.returncode == 0:
        return
    try:
        data = json.loads(proc.stdout)
        reason = data.get("message") or data.get("error") or ""
    except ValueError:
        reason = (proc.stderr.strip() or proc.stdout.strip()).splitlines()[-1:] or [""]
        reason = reason[0]
    first = (
        str(reason).strip().splitlines()[0] if str(reason).strip() else f"exit {proc.returncode}"
    )
    raise LockstepError(
        f"the spec cannot be solved: {first}; fix environment.yml (or virtual-packages.yml); "
        "the existing env was not touched"
    )


# Virtual packages conda reads from CONDA_OVERRIDE_<NAME> for one command.
_OVERRIDE_VARS = {"__cuda": "CONDA_OVERRIDE_CUDA"}
NVIDIA_DRIVER_FILE = Path("/proc/driver/nvidia/version")


def solver_overrides(
    virtual: Mapping[str, str], environ: Mapping[str, str], driver: Path = NVIDIA_DRIVER_FILE
) -> dict[str, str]:
    """CONDA_OVERRIDE_* for an env-create solve on a machine without a GPU.

    conda-lock reads virtual-packages.yml; conda does not, so a CUDA spec is unsolvable where no
    driver is seen. Where a driver exists, conda's own detection is the truth; a value the user
    set wins over both.
    """
    found: dict[str, str] = {}
    for name, version in virtual.items():
        var = _OVERRIDE_VARS.get(name)
        if var is None or var in environ or driver.exists():
            continue
        found[var] = version
    return found


def recover_only(args: argparse.Namespace) -> int:
    """Finish or undo an interrupted run of an env (update calls this before it reads files)."""
    settings = _settings(args.project_dir, args.name, args.frontend)
    fe = find_frontend(settings.frontend, shutil.which)
    _listing, state = _find(fe, settings.env_name)
    if state.folder.exists() or state.legacy_backup.exists():
        with exclusive(state, settings.env_name):
            recover(state, settings.env_name)
    return 0


# --------------------------------------------------------------------------- command line


def _pair(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"{text!r} is not KEY=VALUE")
    return key, value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m lockstep.core.engine", description=__doc__)
    sub = parser.add_subparsers(dest="action", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--name", help="env name (default: env-name in [tool.lockstep])")
    common.add_argument("--frontend", help="conda, mamba, micromamba or a path to one")
    common.add_argument("--project-dir", default=".", help="the project (default: .)")

    rep = sub.add_parser("reproduce", parents=[common], help="the env from both locks")
    rep.add_argument("--conda-lock", help="explicit lock (default: the lock of this platform)")
    rep.add_argument("--cpu-lock", help="CPU variant's lock (default: cpu-lock-file-template)")
    rep.add_argument(
        "--variant", help="cuda or cpu; auto (or empty): by the NVIDIA driver (default: auto)"
    )
    rep.add_argument("--poetry-lock", help="Poetry's lock (default: poetry-lock-file setting)")
    rep.add_argument("--pyproject", help="pyproject.toml to plan with (default: the project's)")
    rep.add_argument("--force", action="store_true", help="delete the old env first")
    rep.add_argument("--locked", action="store_true", help="refuse when there is no conda lock")
    rep.add_argument("--bundle", help="install offline from this bundle (`invoke bundle`)")
    rep.add_argument("--installer", help="rattler, frontend or auto (default: installer setting)")
    rep.add_argument(
        "--commit",
        type=_pair,
        action="append",
        default=[],
        metavar="DEST=SOURCE",
        help="also put SOURCE's text at DEST once the env is complete (update's new locks)",
    )

    cre = sub.add_parser("create", parents=[common], help="an env solved from specs")
    cre.add_argument("--channel", action="append", default=[])
    cre.add_argument("--spec", action="append", default=[])
    cre.add_argument("--env-var", type=_pair, action="append", default=[], metavar="NAME=VALUE")
    cre.add_argument("--virtual", type=_pair, action="append", default=[], metavar="__NAME=VER")
    cre.add_argument("--force", action="store_true", help="replace an existing env")

    sub.add_parser("recover", parents=[common], help="undo an interrupted run of the env")
    return parser


def reproduce_request(args: argparse.Namespace) -> ReproduceRequest:
    """The parsed ``reproduce`` command line as the request it was built from (an empty value,
    as make passes an unset variable, is no value)."""
    values = {attribute: getattr(args, attribute) or None for _, attribute in REPRODUCE_VALUES}
    return ReproduceRequest(
        args.project_dir,
        **values,
        force=args.force,
        locked=args.locked,
        commit=tuple(args.commit),
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    actions: dict[str, Callable[[argparse.Namespace], int]] = {
        "reproduce": lambda parsed: reproduce(reproduce_request(parsed)),
        "create": create,
        "recover": recover_only,
    }
    SIGNALS.arm()
    PHASES.start()
    try:
        return actions[args.action](args)
    except LockstepError as exc:
        say(f"error: {exc}", err=True)
        return 1
    except Interrupted as exc:
        return 128 + exc.signum
    except OSError as exc:
        say(f"error: {describe_os_error(exc)}", err=True)
        return 1
    finally:
        SIGNALS.disarm()


if __name__ == "__main__":
    raise SystemExit(main())
