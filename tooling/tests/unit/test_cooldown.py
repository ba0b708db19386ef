"""exclude-newer: parsed once (core/settings.py), handed to conda through conda-lock's
environment (CONDA_EXCLUDE_NEWER, conda 26.9+) and to Poetry as solver.min-release-age for that
run only (POETRY_SOLVER_MIN_RELEASE_AGE, Poetry 2.4+); a frontend too old stops the task."""

from __future__ import annotations

import math
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import tasks
from invoke import Exit, Result
from tests.paths import STARTER_0_1
from tests.unit.test_tasks import BIN, LOCK_TEXT, PROJECT_FILES, Shell, _snapshot, _write_lock

from lockstep.core.errors import LockstepError
from lockstep.core.settings import parse_exclude_newer

NOW = datetime(2026, 12, 3, 8, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "cutoff"),
    [
        ("7d", "2026-11-26T08:30:00Z"),
        ("2w", "2026-11-19T08:30:00Z"),
        ("3d12h", "2026-11-29T20:30:00Z"),
        ("36h", "2026-12-01T20:30:00Z"),
        # a date: published on that day or before (conda: "the start of the next day in UTC")
        ("2026-04-01", "2026-04-02T00:00:00Z"),
        ("2026-04-01T12:00:00Z", "2026-04-01T12:00:00Z"),
        ("2026-04-01T14:00:00+02:00", "2026-04-01T12:00:00Z"),
    ],
)
def test_exclude_newer_spellings(value: str, cutoff: str) -> None:
    assert parse_exclude_newer(value, NOW).conda_value == cutoff


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("7", "is not understood"),
        ("7 days", "is not understood"),
        ("0d", "is no delay"),
        ("2026-13-01", "is not understood"),
        ("2027-01-01", "is in the future"),
    ],
)
def test_exclude_newer_refusals(value: str, message: str) -> None:
    with pytest.raises(LockstepError, match=message):
        parse_exclude_newer(value, NOW)


@pytest.mark.parametrize(("value", "days"), [("7d", 7), ("36h", 2), ("2026-11-30", 3)])
def test_poetry_days_never_let_a_newer_release_through(value: str, days: int) -> None:
    # Poetry counts whole days back from its own now: rounded up, its cutoff is never later.
    assert parse_exclude_newer(value, NOW).poetry_days(NOW) == days


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in PROJECT_FILES:
        shutil.copy(STARTER_0_1 / name, tmp_path / name)
    pyproject = tmp_path / "pyproject.toml"
    text = pyproject.read_text()
    assert "[tool.lockstep]\n" in text
    pyproject.write_text(
        text.replace("[tool.lockstep]\n", '[tool.lockstep]\nexclude-newer = "2026-04-01"\n')
    )
    monkeypatch.setattr(tasks, "_machine_platform", lambda: "linux-64")
    monkeypatch.setattr(
        tasks.shutil, "which", lambda name: f"{BIN}/{name}" if name == "conda" else None
    )
    return tmp_path


def _conda(version: str) -> dict:
    return {f"{BIN}/conda --version": lambda argv: Result(f"conda {version}\n")}


def test_lock_hands_the_cutoff_to_conda_for_that_run(project: Path, capsys) -> None:
    shell = Shell({**_conda("26.9.0"), "conda-lock": _write_lock(LOCK_TEXT)}, root=project)
    tasks.lock(shell)
    solves = [
        env for call, env in zip(shell.calls, shell.envs, strict=True) if call[0] == "conda-lock"
    ]
    assert len(solves) >= 2, "the CUDA lock and the CPU variant"
    assert all(env["CONDA_EXCLUDE_NEWER"] == "2026-04-02T00:00:00Z" for env in solves)
    assert [f"{BIN}/conda", "--version"] in shell.calls
    out = capsys.readouterr().out
    assert (
        "cooldown: exclude-newer = '2026-04-01': nothing published after 2026-04-02 00:00 UTC"
        in out
    )


def test_lock_without_a_cooldown_sets_nothing(project: Path) -> None:
    pyproject = project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('exclude-newer = "2026-04-01"\n', ""))
    shell = Shell({"conda-lock": _write_lock(LOCK_TEXT)}, root=project)
    tasks.lock(shell)
    assert {c[0] for c in shell.calls} == {"conda-lock"}
    assert not any("CONDA_EXCLUDE_NEWER" in (env or {}) for env in shell.envs)


def test_a_conda_too_old_for_the_cutoff_stops_before_the_solve(project: Path) -> None:
    before = _snapshot(project)
    shell = Shell({**_conda("26.7.1"), "conda-lock": _write_lock(LOCK_TEXT)}, root=project)
    with pytest.raises(
        Exit,
        match=r"exclude-newer needs conda 26\.9 or newer \(its exclude_newer setting\); "
        r"this is conda 26\.7\.1: `conda update -n base conda`",
    ):
        tasks.lock(shell)
    assert [c[0] for c in shell.calls] == [f"{BIN}/conda"]
    assert _snapshot(project) == before


def test_mamba_cannot_lock_with_a_cutoff(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        tasks.shutil, "which", lambda name: f"{BIN}/{name}" if name == "mamba" else None
    )
    shell = Shell({f"{BIN}/mamba --version": lambda argv: Result("mamba 2.5.0\n")}, root=project)
    with pytest.raises(
        Exit,
        match=r"exclude-newer needs conda 26\.9 or newer to lock; conda-lock "
        r"would solve with mamba here",
    ):
        tasks.lock(shell)
    assert "conda-lock" not in [c[0] for c in shell.calls]


def _with_lock(project: Path) -> None:
    (project / "conda-linux-64.lock").write_text(LOCK_TEXT)


def test_pin_runs_poetry_lock_with_min_release_age(project: Path) -> None:
    _with_lock(project)
    shell = Shell(
        {"poetry --version": lambda argv: Result("Poetry (version 2.5.1)\n")}, root=project
    )
    tasks.pin(shell)
    assert shell.calls[0] == ["poetry", "--version"]
    assert shell.calls[1][:2] == ["poetry", "--directory"] and shell.calls[1][3:] == ["lock"]
    cutoff = datetime(2026, 4, 2, tzinfo=UTC)
    days = math.ceil((datetime.now(UTC) - cutoff) / timedelta(days=1))
    assert shell.envs[1]["POETRY_SOLVER_MIN_RELEASE_AGE"] == str(days)
    assert shell.envs[1]["POETRY_VIRTUALENVS_CREATE"] == "false"


def test_a_poetry_too_old_for_the_cutoff_stops_pin(project: Path) -> None:
    _with_lock(project)
    before = _snapshot(project)
    shell = Shell(
        {"poetry --version": lambda argv: Result("Poetry (version 2.3.2)\n")}, root=project
    )
    with pytest.raises(
        Exit,
        match=r"exclude-newer needs Poetry 2\.4 or newer \(solver\.min-release-age\); this is "
        r"Poetry 2\.3\.2",
    ):
        tasks.pin(shell)
    assert shell.calls == [["poetry", "--version"]]
    assert _snapshot(project) == before
