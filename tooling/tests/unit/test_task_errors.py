"""Tasks under bad files and real file-system faults: one line, exit 1, every file as it was."""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import tasks
from invoke import Exit, Result
from tests.paths import SRC, TOOLING
from tests.unit import test_tasks
from tests.unit.fsfaults import (
    REPO,
    fill,
    give_away,
    run_unprivileged,
    snapshot,
    tmpfs,
    unprivileged_folder,
)
from tests.unit.test_tasks import LOCK_TEXT, Shell, _write_lock

from lockstep.core import fsutil

# The project copy and the fake PATH of the task tests.
project, on_path = test_tasks.project, test_tasks.on_path
RENAMED = ["pyproject.toml", "environment.yml", "README.md"]
# The user's code that rename moves (src/ml_project -> src/my_project) and rewrites (tests/).
USER_CODE = ["src", "tests"]


def _copy_user_code(folder: Path) -> None:
    for name in USER_CODE:
        shutil.copytree(REPO / name, folder / name, ignore=shutil.ignore_patterns("__pycache__"))


LATIN1 = "# Zürich\n".encode("latin-1")  # 0xfc: not UTF-8


def _exit_line(call) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(Exit) as info:
        call()
    assert info.value.code == 1
    assert "\n" not in info.value.message
    return info.value.message


def _not_utf8(path: Path, line: int) -> str:
    return f"error: {path}: not UTF-8 (byte 0xfc on line {line}); save it as UTF-8 and run again"


# ----------------------------------------------------------------------------- encodings


def test_an_environment_yml_in_latin1_is_one_line(project: Path, on_path) -> None:
    path = project / "environment.yml"
    path.write_bytes(path.read_bytes() + LATIN1)
    line = path.read_bytes().count(b"\n")
    before = snapshot(project)
    for call in (
        lambda: tasks.lock(Shell(root=project)),
        lambda: tasks.poetry_init(Shell(root=project)),
    ):
        assert _exit_line(call) == _not_utf8(path, line)
    assert snapshot(project) == before


@pytest.mark.parametrize("task", ["rename", "pin", "reproduce", "check", "env_create"])
def test_a_pyproject_in_latin1_stops_every_task_in_one_line(
    project: Path, on_path, task: str
) -> None:
    path = project / "pyproject.toml"
    path.write_bytes(LATIN1 + path.read_bytes())
    before = snapshot(project)
    args = ("my-project",) if task == "rename" else ()
    assert _exit_line(lambda: getattr(tasks, task)(Shell(root=project), *args)) == _not_utf8(
        path, 1
    )
    assert snapshot(project) == before


def test_a_conda_lock_in_latin1_is_one_line(project: Path, on_path) -> None:
    path = project / "conda-linux-64.lock"
    path.write_bytes(LATIN1 + LOCK_TEXT.encode())
    assert _exit_line(lambda: tasks.pin(Shell(root=project))) == _not_utf8(path, 1)


def test_a_poetry_lock_in_latin1_is_one_line(project: Path, on_path, tmp_path_factory) -> None:
    (project / "conda-linux-64.lock").write_text(LOCK_TEXT)
    path = project / "poetry.lock"
    path.write_bytes(LATIN1 + path.read_bytes())
    prefix = tmp_path_factory.mktemp("env")
    (prefix / "conda-meta").mkdir()
    assert _exit_line(lambda: tasks.doctor(Shell(root=project), prefix=str(prefix))) == _not_utf8(
        path, 1
    )


def test_the_invoke_command_prints_one_line_and_no_traceback(tmp_path: Path) -> None:
    """The real CLI: invoke prints Exit's message to stderr and exits 1."""
    for name in RENAMED:
        shutil.copy(REPO / name, tmp_path / name)
    shutil.copy(REPO / "tasks.py", tmp_path / "tasks.py")
    (tmp_path / "tooling").mkdir()
    (tmp_path / "tooling" / "src").symlink_to(SRC)
    (tmp_path / "environment.yml").write_bytes(LATIN1 + (REPO / "environment.yml").read_bytes())
    before = snapshot(tmp_path)
    done = subprocess.run(
        [sys.executable, "-m", "invoke", "rename", "my-project"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    path = tmp_path / "environment.yml"
    assert (done.returncode, done.stdout, done.stderr) == (1, "", _not_utf8(path, 1) + "\n")
    assert snapshot(tmp_path) == before


# ----------------------------------------------------------------------------- read-only project

# Runs as the unprivileged user in a copy of the project, the shell's root.
_TASK_AS_USER = """
import json, sys
from pathlib import Path
import tasks
from invoke import Exit
from tests.unit.test_tasks import LOCK_TEXT, Shell, _write_lock
root = Path.cwd()
tasks._machine_platform = lambda: "linux-64"
tasks.shutil.which = lambda name: "/opt/miniforge/bin/conda" if name == "conda" else None
shell = Shell(
    {"conda-lock": _write_lock(LOCK_TEXT.replace("@EXPLICIT", "# new\\n@EXPLICIT"))}, root=root
)
calls = {
    "rename": lambda: tasks.rename(shell, "my-project"),
    "poetry_init": lambda: tasks.poetry_init(shell),
    "pin": lambda: tasks.pin(shell, no_lock=True),
    "lock": lambda: tasks.lock(shell),
}
try:
    calls[%r]()
    print(json.dumps({"code": 0}))
except Exit as exc:
    print(json.dumps({"code": exc.code, "message": exc.message}))
"""


def _read_only_project(folder: Path) -> None:
    for name in [*RENAMED, "virtual-packages.yml", "poetry.lock"]:
        shutil.copy(REPO / name, folder / name)
    _copy_user_code(folder)
    (folder / "conda-linux-64.lock").write_text(LOCK_TEXT)
    pyproject = folder / "pyproject.toml"
    # Something for poetry-init to repair, so that it has to write.
    pyproject.write_text(pyproject.read_text().replace('">=3.11,<3.12"', '">=3.8"', 1))


@pytest.mark.parametrize("task", ["rename", "poetry_init", "pin", "lock"])
@pytest.mark.parametrize("what", ["folder", "file"])
def test_a_read_only_project_is_one_line_and_keeps_every_file(task: str, what: str) -> None:
    with unprivileged_folder() as folder:
        _read_only_project(folder)
        give_away(folder)
        target = folder / ("conda-linux-64.lock" if task == "lock" else "pyproject.toml")
        if what == "folder":
            folder.chmod(0o555)
        else:
            target.chmod(0o444)
        before = snapshot(folder)
        answer = run_unprivileged(_TASK_AS_USER % task, folder)
        assert answer == {
            "code": 1,
            "message": f"error: cannot write {target}: permission denied; make it and its folder "
            "writable for you (chmod u+w) or run as their owner; nothing was changed",
        }
        assert snapshot(folder) == before


# ----------------------------------------------------------------------------- full disk


@pytest.fixture
def full_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """The project on a tmpfs of 64 KiB, filled up; conda-lock's scratch folder stays in /tmp."""
    with tmpfs(tmp_path / "disk") as disk:
        for name in [*RENAMED, "virtual-packages.yml"]:
            shutil.copy(REPO / name, disk / name)
        _copy_user_code(disk)
        monkeypatch.setattr(tasks, "_machine_platform", lambda: "linux-64")
        fill(disk)
        yield disk


@pytest.mark.parametrize("task", ["rename", "lock"])
def test_a_full_disk_is_one_line_and_changes_nothing(full_disk: Path, on_path, task: str) -> None:
    before = snapshot(full_disk)
    shell = Shell({"conda-lock": _write_lock(LOCK_TEXT)}, root=full_disk)
    call = (
        (lambda: tasks.rename(shell, "my-project"))
        if task == "rename"
        else lambda: tasks.lock(shell)
    )
    target = full_disk / ("pyproject.toml" if task == "rename" else "conda-linux-64.lock")
    assert _exit_line(call) == (
        f"error: no space left writing {target}; free space and run again; nothing was changed"
    )
    assert snapshot(full_disk) == before


# ----------------------------------------------------------------------------- all or none


def test_rename_puts_every_file_back_when_a_later_rename_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The package has moved and two files are replaced when the third write fails: the files
    get their originals back and the package its folder (snapshot: same inodes)."""
    for name in [*RENAMED, "virtual-packages.yml"]:
        shutil.copy(REPO / name, tmp_path / name)
    _copy_user_code(tmp_path)
    before = snapshot(tmp_path)
    real_replace, real_rename = os.replace, os.rename
    calls: list[str] = []
    renames: list[tuple[str, str]] = []

    def replace(src, dst):  # type: ignore[no-untyped-def]
        calls.append(dst)
        if len(calls) == 3:  # pyproject.toml and environment.yml are already replaced
            raise OSError(errno.EIO, "Input/output error", str(src))
        return real_replace(src, dst)

    def rename(src, dst):  # type: ignore[no-untyped-def]
        renames.append((str(src), str(dst)))
        return real_rename(src, dst)

    monkeypatch.setattr(fsutil.os, "replace", replace)
    monkeypatch.setattr(fsutil.os, "rename", rename)
    assert _exit_line(lambda: tasks.rename(Shell(root=tmp_path), "my-project")) == (
        f"error: cannot write {tmp_path / 'README.md'}: Input/output error; nothing was changed"
    )
    moved, back = tmp_path / "src" / "ml_project", tmp_path / "src" / "my_project"
    assert renames == [(str(moved), str(back)), (str(back), str(moved))]
    assert snapshot(tmp_path) == before


def test_rename_puts_the_package_back_when_it_is_interrupted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C after the move, during the writes: the folder moves back, nothing is written."""
    for name in [*RENAMED, "virtual-packages.yml"]:
        shutil.copy(REPO / name, tmp_path / name)
    _copy_user_code(tmp_path)
    before = snapshot(tmp_path)

    def interrupted(files):  # type: ignore[no-untyped-def]
        assert (tmp_path / "src" / "my_project").is_dir()
        raise KeyboardInterrupt

    monkeypatch.setattr(fsutil, "write_files_atomically", interrupted)
    with pytest.raises(KeyboardInterrupt):
        tasks.rename(Shell(root=tmp_path), "my-project")
    assert snapshot(tmp_path) == before


def test_pin_into_a_missing_folder_is_one_line(project: Path, on_path) -> None:
    (project / "conda-linux-64.lock").write_text(LOCK_TEXT)
    pyproject = project / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace(
            "[tool.lockstep]", '[tool.lockstep]\npoetry-lock-file = "locks/poetry.lock"', 1
        )
    )
    before = snapshot(project)

    def poetry_lock(argv: list[str]) -> Result:
        shutil.copy(TOOLING / "poetry.lock", Path(argv[2]) / "poetry.lock")
        return Result()

    target = project / "locks" / "poetry.lock"
    assert _exit_line(lambda: tasks.pin(Shell({"poetry": poetry_lock}, root=project))) == (
        f"error: cannot write {target}: folder {target.parent} does not exist; create it or fix "
        "the path in [tool.lockstep] of pyproject.toml; nothing was changed"
    )
    assert snapshot(project) == before


def test_json_output_of_a_task_is_unchanged_by_the_wrapper(project: Path, on_path, capsys) -> None:
    """The one-line wrapper lets invoke's own Exit (findings -> exit 1) through untouched."""
    with pytest.raises(Exit) as info:
        tasks.check(Shell(root=project), json=True)
    assert info.value.code == 1 and not info.value.message
    assert json.loads(capsys.readouterr().out)["tool"] == "check"


def test_lock_refuses_a_template_that_leaves_the_project(project: Path, on_path) -> None:
    pyproject = project / "pyproject.toml"
    text = pyproject.read_text().replace('"conda-{platform}.lock"', '"../x-{platform}.lock"', 1)
    pyproject.write_text(text)
    shell = Shell({"conda-lock": _write_lock(LOCK_TEXT)}, root=project)
    assert _exit_line(lambda: tasks.lock(shell)) == (
        f"error: {pyproject}: lock-file-template '../x-{{platform}}.lock' gives "
        "'../x-linux-64.lock' for platform 'linux-64', which is not a file name in the project "
        "folder; use e.g. 'conda-{platform}.lock'"
    )
    assert shell.calls == [] and not (project.parent / "x-linux-64.lock").exists()
