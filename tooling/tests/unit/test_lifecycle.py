"""lockstep.lifecycle without invoke: a Project in a temp folder and a recording Shell.

The task tests (test_tasks.py) pin the same commands through tasks.py; these show the lifecycle
needs nothing of invoke, module globals included, and that a failure raises LockstepError with
every file left as it was.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest
from tests.paths import SRC, STARTER_0_1
from tests.testdata import generated_lock_text, realistic_packages

from lockstep import lifecycle
from lockstep.core.errors import LockstepError
from lockstep.core.explicit import read_explicit
from lockstep.lifecycle import Project

CONDA = "/opt/miniforge/bin/conda"
LOCK_TEXT = generated_lock_text(realistic_packages(60))


@dataclass
class Ran:
    failed: bool = False
    stdout: str = ""
    stderr: str = ""


class RecordingShell:
    """Records argument lists; ``answer`` decides what a command did."""

    def __init__(self, answer: Callable[[list[str]], bool] = lambda argv: True) -> None:
        self.calls: list[list[str]] = []
        self.answer = answer
        self.dry = False

    def run(
        self,
        command: list[str],
        env: Mapping[str, str] | None = None,
        warn: bool = False,
        hide: bool = False,
    ) -> Ran:
        self.calls.append(command)
        ok = self.answer(command)
        if not ok and not warn:
            raise AssertionError(f"unexpected failure of {command}")
        return Ran(failed=not ok)

    def query(self, command: list[str]) -> str:
        raise AssertionError(f"no query expected with conda on PATH: {command}")

    def which(self, name: str) -> str | None:
        return CONDA if name == "conda" else None


def _solve_into_template(argv: list[str]) -> bool:
    template = argv[argv.index("--filename-template") + 1]
    Path(template.format(platform="linux-64")).write_text(LOCK_TEXT)
    return True


@pytest.fixture
def project(tmp_path: Path) -> Project:
    for name in ("pyproject.toml", "environment.yml", "virtual-packages.yml", "poetry.lock"):
        shutil.copy(STARTER_0_1 / name, tmp_path / name)
    return Project.load(tmp_path)


def test_lock_solves_in_scratch_and_writes_the_lock(project: Project) -> None:
    shell = RecordingShell(_solve_into_template)
    written = lifecycle.lock(shell, project)
    assert written == [
        project.root / "conda-linux-64.lock",
        project.root / "conda-linux-64-cpu.lock",
    ]
    assert written[0].read_text() == LOCK_TEXT
    # The CPU variant: a free solve, then one held at the CUDA lock's versions, which settles.
    argv, *cpu_solves = shell.calls
    assert len(cpu_solves) == 2
    for cpu in cpu_solves:
        derived = cpu[cpu.index("--file") + 1]
        assert derived != str(project.environment_file) and "--platform" in cpu
    template = argv[argv.index("--filename-template") + 1]
    assert argv[:12] == [
        "conda-lock",
        "lock",
        "--kind",
        "explicit",
        "--file",
        str(project.environment_file),
        "--platform",
        "linux-64",
        "--virtual-package-spec",
        str(project.virtual_packages_file),
        "--conda",
        CONDA,
    ]
    assert not template.startswith(str(project.root))


def test_a_failed_solve_raises_and_writes_nothing(project: Project) -> None:
    before = sorted(p.name for p in project.root.iterdir())
    with pytest.raises(LockstepError, match="conda-lock could not solve environment.yml"):
        lifecycle.lock(RecordingShell(lambda argv: False), project)
    assert sorted(p.name for p in project.root.iterdir()) == before


def test_a_dry_shell_solves_but_writes_nothing(project: Project) -> None:
    shell = RecordingShell(_solve_into_template)
    shell.dry = True
    assert lifecycle.lock(shell, project) == []
    assert not (project.root / "conda-linux-64.lock").exists()


def test_pin_without_lock_writes_only_pyproject(project: Project) -> None:
    (project.root / "conda-linux-64.lock").write_text(LOCK_TEXT)
    source = read_explicit(project.lock_path("linux-64"), "linux-64")
    shell = RecordingShell()
    change = lifecycle.pin(shell, project, source, no_lock=True)
    assert shell.calls == []
    assert change.diff.startswith("--- pyproject.toml\n+++ pyproject.toml\n")
    assert change.written == (project.pyproject,)
    assert lifecycle.pin(shell, project, source, no_lock=True).written == ()


def test_project_settings_come_from_its_own_pyproject(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.lockstep]\nenv-name = "elsewhere"\n')
    project = Project.load(tmp_path, env_name="", frontend=None)
    assert project.settings.env_name == "elsewhere"
    assert Project.load(tmp_path, env_name="given").settings.env_name == "given"
    # The engine runs from the tooling's own package, never from the project's src/.
    assert project.engine_environ() == {"PYTHONPATH": str(SRC)}
