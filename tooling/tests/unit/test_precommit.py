"""`lockstep-check` (python -m lockstep.precommit) and `invoke check` are one check:
both run as processes on the same project and must print the same, byte for byte, and exit
alike; the entry point must not import invoke or tasks.py."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from tests.paths import PROJECT, SRC
from tests.testdata import Project

ROOT = PROJECT


def _copy_starter(target: Path) -> None:
    shutil.copy2(ROOT / "tasks.py", target / "tasks.py")
    ignore = shutil.ignore_patterns("__pycache__")
    shutil.copytree(SRC, target / "tooling" / "src", ignore=ignore)


def _run(command: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    # The copied tooling is what both run: the worktree's, not whatever the venv points at.
    env = {**os.environ, "PYTHONPATH": str(cwd / "tooling" / "src"), "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=60)


def _both(project: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], ...]:
    via_invoke = _run([sys.executable, "-m", "invoke", "check", *args], project)
    via_entry = _run([sys.executable, "-m", "lockstep.precommit", *args], project)
    return via_invoke, via_entry


def _with_findings(root: Path) -> Path:
    """Two errors in two files: Poetry locks another invoke than conda, and a stale poetry.lock."""
    Project(poetry_version_override={"invoke": "2.2.0"}).write(root)
    pyproject = root / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('"rich>=14"', '"rich>=14.1"'), "utf-8")
    _copy_starter(root)
    return root


@pytest.mark.parametrize(
    "args", [pytest.param((), id="table"), pytest.param(("--json",), id="json")]
)
def test_same_findings_same_output(tmp_path: Path, args: tuple[str, ...]) -> None:
    via_invoke, via_entry = _both(_with_findings(tmp_path), *args)
    assert via_invoke.returncode == via_entry.returncode == 1, via_invoke.stderr + via_entry.stderr
    assert via_entry.stdout == via_invoke.stdout
    assert via_entry.stderr == via_invoke.stderr == ""
    if args:
        assert '"code": "version-conflict"' in via_entry.stdout
        assert '"code": "poetry-lock-stale"' in via_entry.stdout
    else:
        assert via_entry.stdout.startswith("check: 2 error(s), 0 warning(s)\n")


def test_clean_project_both_clean(tmp_path: Path) -> None:
    Project().write(tmp_path)
    _copy_starter(tmp_path)
    via_invoke, via_entry = _both(tmp_path)
    assert via_invoke.returncode == via_entry.returncode == 0
    assert (
        via_entry.stdout
        == via_invoke.stdout
        == (
            "check: clean, nothing found\n"
            "cooldown: none (exclude-newer in [tool.lockstep], e.g. '7d', holds back releases)\n"
        )
    )


def test_check_shows_the_cooldown_policy(tmp_path: Path) -> None:
    Project().write(tmp_path)
    _copy_starter(tmp_path)
    pyproject = tmp_path / "pyproject.toml"
    text = pyproject.read_text() + '\n[tool.lockstep]\nexclude-newer = "2026-04-01"\n'
    pyproject.write_text(text, "utf-8")
    via_invoke, via_entry = _both(tmp_path)
    assert via_entry.stdout == via_invoke.stdout
    assert via_entry.stdout.splitlines()[-1] == (
        "cooldown: exclude-newer = '2026-04-01': nothing published after 2026-04-02 00:00 UTC "
        "(conda and PyPI sides)"
    )


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("7", "exclude-newer '7' is not understood; use a duration like '7d'"),
        ("0d", "exclude-newer '0d' is no delay"),
        ("2999-01-01", "exclude-newer '2999-01-01' is in the future"),
    ],
)
def test_a_bad_cooldown_is_one_line_from_both(tmp_path: Path, value: str, message: str) -> None:
    Project().write(tmp_path)
    _copy_starter(tmp_path)
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + f'\n[tool.lockstep]\nexclude-newer = "{value}"\n')
    via_invoke, via_entry = _both(tmp_path)
    assert via_invoke.returncode == via_entry.returncode == 1
    assert via_entry.stderr == via_invoke.stderr
    assert via_entry.stderr.count("\n") == 1 and message in via_entry.stderr, via_entry.stderr


def test_bad_settings_one_line_from_both(tmp_path: Path) -> None:
    Project().write(tmp_path)
    _copy_starter(tmp_path)
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + '\n[tool.lockstep]\nenv-name = "a b"\n', "utf-8")
    via_invoke, via_entry = _both(tmp_path)
    assert via_invoke.returncode == via_entry.returncode == 1
    assert via_entry.stderr == via_invoke.stderr
    assert via_entry.stderr.count("\n") == 1 and via_entry.stderr.startswith("error: ")
    assert "Traceback" not in via_entry.stderr


def test_the_entry_point_imports_neither_invoke_nor_the_tasks(tmp_path: Path) -> None:
    _with_findings(tmp_path)
    probe = (
        "import sys, runpy\n"
        "sys.argv = ['lockstep-check']\n"
        "try:\n"
        "    runpy.run_module('lockstep.precommit', run_name='__main__')\n"
        "except SystemExit:\n"
        "    pass\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in {'invoke', 'tasks', 'yaml',"
        " 'tomlkit'})\n"
        "print(loaded, file=sys.stderr)\n"
    )
    done = _run([sys.executable, "-c", probe], tmp_path)
    loaded = done.stderr.strip().splitlines()[-1]
    assert "invoke" not in loaded and "tasks" not in loaded, loaded
    # tomlkit is for the tasks that edit pyproject.toml; the check only reads
    assert "tomlkit" not in loaded and "'yaml'" in loaded, loaded
