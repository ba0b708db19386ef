"""`invoke upgrade`: a newer starter's tooling into a project, and no file of the user's touched.

Who owns what (tooling/README.md "Upgrade"):

- the tooling's: every file git tracks under tooling/, and tasks.py and the Makefile at the root.
  They are replaced wholesale, and only when each is byte for byte the file of one commit of the
  starter (the base): a local edit would be lost, so one is refused with its diff instead. The
  Makefile's ``IMAGE ?=`` value, which ``invoke rename`` of tooling 0.2.0 wrote, is no edit: it
  is left out of the comparison, and the new Makefile comes as the starter has it (since then
  IMAGE is empty and docker-build tags the env's name).
- shared: the Dockerfile, Apptainer.def, .dockerignore, .gitignore, .pre-commit-config.yaml,
  .ci/run and .github/workflows/. Three ways: a file still as the base had it takes the new
  starter's; one edited here and changed upstream is left as it is and reported, with the
  starter's change to merge by hand.
- the user's: everything else (README.md, pyproject.toml, poetry.lock, environment.yml, src/,
  tests/, project.mk, ...). Never read for the plan, never written.

The base is found in the source's own history: the newest ancestor of the wanted commit whose
tooling files have the project's blob ids (``git ls-tree -r`` against the ids of the files on
disk, computed as ``git hash-object --no-filters`` does).

This module runs from the NEWER starter (the task clones it and runs its copy of this file), so a
fix to the upgrade applies to the upgrade that brings it, and a project whose tooling predates the
task can run it too: ``python3 STARTER/tooling/src/lockstep/upgrade.py --project .``. It uses the
standard library and lockstep.core alone. The writes are one transaction: every new file is
staged in ``.lockstep-upgrade/`` beside the originals (kept as hard links) and a journal says
what comes next; then every file is renamed into place. A failure or a signal rolls everything
back before exit; after a SIGKILL or a power loss the next run of the upgrade does so first.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __name__ == "__main__":  # run as a file: this starter's package, never the project's
    _SRC = str(Path(__file__).resolve().parents[1])
    if sys.path and Path(sys.path[0] or ".").resolve() == Path(__file__).resolve().parent:
        sys.path[0] = _SRC  # the script's own folder would shadow the standard library
    else:
        sys.path.insert(0, _SRC)

import argparse
import contextlib
import hashlib
import json
import os
import re
import shutil
import stat
import subprocess
import tomllib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lockstep.core.errors import LockstepError
from lockstep.core.fsutil import (
    atomic_write_text,
    describe_os_error,
    sync_folder,
    text_diff,
)
from lockstep.core.signals import SIGNALS, Interrupted, say

TOOLING_FOLDER = "tooling/"
TOOLING_FILES = frozenset({"tasks.py", "Makefile"})
SHARED_FILES = frozenset(
    {
        ".ci/run",
        ".dockerignore",
        ".gitignore",
        ".pre-commit-config.yaml",
        "Apptainer.def",
        "Dockerfile",
    }
)
SHARED_FOLDERS = (".github/workflows/",)
VERSION_FILE = "tooling/pyproject.toml"
STAGING = ".lockstep-upgrade"
JOURNAL_VERSION = 1
# Lines of tooling files that `invoke rename` of an earlier tooling wrote (0.2.0: the Makefile's
# image name): compared without their value, so a renamed project still finds its base.
RENAMED_LINES: Mapping[str, re.Pattern[str]] = {
    "Makefile": re.compile(r"^(IMAGE[ \t]*\?=[ \t]*)(\S*)", re.MULTILINE),
}
# What `git` must not take from the caller: a hook's GIT_DIR would point it at another repository.
_GIT_LOCATION_VARS = (
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_COMMON_DIR",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
)


def owner(path: str) -> str | None:
    """ "tooling", "shared" or None (the user's) for a path relative to the project root."""
    if path.startswith(TOOLING_FOLDER) or path in TOOLING_FILES:
        return "tooling"
    if path in SHARED_FILES or path.startswith(SHARED_FOLDERS):
        return "shared"
    return None


# --------------------------------------------------------------------------- blobs and lines


def blob_id(data: bytes, algorithm: str = "sha1") -> str:
    """git's object id of a file holding ``data`` (``git hash-object --no-filters``)."""
    return hashlib.new(algorithm, b"blob %d\0" % len(data) + data).hexdigest()


def project_value(path: str, data: bytes) -> str | None:
    """The value in ``path``'s renamed line (the Makefile's image name), or None."""
    pattern = RENAMED_LINES.get(path)
    text = _utf8(data) if pattern else None
    match = pattern.search(text) if pattern and text is not None else None
    return match.group(2) if match else None


def with_value(path: str, data: bytes, value: str | None) -> bytes:
    """``data`` with ``value`` in its renamed line ("" blanks it); others are returned as is."""
    pattern = RENAMED_LINES.get(path)
    text = _utf8(data) if pattern and value is not None else None
    if pattern is None or text is None or value is None:
        return data
    return pattern.sub(lambda m: m.group(1) + value, text, count=1).encode("utf-8")


def compared(path: str, data: bytes, algorithm: str) -> str:
    """What is compared of a file: its blob id, with its renamed line blanked first."""
    return blob_id(with_value(path, data, ""), algorithm)


def _text(data: bytes) -> str | None:
    """``data`` as text for a diff, or None where git would call it binary (a NUL byte in its
    first 8000, or not UTF-8)."""
    return None if b"\0" in data[:8000] else _utf8(data)


def _utf8(data: bytes) -> str | None:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


# --------------------------------------------------------------------------- the plan (pure)


@dataclass(frozen=True)
class Entry:
    """One file of a starter commit: its blob, whether git marks it executable, and its key
    (what is compared: the blob id, or for a file with a renamed line the id without it)."""

    blob: str
    executable: bool
    key: str


@dataclass(frozen=True)
class Snapshot:
    """A starter commit's tooling and shared files (path relative to the root -> entry)."""

    commit: str
    files: Mapping[str, Entry]

    def tooling(self) -> dict[str, Entry]:
        return {p: e for p, e in self.files.items() if owner(p) == "tooling"}


@dataclass(frozen=True)
class Change:
    path: str
    action: str  # added, changed or removed


@dataclass(frozen=True)
class Kept:
    """A shared file the upgrade leaves as the project has it, and why."""

    path: str
    why: str


@dataclass(frozen=True)
class Plan:
    base: Snapshot
    new: Snapshot
    changes: tuple[Change, ...]
    kept: tuple[Kept, ...]


def parse_ls_tree(output: bytes) -> dict[str, tuple[str, bool]]:
    """``git ls-tree -r -z`` output -> {path: (blob id, executable)}, tooling and shared files
    only (no submodule or symlink is the tooling's)."""
    found = {}
    for record in output.split(b"\0"):
        if not record:
            continue
        info, _, name = record.partition(b"\t")
        mode, kind, oid = info.decode("ascii").split(" ")
        path = name.decode("utf-8", "surrogateescape")
        if kind == "blob" and mode in ("100644", "100755") and owner(path) is not None:
            found[path] = (oid, mode == "100755")
    return found


def parse_batch(output: bytes) -> dict[str, bytes]:
    """``git cat-file --batch`` output -> {object id: content}; a missing object is an error."""
    found: dict[str, bytes] = {}
    at = 0
    while at < len(output):
        end = output.index(b"\n", at)
        header = output[at:end].decode("ascii").split(" ")
        if len(header) != 3:
            raise LockstepError(f"the starter's clone lacks object {header[0]}: clone it again")
        size = int(header[2])
        found[header[0]] = output[end + 1 : end + 1 + size]
        at = end + 1 + size + 1
    return found


def differing(project: Mapping[str, str], snapshot: Snapshot) -> list[str]:
    """The snapshot's tooling files that the project lacks or holds otherwise."""
    return sorted(p for p, e in snapshot.tooling().items() if project.get(p) != e.key)


def find_base(project: Mapping[str, str], history: Sequence[Snapshot]) -> Snapshot | None:
    """The commit the project came from: one whose every tooling file the project has, byte for
    byte (a project file it lacks, a cache say, breaks no match). Of several, the one that
    agrees with the most of the project's shared files, then the newest (history is newest
    first): a later commit that changed only a shared file would make that file look edited."""
    matches = [s for s in history if VERSION_FILE in s.files and not differing(project, s)]
    return max(matches, key=lambda s: _agreeing(project, s), default=None)


def _agreeing(project: Mapping[str, str], snapshot: Snapshot) -> int:
    return sum(
        project.get(path) == entry.key
        for path, entry in snapshot.files.items()
        if owner(path) == "shared"
    )


def nearest(
    project: Mapping[str, str],
    history: Sequence[Snapshot],
    versions: Mapping[str, str | None],
    version: str | None,
) -> Snapshot | None:
    """The snapshot a locally edited project is shown against: among those of the project's
    tooling version (any, if none has it), the one with the fewest differing files, newest on
    a tie."""
    layout = [s for s in history if VERSION_FILE in s.files]
    same = [s for s in layout if versions.get(s.commit) == version]
    pool = same or layout
    return min(pool, key=lambda s: len(differing(project, s))) if pool else None


def _same(a: Entry | None, b: Entry | None) -> bool:
    return (a is None and b is None) or (
        a is not None and b is not None and (a.key, a.executable) == (b.key, b.executable)
    )


def plan_upgrade(project: Mapping[str, str], base: Snapshot, new: Snapshot) -> Plan:
    """What moves from ``base`` to ``new``, given the keys of the project's files (path -> key;
    a missing file is absent). The project's tooling files are the base's (find_base)."""
    changes: list[Change] = []
    kept: list[Kept] = []
    clashes: list[str] = []
    for path in sorted(set(base.files) | set(new.files)):
        was, now, here = base.files.get(path), new.files.get(path), project.get(path)
        if _same(was, now):
            continue
        action = "added" if was is None else "removed" if now is None else "changed"
        now_key = now.key if now else None
        if here == now_key and (was is None or now is None or was.key != now.key):
            continue  # the content is the new starter's already
        if here == (was.key if was else None):
            changes.append(Change(path, action))
        elif owner(path) == "tooling":
            clashes.append(path)  # find_base matched every file of the base: a new one
        else:
            kept.append(Kept(path, _why_kept(was, now, here)))
    if clashes:
        raise LockstepError(
            f"{', '.join(clashes)}: the new tooling adds {'these' if len(clashes) > 1 else 'this'}"
            " but the project has other content there; move it out of the way and run again; "
            "nothing was written"
        )
    return Plan(base, new, tuple(changes), tuple(kept))


def _why_kept(was: Entry | None, now: Entry | None, here: str | None) -> str:
    if here is None:
        return "deleted here; the starter changed it: left deleted"
    if was is None:
        return "yours; the starter now ships one too: left as is, the starter's is below"
    if now is None:
        return "edited here; the starter removed it: left as is"
    return "edited here and changed in the starter: left as is, merge the change below by hand"


def report(plan: Plan, old: str, new: str, ref: str) -> list[str]:
    """The versions from and to, then each file that moves or is kept."""
    lines = [
        f"lockstep upgrade: tooling {old} (starter {plan.base.commit[:12]}) -> {new} "
        f"({ref} = {plan.new.commit[:12]})"
    ]
    width = max([len(c.action) for c in plan.changes] + [len("kept")])
    lines += [f"  {c.action:<{width}}  {c.path}" for c in plan.changes]
    lines += [f"  {'kept':<{width}}  {k.path}: {k.why}" for k in plan.kept]
    return lines


def summary(plan: Plan, ref: str, dry_run: bool) -> str:
    """The last line: what was (or would be) done."""
    if not plan.changes:
        return f"the tooling is up to date with {ref}; nothing to change"
    counts = {a: sum(c.action == a for c in plan.changes) for a in ("added", "changed", "removed")}
    done = ", ".join(f"{n} {a}" for a, n in counts.items())
    if dry_run:
        return f"would upgrade: {done}; nothing was written (--dry-run)"
    return f"upgraded: {done}; no file of yours was touched"


# --------------------------------------------------------------------------- git


def git_command(source: Path, *args: str) -> list[str]:
    return ["git", "-C", str(source), *args]


def fetch_commands(source: str, ref: str, scratch: Path) -> list[list[str]]:
    """What the task runs to get the starter at ``ref``: a bare clone (every branch and tag, as
    the source names them) and a worktree of ``ref`` beside it, whose copy of this module runs."""
    check_ref(ref)
    bare = scratch / "starter.git"
    return [
        ["git", "clone", "--quiet", "--bare", "--", source, str(bare)],
        [
            "git",
            "-C",
            str(bare),
            "worktree",
            "add",
            "--quiet",
            "--detach",
            str(scratch / "starter"),
            ref,
        ],
    ]


def module_path(starter: Path) -> Path:
    return starter / "tooling" / "src" / "lockstep" / "upgrade.py"


def module_command(python: str, scratch: Path, project: Path, ref: str, dry_run: bool) -> list[str]:
    """This module of the fetched starter, isolated (-I: no PYTHONPATH, user site or script
    folder), on the project. These four options are its stable interface."""
    starter = scratch / "starter"
    command = [python, "-I", str(module_path(starter)), "--project", str(project)]
    command += ["--source", str(starter), "--ref", ref]
    return command + (["--dry-run"] if dry_run else [])


def check_ref(ref: str) -> str:
    if not ref or ref.startswith("-") or any(c.isspace() for c in ref):
        raise LockstepError(f"invalid --ref {ref!r}: give a commit, a tag or a branch name")
    return ref


Runner = Callable[[list[str], bytes | None], bytes]


def run_git(command: list[str], stdin: bytes | None = None) -> bytes:
    """Run a read-only git command; a failure is one line with git's own last line."""
    env = {k: v for k, v in os.environ.items() if k not in _GIT_LOCATION_VARS}
    try:
        done = subprocess.run(command, input=stdin, capture_output=True, env=env, check=False)
    except FileNotFoundError:
        raise LockstepError("git not found on PATH; install git and run again") from None
    if done.returncode != 0:
        reason = done.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or ["no output"]
        raise LockstepError(f"`{' '.join(command[3:6])}` failed in the starter: {reason[0]}")
    return done.stdout


@dataclass
class Starter:
    """The starter's clone, read through git (``run`` is the one way out)."""

    source: Path
    run: Runner = run_git

    def git(self, *args: str, stdin: bytes | None = None) -> bytes:
        return self.run(git_command(self.source, *args), stdin)

    def check(self) -> str:
        """The object format (sha1, sha256); a shallow clone is refused: its history is cut."""
        try:
            answer = self.git("rev-parse", "--show-object-format", "--is-shallow-repository")
        except LockstepError:
            raise LockstepError(
                f"{self.source} is not a git clone of the starter; give a clone's path or a URL "
                "git can clone"
            ) from None
        algorithm, shallow = answer.decode().split()
        if shallow == "true":
            raise LockstepError(
                f"{self.source} is a shallow clone: its history cannot say which starter commit "
                "the project came from; clone it without --depth (or `git fetch --unshallow`)"
            )
        return algorithm

    def commit(self, ref: str) -> str:
        try:
            answer = self.git("rev-parse", "--verify", "--quiet", f"{check_ref(ref)}^{{commit}}")
        except LockstepError:
            raise LockstepError(
                f"{ref!r} is not a commit, tag or branch of {self.source}; see `git -C "
                f"{self.source} log` for what it has"
            ) from None
        return answer.decode().strip()

    def history(self, commit: str) -> list[tuple[str, dict[str, tuple[str, bool]]]]:
        """Every ancestor of ``commit`` (itself first, newest first) with its files."""
        commits = self.git("rev-list", commit).decode().split()
        return [
            (c, parse_ls_tree(self.git("ls-tree", "-r", "-z", "--full-tree", c))) for c in commits
        ]

    def blobs(self, ids: Iterable[str]) -> dict[str, bytes]:
        wanted = sorted(set(ids))
        if not wanted:
            return {}
        return parse_batch(
            self.git("cat-file", "--batch", stdin="".join(f"{i}\n" for i in wanted).encode())
        )


def snapshots(
    history: Sequence[tuple[str, Mapping[str, tuple[str, bool]]]],
    contents: Mapping[str, bytes],
    algorithm: str,
) -> list[Snapshot]:
    """Listings -> snapshots, with each renamed-line file's key from its content."""
    keys: dict[tuple[str, str], str] = {}
    found = []
    for commit, listing in history:
        files = {}
        for path, (blob, executable) in listing.items():
            key = blob
            if path in RENAMED_LINES:
                if (path, blob) not in keys:
                    keys[path, blob] = compared(path, contents[blob], algorithm)
                key = keys[path, blob]
            files[path] = Entry(blob, executable, key)
        found.append(Snapshot(commit, files))
    return found


def version_of(data: bytes | None) -> str | None:
    """[project] version of a tooling/pyproject.toml, or None."""
    try:
        return str(tomllib.loads((data or b"").decode("utf-8"))["project"]["version"])
    except (UnicodeDecodeError, tomllib.TOMLDecodeError, KeyError, TypeError):
        return None


# --------------------------------------------------------------------------- the project


def read_project(root: Path, paths: Iterable[str]) -> dict[str, bytes]:
    """The bytes of each of ``paths`` that is a file in the project."""
    found = {}
    for path in paths:
        target = root / path
        if target.is_file() and not target.is_symlink():
            found[path] = target.read_bytes()
    return found


def project_keys(files: Mapping[str, bytes], algorithm: str) -> dict[str, str]:
    return {path: compared(path, data, algorithm) for path, data in files.items()}


def refusal_diff(
    project: Mapping[str, bytes],
    snapshot: Snapshot,
    paths: Sequence[str],
    contents: Mapping[str, bytes],
) -> str:
    """The diff of each differing tooling file, from the starter's to the project's (the
    project's renamed line put into the starter's, so that only real edits show)."""
    value = project_value("Makefile", project.get("Makefile", b""))
    parts = []
    for path in paths:
        theirs = with_value(path, contents[snapshot.files[path].blob], value)
        ours = project.get(path)
        if ours is None:
            parts.append(f"--- {path}\n+++ (missing here)\n")
            continue
        old, new = _text(theirs), _text(ours)
        if old is None or new is None:
            parts.append(f"Binary file {path} differs\n")
        else:
            parts.append(_line_diff(old, new, path))
    return "".join(parts)


# --------------------------------------------------------------------------- the transaction


@dataclass(frozen=True)
class Write:
    path: str
    data: bytes | None  # None: the file is removed
    executable: bool = False


def _staging(root: Path) -> Path:
    return root / STAGING


def _file_mode(target: Path, executable: bool) -> int | None:
    """The mode a replaced file gets: its own, with x wherever r is when the starter marks it
    executable (and without x when not); None for a new file (0666/0777 minus the umask)."""
    try:
        mode = stat.S_IMODE(os.stat(target).st_mode)
    except FileNotFoundError:
        return None
    rw = mode & ~0o111
    return rw | ((rw & 0o444) >> 2) if executable else rw


def _write_staged(staged: Path, data: bytes, mode: int | None, executable: bool) -> None:
    staged.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o777 if executable else 0o666)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        if mode is not None:
            os.fchmod(handle.fileno(), mode)
        os.fsync(handle.fileno())


def _keep(target: Path, kept: Path) -> None:
    kept.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(target, kept, follow_symlinks=False)
    except OSError:  # no hard links here: a copy restores the same bytes and mode
        shutil.copy2(target, kept, follow_symlinks=False)


def stage(root: Path, writes: Sequence[Write], header: Mapping[str, str]) -> dict[str, Any]:
    """Every new file in .lockstep-upgrade/new/, every file it replaces or removes kept in
    .lockstep-upgrade/old/, then the journal. The project itself is not changed; a failure
    leaves no staging folder."""
    folder = _staging(root)
    folder.mkdir()
    try:
        files: list[dict[str, Any]] = []
        created: list[str] = []
        for write in writes:
            target = root / write.path
            existed = target.is_file()
            if write.data is not None:
                mode = _file_mode(target, write.executable)
                _write_staged(folder / "new" / write.path, write.data, mode, write.executable)
                for parent in reversed(Path(write.path).parents[:-1]):
                    if not (root / parent).is_dir() and parent.as_posix() not in created:
                        created.append(parent.as_posix())
            if existed:
                _keep(target, folder / "old" / write.path)
            action = "write" if write.data is not None else "remove"
            files.append({"path": write.path, "action": action, "existed": existed})
        journal = {"version": JOURNAL_VERSION, "state": "staged", **header}
        journal |= {"files": files, "folders": created}
        for staged in {p.parent for p in folder.rglob("*") if p.is_file()}:
            sync_folder(staged)
        atomic_write_text(folder / "journal.json", json.dumps(journal, indent=1) + "\n")
        sync_folder(root)
        return journal
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise


def apply(root: Path, journal: Mapping[str, Any]) -> None:
    """Rename every staged file into place and remove the removed ones; on any failure or
    signal every file is put back before the exception propagates."""
    folder = _staging(root)
    try:
        for created in journal["folders"]:
            (root / created).mkdir(exist_ok=True)
        for item in journal["files"]:
            target = root / item["path"]
            if item["action"] == "write":
                os.replace(folder / "new" / item["path"], target)
            else:
                with contextlib.suppress(FileNotFoundError):
                    target.unlink()
        for parent in {(root / item["path"]).parent for item in journal["files"]}:
            with contextlib.suppress(FileNotFoundError):
                sync_folder(parent)
        with SIGNALS.deferred():
            done = json.dumps({**journal, "state": "applied"}, indent=1) + "\n"
            atomic_write_text(folder / "journal.json", done)
    except BaseException:
        with SIGNALS.deferred():
            count = roll_back(root, journal)
        say(f"lockstep upgrade: stopped; put back the {count} files it had written", err=True)
        raise
    try:
        with SIGNALS.deferred():
            finish(root, journal)
    except Interrupted:
        say("lockstep upgrade: every file was written before the signal came", err=True)
        raise


def roll_back(root: Path, journal: Mapping[str, Any]) -> int:
    """Every file of the journal as it was before; returns how many had changed."""
    folder = _staging(root)
    restored = 0
    for item in reversed(journal["files"]):
        target, kept = root / item["path"], folder / "old" / item["path"]
        if kept.exists():
            if target.exists() and os.path.samefile(kept, target):
                continue  # never replaced
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(kept, target)
            restored += 1
        elif not item["existed"] and not (folder / "new" / item["path"]).exists():
            with contextlib.suppress(FileNotFoundError):
                target.unlink()
                restored += 1
    for created in reversed(journal["folders"]):
        with contextlib.suppress(OSError):
            (root / created).rmdir()
    sync_folder(root)
    shutil.rmtree(folder)
    return restored


def finish(root: Path, journal: Mapping[str, Any]) -> None:
    """Once every file is in place: the tooling folders the removals emptied go, then the
    staging folder (originals and journal)."""
    for item in journal["files"]:
        if item["action"] == "remove":
            parent = Path(item["path"]).parent
            while parent != Path(".") and owner(f"{parent.as_posix()}/") is not None:
                with contextlib.suppress(OSError):
                    (root / parent).rmdir()
                parent = parent.parent
    shutil.rmtree(_staging(root))


def recover(root: Path) -> str | None:
    """Undo (or finish) an interrupted upgrade; one line saying what was done, or None."""
    folder = _staging(root)
    if not folder.exists():
        return None
    try:
        journal = json.loads((folder / "journal.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        shutil.rmtree(folder)
        return "lockstep upgrade: removed the staging of an upgrade interrupted before it wrote"
    except (OSError, ValueError) as exc:
        raise LockstepError(
            f"{folder / 'journal.json'}: unreadable ({exc}); the originals of an interrupted "
            f"upgrade are in {folder / 'old'}: copy them back by hand, then remove {folder}"
        ) from None
    moved = f"({journal.get('from')} -> {journal.get('to')})"
    if journal.get("state") == "applied":
        finish(root, journal)
        return f"lockstep upgrade: finished an interrupted upgrade {moved}: every file was in"
    count = roll_back(root, journal)
    return f"lockstep upgrade: put back {count} files of an interrupted upgrade {moved}"


# --------------------------------------------------------------------------- the command


class Refused(LockstepError):
    """A tooling file was edited here: the diff goes to stdout, the message to stderr."""

    def __init__(self, message: str, diff: str) -> None:
        super().__init__(message)
        self.diff = diff


def upgrade(root: Path, starter: Starter, ref: str, dry_run: bool) -> None:
    """Recover, read, plan, print and (unless dry_run) write the upgrade."""
    if not (root / VERSION_FILE).is_file():
        raise LockstepError(
            f"{root} has no {VERSION_FILE}: not a Lockstep project with its tooling in tooling/ "
            "(tooling 0.2.0 or newer); run from the project's root or give --project"
        )
    if _staging(root).exists():
        if dry_run:
            raise LockstepError(
                f"an upgrade was interrupted ({STAGING}/ is there): run the same command "
                "without --dry-run; it puts the files back first"
            )
        say(recover(root) or "")
    algorithm = starter.check()
    listings = starter.history(starter.commit(ref))
    special = {
        blob
        for _, listing in listings
        for path, (blob, _) in listing.items()
        if path in RENAMED_LINES or path == VERSION_FILE
    }
    contents = starter.blobs(special)
    history = snapshots(listings, contents, algorithm)
    files = read_project(root, {p for s in history for p in s.files})
    keys = project_keys(files, algorithm)
    version = version_of(files.get(VERSION_FILE))
    base = find_base(keys, history)
    if base is None:
        raise _refusal(starter, files, keys, history, contents, version)
    new = history[0]
    plan = plan_upgrade(keys, base, new)
    new_version = new.files.get(VERSION_FILE)
    to_version = version_of(contents.get(new_version.blob)) if new_version else None
    for line in report(plan, str(version), str(to_version), ref):
        say(line)
    shown = [e for k in plan.kept for e in (base.files.get(k.path), new.files.get(k.path)) if e]
    wanted = [new.files[c.path] for c in plan.changes if c.action != "removed"]
    contents = {**contents, **starter.blobs(e.blob for e in [*shown, *wanted])}
    for kept in plan.kept:
        say(_starter_change(kept.path, base, new, contents))
    if dry_run or not plan.changes:
        say(summary(plan, ref, dry_run))
        return
    writes = []
    for change in plan.changes:
        entry = new.files.get(change.path)
        if entry is None:
            writes.append(Write(change.path, None))
        else:
            writes.append(Write(change.path, contents[entry.blob], entry.executable))
    header = {"from": str(version), "to": str(to_version), "commit": new.commit}
    apply(root, stage(root, writes, header))
    say(summary(plan, ref, dry_run))


def _line_diff(old: str, new: str, path: str) -> str:
    """text_diff, each line on a line of its own even where a file lacks its final newline."""
    ended = [t if t.endswith("\n") or not t else f"{t}\n" for t in (old, new)]
    diff = text_diff(ended[0], ended[1], path)
    return diff or f"--- {path}\n+++ {path}\n(only the newline at the end differs)\n"


def _starter_change(path: str, base: Snapshot, new: Snapshot, contents: Mapping[str, bytes]) -> str:
    """The starter's own change of a shared file kept as the project has it."""
    was, now = base.files.get(path), new.files.get(path)
    old = _text(contents[was.blob]) if was else ""
    text = _text(contents[now.blob]) if now else ""
    if old is None or text is None:
        return f"Binary file {path} differs"
    return _line_diff(old, text, path).rstrip("\n")


def _refusal(
    starter: Starter,
    files: Mapping[str, bytes],
    keys: Mapping[str, str],
    history: Sequence[Snapshot],
    contents: Mapping[str, bytes],
    version: str | None,
) -> Refused:
    versions = {
        s.commit: version_of(contents.get(s.files[VERSION_FILE].blob))
        for s in history
        if VERSION_FILE in s.files
    }
    closest = nearest(keys, history, versions, version)
    if closest is None:
        return Refused(f"{starter.source} has no commit with its tooling in tooling/", "")
    paths = differing(keys, closest)
    wanted = [closest.files[p].blob for p in paths]
    diff = refusal_diff(files, closest, paths, {**contents, **starter.blobs(wanted)})
    named = ", ".join(paths[:5]) + (f" and {len(paths) - 5} more" if len(paths) > 5 else "")
    return Refused(
        f"tooling files were edited here ({named}): the diff above is against the starter's "
        f"{closest.commit[:12]} (tooling {versions.get(closest.commit)}); put them back (copy "
        "them from that commit) and move your change into files of yours (project.mk for make "
        "targets), then run again; nothing was written",
        diff,
    )


def build_parser() -> argparse.ArgumentParser:
    here = Path(__file__).resolve().parents[3]
    parser = argparse.ArgumentParser(
        prog="upgrade.py", description="Bring this starter's tooling into a Lockstep project."
    )
    parser.add_argument("--project", default=".", help="the project's root (default: .)")
    parser.add_argument(
        "--source", default=str(here), help="the starter's git clone (default: this file's)"
    )
    parser.add_argument("--ref", default="HEAD", help="the starter's commit, tag or branch")
    parser.add_argument("--dry-run", action="store_true", help="print the plan, write nothing")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    SIGNALS.arm()
    try:
        upgrade(
            Path(args.project).resolve(),
            Starter(Path(args.source).resolve()),
            args.ref,
            args.dry_run,
        )
    except Refused as exc:
        say(exc.diff.rstrip("\n"))
        say(f"error: {exc}", err=True)
        return 1
    except LockstepError as exc:
        say(f"error: {exc}", err=True)
        return 1
    except OSError as exc:
        say(f"error: {describe_os_error(exc)}", err=True)
        return 1
    except Interrupted as exc:
        say(f"error: stopped by signal {exc.signum}", err=True)
        return 128 + exc.signum
    finally:
        SIGNALS.disarm()
    return 0


if __name__ == "__main__":
    sys.exit(main())
