"""The user's path end to end, on the starter's own files: a project made of this repository's
pyproject.toml, poetry.lock, environment.yml, virtual-packages.yml, README, src/ and tests/ (plus
the tooling), renamed, locked, reproduced, then the user's `make test` inside that env, and
`invoke doctor` on it.

What is real and what stands in (the decision of issue 19, item 4):
- real: make, invoke, conda-lock, uv, pip, the tasks and the engine; the PyPI side is the
  starter's poetry.lock as Poetry 2.5.1 wrote it, installed from a local index holding the very
  wheels it pins (downloaded from PyPI at test time, checked against its hashes); the build
  backend (poetry-core) is PyPI's wheel repacked as conda-forge ships it.
- stand-ins: conda is the py-rattler stand-in (a test double of its CLI) on a local channel;
  python is the host's 3.11 behind a pyvenv.cfg; torchvision is a few bytes. pytorch is the
  real CPU torch of the test venv (CI: .ci/run installs torch 2.13.0+cpu into .venv), LINKED
  into the env by a conda package of conda-forge's shape (realdists.linked_torch_package), so
  the user's example tests run real torch ops in the reproduced env. Where this Python has no
  torch, the channel gets the torch-like package instead: reproduce and doctor still run, and
  the tests that need torch's ops skip with the reason.

Needs PyPI (the wheels of poetry.lock); skips with the reason where it is not reachable.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from tests.paths import PROJECT, TOOLING, copy_tooling, cpu_torch_python

from lockstep.core.markers import target_environment
from lockstep.core.names import normalize, requirement_name
from lockstep.core.plan import default_groups, plan_for
from lockstep.core.poetrylock import read_poetry_lock

from .channel import (
    build_channel,
    default_packages,
    pytorch_cpu_package,
    pytorch_package,
    wheel_package,
)
from .project import Project, conda_meta_records, distributions, tool_env, tooling_venv
from .pyindex import add_wheels, serve_index
from .realdists import (
    download_locked_wheels,
    download_wheel,
    linked_torch_package,
    pypi_unreachable,
    torchvision_package,
)
from .uvtool import SKIP_REASON as NO_UV
from .uvtool import uv_binary, uv_package

pytestmark = pytest.mark.integration

# The starter's files a user's project is made of (the tooling comes with copy_tooling).
USER_FILES = (
    "pyproject.toml",
    "poetry.lock",
    "environment.yml",
    "virtual-packages.yml",
    "README.md",
)
USER_FOLDERS = ("src", "tests", "notebooks", "data")
NAME = "my-project"
# The torch-like stand-in's version, where no real torch is at hand.
TORCH_LIKE_VERSION = "2.7.0"
# torch's "Failed to initialize NumPy" (the example needs no numpy) is a warning, not a failure.
WARNINGS = r"(, \d+ warnings?)?"
NO_TORCH = "no real CPU torch in this Python (.ci/run installs torch 2.13.0+cpu into .venv)"


@dataclass(frozen=True)
class UserPath:
    project: Project
    tooling_venv: Path
    real_torch: bool
    planned: set[str]  # what poetry.lock's plan installs: the wheels of the local index
    runs: dict[str, subprocess.CompletedProcess[str]]
    seconds: dict[str, float]


def _tooling_only(user_path: UserPath) -> set[str]:
    """Every package of the tooling's locks (tooling/poetry.lock, tooling/poetry-cli) that the
    user did not ask for: not planned from poetry.lock, not the user's build backend."""
    locks = [*TOOLING.glob("poetry.lock"), *TOOLING.glob("*/poetry.lock")]
    packages = [p for lock in locks for p in tomllib.loads(lock.read_text())["package"]]
    pyproject = tomllib.loads(user_path.project.pyproject.read_text(encoding="utf-8"))
    backend = {normalize(requirement_name(r)) for r in pyproject["build-system"]["requires"]}
    assert backend == {"poetry-core"}
    # What conda installs came from the conda lock the user asked for (filelock with pytorch,
    # say), even where a tooling lock holds the same name.
    conda = set(conda_provided(user_path.project.prefix))
    return {normalize(p["name"]) for p in packages} - user_path.planned - backend - conda


def conda_provided(prefix: Path) -> set[str]:
    """The Python distributions that conda installed into ``prefix``."""
    return {d.name for d in distributions(prefix) if d.installer == "conda"}


def _user_project(root: Path, channel: Path) -> None:
    """The starter's user files and tooling in ``root``, environment.yml aimed at ``channel``."""
    copy_tooling(root)
    for name in USER_FILES:
        shutil.copy2(PROJECT / name, root / name)
    ignore = shutil.ignore_patterns("__pycache__", ".pytest_cache")
    for folder in USER_FOLDERS:
        shutil.copytree(PROJECT / folder, root / folder, ignore=ignore)
    spec = root / "environment.yml"
    text = spec.read_text(encoding="utf-8")
    # The one change: the local channel for conda-forge (none is reachable here).
    assert text.count("\n  - conda-forge\n") == 1
    spec.write_text(text.replace("\n  - conda-forge\n", f"\n  - {channel.as_uri()}\n"))


@pytest.fixture(scope="module")
def user_path(tmp_path_factory: pytest.TempPathFactory, standin_bin: Path) -> Iterator[UserPath]:
    reason = pypi_unreachable()
    if reason:
        pytest.skip(reason)
    uv = uv_binary()
    if uv is None:
        pytest.skip(NO_UV)  # environment.yml lists uv: the channel needs one
    base = tmp_path_factory.mktemp("user-path")
    state = base / "state"
    state.mkdir()

    # The PyPI side: exactly the wheels the plan of the starter's poetry.lock installs.
    pyproject = tomllib.loads((PROJECT / "pyproject.toml").read_text(encoding="utf-8"))
    environment = target_environment("linux-64", ".".join(map(str, sys.version_info[:3])))
    groups = default_groups(pyproject, "conda")
    plan = plan_for(pyproject, read_poetry_lock(PROJECT / "poetry.lock"), groups, [], environment)
    index_root = base / "index"
    download_locked_wheels(plan.install, index_root / "packages", state)
    add_wheels(index_root, [])  # the simple pages of the downloaded files

    # The conda side: the starter's specs, each with a package in the local channel.
    python = cpu_torch_python()
    if python is not None:
        torch = [linked_torch_package(python, cuda=True), linked_torch_package(python, cuda=False)]
    else:
        version = TORCH_LIKE_VERSION
        torch = [pytorch_package(version, torch_like=True), pytorch_cpu_package(version)]
    backend = download_wheel("poetry-core>=2.0,<3", base / "backend", state)
    channel = build_channel(
        base / "channel",
        [
            *default_packages(),
            *torch,
            torchvision_package(torch[0].version),
            wheel_package("poetry-core", backend),
            uv_package(uv),
        ],
    )

    root = base / "project"
    _user_project(root, channel)
    # make cannot take a VENV with a space (its prerequisite $(VENV)/.installed splits there).
    venv = tooling_venv(base / "tooling-venv")
    (venv / ".installed").touch()  # newer than the tooling's locks: bootstrap-venv.sh reuses it
    runs: dict[str, subprocess.CompletedProcess[str]] = {}
    seconds: dict[str, float] = {}
    with serve_index(index_root) as index:
        project = Project(root, NAME, tool_env(state, standin_bin, index.url))
        steps = {
            "rename": [sys.executable, "-m", "invoke", "rename", "--name", NAME],
            "lock": [sys.executable, "-m", "invoke", "lock"],
            # env-name from pyproject.toml (renamed): no ENV_NAME given.
            "reproduce": ["make", "reproduce"],
        }
        for step, command in steps.items():
            started = time.monotonic()
            runs[step] = project.run(*command)
            seconds[step] = time.monotonic() - started
        yield UserPath(
            project, venv, python is not None, {p.name for p in plan.install}, runs, seconds
        )


def _make_test(path: UserPath, *args: str) -> subprocess.CompletedProcess[str]:
    return path.project.run("make", "test", f"VENV={path.tooling_venv}", *args)


def _summary(proc: subprocess.CompletedProcess[str]) -> str:
    return proc.stdout.strip().splitlines()[-1]


def test_rename_gives_the_user_their_package(user_path: UserPath) -> None:
    root = user_path.project.root
    assert sorted(p.name for p in (root / "src").iterdir()) == ["my_project"]
    assert "from my_project.train import" in (root / "tests" / "test_train.py").read_text()
    assert "move src/ml_project/ -> src/my_project/" in user_path.runs["rename"].stdout


def test_reproduce_builds_the_renamed_env_with_the_users_groups_only(user_path: UserPath) -> None:
    project = user_path.project
    assert project.prefix.name == NAME and (project.prefix / "conda-meta").is_dir()
    conda = {name for name, *_ in conda_meta_records(project.prefix)}
    assert {"python", "pytorch", "torchvision", "pip", "uv", "poetry-core"} <= conda
    installed = {d.name: d for d in distributions(project.prefix)}
    by_pypi = {name for name, d in installed.items() if d.installer != "conda"}
    # poetry.lock's main and test groups, and the user's package (editable): nothing else.
    assert by_pypi == user_path.planned | {NAME}
    assert user_path.planned == {"pytest", "iniconfig", "packaging", "pluggy", "pygments"}
    assert set(installed) & _tooling_only(user_path) == set()


def test_make_test_runs_the_users_tests_in_the_env(user_path: UserPath) -> None:
    if not user_path.real_torch:
        pytest.skip(NO_TORCH)
    started = time.monotonic()
    done = _make_test(user_path)
    took = time.monotonic() - started
    # Every example test on real torch ops, in the env; the CUDA one skips with its reason.
    assert re.fullmatch(rf"=+ 5 passed, 1 skipped{WARNINGS} in [\d.]+s =+", _summary(done)), (
        done.stdout
    )
    assert "SKIPPED [1] tests/test_train.py" in done.stdout
    assert "no CUDA device visible to torch" in done.stdout
    # The env's own python and pytest, not the tooling venv's.
    prefix = str(user_path.project.prefix)
    assert f"--name {NAME} --cwd {user_path.project.root}" in done.stdout
    assert f"rootdir: {user_path.project.root}" in done.stdout
    print(f"make test: {took:.1f} s (reproduce {user_path.seconds['reproduce']:.1f} s)")
    # The tests ran where the code runs: torch as conda installed it, in that prefix.
    probe = user_path.project.run(
        "conda",
        "run",
        "--name",
        NAME,
        "python",
        "-c",
        "import pytest, torch; print(pytest.__file__)",
    )
    assert probe.stdout.startswith(prefix), probe.stdout


def test_pytest_options_pass_after_dashes(user_path: UserPath) -> None:
    if not user_path.real_torch:
        pytest.skip(NO_TORCH)
    done = user_path.project.run(
        str(user_path.tooling_venv / "bin" / "python"), "-m", "invoke", "test", "--", "-k", "seed"
    )
    assert re.fullmatch(rf"=+ 2 passed, 4 deselected{WARNINGS} in [\d.]+s =+", _summary(done)), (
        done.stdout
    )


def test_make_test_before_reproduce_says_what_to_run(user_path: UserPath, tmp_path: Path) -> None:
    project = user_path.project
    fresh = project.copy(
        tmp_path / "clone", tmp_path / "state", Path(project.env["CONDA_EXE"]).parent
    )
    done = fresh.run("make", "test", f"VENV={user_path.tooling_venv}", expect_rc=None)
    assert f"error: env '{NAME}' not found; run `make reproduce` first" in done.stderr
    assert "Traceback" not in done.stderr


def test_doctor_lists_nothing_of_the_tooling(user_path: UserPath) -> None:
    done = user_path.project.run(sys.executable, "-m", "invoke", "doctor", "--json")
    report = json.loads(done.stdout)
    listed = {normalize(d["name"]) for d in report["distributions"]}
    assert listed, "doctor listed no distribution at all"
    assert listed & _tooling_only(user_path) == set()
    assert {"pytest", "torch", NAME} <= listed
    assert (done.returncode, report["findings"]) == (0, [])


def test_the_images_install_root_installs_the_users_package(user_path: UserPath) -> None:
    """The Dockerfile's and Apptainer.def's last step, on this env: the tooling's installer
    (on its own command's path) installs the user's package, editable, and not lockstep."""
    project = user_path.project
    python = str(project.prefix / "bin" / "python")
    done = project.run(
        "env",
        f"PYTHONPATH={project.root / 'tooling' / 'src'}",
        python,
        "-m",
        "lockstep.core.installer",
        "install-root",
        "--prefix",
        str(project.prefix),
        "--pyproject",
        "pyproject.toml",
        "--project-dir",
        ".",
    )
    assert f"--no-build-isolation --no-input --disable-pip-version-check -e {project.root}" in (
        done.stdout
    )
    probe = (
        "import importlib.util as u, my_project as m; print(m.__file__, u.find_spec('lockstep'))"
    )
    answer = project.run(python, "-c", probe, cwd=project.tmp).stdout.split()
    assert answer == [str(project.root / "src" / "my_project" / "__init__.py"), "None"]
