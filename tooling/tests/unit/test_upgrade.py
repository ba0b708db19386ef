"""lockstep.upgrade: who owns which file, the plan as exact file lists, the refusals, the git
commands, the transaction under faults and a kill, and the task with the shell mocked."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import tasks
from invoke import Exit, Result
from tests.paths import SRC
from tests.unit.fsfaults import snapshot, umask
from tests.unit.test_tasks import Shell

from lockstep import upgrade as up
from lockstep.core.engine import Interrupted
from lockstep.core.errors import LockstepError
from lockstep.upgrade import Change, Entry, Kept, Snapshot, Write

# --------------------------------------------------------------------------- ownership


@pytest.mark.parametrize(
    ("path", "owner"),
    [
        ("tooling/pyproject.toml", "tooling"),
        ("tooling/src/lockstep/core/engine.py", "tooling"),
        ("tasks.py", "tooling"),
        ("Makefile", "tooling"),
        ("Dockerfile", "shared"),
        ("Apptainer.def", "shared"),
        (".ci/run", "shared"),
        (".github/workflows/tests.yml", "shared"),
        (".gitignore", "shared"),
        (".github/dependabot.yml", None),
        ("pyproject.toml", None),
        ("poetry.lock", None),
        ("environment.yml", None),
        ("README.md", None),
        ("project.mk", None),
        ("src/ml_project/model.py", None),
        ("tests/tasks.py", None),
        ("toolingx/a.py", None),
    ],
)
def test_who_owns_a_file(path: str, owner: str | None) -> None:
    assert up.owner(path) == owner


# --------------------------------------------------------------------------- blobs, lines


@pytest.mark.parametrize("object_format", ["sha1", "sha256"])
@pytest.mark.parametrize("data", [b"", b"abc\n", b"\x00\xff binary\r\n", "é\n".encode()])
def test_blob_id_is_what_git_hash_object_says(
    tmp_path: Path, object_format: str, data: bytes
) -> None:
    repo = tmp_path / "repo"
    subprocess.run(["git", "init", "-q", f"--object-format={object_format}", str(repo)], check=True)
    done = subprocess.run(
        ["git", "-C", str(repo), "hash-object", "--no-filters", "--stdin"],
        input=data,
        capture_output=True,
        check=True,
    )
    assert up.blob_id(data, object_format) == done.stdout.decode().strip()


MAKEFILE = b"VENV ?= .venv\nIMAGE ?= my-project\nNEW_NAME ?=\n"


def test_the_makefile_image_line_an_older_rename_wrote_is_no_edit() -> None:
    assert up.project_value("Makefile", MAKEFILE) == "my-project"
    assert up.with_value("Makefile", MAKEFILE, "") == b"VENV ?= .venv\nIMAGE ?= \nNEW_NAME ?=\n"
    renamed = up.with_value("Makefile", b"IMAGE ?= lockstep\n", "my-project")
    assert renamed == b"IMAGE ?= my-project\n"
    # Compared without the line: the starter's Makefile and a renamed copy are one file.
    assert up.compared("Makefile", MAKEFILE, "sha1") == up.compared(
        "Makefile", MAKEFILE.replace(b"my-project", b"lockstep"), "sha1"
    )


def test_other_files_and_a_makefile_without_the_line_are_compared_as_they_are() -> None:
    assert up.project_value("tasks.py", b"IMAGE ?= x\n") is None
    assert up.with_value("tasks.py", b"IMAGE ?= x\n", "y") == b"IMAGE ?= x\n"
    assert up.with_value("Makefile", b"all:\n", "y") == b"all:\n"
    assert up.project_value("Makefile", b"\xff\n") is None
    assert up.compared("Dockerfile", b"FROM x\n", "sha1") == up.blob_id(b"FROM x\n")


# --------------------------------------------------------------------------- git output


def test_ls_tree_keeps_the_tooling_and_shared_blobs_only() -> None:
    output = b"".join(
        [
            b"100644 blob " + b"a" * 40 + b"\ttooling/pyproject.toml\0",
            b"100755 blob " + b"b" * 40 + b"\t.ci/run\0",
            b"100644 blob " + b"c" * 40 + b"\tREADME.md\0",
            b"120000 blob " + b"d" * 40 + b"\ttooling/link\0",
            b"160000 commit " + b"e" * 40 + b"\ttooling/vendored\0",
            b"100644 blob " + b"f" * 40 + b"\ttooling/a file\twith a tab.txt\0",
        ]
    )
    assert up.parse_ls_tree(output) == {
        "tooling/pyproject.toml": ("a" * 40, False),
        ".ci/run": ("b" * 40, True),
        "tooling/a file\twith a tab.txt": ("f" * 40, False),
    }


def test_cat_file_batch_output_is_split_by_size_and_a_missing_object_refused() -> None:
    output = b"%s blob 4\nab\n\n\n%s blob 0\n\n" % (b"1" * 40, b"2" * 40)
    assert up.parse_batch(output) == {"1" * 40: b"ab\n\n", "2" * 40: b""}
    with pytest.raises(LockstepError, match="lacks object 3333"):
        up.parse_batch(b"%s missing\n" % (b"3" * 40))


# --------------------------------------------------------------------------- the plan


def _entry(key: str, executable: bool = False) -> Entry:
    return Entry(blob=f"blob-{key}", executable=executable, key=key)


def _snap(commit: str, **files: str) -> Snapshot:
    """Paths as keyword names: __ is '/', _dot_ a leading '.'."""
    return Snapshot(commit, {_path(k): _entry(v) for k, v in files.items()})


def _path(name: str) -> str:
    return name.replace("_dot_", ".").replace("__", "/").replace("_py", ".py")


BASE = Snapshot(
    "base",
    {
        "tooling/pyproject.toml": _entry("v1"),
        "tooling/src/a.py": _entry("a1"),
        "tooling/src/gone.py": _entry("g1"),
        "tooling/scripts/run.sh": _entry("r1"),
        "tasks.py": _entry("t1"),
        "Makefile": _entry("m1"),
        "Dockerfile": _entry("d1"),
        "Apptainer.def": _entry("ap1"),
        ".ci/run": _entry("ci1", executable=True),
        ".gitignore": _entry("gi1"),
        ".github/workflows/tests.yml": _entry("w1"),
        ".github/workflows/lock-refresh.yml": _entry("lr1"),
    },
)
NEW = Snapshot(
    "new",
    {
        "tooling/pyproject.toml": _entry("v2"),
        "tooling/src/a.py": _entry("a2"),
        "tooling/src/new.py": _entry("n2"),
        "tooling/scripts/run.sh": _entry("r1", executable=True),
        "tasks.py": _entry("t2"),
        "Makefile": _entry("m1"),
        "Dockerfile": _entry("d2"),
        "Apptainer.def": _entry("ap2"),
        ".ci/run": _entry("ci2", executable=True),
        ".gitignore": _entry("gi2"),
        ".github/workflows/tests.yml": _entry("w2"),
        ".github/workflows/lock-refresh.yml": _entry("lr2"),
        ".github/workflows/new.yml": _entry("nw2"),
        ".pre-commit-config.yaml": _entry("pc2"),
        ".dockerignore": _entry("di2"),
    },
)


def _project(**overrides: str | None) -> dict[str, str]:
    """The project's keys: the base's files, then overrides by path (None: the file is gone)."""
    keys = {path: entry.key for path, entry in BASE.files.items()}
    keys.update({"README.md": "mine", "pyproject.toml": "mine", "src/my_project/x.py": "mine"})
    for path, key in overrides.items():
        if key is None:
            keys.pop(path, None)
        else:
            keys[path] = key
    return keys


def test_the_plan_moves_the_tooling_and_what_the_user_left_alone() -> None:
    project = _project(
        **{
            "Dockerfile": "d-mine",  # edited here and upstream: kept
            "Apptainer.def": None,  # deleted here, changed upstream: kept deleted
            ".gitignore": "gi2",  # already the new one
            ".github/workflows/new.yml": "nw-mine",  # the user's own, upstream ships one too
            ".dockerignore": None,
        }
    )
    plan = up.plan_upgrade(project, BASE, NEW)
    assert plan.changes == (
        Change(".ci/run", "changed"),
        Change(".dockerignore", "added"),
        Change(".github/workflows/lock-refresh.yml", "changed"),
        Change(".github/workflows/tests.yml", "changed"),
        Change(".pre-commit-config.yaml", "added"),
        Change("tasks.py", "changed"),
        Change("tooling/pyproject.toml", "changed"),
        Change("tooling/scripts/run.sh", "changed"),  # made executable upstream
        Change("tooling/src/a.py", "changed"),
        Change("tooling/src/gone.py", "removed"),
        Change("tooling/src/new.py", "added"),
    )
    assert plan.kept == (
        Kept(
            ".github/workflows/new.yml",
            up._why_kept(None, NEW.files[".github/workflows/new.yml"], "x"),
        ),
        Kept("Apptainer.def", "deleted here; the starter changed it: left deleted"),
        Kept(
            "Dockerfile",
            "edited here and changed in the starter: left as is, merge the change below by hand",
        ),
    )
    assert plan.kept[0].why.startswith("yours; the starter now ships one too")
    assert not [c for c in plan.changes if up.owner(c.path) is None]


def test_a_shared_file_edited_here_that_the_starter_did_not_change_is_not_mentioned() -> None:
    new = Snapshot("new", {**BASE.files, "tasks.py": _entry("t2")})
    plan = up.plan_upgrade(_project(Dockerfile="d-mine"), BASE, new)
    assert plan.changes == (Change("tasks.py", "changed"),) and plan.kept == ()


def test_the_same_tooling_is_an_empty_plan() -> None:
    plan = up.plan_upgrade(_project(), BASE, BASE)
    assert plan.changes == () and plan.kept == ()
    assert up.summary(plan, "v0.3.0", dry_run=False) == (
        "the tooling is up to date with v0.3.0; nothing to change"
    )


def test_a_new_tooling_file_where_the_project_has_another_is_refused() -> None:
    project = _project(**{"tooling/src/new.py": "someone-elses"})
    with pytest.raises(LockstepError) as refused:
        up.plan_upgrade(project, BASE, NEW)
    assert str(refused.value) == (
        "tooling/src/new.py: the new tooling adds this but the project has other content there; "
        "move it out of the way and run again; nothing was written"
    )


def test_the_report_gives_both_versions_and_every_file() -> None:
    plan = up.plan_upgrade(_project(Dockerfile="d-mine"), BASE, NEW)
    lines = up.report(plan, "0.2.0", "0.3.0", "main")
    assert lines[0] == "lockstep upgrade: tooling 0.2.0 (starter base) -> 0.3.0 (main = new)"
    assert lines[1:4] == [
        "  changed  .ci/run",
        "  added    .dockerignore",
        "  changed  .github/workflows/lock-refresh.yml",
    ]
    assert lines[-1] == (
        "  kept     Dockerfile: edited here and changed in the starter: left as is, merge the "
        "change below by hand"
    )
    assert up.summary(plan, "main", dry_run=True) == (
        "would upgrade: 4 added, 9 changed, 1 removed; nothing was written (--dry-run)"
    )
    assert up.summary(plan, "main", dry_run=False) == (
        "upgraded: 4 added, 9 changed, 1 removed; no file of yours was touched"
    )


HISTORY = [
    _snap("c4", tooling__pyproject_dot_toml="v2", tasks_py="t2"),
    _snap("c3", tooling__pyproject_dot_toml="v1", tasks_py="t1b"),
    _snap("c2", tooling__pyproject_dot_toml="v1", tasks_py="t1"),
    _snap("c1", tasks_py="t0"),  # before the tooling had its folder
]
VERSIONS = {"c4": "0.3.0", "c3": "0.2.0", "c2": "0.2.0"}


def test_the_base_is_the_newest_commit_with_the_projects_tooling_files() -> None:
    project = {"tooling/pyproject.toml": "v1", "tasks.py": "t1", "tooling/.cache": "x"}
    base = up.find_base(project, HISTORY)
    assert base is not None and base.commit == "c2"
    assert up.find_base({"tooling/pyproject.toml": "v2", "tasks.py": "t2"}, HISTORY) == HISTORY[0]


def test_of_commits_with_the_same_tooling_the_one_with_the_projects_shared_files_wins() -> None:
    history = [
        Snapshot("c6", {**HISTORY[2].files, "Dockerfile": _entry("d2"), ".ci/run": _entry("r2")}),
        Snapshot("c5", {**HISTORY[2].files, "Dockerfile": _entry("d1"), ".ci/run": _entry("r2")}),
        Snapshot("c4", {**HISTORY[2].files, "Dockerfile": _entry("d1"), ".ci/run": _entry("r1")}),
        Snapshot("c3", {**HISTORY[2].files, "Dockerfile": _entry("d1"), ".ci/run": _entry("r1")}),
    ]
    project = {"tooling/pyproject.toml": "v1", "tasks.py": "t1", "Dockerfile": "d1"}
    base = up.find_base({**project, ".ci/run": "r1"}, history)
    assert base is not None and base.commit == "c4"
    base = up.find_base({**project, ".ci/run": "edited"}, history)
    assert base is not None and base.commit == "c5"


def test_a_project_of_the_old_layout_or_with_an_edited_file_has_no_base() -> None:
    assert up.find_base({"tasks.py": "t0"}, HISTORY) is None
    assert up.find_base({"tooling/pyproject.toml": "v1", "tasks.py": "edited"}, HISTORY) is None
    assert up.find_base({"tooling/pyproject.toml": "v1"}, HISTORY) is None  # tasks.py missing


def test_an_edited_project_is_shown_against_the_nearest_commit_of_its_version() -> None:
    project = {"tooling/pyproject.toml": "v2", "tasks.py": "edited"}
    # Version 0.2.0 (read from the project's file): c3 and c2 differ in one file each; the
    # newer wins, though c4 has the project's tooling/pyproject.toml.
    nearest = up.nearest(project, HISTORY, VERSIONS, "0.2.0")
    assert nearest is not None and nearest.commit == "c3"
    assert up.differing(project, nearest) == ["tasks.py", "tooling/pyproject.toml"]
    # An unknown version: the nearest of all.
    nearest = up.nearest(project, HISTORY, VERSIONS, "9.9")
    assert nearest is not None and nearest.commit == "c4"
    assert up.differing(project, nearest) == ["tasks.py"]
    assert up.nearest(project, HISTORY[3:], VERSIONS, "0.2.0") is None


# --------------------------------------------------------------------------- commands


def test_the_task_fetches_a_bare_clone_and_a_worktree_of_the_ref(tmp_path: Path) -> None:
    assert up.fetch_commands("https://example.org/starter.git", "v0.3.0", tmp_path) == [
        ["git", "clone", "--quiet", "--bare", "--", "https://example.org/starter.git",
         f"{tmp_path}/starter.git"],
        ["git", "-C", f"{tmp_path}/starter.git", "worktree", "add", "--quiet", "--detach",
         f"{tmp_path}/starter", "v0.3.0"],
    ]  # fmt: skip


def test_the_fetched_module_runs_isolated_on_the_project(tmp_path: Path) -> None:
    command = up.module_command("/venv/bin/python", tmp_path, Path("/my project"), "main", True)
    assert command == [
        "/venv/bin/python", "-I", f"{tmp_path}/starter/tooling/src/lockstep/upgrade.py",
        "--project", "/my project", "--source", f"{tmp_path}/starter", "--ref", "main",
        "--dry-run",
    ]  # fmt: skip
    assert up.build_parser().parse_args(command[3:]).dry_run


@pytest.mark.parametrize("ref", ["", "-c", "--upload-pack=x", "a b", "main\n"])
def test_a_ref_that_git_would_read_as_an_option_is_refused(ref: str) -> None:
    with pytest.raises(LockstepError, match="invalid --ref"):
        up.check_ref(ref)


class FakeGit:
    """Answers of a starter's git, recorded: (argument list, stdin)."""

    def __init__(self, answers: dict[tuple[str, ...], bytes]) -> None:
        self.answers = answers
        self.calls: list[tuple[list[str], bytes | None]] = []

    def __call__(self, command: list[str], stdin: bytes | None) -> bytes:
        self.calls.append((command, stdin))
        answer = self.answers.get(tuple(command[3:]))
        if answer is None:
            raise LockstepError(f"`{' '.join(command[3:6])}` failed in the starter: fatal")
        return answer


def test_the_starter_is_read_with_these_git_commands() -> None:
    tree = b"100644 blob " + b"a" * 40 + b"\ttooling/pyproject.toml\0"
    git = FakeGit(
        {
            ("rev-parse", "--show-object-format", "--is-shallow-repository"): b"sha1\nfalse\n",
            ("rev-parse", "--verify", "--quiet", "main^{commit}"): b"c2\n",
            ("rev-list", "c2"): b"c2\nc1\n",
            ("ls-tree", "-r", "-z", "--full-tree", "c2"): tree,
            ("ls-tree", "-r", "-z", "--full-tree", "c1"): b"",
            ("cat-file", "--batch"): b"%s blob 2\nhi\n" % (b"a" * 40),
        }
    )
    starter = up.Starter(Path("/starter"), git)
    assert starter.check() == "sha1"
    assert starter.history(starter.commit("main")) == [
        ("c2", {"tooling/pyproject.toml": ("a" * 40, False)}),
        ("c1", {}),
    ]
    assert starter.blobs(["a" * 40, "a" * 40]) == {"a" * 40: b"hi"}
    assert starter.blobs([]) == {}
    assert [call[0] for call in git.calls] == [
        ["git", "-C", "/starter", "rev-parse", "--show-object-format", "--is-shallow-repository"],
        ["git", "-C", "/starter", "rev-parse", "--verify", "--quiet", "main^{commit}"],
        ["git", "-C", "/starter", "rev-list", "c2"],
        ["git", "-C", "/starter", "ls-tree", "-r", "-z", "--full-tree", "c2"],
        ["git", "-C", "/starter", "ls-tree", "-r", "-z", "--full-tree", "c1"],
        ["git", "-C", "/starter", "cat-file", "--batch"],
    ]
    assert git.calls[-1][1] == b"a" * 40 + b"\n"


def test_a_shallow_clone_a_non_clone_and_an_unknown_ref_are_refused() -> None:
    shallow = FakeGit(
        {("rev-parse", "--show-object-format", "--is-shallow-repository"): b"sha1\ntrue\n"}
    )
    with pytest.raises(LockstepError, match="is a shallow clone: .* clone it without --depth"):
        up.Starter(Path("/s"), shallow).check()
    with pytest.raises(LockstepError, match="/s is not a git clone of the starter"):
        up.Starter(Path("/s"), FakeGit({})).check()
    with pytest.raises(LockstepError, match="'v9' is not a commit, tag or branch of /s"):
        up.Starter(Path("/s"), FakeGit({})).commit("v9")


# --------------------------------------------------------------------------- the transaction


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    for path, text in {
        "tasks.py": "old tasks\n",
        "tooling/src/a.py": "old a\n",
        "tooling/src/gone/only.py": "gone\n",
        "README.md": "mine\n",
    }.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text)
    os.chmod(root / "tasks.py", 0o640)
    return root


WRITES = [
    Write("tasks.py", b"new tasks\n"),
    Write("tooling/src/a.py", b"new a\n", executable=True),
    Write("tooling/scripts/deep/new.sh", b"#!/bin/sh\n", executable=True),
    Write("tooling/src/b.py", b"b\n"),
    Write("tooling/src/gone/only.py", None),
]


def test_the_transaction_writes_every_file_with_the_umask_and_leaves_nothing_behind(
    tree: Path,
) -> None:
    with umask(0o027):
        up.apply(tree, up.stage(tree, WRITES, {"from": "1", "to": "2"}))
    assert (tree / "tasks.py").read_text() == "new tasks\n"
    assert (tree / "tooling/scripts/deep/new.sh").read_bytes() == b"#!/bin/sh\n"
    modes = {p: (tree / p).stat().st_mode & 0o777 for p in ("tasks.py", "tooling/src/a.py")}
    # Replaced: their own mode (x added where r is, for the starter's executable); new: 0666 or
    # 0777 minus the umask.
    assert modes == {"tasks.py": 0o640, "tooling/src/a.py": 0o755}
    assert (tree / "tooling/scripts/deep/new.sh").stat().st_mode & 0o777 == 0o750
    assert (tree / "tooling/src/b.py").stat().st_mode & 0o777 == 0o640
    assert not (tree / "tooling/src/gone").exists()  # emptied by the removal
    assert not (tree / up.STAGING).exists()
    assert (tree / "README.md").read_text() == "mine\n"


@pytest.mark.parametrize("fail_at", [1, 3, 4])
@pytest.mark.parametrize("fault", ["oserror", "signal"])
def test_a_failure_or_signal_midway_puts_every_file_back(
    tree: Path, monkeypatch: pytest.MonkeyPatch, fail_at: int, fault: str
) -> None:
    before = snapshot(tree)
    journal = up.stage(tree, WRITES, {"from": "1", "to": "2"})
    real_replace, calls = os.replace, []

    def replace(source: Path, target: Path) -> None:
        calls.append(target)
        if len(calls) == fail_at:
            if fault == "signal":
                raise Interrupted(15)
            raise PermissionError(13, "Permission denied", str(target))
        real_replace(source, target)

    monkeypatch.setattr(up.os, "replace", replace)
    with pytest.raises(Interrupted if fault == "signal" else PermissionError):
        up.apply(tree, journal)
    monkeypatch.setattr(up.os, "replace", real_replace)
    assert snapshot(tree) == before  # bytes, modes and the very inodes
    assert len(calls) >= fail_at


_KILL_AT = """
import os, sys
sys.path.insert(0, {src!r})
from pathlib import Path
from lockstep import upgrade as up
root, at = Path({root!r}), {at!r}
writes = [up.Write(*w) for w in {writes!r}]
journal = up.stage(root, writes, {{"from": "1", "to": "2"}})
real, n = os.replace, [0]
def replace(a, b):
    n[0] += 1
    if at == "replace" and n[0] == 3:
        os._exit(9)  # as SIGKILL: no handler, no rollback
    real(a, b)
up.os.replace = replace
if at == "finish":
    up.shutil.rmtree = lambda *a, **k: os._exit(9)
up.apply(root, journal)
"""


@pytest.mark.parametrize("at", ["replace", "finish"])
def test_after_a_kill_the_next_run_puts_back_or_finishes(tree: Path, at: str) -> None:
    before = snapshot(tree)
    writes = [(w.path, w.data, w.executable) for w in WRITES]
    code = _KILL_AT.format(src=str(SRC), root=str(tree), at=at, writes=writes)
    done = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True)
    assert done.returncode == 9, done.stderr
    assert (tree / up.STAGING / "journal.json").is_file()
    if at == "replace":
        assert (tree / "tasks.py").read_text() == "new tasks\n"  # midway: mixed
        assert (tree / "tooling/src/b.py").exists() is False
        message = up.recover(tree)
        assert message == "lockstep upgrade: put back 2 files of an interrupted upgrade (1 -> 2)"
        assert snapshot(tree) == before
    else:
        message = up.recover(tree)
        assert message == (
            "lockstep upgrade: finished an interrupted upgrade (1 -> 2): every file was in"
        )
        assert (tree / "tooling/src/b.py").read_text() == "b\n"
        assert not (tree / "tooling/src/gone").exists()
    assert not (tree / up.STAGING).exists()
    assert up.recover(tree) is None


def test_a_staging_folder_without_a_journal_is_dropped(tree: Path) -> None:
    before = snapshot(tree)
    (tree / up.STAGING / "new").mkdir(parents=True)
    (tree / up.STAGING / "new" / "tasks.py").write_text("half")
    assert up.recover(tree) == (
        "lockstep upgrade: removed the staging of an upgrade interrupted before it wrote"
    )
    assert snapshot(tree) == before


def test_a_failure_while_staging_changes_nothing(
    tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = snapshot(tree)

    def full(*args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(up, "_keep", full)
    with pytest.raises(OSError, match="No space"):
        up.stage(tree, WRITES, {})
    assert snapshot(tree) == before


# --------------------------------------------------------------------------- the command


def _starter_repo(tmp_path: Path) -> tuple[Path, str, str]:
    """A real git starter of two commits: (clone, first, second)."""
    repo = tmp_path / "starter"
    files = {
        "tooling/pyproject.toml": '[project]\nname = "lockstep"\nversion = "0.2.0"\n',
        "tasks.py": "tasks 1\n",
        "Makefile": "IMAGE ?= lockstep\nall:\n",
        "Dockerfile": "FROM a\n",
        "README.md": "the starter's\n",
    }
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}  # fmt: skip

    def commit(changes: dict[str, str | None]) -> str:
        for path, text in changes.items():
            if text is None:
                (repo / path).unlink()
            else:
                (repo / path).parent.mkdir(parents=True, exist_ok=True)
                (repo / path).write_text(text)
        subprocess.run(["git", "-C", str(repo), "add", "-A"], check=True, env=env)
        subprocess.run(["git", "-C", str(repo), "commit", "-qm", "x"], check=True, env=env)
        head = ["git", "-C", str(repo), "rev-parse", "HEAD"]
        return subprocess.run(head, capture_output=True, text=True, check=True).stdout.strip()

    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    first = commit(files)
    second = commit(
        {
            "tooling/pyproject.toml": files["tooling/pyproject.toml"].replace("0.2.0", "0.3.0"),
            "tasks.py": "tasks 2\n",
            "Makefile": "IMAGE ?= lockstep\nall:\nnew:\n",
            "tooling/new.py": "new\n",
            "Dockerfile": "FROM b\n",
            "README.md": "the starter's, newer\n",
        }
    )
    return repo, first, second


def _project_of(repo: Path, commit: str, dest: Path) -> Path:
    archive = subprocess.run(
        ["git", "-C", str(repo), "archive", commit], capture_output=True, check=True
    ).stdout
    dest.mkdir()
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest


def test_a_renamed_project_with_a_dockerfile_of_its_own_is_upgraded(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo, first, second = _starter_repo(tmp_path)
    project = _project_of(repo, first, tmp_path / "project")
    (project / "Makefile").write_text("IMAGE ?= my-project\nall:\n")
    (project / "Dockerfile").write_text("FROM a\nRUN mine\n")
    (project / "README.md").write_text("# my-project\n")
    assert up.main(["--project", str(project), "--source", str(repo)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[:6] == [
        f"lockstep upgrade: tooling 0.2.0 (starter {first[:12]}) -> 0.3.0 (HEAD = {second[:12]})",
        "  changed  Makefile",
        "  changed  tasks.py",
        "  added    tooling/new.py",
        "  changed  tooling/pyproject.toml",
        "  kept     Dockerfile: edited here and changed in the starter: left as is, merge the "
        "change below by hand",
    ]
    assert out[-1] == "upgraded: 1 added, 3 changed, 0 removed; no file of yours was touched"
    assert "-FROM a" in out and "+FROM b" in out  # the starter's change, to merge by hand
    # As the starter has it: the image name rename wrote is not carried (README "Upgrade").
    assert (project / "Makefile").read_text() == "IMAGE ?= lockstep\nall:\nnew:\n"
    assert (project / "tasks.py").read_text() == "tasks 2\n"
    assert (project / "Dockerfile").read_text() == "FROM a\nRUN mine\n"
    assert (project / "README.md").read_text() == "# my-project\n"
    assert up.main(["--project", str(project), "--source", str(repo)]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == (
        "the tooling is up to date with HEAD; nothing to change"
    )


def test_an_edited_tooling_file_is_refused_with_its_diff(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo, first, _ = _starter_repo(tmp_path)
    project = _project_of(repo, first, tmp_path / "project")
    (project / "Makefile").write_text("IMAGE ?= my-project\nall:\nmine:\n")
    before = snapshot(project)
    assert up.main(["--project", str(project), "--source", str(repo), "--dry-run"]) == 1
    out, err = capsys.readouterr()
    assert out.splitlines()[:2] == ["--- Makefile", "+++ Makefile"]
    assert "+mine:" in out.splitlines() and " IMAGE ?= my-project" in out.splitlines()
    assert err == (
        f"error: tooling files were edited here (Makefile): the diff above is against the "
        f"starter's {first[:12]} (tooling 0.2.0); put them back (copy them from that commit) "
        "and move your change into files of yours (project.mk for make targets), then run "
        "again; nothing was written\n"
    )
    assert snapshot(project) == before


def test_a_dry_run_with_an_interrupted_upgrade_says_to_run_it_for_real(tmp_path: Path) -> None:
    repo, first, _ = _starter_repo(tmp_path)
    project = _project_of(repo, first, tmp_path / "project")
    (project / up.STAGING).mkdir()
    with pytest.raises(LockstepError, match="an upgrade was interrupted"):
        up.upgrade(project, up.Starter(repo), "HEAD", dry_run=True)


def test_a_folder_that_is_not_a_project_of_this_layout_is_refused(tmp_path: Path) -> None:
    with pytest.raises(LockstepError, match="has no tooling/pyproject.toml: not a Lockstep"):
        up.upgrade(tmp_path, up.Starter(tmp_path), "HEAD", dry_run=True)


# --------------------------------------------------------------------------- the task


def _fetching(argv: list[str]) -> Result:
    """`git worktree add`: the starter's module appears where the worktree is made."""
    module = up.module_path(Path(argv[-2]))
    module.parent.mkdir(parents=True)
    module.write_text("")
    return Result(exited=0)


def test_the_task_fetches_the_starter_and_runs_its_module(tmp_path: Path) -> None:
    shell = Shell({"git -C": _fetching}, root=tmp_path)
    tasks.upgrade(shell, source="https://example.org/starter.git", ref="v0.3.0", dry_run=True)
    scratch = Path(shell.calls[0][-1]).parent
    assert shell.calls == [
        *up.fetch_commands("https://example.org/starter.git", "v0.3.0", scratch),
        [sys.executable, "-I", f"{scratch}/starter/tooling/src/lockstep/upgrade.py",
         "--project", str(tmp_path), "--source", f"{scratch}/starter", "--ref", "v0.3.0",
         "--dry-run"],
    ]  # fmt: skip
    assert shell.calls[0][:5] == ["git", "clone", "--quiet", "--bare", "--"]
    assert not scratch.exists()  # the clone is gone with the task


def test_the_task_without_a_ref_takes_the_starters_head(tmp_path: Path) -> None:
    shell = Shell({"git -C": _fetching}, root=tmp_path)
    tasks.upgrade(shell, source="../starter")
    assert shell.calls[1][-1] == "HEAD" and shell.calls[2][-2:] == ["--ref", "HEAD"]


def test_the_module_exit_code_is_the_tasks(tmp_path: Path) -> None:
    shell = Shell({"git -C": _fetching, sys.executable: lambda argv: Result(exited=1)}, tmp_path)
    with pytest.raises(Exit) as stopped:
        tasks.upgrade(shell, source="../starter")
    assert stopped.value.code == 1


@pytest.mark.parametrize(
    ("handlers", "source", "message"),
    [
        ({"git clone": lambda argv: Result(exited=128)}, "nowhere", "cannot fetch HEAD of nowhere"),
        ({}, "../old-starter", "HEAD of ../old-starter has no tooling/src/lockstep/upgrade.py"),
        ({}, " ", "give the starter: --source URL-OR-PATH"),
    ],
)
def test_the_task_stops_in_one_line(
    tmp_path: Path, handlers: dict, source: str, message: str
) -> None:
    with pytest.raises(Exit) as stopped:
        tasks.upgrade(Shell(handlers, root=tmp_path), source=source)
    assert stopped.value.code == 1 and message in str(stopped.value.message)


def test_the_module_runs_as_a_file_from_a_bare_python(tmp_path: Path) -> None:
    """The fallback for a project whose tasks.py predates the task: no package installed, no
    PYTHONPATH; the module finds its own package and only the standard library."""
    repo, first, _ = _starter_repo(tmp_path)
    project = _project_of(repo, first, tmp_path / "project")
    module = shutil.copytree(SRC, repo / "tooling" / "src")  # the starter's code, uncommitted
    script = str(module / "lockstep" / "upgrade.py")
    # -S: not even the venv's site-packages.
    command = [sys.executable, "-I", "-S", script, "--project", str(project), "--dry-run"]
    done = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == (
        "would upgrade: 1 added, 4 changed, 0 removed; nothing was written (--dry-run)"
    )
    probe = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(SRC)!r})
        import lockstep.upgrade
        found = {{m.split(".")[0] for m in sys.modules}} - set(sys.stdlib_module_names)
        print(sorted(found - {{"__main__"}}))
    """)
    done = subprocess.run([sys.executable, "-I", "-S", "-c", probe], capture_output=True, text=True)
    assert done.stdout.strip() == "['lockstep']", done.stderr


def test_rename_writes_no_file_the_upgrade_replaces() -> None:
    """A tooling file that rename wrote would look edited to every later upgrade (0.2.0's
    rename wrote the Makefile's IMAGE line: RENAMED_LINES is how that one is forgiven)."""
    from lockstep.rename import CODE_FOLDERS, RENAMED_FILES

    assert [p for p in RENAMED_FILES if up.owner(p)] == []
    assert [f for f in CODE_FOLDERS if up.owner(f"{f}/x.py")] == []


def test_the_refusal_shows_a_missing_file_a_binary_one_and_only_real_edits() -> None:
    starter = {"b1": b"IMAGE ?= lockstep\nall:\n", "b2": b"\x00\x01", "b3": b"x\n", "b4": b"a"}
    snap = Snapshot(
        "c1",
        {
            "Makefile": Entry("b1", False, "k1"),
            "tooling/data.gz": Entry("b2", False, "k2"),
            "tooling/gone.py": Entry("b3", False, "k3"),
            "tooling/last.py": Entry("b4", False, "k4"),
        },
    )
    project = {
        "Makefile": b"IMAGE ?= my-project\nall:\nmine:\n",
        "tooling/data.gz": b"\x00\x02",
        "tooling/last.py": b"a\n",
    }
    diff = up.refusal_diff(project, snap, sorted(snap.files), starter)
    assert diff.splitlines() == [
        "--- Makefile",
        "+++ Makefile",
        "@@ -1,2 +1,3 @@",
        " IMAGE ?= my-project",  # the renamed value is no edit: it is not in the diff
        " all:",
        "+mine:",
        "Binary file tooling/data.gz differs",
        "--- tooling/gone.py",
        "+++ (missing here)",
        "--- tooling/last.py",
        "+++ tooling/last.py",
        "(only the newline at the end differs)",
    ]
