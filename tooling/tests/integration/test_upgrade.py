"""The upgrade path on two real commits of this repository (issue 19, item 5).

Before: b89c215, the first commit of the tooling/ layout (tooling 0.2.0), taken out with `git
archive` as a user would start from it, renamed by that commit's own `invoke rename`, with
environment.yml and pyproject.toml edited, a module and a test of the user's added, .gitignore
edited and a project.mk. After: the commit these tests run from (with a developer's uncommitted
work committed into a clone first). b89c215's tasks.py has no `upgrade` task, so the project is
upgraded the documented way for such a project: the newer starter's
``tooling/src/lockstep/upgrade.py`` run as a file; once upgraded, its own `invoke upgrade` runs.

Real git, invoke and Python throughout. The expected file lists come from `git diff` between the
two commits, the versions from each commit's tooling/pyproject.toml. Interruptions are real
signals (SIGKILL, SIGTERM); only their moment is arranged, by wrapping os.replace.
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import tarfile
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest
from tests.paths import PROJECT

from lockstep.upgrade import STAGING, owner

from .helpers import clone_worktree, run

pytestmark = pytest.mark.integration
BEFORE = "b89c215"
SHARED = [
    "Dockerfile", "Apptainer.def", ".dockerignore", ".gitignore", ".pre-commit-config.yaml",
    ".ci/run", ".github/workflows",
]  # fmt: skip
TOOLING = ["tooling", "tasks.py", "Makefile"]
IDENTITY = {
    "GIT_AUTHOR_NAME": "test", "GIT_AUTHOR_EMAIL": "test@localhost",
    "GIT_COMMITTER_NAME": "test", "GIT_COMMITTER_EMAIL": "test@localhost",
}  # fmt: skip


@dataclass(frozen=True)
class Starter:
    clone: Path
    after: str

    def git(self, *args: str) -> str:
        return run(["git", "-C", str(self.clone), *args], self.clone, os.environ).stdout

    def show(self, commit: str, path: str) -> bytes:
        command = ["git", "-C", str(self.clone), "show", f"{commit}:{path}"]
        return subprocess.run(command, capture_output=True, check=True).stdout

    def version(self, commit: str) -> str:
        return str(
            tomllib.loads(self.show(commit, "tooling/pyproject.toml").decode())["project"][
                "version"
            ]
        )

    @property
    def module(self) -> Path:
        return self.clone / "tooling" / "src" / "lockstep" / "upgrade.py"


@pytest.fixture(scope="module")
def starter(tmp_path_factory: pytest.TempPathFactory) -> Starter:
    shallow = run(["git", "rev-parse", "--is-shallow-repository"], PROJECT, os.environ).stdout
    if shallow.strip() == "true":
        pytest.skip(f"a shallow clone: {BEFORE}, the commit upgraded from, is not in its history")
    known = subprocess.run(["git", "-C", str(PROJECT), "cat-file", "-e", f"{BEFORE}^{{commit}}"])
    if known.returncode != 0:
        pytest.skip(f"{BEFORE}, the commit upgraded from, is not in this clone's history")
    clone = tmp_path_factory.mktemp("upgrade") / "starter"
    if clone_worktree(PROJECT, clone):
        env = {**os.environ, **IDENTITY}
        run(["git", "add", "-A"], clone, env)
        run(["git", "commit", "--quiet", "--no-verify", "-m", "the worktree"], clone, env)
    after = run(["git", "rev-parse", "HEAD"], clone, os.environ).stdout.strip()
    return Starter(clone, after)


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHON"))}


def make_project(starter: Starter, dest: Path) -> Path:
    """A project from BEFORE as its user has it after a few days: renamed, specs edited, code
    and tests of theirs added."""
    archive = subprocess.run(
        ["git", "-C", str(starter.clone), "archive", BEFORE], capture_output=True, check=True
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(dest, filter="tar")
    run([sys.executable, "-m", "invoke", "rename", "--name", "my-project"], dest, _env())
    # That rename wrote the image name into the Makefile, a tooling file: no edit for the upgrade.
    assert "\nIMAGE ?= my-project\n" in (dest / "Makefile").read_text()
    environment = (dest / "environment.yml").read_text()
    (dest / "environment.yml").write_text(environment.replace("  - uv\n", "  - uv\n  - scipy\n"))
    pyproject = (dest / "pyproject.toml").read_text()
    assert 'name = "my-project"' in pyproject
    (dest / "pyproject.toml").write_text(
        pyproject.replace("dependencies = []", 'dependencies = ["einops>=0.8"]')
    )
    package = next(p.parent for p in (dest / "src").glob("*/__init__.py"))
    (package / "augment.py").write_text("def flip(xs):\n    return xs[::-1]\n")
    (dest / "tests" / "test_augment.py").write_text(
        f"from {package.name}.augment import flip\n\n\ndef test_flip():\n"
        "    assert flip([1, 2]) == [2, 1]\n"
    )
    (dest / ".gitignore").write_text((dest / ".gitignore").read_text() + "wandb/\n")
    (dest / "project.mk").write_text(".PHONY: train\ntrain:\n\tpython -m my_project.train\n")
    return dest


def files_of(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    }


def upgrade_file(starter: Starter, project: Path, *options: str, expect_rc: int | None = 0):
    """The fallback a pre-upgrade project uses: the starter's module, run as a file."""
    command = [sys.executable, "-I", str(starter.module), "--project", str(project), *options]
    return run(command, project, _env(), expect_rc=expect_rc)


def expected_lines(starter: Starter, user_edited: set[str]) -> tuple[list[str], list[str]]:
    """(changed-file lines, kept paths) that git says the upgrade must print."""
    names = {"A": "added", "M": "changed", "D": "removed"}
    diff = starter.git(
        "diff", "--name-status", "--no-renames", BEFORE, starter.after, "--", *TOOLING, *SHARED
    )
    lines, kept = [], []
    for line in sorted(diff.splitlines(), key=lambda text: text.split("\t")[1]):
        status, path = line.split("\t")
        if path in user_edited:
            kept.append(path)
        else:
            lines.append(f"  {names[status]:<7}  {path}")
    return lines, kept


def assert_upgraded(starter: Starter, project: Path, before: dict[str, bytes]) -> None:
    """Every tooling file is the after commit's, no user file moved by a byte."""
    after = files_of(project)
    tracked = starter.git("ls-tree", "-r", "--name-only", starter.after, "--", *TOOLING).split()
    for path in tracked:
        assert after.get(path) == starter.show(starter.after, path), path
    gone = set(before) - set(after)
    assert all(owner(p) == "tooling" for p in gone), gone
    assert not any(p.startswith("tooling/") and p not in tracked for p in after)
    mine = {p: d for p, d in before.items() if owner(p) is None}
    assert {p: d for p, d in after.items() if owner(p) is None} == mine
    assert after[".gitignore"] == before[".gitignore"]  # edited here: kept
    assert not (project / STAGING).exists()
    modes = starter.git("ls-tree", "-r", starter.after, "--", *TOOLING).splitlines()
    for line in modes:
        mode, _, _, path = line.split(None, 3)
        assert os.access(project / path, os.X_OK) == (mode == "100755"), path


def test_a_renamed_project_of_b89c215_takes_this_commits_tooling(
    starter: Starter, tmp_path: Path
) -> None:
    project = make_project(starter, tmp_path / "my project")
    before = files_of(project)
    lines, kept = expected_lines(starter, {".gitignore"})
    assert lines, "the after commit changes no tooling file: nothing to prove"

    dry = upgrade_file(starter, project, "--dry-run").stdout.splitlines()
    assert files_of(project) == before
    proc = upgrade_file(starter, project)
    out = proc.stdout.splitlines()
    head = re.fullmatch(
        r"lockstep upgrade: tooling (\S+) \(starter (\w+)\) -> (\S+) \(HEAD = (\w+)\)", out[0]
    )
    assert head, proc.stdout
    assert (head[1], head[3]) == (starter.version(BEFORE), starter.version(starter.after))
    assert starter.after.startswith(head[4])
    # The base may be a later commit that changed only files of the user's; its tooling is BEFORE's.
    starter.git("diff", "--quiet", BEFORE, head[2], "--", *TOOLING)
    listed = [line for line in out if line.startswith(("  added", "  changed", "  removed"))]
    assert listed == lines
    assert [line.split()[1].rstrip(":") for line in out if line.startswith("  kept")] == kept
    counts = {
        a: sum(line.split()[0] == a for line in lines) for a in ("added", "changed", "removed")
    }
    assert out[-1] == (
        f"upgraded: {counts['added']} added, {counts['changed']} changed, {counts['removed']} "
        "removed; no file of yours was touched"
    )
    assert dry[: len(listed) + 1] == out[: len(listed) + 1]
    assert dry[-1].startswith("would upgrade: ") and dry[-1].endswith(
        "nothing was written (--dry-run)"
    )
    assert_upgraded(starter, project, before)
    print(f"\n{BEFORE} -> {starter.after[:12]}: {len(lines)} files moved, kept: {kept}")

    # Now its own task (this commit's tasks.py), through a real clone of the starter.
    task = run(
        [sys.executable, "-m", "invoke", "upgrade", "--source", str(starter.clone), "--dry-run"],
        project,
        _env(),
    )
    assert task.stdout.splitlines()[-1] == "the tooling is up to date with HEAD; nothing to change"
    assert_upgraded(starter, project, before)


def test_an_edited_tooling_file_is_refused_with_its_diff_and_nothing_written(
    starter: Starter, tmp_path: Path
) -> None:
    project = make_project(starter, tmp_path / "my project")
    tasks_py = project / "tasks.py"
    tasks_py.write_text(tasks_py.read_text() + "\n\n@task\ndef train(c):\n    pass\n")
    before = files_of(project)
    proc = upgrade_file(starter, project, expect_rc=1)
    assert proc.stdout.splitlines()[:2] == ["--- tasks.py", "+++ tasks.py"]
    assert "+def train(c):" in proc.stdout.splitlines()
    errors = proc.stderr.splitlines()
    assert len(errors) == 1 and errors[0].startswith(
        "error: tooling files were edited here (tasks.py): the diff above is against the starter's "
    ), proc.stderr
    assert f"(tooling {starter.version(BEFORE)})" in errors[0]
    assert files_of(project) == before
    assert not (project / STAGING).exists()


# Runs the starter's module with os.replace wrapped: at its AT-th call the process sends itself
# SIG (SIGKILL: no handler runs, as on a power loss; SIGTERM: the upgrade's own handler).
_INTERRUPTED = """
import os, runpy, signal, sys
module, at, sig = sys.argv[1], int(sys.argv[2]), getattr(signal, sys.argv[3])
real, calls = os.replace, [0]
def replace(*args):
    calls[0] += 1
    if calls[0] == at:
        os.kill(os.getpid(), sig)
    return real(*args)
os.replace = replace
sys.argv = [module, *sys.argv[4:]]
runpy.run_path(module, run_name="__main__")
"""


def _interrupted(starter: Starter, project: Path, signal_name: str, expect_rc: int):
    # Call 1 writes the journal; the next ones move the tooling's files into place.
    command = [sys.executable, "-I", "-c", _INTERRUPTED, str(starter.module), "4", signal_name]
    return run([*command, "--project", str(project)], project, _env(), expect_rc=expect_rc)


def test_a_kill_midway_is_undone_by_the_next_run(starter: Starter, tmp_path: Path) -> None:
    project = make_project(starter, tmp_path / "my project")
    before = files_of(project)
    _interrupted(starter, project, "SIGKILL", expect_rc=-9)
    assert (project / STAGING / "journal.json").is_file()
    midway = files_of(project)
    moved = [p for p in before if owner(p) and midway.get(p) != before[p]]
    assert moved, "the kill came before any file moved: nothing to recover"

    proc = upgrade_file(starter, project)
    assert re.fullmatch(
        r"lockstep upgrade: put back \d+ files of an interrupted upgrade \(\S+ -> \S+\)",
        proc.stdout.splitlines()[0],
    ), proc.stdout
    assert proc.stdout.splitlines()[-1].startswith("upgraded: ")
    assert_upgraded(starter, project, before)


def test_a_signal_midway_puts_every_file_back_before_exit(starter: Starter, tmp_path: Path) -> None:
    project = make_project(starter, tmp_path / "my project")
    before = files_of(project)
    proc = _interrupted(starter, project, "SIGTERM", expect_rc=143)
    assert "put back the " in proc.stderr and "error: stopped by signal 15" in proc.stderr
    assert files_of(project) == before
    assert not (project / STAGING).exists()
