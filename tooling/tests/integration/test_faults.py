"""Faults against the real pieces: `make reproduce` and the engine with the py-rattler
conda stand-in (a test double that lists, replaces and fails like conda 26.7), real pip, real
signals delivered to the whole process group in each phase, paths with spaces everywhere.

Each case checks that the old env is intact (a marker file in it and its conda-meta listing) and
that every project file is byte-identical.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from lockstep.core.commands import ENGINE_MODULE

from .project import (
    Project,
    build_project_channel,
    create_project,
    file_hashes,
    set_pytorch_spec,
)
from .pyindex import PackageIndex

pytestmark = pytest.mark.integration
MARKER = "user data of the old env"
# Both ways the engine installs the conda lock: py-rattler in its own process, and the frontend's
# `create` (the stand-in's, which fails, hangs and stops half-way as conda does).
INSTALLERS = ["rattler", "frontend"]


@pytest.fixture(scope="module")
def locked(
    tmp_path_factory: pytest.TempPathFactory, standin_bin: Path, wheel_index: PackageIndex
) -> Project:
    """A project with both locks, made by the real tasks (lock, pin) once for the module."""
    base = tmp_path_factory.mktemp("faults") / "a project"
    channel = build_project_channel(base / "the channel")
    project = create_project(
        base / "project dir", base / "state", channel, standin_bin, wheel_index.url, "faulty"
    )
    project.invoke("poetry-init")
    project.invoke("lock")
    project.invoke("pin")
    return project


def reproduce_an_older_lock(project: Project) -> None:
    """The env as older locks had it: filelock at the channel's other version (the lock's line
    swapped for that record's URL and md5) and tinyhelper 1.0. The next reproduce has one conda
    package and one wheel to change."""
    lines = project.lock.read_text(encoding="utf-8").splitlines()
    number, line = next((n, ln) for n, ln in enumerate(lines) if "/filelock-" in ln)
    url = line.partition("#")[0]
    folder = Path(unquote(urlsplit(url).path)).parent
    packages = json.loads((folder / "repodata.json").read_text())["packages"]
    name = url.rsplit("/", 1)[1]
    other = next(f for f, r in packages.items() if r["name"] == "filelock" and f != name)
    lines[number] = f"{url.rsplit('/', 1)[0]}/{other}#{packages[other]['md5']}"
    older = project.tmp / "older.lock"
    older.write_text("\n".join(lines) + "\n", encoding="utf-8")
    engine = ["sh", "tooling/scripts/env-engine.sh", "reproduce", "--name", project.env_name]
    done = subprocess.run(
        [*engine, "--conda-lock", str(older)],
        cwd=project.root,
        env=project.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    # and tinyhelper at its other version: the PyPI side has one wheel to change as well
    python = str(project.prefix / "bin" / "python")
    pip = [python, "-m", "pip", "install", "--no-deps", "--index-url", project.env["PIP_INDEX_URL"]]
    done = subprocess.run(
        [*pip, "tinyhelper==1.0"], env=project.env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr


def matches_lock(project: Project) -> bool:
    """conda-meta holds exactly the lock's packages."""
    meta = {p.stem for p in (project.prefix / "conda-meta").glob("*.json")}
    urls = [ln.partition("#")[0] for ln in project.lock.read_text().splitlines()]
    wanted = {u.rsplit("/", 1)[1].removesuffix(".tar.bz2") for u in urls if "://" in u}
    return meta == wanted


@pytest.fixture(params=INSTALLERS)
def machine(
    request: pytest.FixtureRequest, tmp_path: Path, locked: Project, standin_bin: Path
) -> Iterator[Project]:
    """A copy of the project on a machine whose conda root has a space, with the env built once
    (by each installer) from an older lock, and a marker put into it."""
    project = locked.copy(tmp_path / "my project", tmp_path / "conda state", standin_bin)
    project.use_installer(request.param)
    reproduce_an_older_lock(project)
    (project.prefix / "marker.txt").write_text(MARKER)
    yield project


def _env(project: Project) -> dict[str, str]:
    return file_hashes(project.prefix, skip=["__pycache__"])


def _files(project: Project) -> dict[str, str]:
    return file_hashes(project.root, skip=["__pycache__"])


def _leftovers(project: Project) -> list[str]:
    state = project.prefix.parent / f".{project.env_name}.lockstep"
    return sorted(p.name for p in state.iterdir() if p.name != "lock") if state.exists() else []


def _start(project: Project, **extra: str) -> subprocess.Popen[str]:
    """`make reproduce` in a session of its own, as a terminal or a batch job runs it."""
    return subprocess.Popen(
        ["make", "reproduce"],
        cwd=project.root,
        env={**project.env, **extra},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def _wait_for(path: Path, proc: subprocess.Popen[str], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"ended with {proc.returncode} before {path.name}:\n{out}\n{err}")
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)


def _installer(project: Project) -> str:
    text = project.pyproject.read_text(encoding="utf-8")
    return next(i for i in INSTALLERS if f'installer = "{i}"' in text)


def _held(project: Project, phase: str) -> subprocess.Popen[str]:
    gate = project.tmp / "gate"
    gate.mkdir(exist_ok=True)
    if phase == "during-create" and _installer(project) == "frontend":
        # the stand-in stops half-way: a partial env exists
        proc = _start(project, LOCKSTEP_STANDIN_GATE="create")
        _wait_for(project.conda_root / "gate-create.reached", proc)
        return proc
    hold = {
        "after-the-move": "building",
        "during-create": "linking",  # py-rattler stops with half of the packages linked
        "during-pypi": "pypi",
        "during-the-swap": "committing",
    }
    proc = _start(project, LOCKSTEP_ENGINE_HOLD=f"{hold[phase]}:{gate}")
    _wait_for(gate / f"{hold[phase]}.reached", proc)
    return proc


PHASES = ["after-the-move", "during-create", "during-pypi", "during-the-swap"]


@pytest.mark.parametrize("phase", PHASES)
@pytest.mark.parametrize(
    "signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT], ids=lambda s: s.name
)
def test_a_signal_restores_the_old_env(machine: Project, phase: str, signum: int) -> None:
    env, files = _env(machine), _files(machine)
    proc = _held(machine, phase)
    os.killpg(proc.pid, signum)
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode != 0
    assert f"interrupted by {signal.Signals(signum).name}; put the previous env back" in err
    assert _env(machine) == env and _files(machine) == files and _leftovers(machine) == []


def _waiting_installers(project: Project) -> list[str]:
    """The project's lockstep.core.rattlerinstall children started before the env was found
    (they read its lock), still alive."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            argv = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue
        if b"--prefix-from-fd" in argv and os.fsencode(project.lock) in argv:
            found.append(cmdline.parent.name)
    return found


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL], ids=lambda s: s.name)
def test_an_engine_stopped_before_the_move_leaves_no_installer_waiting(
    machine: Project, signum: int
) -> None:
    """py-rattler's child starts beside the listing and waits for the prefix: the engine alone
    stopped there (TERM, or KILL, which undoes nothing) leaves the env as it was and no child."""
    if _installer(machine) != "rattler":
        pytest.skip("only py-rattler's child is started before the env is found")
    env, files = _env(machine), _files(machine)
    gate = machine.tmp / "gate"
    gate.mkdir(exist_ok=True)
    proc = _start(machine, LOCKSTEP_ENGINE_HOLD=f"prepared:{gate}")
    _wait_for(gate / "prepared.reached", proc)
    assert len(_waiting_installers(machine)) == 1
    os.kill(int((gate / "prepared.reached").read_text()), signum)  # the engine, not its group
    proc.communicate(timeout=120)
    assert proc.returncode != 0
    deadline = time.monotonic() + 10
    while _waiting_installers(machine) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _waiting_installers(machine) == []
    assert _env(machine) == env and _files(machine) == files and _leftovers(machine) == []


@pytest.mark.parametrize("phase", PHASES)
def test_after_sigkill_the_next_run_recovers_and_builds(machine: Project, phase: str) -> None:
    files = _files(machine)
    proc = _held(machine, phase)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    done = machine.make("reproduce", "LOCKED=1")
    assert f"an earlier run of '{machine.env_name}' was interrupted" in done.stdout
    assert matches_lock(machine)  # recovered, then rebuilt (a new env) or changed in place
    assert (machine.prefix / "marker.txt").exists() == (_installer(machine) == "rattler")
    assert (machine.prefix / "conda-meta").is_dir() and _leftovers(machine) == []
    assert _files(machine) == files


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        # conda 26's `info --json` lists the envs: it is the engine's one listing query.
        ({"LOCKSTEP_STANDIN_FAIL": "info:1"}, "info --json` failed (exit 1"),
        ({"LOCKSTEP_STANDIN_HANG": "info", "LOCKSTEP_QUERY_TIMEOUT": "2"}, "did not answer"),
    ],
    ids=["listing-fails-once", "listing-hangs"],
)
def test_a_frontend_that_fails_to_list_touches_nothing(
    machine: Project, fault: dict[str, str], message: str
) -> None:
    env, files = _env(machine), _files(machine)
    proc = _start(machine, **fault)
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode != 0 and message in err, err
    assert _env(machine) == env and _files(machine) == files


def _release(project: Project, phase: str) -> None:
    if phase == "during-create" and _installer(project) == "frontend":
        (project.conda_root / "gate-create.release").touch()
    else:
        hold = {"during-create": "linking"}.get(phase, phase)
        (project.tmp / "gate" / f"{hold}.release").touch()


# Every frontend command the engine could run, counted by the stand-in (ROOT/.standin-calls)
# and failing only after a thousand calls: a count there means the frontend was reached.
COUNT_CALLS = {
    "LOCKSTEP_STANDIN_FAIL": ",".join(
        f"{c}:1000" for c in ("env-list", "info", "create", "env-create", "install", "list", "run")
    )
}


def _frontend_calls(project: Project) -> list[str]:
    calls = project.conda_root / ".standin-calls"
    return sorted(p.name for p in calls.iterdir()) if calls.is_dir() else []


@pytest.mark.parametrize("name", ["-n", "--force", "--name=x"])
def test_a_name_spelled_as_an_option_gets_the_one_refusal(machine: Project, name: str) -> None:
    env, files = _env(machine), _files(machine)
    done = subprocess.run(
        ["make", "--no-print-directory", "reproduce", f"ENV_NAME={name}"],
        cwd=machine.root,
        env={**machine.env, **COUNT_CALLS},
        capture_output=True,
        text=True,
    )
    assert done.returncode != 0
    assert done.stderr.splitlines()[0].startswith(f"error: invalid env name {name!r}: use letters")
    assert "usage:" not in done.stderr
    assert _frontend_calls(machine) == []
    assert _env(machine) == env and _files(machine) == files


UNSOLVABLE_END = (
    "error: conda-lock could not solve environment.yml (conda's reason is above; "
    "LOCKSTEP_VERBOSE=1 shows conda-lock's whole output); no lock file was changed"
)


@pytest.mark.parametrize("task", ["lock", "update"])
def test_an_unsolvable_spec_gives_the_solvers_reason_and_one_line(
    machine: Project, task: str
) -> None:
    set_pytorch_spec(machine, "9.9")
    env, files = _env(machine), _files(machine)
    done = machine.invoke(task, expect_rc=1)
    lines = done.stderr.rstrip().splitlines()
    assert lines[-1] == UNSOLVABLE_END, done.stderr
    # the stand-in's PackagesNotFoundInChannelsError message, as conda-lock relays conda's
    assert "  The following packages are not available from current channels:" in lines
    assert "    - pytorch 9.9.*" in lines
    assert "Traceback" not in done.stderr and "CalledProcessError" not in done.stderr
    assert len(lines) < 10, done.stderr
    assert _env(machine) == env and _files(machine) == files


def test_verbose_shows_conda_locks_whole_output(machine: Project) -> None:
    set_pytorch_spec(machine, "9.9")
    done = subprocess.run(
        [sys.executable, "-m", "invoke", "lock"],
        cwd=machine.root,
        env={**machine.env, "LOCKSTEP_VERBOSE": "1"},
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1
    assert "Traceback (most recent call last)" in done.stderr
    assert (
        done.stderr.strip()
        .splitlines()[-1]
        .endswith("(its output is above); no lock file was changed")
    )


def test_reproduce_says_each_phase_with_its_time(machine: Project) -> None:
    out = machine.make("reproduce").stdout
    phases = [ln.split(": ")[1] for ln in out.splitlines() if ln.endswith(" s") and ": " in ln]
    wanted = ["validate", "move aside", "install conda side", "install PyPI side", "commit"]
    assert [p for p in phases if p in wanted] == wanted, out


def test_two_runs_at_once(machine: Project) -> None:
    first = _held(machine, "during-create")
    second = machine.make("reproduce", expect_rc=None)
    assert "another reproduce/update/env-create of 'faulty' is running" in second.stderr
    _release(machine, "during-create")
    _out, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    assert matches_lock(machine) and _leftovers(machine) == []


@pytest.mark.parametrize("machine", ["rattler"], indirect=True)  # the one that changes in place
def test_a_run_that_ends_while_another_plans_makes_it_read_the_env_again(
    machine: Project,
) -> None:
    """The first run plans a change in place (the env is an older lock's) and waits before the
    env's lock; a second one brings the env to the lock and ends. The first, let go, finds the
    records moved since it read them, touches nothing, reads the env again: nothing to do."""
    gate = machine.tmp / "gate"
    gate.mkdir(exist_ok=True)
    first = _start(machine, LOCKSTEP_ENGINE_HOLD=f"planned:{gate}")
    _wait_for(gate / "planned.reached", first)
    machine.make("reproduce")
    changed = _env(machine)
    (gate / "planned.release").touch()
    out, err = first.communicate(timeout=120)
    assert first.returncode == 0, out + err
    assert "'faulty' changed while this run was reading it" in out + err
    assert "reading it again" in out + err and "nothing to do" in out, out + err
    assert _env(machine) == changed and matches_lock(machine) and _leftovers(machine) == []


@pytest.mark.parametrize("machine", ["rattler"], indirect=True)
def test_a_remembered_prefix_is_only_a_hint(machine: Project) -> None:
    """The engine reads the env at the prefix the frontend gave last time while it answers. A
    remembered prefix that is now wrong (pointing at a copy of the env that matches the lock)
    never stands for the answer: the env is built where the frontend says, the copy untouched."""
    machine.make("reproduce")
    remembered = Path(machine.env["XDG_CACHE_HOME"], "lockstep", "env-prefixes.json")
    known = json.loads(remembered.read_text(encoding="utf-8"))
    assert list(known.values()) == [str(machine.prefix)]
    decoy = machine.tmp / "a copy of the env"
    shutil.copytree(machine.prefix, decoy, symlinks=True)
    before = file_hashes(decoy, skip=["__pycache__"])
    remembered.write_text(json.dumps({k: str(decoy) for k in known}), encoding="utf-8")
    shutil.rmtree(machine.prefix)

    out = machine.make("reproduce").stdout
    assert "nothing to do" not in out and matches_lock(machine), out
    assert file_hashes(decoy, skip=["__pycache__"]) == before
    assert list(json.loads(remembered.read_text()).values()) == [str(machine.prefix)]


@pytest.mark.parametrize("installer", INSTALLERS)
@pytest.mark.parametrize("full", ["before-the-run", "while-building"])
def test_a_full_disk_where_the_env_lives_gives_the_old_env_back(
    tmp_path: Path, locked: Project, standin_bin: Path, installer: str, full: str
) -> None:
    """The conda root (envs, package cache, the engine's journal) on a small tmpfs that fills up
    for real, before the run or once the old env is moved aside or snapshotted: the journal or
    the install hits ENOSPC, and the run ends with the reason and the old env as it was, though
    nothing more can be written there."""
    from tests.unit.fsfaults import fill, tmpfs

    with tmpfs(tmp_path / "small disk", "512m") as disk:
        project = locked.copy(tmp_path / "my project", disk / "conda state", standin_bin)
        project.use_installer(installer)
        reproduce_an_older_lock(project)
        (project.prefix / "marker.txt").write_text(MARKER)
        env, files = _env(project), _files(project)
        gate = project.tmp / "gate"
        gate.mkdir(exist_ok=True)
        if full == "before-the-run":
            filler = fill(disk)
            proc = _start(project)
        else:
            proc = _start(project, LOCKSTEP_ENGINE_HOLD=f"building:{gate}")
            _wait_for(gate / "building.reached", proc)
            filler = fill(disk)
            (gate / "building.release").touch()
        out, err = proc.communicate(timeout=120)
        filler.unlink()
        assert proc.returncode != 0, out + err
        if full == "before-the-run":  # the journal is the first write
            assert "no space left writing" in err and "found nothing to undo" in err, err
        else:
            assert "No space left on device" in err and "every file is as it was" in err, err
        assert "Traceback" not in err
        assert _env(project) == env and _files(project) == files and _leftovers(project) == []
        project.make("reproduce")
        assert matches_lock(project) and _leftovers(project) == []


@pytest.mark.parametrize("installer", INSTALLERS)
@pytest.mark.parametrize("failing_write", [1, 2, 3])
def test_update_fails_at_each_write_and_keeps_env_and_files(
    tmp_path: Path, locked: Project, standin_bin: Path, failing_write: int, installer: str
) -> None:
    """update's three files go with the env (the engine is handed them, as `invoke update`
    does). The project sits on a small tmpfs with room for only ``failing_write - 1`` of the new
    files: the write after them hits a real ENOSPC, and everything goes back."""
    from tests.unit.fsfaults import fill, tmpfs

    with tmpfs(tmp_path / "small disk", "4m") as disk:
        project = locked.copy(disk / "my project", tmp_path / "conda state", standin_bin)
        project.use_installer(installer)
        project.make("reproduce")
        (project.prefix / "marker.txt").write_text(MARKER)
        scratch = tmp_path / "new locks"
        scratch.mkdir()
        names = ["conda-linux-64.lock", "pyproject.toml", "poetry.lock"]
        engine = ["sh", "tooling/scripts/env-engine.sh", "reproduce", "--name", project.env_name]
        for name, option in zip(
            names, ["--conda-lock", "--pyproject", "--poetry-lock"], strict=True
        ):
            (scratch / name).write_bytes((project.root / name).read_bytes() + b"# new\n")
            engine += [option, str(scratch / name)]
        for name in names:
            engine += ["--commit", f"{project.root / name}={scratch / name}"]
        env, files = _env(project), _files(project)
        filler = fill(disk)
        # Each new file is smaller than a page: free one page per write that should succeed.
        os.truncate(filler, filler.stat().st_size - 4096 * (failing_write - 1))
        files = _files(project)
        done = subprocess.run(
            engine, cwd=project.root, env=project.env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 1, done.stdout + done.stderr
        assert "no space left" in done.stderr, done.stderr
        assert "put the previous env back" in done.stderr
        assert _env(project) == env and _files(project) == files
        assert _leftovers(project) == []


def test_env_create_on_conda_26_7_without_a_gpu(machine: Project) -> None:
    """conda 26.7 passes `nodefaults` to the solver from `env create` (the stand-in does as 26.7
    does), and a machine without a driver has no __cuda: env-create solves the specs itself with
    the channels minus nodefaults and __cuda from virtual-packages.yml."""
    env = {k: v for k, v in machine.env.items() if k != "CONDA_OVERRIDE_CUDA"}
    env["LOCKSTEP_STANDIN_CONDA_VERSION"] = "26.7.1"
    # The control: what env-create used to run fails on this conda.
    old = subprocess.run(
        ["conda", "env", "create", "--yes", "--name", "control", "--file", "environment.yml"],
        cwd=machine.root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert old.returncode != 0 and "nodefaults" in old.stdout + old.stderr
    # The other control: the same solve without virtual-packages.yml's __cuda finds no pytorch
    # CUDA build (it depends on __cuda) on this machine, which has no GPU.
    bare = subprocess.run(
        [
            sys.executable,
            "-m",
            ENGINE_MODULE,
            "create",
            "--project-dir",
            str(machine.root),
            "--name",
            "control",
            "--channel",
            next(iter(_channels(machine))),
            "--spec",
            "python=3.11",
            "--spec",
            "pytorch=2.5",
        ],
        cwd=machine.root,
        env={**env, "PYTHONPATH": str(machine.root / "tooling" / "src")},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bare.returncode == 1 and "the spec cannot be solved" in bare.stderr, bare.stderr
    done = subprocess.run(
        [sys.executable, "-m", "invoke", "env-create", "--force"],
        cwd=machine.root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert not (machine.prefix / "marker.txt").exists()
    names = {p.name.rsplit("-", 2)[0] for p in (machine.prefix / "conda-meta").glob("*.json")}
    assert {"python", "pytorch", "cuda-version"} <= names


def _channels(project: Project) -> list[str]:
    text = project.environment_yml.read_text()
    block = text.split("channels:\n", 1)[1].split("\n# ", 1)[0]
    return [ln.strip()[2:] for ln in block.splitlines() if ln.strip().startswith("- ")]


@pytest.mark.parametrize("installer", INSTALLERS)
def test_reproduce_refuses_a_tampered_channel_archive(
    tmp_path: Path, locked: Project, standin_bin: Path, installer: str
) -> None:
    """conda copies a file:// archive unchecked (and records the lock's md5 as if it matched):
    the engine checks every local archive against the lock before anything is touched."""
    project = locked.copy(tmp_path / "my project", tmp_path / "conda state", standin_bin)
    project.use_installer(installer)
    reproduce_an_older_lock(project)
    (project.prefix / "marker.txt").write_text(MARKER)
    env, files = _env(project), _files(project)
    # A new env reads every archive; a change in place only those of what changes (filelock).
    package = "pytorch" if installer == "frontend" else "filelock"
    url = next(ln for ln in project.lock.read_text().splitlines() if f"/{package}-" in ln)
    archive = Path(unquote(urlsplit(url.partition("#")[0]).path))
    original = archive.read_bytes()
    try:
        archive.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))  # one bit, same size
        done = project.make("reproduce", expect_rc=None)
    finally:
        archive.write_bytes(original)
    assert f"archive does not match the lock: {package}-" in done.stderr, done.stderr
    assert _env(project) == env and _files(project) == files
