"""The env lifecycle end to end: the real tasks, make, conda-lock, Poetry and pip on a
temporary project, against the local channel and index, through the conda/mamba stand-ins
(test doubles of the CLI). Every claim is checked on the env's files (conda-meta, dist-info
INSTALLER), never on log lines.

The first-time path runs once per module (each task twice), and one fresh copy is reproduced
from its locks; the tests read those results. Tests that change a project or an env work on a
copy of their own.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import subprocess
import sys
import tomllib
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from .helpers import run
from .project import (
    LOCK,
    POETRY_LOCK,
    Project,
    build_project_channel,
    conda_meta_records,
    conda_owned_files,
    create_project,
    distributions,
    file_hashes,
    lock_records,
    poetry_lock_versions,
    set_pytorch_spec,
)
from .pyindex import PackageIndex

pytestmark = pytest.mark.integration

# What `make reproduce` needs on a machine with no Python tools: no tasks.py, no spec files.
REPRODUCE_INPUTS = ("Makefile", "tooling", "pyproject.toml", LOCK, POETRY_LOCK)
# Poetry's side of the test project: tinyapp and what it needs, nothing that conda provides.
PYPI_SIDE = {"tinyapp": "1.0", "tinyhelper": "1.1"}
CONDA_SIDE = {"torch": "2.5.1", "filelock": "3.17.0", "pip": "23.2.1"}
# The stand-in of PyPI torch's CUDA wheels: in poetry.lock through the pins, never in the env.
CUDA_WHEEL = "nvidia-fake-cu12"
USER_SITE_MODULE = "lockstep_user_site_probe"

Snapshot = dict[str, object]


def env_name(label: str) -> str:
    """An env name of its own for each project, so no two tests can meet in one env."""
    return f"lc-{label}-{uuid.uuid4().hex[:8]}"


def env_snapshot(prefix: Path) -> Snapshot:
    """Every file of the env by content, plus conda-meta's mtimes (a rebuild changes them).

    Bytecode is left out: pip compiles it with the source's mtime inside, which a rebuild renews.
    """
    if not prefix.exists():
        return {}
    files = file_hashes(prefix, skip=["__pycache__"])
    # conda-meta/created_at holds the env's creation time (conda 26 writes it): a time, like mtimes.
    created = files.pop("conda-meta/created_at", None)
    snapshot: Snapshot = {f"env/{k}": v for k, v in files.items()}
    if created is not None:
        snapshot["mtime/created_at"] = created
    for record in sorted((prefix / "conda-meta").iterdir()):
        snapshot[f"mtime/{record.name}"] = record.stat().st_mtime_ns
    return snapshot


def project_snapshot(project: Project) -> Snapshot:
    """Every file of the project folder, by content."""
    return {f"project/{k}": v for k, v in file_hashes(project.root).items()}


def snapshot(project: Project) -> Snapshot:
    return {**project_snapshot(project), **env_snapshot(project.prefix)}


def changed(before: Snapshot, after: Snapshot) -> list[str]:
    """Keys that differ, for a readable assertion message."""
    return sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))


def env_vars(prefix: Path) -> dict[str, str]:
    state = prefix / "conda-meta" / "state"
    return json.loads(state.read_text(encoding="utf-8")).get("env_vars", {})


def lock_version(lock: Path, name: str) -> str:
    return next(version for n, version, *_ in lock_records(lock) if n == name)


# --------------------------------------------------------------------------- shared runs


@dataclass(frozen=True)
class TwiceRun:
    """A task run twice in a row, with the project and env just before and after the second."""

    first: subprocess.CompletedProcess[str]
    second: subprocess.CompletedProcess[str]
    before_second: Snapshot
    after_second: Snapshot


@dataclass(frozen=True)
class FirstTime:
    project: Project
    runs: dict[str, TwiceRun]
    pyproject_before_pin: str
    pyproject_initial: str


# Task, command, exit code of the second run. A second env-create refuses (the env exists).
FIRST_TIME_PATH: tuple[tuple[str, tuple[str, ...], int], ...] = (
    ("env-create", ("invoke", "env-create"), 1),
    ("lock", ("invoke", "lock"), 0),
    ("poetry-init", ("invoke", "poetry-init"), 0),
    ("pin", ("invoke", "pin"), 0),
    ("poetry lock", ("poetry", "lock"), 0),
)


def _run_step(
    project: Project, command: tuple[str, ...], expect_rc: int
) -> subprocess.CompletedProcess[str]:
    if command[0] == "invoke":
        return project.invoke(*command[1:], expect_rc=expect_rc)
    return project.run(*command, expect_rc=expect_rc)


def run_twice(project: Project, command: tuple[str, ...], second_rc: int) -> TwiceRun:
    first = _run_step(project, command, 0)
    before = snapshot(project)
    second = _run_step(project, command, second_rc)
    return TwiceRun(first, second, before, snapshot(project))


@pytest.fixture(scope="module")
def project_channel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_project_channel(tmp_path_factory.mktemp("lifecycle-channel"))


@pytest.fixture(scope="module")
def first_time(
    tmp_path_factory: pytest.TempPathFactory,
    project_channel: Path,
    standin_bin: Path,
    wheel_index: PackageIndex,
) -> FirstTime:
    """env-create, lock, poetry-init, pin, poetry lock: each twice, on a new project."""
    base = tmp_path_factory.mktemp("first-time")
    project = create_project(
        base / "project",
        base / "state",
        project_channel,
        standin_bin,
        wheel_index.url,
        env_name("first"),
    )
    initial = project.pyproject.read_text(encoding="utf-8")
    runs: dict[str, TwiceRun] = {}
    before_pin = ""
    for task, command, second_rc in FIRST_TIME_PATH:
        if task == "pin":
            before_pin = project.pyproject.read_text(encoding="utf-8")
        runs[task] = run_twice(project, command, second_rc)
    project.run("poetry", "check", "--lock")
    return FirstTime(project, runs, before_pin, initial)


@dataclass(frozen=True)
class Reproduced:
    project: Project
    run: TwiceRun


@pytest.fixture(scope="module")
def reproduced(
    tmp_path_factory: pytest.TempPathFactory, first_time: FirstTime, standin_bin: Path
) -> Reproduced:
    """`make reproduce` twice on another machine that has only make, conda and the lock files."""
    base = tmp_path_factory.mktemp("reproduced")
    fresh = first_time.project.copy(base / "project", base / "state", standin_bin, REPRODUCE_INPUTS)
    fresh = fresh.without_python_tools()
    first = fresh.make("reproduce")
    before = snapshot(fresh)
    second = fresh.make("reproduce")
    return Reproduced(fresh, TwiceRun(first, second, before, snapshot(fresh)))


@pytest.fixture
def rebuilt(tmp_path: Path, first_time: FirstTime, standin_bin: Path) -> Project:
    """A full copy of the first-time project on a fresh machine, its env built by reproduce."""
    project = first_time.project.copy(tmp_path / "project", tmp_path / "state", standin_bin)
    project.make("reproduce")
    return project


def assert_one_copy_of_everything(project: Project) -> None:
    """Rule 3 on the env's files: one installer per distribution, conda's kept, no CUDA wheel."""
    prefix = project.prefix
    dists = distributions(prefix)
    counts = Counter(d.name for d in dists)
    assert [n for n, c in counts.items() if c > 1] == [], "a distribution is installed twice"
    owned = conda_owned_files(prefix)
    for dist in dists:
        metadata = str((dist.folder / "METADATA").relative_to(prefix))
        by_conda = metadata in owned
        assert dist.installer == ("conda" if by_conda else "pip"), dist
    installed = {d.name: (d.version, d.installer) for d in dists}
    pytorch = lock_version(project.lock, "pytorch")
    assert installed["torch"] == (pytorch, "conda")
    torch_info = next(d.folder for d in dists if d.name == "torch")
    assert owned[str((torch_info / "METADATA").relative_to(prefix))] == "pytorch"
    assert not (torch_info / "direct_url.json").exists(), "pip reinstalled conda's torch"
    assert installed["filelock"] == (lock_version(project.lock, "filelock"), "conda")
    assert CUDA_WHEEL not in installed
    assert not list(prefix.rglob("nvidia_fake_cu12*")), "the CUDA wheel left files behind"


# --------------------------------------------------------------------------- 1. first time


def test_env_create_solves_environment_yml_into_a_new_env(first_time: FirstTime):
    prefix = first_time.project.prefix
    versions = {name: version for name, version, *_ in conda_meta_records(prefix)}
    assert versions["pytorch"] == "2.5.1"
    assert versions["cuda-version"] == "12.6"
    assert env_vars(prefix) == {"PYTHONNOUSERSITE": "1"}


def test_lock_writes_an_explicit_lock_with_conda_locks_input_hash(
    first_time: FirstTime, project_channel: Path
):
    from lockstep.inputhash import conda_lock_input_hash

    project = first_time.project
    header = project.lock.read_text(encoding="utf-8").split("@EXPLICIT")[0]
    assert "# platform: linux-64\n" in header
    expected = conda_lock_input_hash(
        project.environment_yml, project.root / "virtual-packages.yml", "linux-64"
    )
    assert f"# input_hash: {expected}\n" in header
    names = {name: version for name, version, *_ in lock_records(project.lock)}
    assert names == {
        "python": f"{sys.version_info.major}.{sys.version_info.minor}.{sys.version_info.micro}",
        "pip": CONDA_SIDE["pip"],
        "cuda-version": "12.6",
        "libcudart": "12.6.77",
        "pytorch": "2.5.1",
        "filelock": "3.17.0",
    }
    urls = [url for *_, url in lock_records(project.lock)]
    assert all(url.startswith(f"{project_channel.as_uri()}/") for url in urls)


def test_poetry_init_derives_requires_python_from_environment_yml(first_time: FirstTime):
    run = first_time.runs["poetry-init"]
    assert "requires-python" in run.first.stdout
    assert 'requires-python = ">=3.11,<3.12"' in first_time.pyproject_before_pin
    assert "nothing to change" in run.second.stdout


def test_pin_writes_the_conda_versions_and_keeps_every_line(first_time: FirstTime):
    project = first_time.project
    text = project.pyproject.read_text(encoding="utf-8")
    group = tomllib.loads(text)["tool"]["poetry"]["group"]["conda"]
    assert group["optional"] is True
    # torch from environment.yml; filelock because poetry.lock also holds it (torch needs it).
    assert group["dependencies"] == {
        "torch": lock_version(project.lock, "pytorch"),
        "filelock": lock_version(project.lock, "filelock"),
    }
    removed = [
        line
        for line in difflib.ndiff(first_time.pyproject_before_pin.splitlines(), text.splitlines())
        if line.startswith("- ")
    ]
    assert removed == [], "pin must only add lines"
    assert all(line in text for line in first_time.pyproject_initial.splitlines() if "#" in line)


def test_pin_leaves_each_comment_above_its_own_table(first_time: FirstTime):
    lines = first_time.project.pyproject.read_text(encoding="utf-8").splitlines()
    comment = lines.index(next(ln for ln in lines if ln.startswith("# Settings of the tasks")))
    assert lines[comment + 1] == "[tool.lockstep]"


def test_poetry_lock_holds_the_pins_and_agrees_with_the_conda_lock(first_time: FirstTime):
    project = first_time.project
    locked = poetry_lock_versions(project.poetry_lock)
    assert locked == {**PYPI_SIDE, "torch": "2.5.1", "filelock": "3.17.0", CUDA_WHEEL: "12.6.77"}
    for conda_name, pypi_name in (("pytorch", "torch"), ("filelock", "filelock")):
        assert locked[pypi_name] == lock_version(project.lock, conda_name)


@pytest.mark.parametrize("task", [task for task, *_ in FIRST_TIME_PATH])
def test_first_time_task_run_twice_changes_nothing(first_time: FirstTime, task: str):
    run = first_time.runs[task]
    assert changed(run.before_second, run.after_second) == []
    if task == "env-create":
        assert "already exists" in run.second.stderr


# --------------------------------------------------------------------------- 2-3. reproduce


def test_reproduce_needs_no_python_tools(reproduced: Reproduced):
    project = reproduced.project
    assert sorted(p.name for p in project.root.iterdir()) == sorted(REPRODUCE_INPUTS)
    assert str(Path(sys.executable).parent) not in project.env["PATH"].split(os.pathsep)


def test_reproduced_env_equals_the_conda_lock(reproduced: Reproduced):
    project = reproduced.project
    assert conda_meta_records(project.prefix) == lock_records(project.lock)


def test_reproduced_pypi_side_equals_poetry_lock(reproduced: Reproduced):
    project = reproduced.project
    by_pip = {d.name: d.version for d in distributions(project.prefix) if d.installer == "pip"}
    locked = poetry_lock_versions(project.poetry_lock)
    assert by_pip == PYPI_SIDE
    assert by_pip == {name: locked[name] for name in by_pip}


def test_reproduce_installs_each_distribution_once(reproduced: Reproduced):
    project = reproduced.project
    # poetry.lock does ask for torch and its CUDA wheel: what keeps them out is the design.
    assert {"torch", CUDA_WHEEL} <= poetry_lock_versions(project.poetry_lock).keys()
    assert_one_copy_of_everything(project)
    by_conda = {d.name: d.version for d in distributions(project.prefix) if d.installer == "conda"}
    assert by_conda == CONDA_SIDE


def test_reproduce_run_twice_changes_nothing(reproduced: Reproduced):
    # The env matches both locks after the first run: the second touches nothing, not even a
    # file's mtime (issue 20; before it, reproduce rebuilt the env with equal content).
    assert changed(reproduced.run.before_second, reproduced.run.after_second) == []
    assert "already matches conda-linux-64.lock and poetry.lock; nothing to do" in (
        reproduced.run.second.stdout
    )


def test_the_one_copy_check_catches_a_second_installer(rebuilt: Project):
    """The negative control of rule 3: Poetry's installer reinstalls conda's torch (poetry issue
    6408) and adds its CUDA wheel; the file checks must then fail."""
    project = rebuilt
    pip = ["python", "-m", "pip", "install", "--no-input", "--force-reinstall", "--no-deps"]
    conda = Path(project.env["CONDA_EXE"])
    project.run(conda, "run", "-n", project.env_name, *pip, "torch==2.5.1", f"{CUDA_WHEEL}")

    with pytest.raises(AssertionError):
        assert_one_copy_of_everything(project)


# --------------------------------------------------------------------------- 5. user site


def test_user_site_is_off_inside_the_reproduced_env(reproduced: Reproduced):
    project = reproduced.project
    assert env_vars(project.prefix)["PYTHONNOUSERSITE"] == "1"
    # The caller's shell has no PYTHONNOUSERSITE: only the env's own setting may stop the import.
    caller = {k: v for k, v in project.env.items() if k != "PYTHONNOUSERSITE"}
    python = project.prefix / "bin" / "python"
    user_site = Path(
        run([python, "-m", "site", "--user-site"], project.root, caller).stdout.strip()
    )
    assert user_site.is_relative_to(caller["HOME"])
    user_site.mkdir(parents=True, exist_ok=True)
    probe = user_site / f"{USER_SITE_MODULE}.py"
    probe.write_text("SHADOW = True\n")
    importing = ["-c", f"import {USER_SITE_MODULE}"]
    try:
        # The control: the same interpreter does see the user site, so the test can fail.
        run([python, *importing], project.root, caller)
        conda = Path(project.env["CONDA_EXE"])
        inside = [conda, "run", "-n", project.env_name, "python", *importing]
        proc = run(inside, project.root, caller, expect_rc=None)
        assert "ModuleNotFoundError" in proc.stderr
    finally:
        probe.unlink()


# --------------------------------------------------------------------------- 4. update


def test_update_after_a_version_bump_moves_env_pins_and_locks(rebuilt: Project):
    project = rebuilt
    set_pytorch_spec(project, "2.6")

    proc = project.invoke("update")

    assert lock_version(project.lock, "pytorch") == "2.6.0"
    assert conda_meta_records(project.prefix) == lock_records(project.lock)
    assert_one_copy_of_everything(project)
    pins = tomllib.loads(project.pyproject.read_text())["tool"]["poetry"]["group"]["conda"]
    assert pins["dependencies"]["torch"] == "2.6.0"
    locked = poetry_lock_versions(project.poetry_lock)
    assert locked["torch"] == "2.6.0"
    by_pip = {d.name: d.version for d in distributions(project.prefix) if d.installer == "pip"}
    assert by_pip == PYPI_SIDE
    assert re.search(r"conda\s+pytorch\s+2\.5\.1 -> 2\.6\.0", proc.stdout), proc.stdout
    assert re.search(r"pypi\s+torch\s+2\.5\.1 -> 2\.6\.0", proc.stdout), proc.stdout

    before = snapshot(project)
    again = project.invoke("update")
    after = snapshot(project)
    assert [k for k in changed(before, after) if not k.startswith("mtime/")] == []
    assert "No package changed." in again.stdout


def test_failing_update_leaves_the_env_and_every_file_as_they_were(rebuilt: Project):
    project = rebuilt
    set_pytorch_spec(project, "9")
    before = snapshot(project)

    proc = project.invoke("update", expect_rc=None)

    assert changed(before, snapshot(project)) == []
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and proc.stderr.strip().endswith(errors[0]), proc.stderr
    assert "environment.yml" in errors[0]
    assert list(project.tmp.iterdir()) == [], "the update left scratch files behind"


# --------------------------------------------------------------------------- reproduce, more


def test_make_reproduce_with_the_mamba_standin(
    tmp_path: Path, first_time: FirstTime, standin_bin: Path
):
    project = first_time.project.copy(
        tmp_path / "project", tmp_path / "state", standin_bin, REPRODUCE_INPUTS
    )
    project.use_installer("frontend")  # mamba's own create, not py-rattler
    proc = project.make("FRONTEND=mamba", "reproduce")

    assert re.search(r"^\+ \S*/mamba create --yes --prefix ", proc.stdout, re.M), proc.stdout
    assert conda_meta_records(project.prefix) == lock_records(project.lock)
    assert_one_copy_of_everything(project)


def _missing_conda_package(project: Project) -> None:
    text = project.lock.read_text(encoding="utf-8")
    project.lock.write_text(text.replace("/pytorch-2.5.1-", "/pytorch-2.5.9-"), encoding="utf-8")


def _missing_wheel(project: Project) -> None:
    text = project.poetry_lock.read_text(encoding="utf-8")
    broken = text.replace(
        'name = "tinyhelper"\nversion = "1.1"', 'name = "tinyhelper"\nversion = "9.9"'
    )
    assert broken != text
    project.poetry_lock.write_text(broken, encoding="utf-8")


@pytest.mark.parametrize(
    ("breakage", "message"),
    [
        # The archive is checked before the env is touched (file:// is copied unchecked by conda).
        pytest.param(_missing_conda_package, "does not exist", id="conda-step-fails"),
        pytest.param(_missing_wheel, "put the previous env back at", id="pypi-step-fails"),
    ],
)
def test_failed_reproduce_keeps_the_old_env(
    rebuilt: Project, breakage: Callable[[Project], None], message: str
):
    project = rebuilt
    breakage(project)
    before = env_snapshot(project.prefix)

    proc = project.make("reproduce", expect_rc=None)

    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and message in errors[0], proc.stderr
    assert changed(before, env_snapshot(project.prefix)) == []
    state = f".{project.env_name}.lockstep"
    assert sorted(p.name for p in project.prefix.parent.iterdir()) == [state, project.env_name]
    assert [p.name for p in (project.prefix.parent / state).iterdir()] == ["lock"]


def test_invoke_reproduce_works_from_a_subfolder(
    tmp_path: Path, first_time: FirstTime, standin_bin: Path
):
    project = first_time.project.copy(tmp_path / "project", tmp_path / "state", standin_bin)
    subfolder = project.root / "tooling" / "src"

    project.invoke("reproduce", cwd=subfolder)

    assert conda_meta_records(project.prefix) == lock_records(project.lock)


# --------------------------------------------------------------------------- check and doctor


def _findings(done: subprocess.CompletedProcess[str]) -> list[str]:
    return [f["code"] for f in json.loads(done.stdout)["findings"]]


def test_check_is_clean_after_the_first_time_path(first_time: FirstTime):
    done = first_time.project.invoke("check", "--json")
    assert json.loads(done.stdout) == {"schema": 1, "tool": "check", "clean": True, "findings": []}


def test_check_finds_a_spec_edited_after_the_lock(
    tmp_path: Path, first_time: FirstTime, standin_bin
):
    project = first_time.project.copy(tmp_path / "project", tmp_path / "state", standin_bin)
    set_pytorch_spec(project, "2.6")
    before = file_hashes(project.root)
    done = project.invoke("check", "--json", expect_rc=1)
    assert "conda-lock-stale" in _findings(done)
    assert file_hashes(project.root) == before


def test_doctor_finds_the_reproduced_env_clean(rebuilt: Project):
    done = rebuilt.invoke("doctor", "--json")
    report = json.loads(done.stdout)
    assert report["clean"] is True and report["findings"] == []
    installers = {d["name"]: d["installer"] for d in report["distributions"]}
    assert installers["torch"] == "conda" and installers["tinyapp"] == "pip"


def test_doctor_finds_a_wheel_over_condas_torch(rebuilt: Project):
    pip = ["python", "-m", "pip", "install", "--no-input", "--force-reinstall", "--no-deps"]
    conda = Path(rebuilt.env["CONDA_EXE"])
    rebuilt.run(conda, "run", "-n", rebuilt.env_name, *pip, "torch==2.5.1", CUDA_WHEEL)
    done = rebuilt.invoke("doctor", "--json", expect_rc=1)
    codes = set(_findings(done))
    assert "conda-overwritten" in codes, codes
    assert "pypi-extra" in codes, codes


def test_doctor_finds_conda_files_altered_or_removed_after_the_install(rebuilt: Project):
    """conda-meta as rattler's installer wrote it; the md5 check alone calls this env clean."""
    site = "lib/python3.11/site-packages"
    torch = rebuilt.prefix / site / "torch" / "__init__.py"
    data = bytearray(torch.read_bytes())
    data[0] ^= 0x20  # same size: only the digest tells
    torch.write_bytes(bytes(data))
    (rebuilt.prefix / "lib" / "libcudart.so.12").unlink()
    done = rebuilt.invoke("doctor", "--json", expect_rc=1)
    report = json.loads(done.stdout)
    found = {
        (f["code"], f["what"].split()[0], f["what"].rsplit(": ", 1)[1]) for f in report["findings"]
    }
    assert found == {
        ("conda-file-missing", "libcudart", "lib/libcudart.so.12"),
        ("conda-file-altered", "pytorch", f"{site}/torch/__init__.py"),
    }
    assert report["file_check"]["hashed"] > 0
    # What doctor saw before it hashed files: the lock's md5 against conda-meta's copy of it.
    assert json.loads(rebuilt.invoke("doctor", "--json", "--no-file-check").stdout)["clean"]
