"""The first run on a fresh clone: `make reproduce` with no conda lock locks, pins and
builds; `LOCKED=1` refuses and writes nothing; a second run re-solves nothing; `make check` works
on a fresh clone of this repository (it bootstraps the tooling venv from poetry.lock).

Real make, invoke, conda-lock, Poetry and pip against the local channel and index; conda is the
py-rattler stand-in (a test double of its CLI).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from tests.paths import PROJECT

from .helpers import clone_worktree, run
from .project import (
    LOCK,
    POETRY_LOCK,
    Project,
    build_project_channel,
    conda_meta_records,
    create_project,
    file_hashes,
    lock_records,
    tooling_venv,
)
from .pyindex import PackageIndex

pytestmark = pytest.mark.integration
REPO = PROJECT


@pytest.fixture
def fresh(tmp_path: Path, standin_bin: Path, wheel_index: PackageIndex) -> tuple[Project, Path]:
    """A new project as a starter user has it: spec files and pyproject, no lock of any kind."""
    channel = build_project_channel(tmp_path / "channel")
    project = create_project(
        tmp_path / "my project",
        tmp_path / "state",
        channel,
        standin_bin,
        wheel_index.url,
        f"fr-{uuid.uuid4().hex[:8]}",
    )
    project.invoke("poetry-init")  # the starter ships a ready pyproject; the test one is bare
    tooling = tooling_venv(tmp_path / "tooling venv")
    (tooling / ".installed").touch()  # newer than pyproject.toml: bootstrap-venv.sh reuses it
    return project, tooling


def _one_error(proc: subprocess.CompletedProcess[str]) -> str:
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "Traceback" not in proc.stderr, proc.stderr
    return errors[0]


def test_locked_refuses_and_writes_nothing(fresh: tuple[Project, Path]) -> None:
    project, tooling = fresh
    before = file_hashes(project.root)
    proc = project.make("reproduce", "LOCKED=1", f"VENV={tooling}", expect_rc=None)
    assert "not found and --locked (LOCKED=1) forbids making it" in _one_error(proc)
    assert file_hashes(project.root) == before
    assert not project.prefix.exists()


def test_first_run_locks_pins_builds_and_a_second_run_solves_nothing(
    fresh: tuple[Project, Path],
) -> None:
    project, tooling = fresh
    started = time.monotonic()
    first = project.make("reproduce", f"VENV={tooling}")
    first_s = time.monotonic() - started

    assert f"no {LOCK} yet: locking environment.yml first" in first.stdout
    assert first.stdout.rstrip().splitlines()[-1] == (
        f"lockstep: first locks made: commit {LOCK}, pyproject.toml and {POETRY_LOCK}"
    )
    assert project.lock.is_file() and project.poetry_lock.is_file()
    pins = project.pyproject.read_text().partition("[tool.poetry.group.conda.dependencies]")[2]
    assert 'torch = "2.5.1"' in pins.partition("\n[")[0], first.stdout
    assert conda_meta_records(project.prefix) == lock_records(project.lock)
    locks = {name: (project.root / name).read_bytes() for name in (LOCK, POETRY_LOCK)}
    locks["pyproject.toml"] = project.pyproject.read_bytes()

    started = time.monotonic()
    second = project.make("reproduce", f"VENV={tooling}")
    second_s = time.monotonic() - started

    assert "conda-lock" not in second.stdout and "locking" not in second.stdout
    assert {name: (project.root / name).read_bytes() for name in locks} == locks
    assert conda_meta_records(project.prefix) == lock_records(project.lock)
    print(f"\nfirst run {first_s:.1f} s, second run {second_s:.1f} s")


def test_make_check_bootstraps_the_tooling_on_a_fresh_clone(tmp_path: Path) -> None:
    """A real clone and a real bootstrap of .venv from poetry.lock (PyPI, hashes checked)."""
    clone = tmp_path / "clone"
    clone_worktree(REPO, clone)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHON"))}
    env["PYTHON"] = sys.executable if sys.version_info[:2] == (3, 11) else "python3.11"
    proc = run(["make", "check"], clone, env, expect_rc=None, timeout=900)
    # No conda lock in this repository: check runs and reports that as a finding.
    assert "no conda lock for linux-64" in proc.stdout, proc.stdout + proc.stderr
    assert (clone / ".venv" / ".installed").is_file()
    assert "No such file or directory" not in proc.stderr
