"""The env engine under faults: every interruption, failure and bad input leaves the old env and
every project file as they were. A fake frontend that fails like real conda
(tests/unit/fakeconda.py) stands in for conda; the engine, its signals and its files are real.

Each case checks the old env by a marker file in it plus its conda-meta listing, and the project
by the bytes of every file.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from tests.paths import PROJECT, SRC, TOOLING
from tests.testdata import explicit_lock_text
from tests.unit.fakeconda import write_fake

from lockstep.core import commands

ROOT = PROJECT
pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the engine tests run on Linux")

PYPROJECT = """\
[project]
name = "demo"
version = "0.1.0"
requires-python = ">=3.11,<3.12"
dependencies = []

[tool.poetry]
package-mode = false

# As the repository's poetry.lock has it (invoke is locked in its dev group).
[tool.poetry.group.dev.dependencies]
invoke = "^3.0"

[tool.lockstep]
env-name = "ml"
# The fake conda's archives are not conda packages: these tests are the frontend path's.
installer = "frontend"
"""
MARKER = "user data in the old env"


@dataclass
class Setup:
    """A project folder with both locks, a fake conda, and the environment to run in."""

    root: Path
    project: Path
    env: dict[str, str] = field(default_factory=dict)

    @property
    def envs_dir(self) -> Path:
        return Path(self.env["FAKE_ENVS_DIR"])

    @property
    def prefix(self) -> Path:
        return self.envs_dir / "ml"

    @property
    def lock(self) -> Path:
        return self.project / "conda-linux-64.lock"

    def calls(self) -> list[list[str]]:
        log = self.root / "calls.jsonl"
        return [json.loads(x) for x in log.read_text().splitlines()] if log.exists() else []

    def command(self, *extra: str, action: str = "reproduce", fake: bool = True) -> list[str]:
        """The engine as tasks.py runs it (commands.engine), with the fake conda named."""
        frontend = ["--frontend", str(self.root / "bin" / "conda")] if fake else []
        return commands.engine(sys.executable, action, str(self.project), *frontend, *extra)

    def run(
        self, *extra: str, action: str = "reproduce", **env: str
    ) -> subprocess.CompletedProcess:
        return subprocess.run(
            self.command(*extra, action=action),
            env={**self.env, **env},
            capture_output=True,
            text=True,
            timeout=60,
        )

    def start(self, *extra: str, **env: str) -> subprocess.Popen:
        """The engine in a session of its own, so a signal can go to its whole group."""
        return subprocess.Popen(
            self.command(*extra),
            env={**self.env, **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )

    def old_env(self) -> dict[str, str]:
        """An existing env with a marker; returns its snapshot."""
        (self.prefix / "conda-meta").mkdir(parents=True)
        (self.prefix / "conda-meta" / "old-1-0.json").write_text('{"name": "old"}')
        (self.prefix / "precious.txt").write_text(MARKER)
        return self.env_snapshot()

    def env_snapshot(self) -> dict[str, str]:
        return _tree(self.prefix)

    def project_snapshot(self) -> dict[str, str]:
        return _tree(self.project)

    def leftovers(self) -> list[str]:
        """What the engine left beside the env: only its (empty) lock file may stay."""
        state = self.envs_dir / ".ml.lockstep"
        found = sorted(p.name for p in state.iterdir()) if state.exists() else []
        legacy = [p.name for p in self.envs_dir.glob("*.lockstep-backup")]
        return [n for n in found if n != "lock"] + legacy


def _tree(root: Path) -> dict[str, str]:
    if not root.exists():
        return {}
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    }


def _channel(root: Path, names: list[str]) -> list[str]:
    """Archives in a local file:// channel and their lock lines (md5 of the real bytes)."""
    urls = []
    for name in names:
        version = "3.11.9" if name == "python" else "1.0"
        archive = root / "channel" / "linux-64" / f"{name}-{version}-0.tar.bz2"
        archive.parent.mkdir(parents=True, exist_ok=True)
        archive.write_bytes(f"archive of {name}".encode())
        urls.append(f"{archive.as_uri()}#{hashlib.md5(archive.read_bytes()).hexdigest()}")
    return urls


@pytest.fixture
def setup(tmp_path: Path) -> Setup:
    root = tmp_path / "work dir"
    project = root / "my project"
    project.mkdir(parents=True)
    write_fake(root / "bin")
    (project / "pyproject.toml").write_text(PYPROJECT)
    shutil.copy(TOOLING / "poetry.lock", project / "poetry.lock")
    urls = _channel(root, ["python", "pytorch", "filelock", "zlib"])
    (project / "conda-linux-64.lock").write_text(explicit_lock_text("linux-64", "0" * 64, urls))
    env = {
        "PATH": f"{root / 'bin'}:/usr/bin:/bin",
        "HOME": str(root),
        "FAKE_ROOT": str(root),
        "FAKE_ENVS_DIR": str(root / "conda root" / "envs"),
        "PYTHONPATH": str(SRC),
        "LOCKSTEP_QUERY_TIMEOUT": "20",
    }
    return Setup(root, project, env)


def _ok(done: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert done.returncode == 0, f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    return done


def _one_line_error(done: subprocess.CompletedProcess, expected_rc: int = 1) -> str:
    assert done.returncode == expected_rc, done.stdout + done.stderr
    # The tool's own reason may stand above; ours is one line, the last.
    lines = [x for x in done.stderr.splitlines() if x.startswith("error: ")]
    assert len(lines) == 1 and done.stderr.rstrip().endswith(lines[0]), done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    return lines[0]


def _wait_for(path: Path, proc: subprocess.Popen, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"the engine ended (rc {proc.returncode}) before {path.name}:\n{out}{err}")
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)


# ----------------------------------------------------------------------------- the happy paths


def test_fresh_env_exact_frontend_calls(setup: Setup) -> None:
    done = _ok(setup.run())
    fe = str(setup.root / "bin" / "conda")
    calls = setup.calls()
    assert calls[:1] == [["info", "--json"]]  # conda's info lists the envs too: one start-up
    assert (setup.root / "info-cuda-override").read_text() == ""  # no CUDA detection for it
    assert calls[1:] == [
        ["create", "--yes", "--prefix", str(setup.prefix), "--file", str(setup.lock)]
    ]
    state = json.loads((setup.prefix / "conda-meta" / "state").read_text())
    assert state == {"env_vars": {"PYTHONNOUSERSITE": "1"}}
    pip = (setup.root / "pip-calls").read_text().split()
    assert pip[:5] == ["-m", "pip", "install", "--no-deps", "--require-hashes"]
    assert done.stdout.splitlines()[-1] == (
        f"lockstep: 'ml' at {setup.prefix} matches conda-linux-64.lock and poetry.lock"
    )
    assert f"+ {fe} create" in done.stdout.replace("'", "")
    assert setup.leftovers() == []


def _as_planned(setup: Setup) -> list[Path]:
    """Make the fake's env what a real install leaves: conda-meta/history (conda's mark of an
    env) and a dist-info of each distribution the PyPI side plans (the fake pip installs none)."""
    from lockstep.core import condameta, engine
    from lockstep.core.plan import lock_environment

    (setup.prefix / "conda-meta" / "history").write_text("")
    side = engine.read_poetry_side(
        setup.project / "pyproject.toml", setup.project / "poetry.lock", "conda"
    )
    records = condameta.read_conda_meta(setup.prefix)
    environment = lock_environment("linux-64", condameta.python_version(records))
    plan = side.plan(list(condameta.provided_distributions(records.values())), environment)
    site = setup.prefix / "lib" / "python3.11" / "site-packages"
    folders = [site / f"{p.name.replace('-', '_')}-{p.version}.dist-info" for p in plan.install]
    for folder in folders:
        folder.mkdir(parents=True)
    assert folders
    return folders


def test_an_env_that_matches_both_locks_is_left_alone(setup: Setup) -> None:
    _ok(setup.run())
    folders = _as_planned(setup)
    before, calls = setup.env_snapshot(), len(setup.calls())
    state = setup.envs_dir / ".ml.lockstep"
    lock_before = (state / "lock").stat()
    done = _ok(setup.run())
    assert done.stdout.splitlines() == [
        f"lockstep: 'ml' at {setup.prefix} already matches conda-linux-64.lock and poetry.lock; "
        "nothing to do"
    ]
    assert setup.calls()[calls:] == [["info", "--json"]]  # the listing only
    assert setup.env_snapshot() == before and setup.leftovers() == []
    assert (state / "lock").stat().st_mtime_ns == lock_before.st_mtime_ns
    # One distribution at another version: not a match, so the env is rebuilt.
    folders[0].rename(folders[0].with_name(folders[0].name.replace("-", "-0", 1)))
    done = _ok(setup.run())
    assert "nothing to do" not in done.stdout and "create" in [c[0] for c in setup.calls()[calls:]]


def test_a_run_under_way_is_not_taken_for_a_match(setup: Setup) -> None:
    """An interrupted run's journal means the env is not what it looks like: recover, rebuild."""
    _ok(setup.run())
    _as_planned(setup)
    journal = setup.envs_dir / ".ml.lockstep" / "journal.json"
    journal.write_text(
        json.dumps({"version": 1, "prefix": str(setup.prefix), "phase": "committed"})
    )
    done = _ok(setup.run())
    assert "nothing to do" not in done.stdout
    assert "an earlier run of 'ml' was interrupted" in done.stdout


def test_existing_env_is_replaced_only_when_the_new_one_is_complete(setup: Setup) -> None:
    setup.old_env()
    _ok(setup.run())
    assert not (setup.prefix / "precious.txt").exists()
    assert (setup.prefix / "bin" / "python").exists()
    assert setup.leftovers() == []


def test_force_deletes_the_old_env_first(setup: Setup) -> None:
    setup.old_env()
    done = _ok(setup.run("--force"))
    assert "--force: deleting the current 'ml' first" in done.stdout
    assert not (setup.prefix / "precious.txt").exists()


def test_crlf_lock_installs(setup: Setup) -> None:
    setup.lock.write_bytes(setup.lock.read_bytes().replace(b"\n", b"\r\n"))
    _ok(setup.run())


def test_prefix_env_named_like_the_env_is_not_taken_for_it(setup: Setup) -> None:
    other = setup.root / "other" / "ml"
    (other / "conda-meta").mkdir(parents=True)
    (other / "precious.txt").write_text(MARKER)
    (setup.root / "environments.txt").write_text(f"{other}\n")
    _ok(setup.run())
    assert (other / "precious.txt").read_text() == MARKER
    assert (setup.prefix / "bin" / "python").exists()


@pytest.mark.parametrize(
    ("extra", "listing"),
    [
        ({"FAKE_NO_DETAILS": "1"}, [["info", "--json"]]),
        ({"FAKE_INFO_NO_ENVS": "1"}, [["info", "--json"], ["env", "list", "--json"]]),
        ({"FAKE_KIND": "micromamba"}, [["info", "--json"], ["env", "list", "--json"]]),
    ],
    ids=["conda-25-no-details", "info-without-envs", "micromamba-info"],
)
def test_other_frontends_json(setup: Setup, extra: dict, listing: list) -> None:
    before = setup.old_env()
    _ok(setup.run(**extra))
    assert setup.env_snapshot() != before and setup.leftovers() == []
    assert setup.calls()[: len(listing)] == listing


# ----------------------------------------------------------------------------- fail closed


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        (
            {"FAKE_FAIL": "env-list:1", "FAKE_INFO_NO_ENVS": "1"},
            "`conda env list` failed (exit 1: CondaError: fake env-list",
        ),
        (
            {"FAKE_FAIL": "info:1"},
            "`conda info --json` failed (exit 1: CondaError: fake info failure)",
        ),
        (
            {"FAKE_HANG": "env-list", "FAKE_INFO_NO_ENVS": "1", "LOCKSTEP_QUERY_TIMEOUT": "1"},
            "`conda env list` did not answer in 1 s",
        ),
        (
            {"FAKE_HANG": "info", "LOCKSTEP_QUERY_TIMEOUT": "1"},
            "`conda info --json` did not answer in 1 s",
        ),
    ],
    ids=["listing-fails-once", "info-fails", "listing-hangs", "info-hangs"],
)
def test_a_listing_that_fails_touches_nothing(setup: Setup, fault: dict, message: str) -> None:
    before, files = setup.old_env(), setup.project_snapshot()
    line = _one_line_error(setup.run(**fault))
    assert message in line.replace(str(setup.root / "bin") + "/", "")
    assert "nothing was changed" in line
    assert setup.env_snapshot() == before and setup.project_snapshot() == files
    assert not any(c[0] == "create" for c in setup.calls())


@pytest.mark.parametrize(
    "name", ["..", ".", "-n", "--force", "x" * 65, "base", "my env", "a;rm -rf"]
)
def test_unsafe_names_are_refused_before_anything_runs(setup: Setup, name: str) -> None:
    line = _one_line_error(setup.run(f"--name={name}"))
    assert "invalid env name" in line
    assert setup.calls() == []


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (
            lambda s: (s.project / "poetry.lock").write_text("[[package]\n"),
            "poetry.lock: invalid TOML",
        ),
        (
            lambda s: (s.project / "pyproject.toml").write_text("[project\n"),
            "pyproject.toml: invalid TOML",
        ),
        (
            lambda s: (s.project / "pyproject.toml").write_text(
                PYPROJECT.replace("dependencies = []", 'dependencies = ["not-in-the-lock"]')
            ),
            "not-in-the-lock is a dependency",
        ),
        (
            lambda s: s.lock.write_text(s.lock.read_text().replace("linux-64\n", "osx-arm64\n", 1)),
            "lock is for platform 'osx-arm64', this machine is 'linux-64'",
        ),
        (lambda s: s.lock.write_text("version: 1\n"), "not an explicit lock"),
    ],
    ids=["poetry-lock", "pyproject", "plan", "platform", "not-explicit"],
)
def test_bad_input_is_found_before_the_env_is_touched(setup: Setup, damage, message) -> None:
    before = setup.old_env()
    damage(setup)
    files = setup.project_snapshot()
    line = _one_line_error(setup.run())
    assert message in line
    assert setup.calls() == [] and setup.env_snapshot() == before
    assert setup.project_snapshot() == files


def test_a_tampered_local_archive_is_refused(setup: Setup) -> None:
    before = setup.old_env()
    archive = next((setup.root / "channel" / "linux-64").glob("pytorch-*"))
    archive.write_bytes(b"archive of pytorcX")  # same size, other bytes
    line = _one_line_error(setup.run())
    assert "pytorch-1.0-0.tar.bz2: md5" in line and "differs from the lock's" in line
    # Hashing overlaps the read-only listing; no command that changes anything ran.
    assert setup.calls() == [["info", "--json"]] and setup.env_snapshot() == before


def test_a_mirror_installs_a_checked_copy_and_leaves_the_lock_alone(setup: Setup) -> None:
    mirror = setup.root / "mirror copy"
    shutil.copytree(setup.root / "channel", mirror / "channel")
    lock_text = setup.lock.read_text()
    done = _ok(setup.run(LOCKSTEP_CONDA_MIRROR=mirror.as_uri(), TMPDIR=str(setup.root)))
    assert "lockstep: 4 package URLs of conda-linux-64.lock from others under" in done.stdout
    create = next(c for c in setup.calls() if c[0] == "create")
    installed = Path(create[create.index("--file") + 1])
    assert installed != setup.lock and not installed.exists()  # a temporary copy, removed
    urls = [json.loads(p.read_text())["url"] for p in (setup.prefix / "conda-meta").glob("*.json")]
    assert len(urls) == 4 and all(u.startswith(mirror.as_uri() + "/channel/") for u in urls)
    assert setup.lock.read_text() == lock_text


@pytest.mark.parametrize("fault", ["not-a-url", "tampered-copy"])
def test_a_bad_mirror_is_refused_before_anything(setup: Setup, fault: str) -> None:
    before = setup.old_env()
    mirror = setup.root / "mirror"
    shutil.copytree(setup.root / "channel", mirror / "channel")
    next((mirror / "channel" / "linux-64").glob("zlib-*")).write_bytes(b"evil")
    url = "not-a-url" if fault == "not-a-url" else mirror.as_uri()
    line = _one_line_error(setup.run(LOCKSTEP_CONDA_MIRROR=url))
    assert ("is not an absolute URL" if fault == "not-a-url" else "zlib-1.0-0.tar.bz2: md5") in line
    assert not any(c[0] == "create" for c in setup.calls()) and setup.env_snapshot() == before


def test_no_frontend_is_said_before_anything_else(setup: Setup) -> None:
    setup.lock.unlink()  # not even the first-run path starts without a frontend
    env = {**setup.env, "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        setup.command(fake=False), env=env, capture_output=True, text=True, timeout=60
    )
    assert "no conda, mamba or micromamba on PATH" in _one_line_error(done)


def test_missing_lock(setup: Setup) -> None:
    setup.lock.unlink()
    done = setup.run()
    assert done.returncode == 3 and "no conda-linux-64.lock yet" in done.stdout
    line = _one_line_error(setup.run("--locked"))
    assert "--locked (LOCKED=1) forbids making it" in line
    assert setup.calls() == []


# ----------------------------------------------------------------------------- failures mid-way


@pytest.mark.parametrize("where", ["create", "pip"])
def test_a_failure_puts_the_old_env_back(setup: Setup, where: str) -> None:
    before, files = setup.old_env(), setup.project_snapshot()
    extra: dict[str, str] = {}
    if where == "create":
        urls = _channel(setup.root, ["python", "FAIL_CREATE"])
        setup.lock.write_text(explicit_lock_text("linux-64", "0" * 64, urls))
        files = setup.project_snapshot()
    else:
        extra = {"FAKE_PIP": "fail"}
    line = _one_line_error(setup.run(**extra))
    tool = "conda create --yes --prefix" if where == "create" else "python -m pip install"
    assert f"`{tool}` failed (exit 1; its reason is above); put the previous env back at" in line
    assert setup.env_snapshot() == before and setup.project_snapshot() == files
    assert setup.leftovers() == []


# ----------------------------------------------------------------------------- signals

# phase -> how to stop the engine there, and the file that says it is there
PHASES: dict[str, tuple[dict[str, str], str]] = {
    "after-the-move": ({"LOCKSTEP_ENGINE_HOLD": "building:{root}"}, "building.reached"),
    "during-create": ({"FAKE_GATE": "create"}, "gate.reached"),
    "during-pypi": ({"FAKE_PIP": "gate"}, "pip.reached"),
    "during-the-swap": ({"LOCKSTEP_ENGINE_HOLD": "committing:{root}"}, "committing.reached"),
}
SIGNALS = [signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT]


def _held(setup: Setup, phase: str, *extra: str) -> subprocess.Popen:
    hold, reached = PHASES[phase]
    env = {k: v.format(root=setup.root) for k, v in hold.items()}
    proc = setup.start(*extra, **env)
    _wait_for(setup.root / reached, proc)
    return proc


@pytest.mark.parametrize("phase", list(PHASES))
@pytest.mark.parametrize("signum", SIGNALS, ids=[s.name for s in SIGNALS])
def test_a_signal_in_any_phase_restores_everything(setup: Setup, phase: str, signum) -> None:
    before, files = setup.old_env(), setup.project_snapshot()
    proc = _held(setup, phase)
    os.killpg(proc.pid, signum)  # a closed terminal or a job's end reaches the whole group
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signum, err
    assert f"interrupted by {signum.name}; put the previous env back" in err
    assert setup.env_snapshot() == before and setup.project_snapshot() == files
    assert setup.leftovers() == []


def test_term_to_the_engine_alone_stops_the_frontend_too(setup: Setup) -> None:
    before = setup.old_env()
    proc = _held(setup, "during-create")
    fake_pid = int((setup.root / "gate.reached").read_text())
    os.kill(proc.pid, signal.SIGTERM)
    proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM
    assert not Path(f"/proc/{fake_pid}").exists() or _zombie(fake_pid)
    assert setup.env_snapshot() == before


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    except OSError:
        return True


@pytest.mark.parametrize("phase", list(PHASES))
def test_after_sigkill_the_next_run_recovers_by_itself(setup: Setup, phase: str) -> None:
    before = setup.old_env()
    proc = _held(setup, phase)
    os.killpg(proc.pid, signal.SIGKILL)  # the frontend dies with it, as on power loss
    proc.communicate(timeout=60)
    assert setup.env_snapshot() != before or phase == "after-the-move"
    done = _ok(setup.run("--locked"))
    assert (
        "lockstep: an earlier run of 'ml' was interrupted; put the previous env back" in done.stdout
    )
    assert (setup.prefix / "bin" / "python").exists() and setup.leftovers() == []


def test_after_sigkill_a_recover_alone_brings_the_old_env_back(setup: Setup) -> None:
    before = setup.old_env()
    proc = _held(setup, "during-pypi")
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=60)
    _ok(setup.run(action="recover"))
    assert setup.env_snapshot() == before and setup.leftovers() == []


def test_an_orphaned_frontend_keeps_the_env_locked(setup: Setup) -> None:
    before = setup.old_env()
    proc = _held(setup, "during-create")
    os.kill(proc.pid, signal.SIGKILL)  # the engine only: conda runs on, holding the lock
    proc.wait(timeout=60)  # (its output pipes stay open while the orphan runs)
    line = _one_line_error(setup.run())
    assert "another reproduce/update/env-create of 'ml' is running" in line
    (setup.root / "gate.release").touch()
    deadline = time.monotonic() + 30
    while (setup.prefix / "bin" / "python").exists() is False and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    _ok(setup.run(action="recover"))
    assert setup.env_snapshot() == before


def test_two_runs_at_once(setup: Setup) -> None:
    setup.old_env()
    first = _held(setup, "during-create")
    second = setup.run()
    line = _one_line_error(second)
    assert "another reproduce/update/env-create of 'ml' is running (pid " in line
    (setup.root / "gate.release").touch()
    out, err = first.communicate(timeout=60)
    assert first.returncode == 0, err
    assert (setup.prefix / "bin" / "python").exists() and setup.leftovers() == []


def test_a_backup_left_by_the_old_script_comes_back(setup: Setup) -> None:
    before = setup.old_env()
    setup.prefix.rename(setup.envs_dir / "ml.lockstep-backup")
    # Restored first; the rebuild then fails, and the old env is kept where it belongs.
    done = setup.run(FAKE_PIP="fail")
    assert done.returncode == 1
    assert "put the env an interrupted run had left at" in done.stdout
    assert setup.env_snapshot() == before and setup.leftovers() == []


def test_a_backup_beside_an_env_is_never_overwritten(setup: Setup) -> None:
    setup.old_env()
    legacy = setup.envs_dir / "ml.lockstep-backup"
    (legacy / "conda-meta").mkdir(parents=True)
    (legacy / "precious.txt").write_text("older")
    line = _one_line_error(setup.run())
    assert "both exist; look at both" in line
    assert (legacy / "precious.txt").read_text() == "older"
    assert (setup.prefix / "precious.txt").read_text() == MARKER


# ----------------------------------------------------------------------------- update's files


def _new_files(setup: Setup) -> list[str]:
    scratch = setup.root / "scratch"
    scratch.mkdir()
    pairs = []
    for name in ("conda-linux-64.lock", "pyproject.toml", "poetry.lock"):
        (scratch / name).write_text((setup.project / name).read_text() + "\n# new\n")
        pairs += ["--commit", f"{setup.project / name}={scratch / name}"]
    return pairs


def test_update_writes_the_files_with_the_env(setup: Setup) -> None:
    setup.old_env()
    _ok(setup.run(*_new_files(setup)))
    for name in ("conda-linux-64.lock", "pyproject.toml", "poetry.lock"):
        assert (setup.project / name).read_text().endswith("# new\n")


@pytest.mark.parametrize("fault", ["pip-fails", "sigterm-in-swap", "read-only-file"])
def test_update_keeps_env_and_files_together(setup: Setup, fault: str) -> None:
    before, files = setup.old_env(), setup.project_snapshot()
    pairs = _new_files(setup)
    if fault == "pip-fails":
        assert setup.run(*pairs, FAKE_PIP="fail").returncode == 1
    elif fault == "read-only-file":
        (setup.project / "poetry.lock").chmod(0o444)
        line = _one_line_error(setup.run(*pairs))
        assert "cannot write" in line and "poetry.lock: permission denied" in line
        assert setup.calls() == []
    else:
        proc = _held(setup, "during-the-swap", *pairs)
        os.killpg(proc.pid, signal.SIGTERM)
        proc.communicate(timeout=60)
        assert proc.returncode == 128 + signal.SIGTERM
    assert setup.env_snapshot() == before and setup.project_snapshot() == files


def test_update_killed_while_writing_files_is_undone_by_the_next_run(setup: Setup) -> None:
    before, files = setup.old_env(), setup.project_snapshot()
    proc = _held(setup, "during-the-swap", *_new_files(setup))
    state = setup.envs_dir / ".ml.lockstep"
    # Where a kill half-way through the writes leaves things: the originals saved and journaled,
    # one file already new, the journal not committed.
    saved = state / "previous-files" / "0-poetry.lock"
    saved.parent.mkdir()
    shutil.copyfile(setup.project / "poetry.lock", saved)
    journal = json.loads((state / "journal.json").read_text())
    journal["files"] = [
        {"dest": str(setup.project / "poetry.lock"), "saved": str(saved), "existed": True}
    ]
    (state / "journal.json").write_text(json.dumps(journal))
    (setup.project / "poetry.lock").write_text("half-written")
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=60)
    done = _ok(setup.run(action="recover"))
    assert "an earlier run of 'ml' was interrupted; put the previous env back" in done.stdout
    assert setup.env_snapshot() == before and setup.project_snapshot() == files
    assert setup.leftovers() == []


# ----------------------------------------------------------------------------- env-create


def _create(setup: Setup, *extra: str, **env: str) -> subprocess.CompletedProcess:
    args = [
        "--name",
        "ml",
        "--channel",
        "conda-forge",
        "--channel",
        "nodefaults",
        "--spec",
        "python=3.11",
        "--spec",
        "pytorch=*=cuda*",
        "--virtual",
        "__cuda=12.9",
        *extra,
    ]
    return setup.run(*args, action="create", **env)


def test_env_create_solves_without_nodefaults_first(setup: Setup) -> None:
    _ok(_create(setup))
    creates = [c for c in setup.calls() if c[0] == "create"]
    dry, real = creates
    assert "--dry-run" in dry and "nodefaults" not in dry and "nodefaults" not in real
    assert real == [
        "create",
        "--yes",
        "--prefix",
        str(setup.prefix),
        "--override-channels",
        "--channel",
        "conda-forge",
        "python=3.11",
        "pytorch=*=cuda*",
    ]


def test_env_create_refuses_an_existing_env_without_force(setup: Setup) -> None:
    before = setup.old_env()
    line = _one_line_error(_create(setup))
    assert "env 'ml' already exists" in line and setup.env_snapshot() == before


def test_env_create_force_keeps_the_env_when_the_solve_fails(setup: Setup) -> None:
    before = setup.old_env()
    line = _one_line_error(_create(setup, "--force", "--spec", "unsolvable"))
    assert "the spec cannot be solved: PackagesNotFoundError" in line
    assert setup.env_snapshot() == before and setup.leftovers() == []


def test_env_create_force_replaces_when_it_solves(setup: Setup) -> None:
    setup.old_env()
    _ok(_create(setup, "--force"))
    assert not (setup.prefix / "precious.txt").exists()


@pytest.mark.parametrize("edited", [False, True], ids=["fresh", "spec-edited-after-the-lock"])
def test_the_stale_lock_warning_compares_conda_locks_input_hash(
    tmp_path: Path, edited: bool
) -> None:
    """reproduce warns (and installs as locked) when environment.yml changed after the lock."""
    from lockstep.core import condalockhash, engine
    from lockstep.core.explicit import parse_explicit
    from lockstep.core.settings import Settings

    env_text = "channels:\n  - conda-forge\ndependencies:\n  - python=3.11\n  - numpy>=2\n"
    vp_text = "subdirs:\n  linux-64:\n    packages:\n      __glibc: '2.28'\n      __cuda: '12.9'\n"
    locked = condalockhash.fast_input_hash(env_text, vp_text, "linux-64")
    (tmp_path / "environment.yml").write_text(env_text + ("  - scipy\n" if edited else ""))
    (tmp_path / "virtual-packages.yml").write_text(vp_text)
    lock = parse_explicit(f"# platform: linux-64\n# input_hash: {locked}\n@EXPLICIT\n")
    assert engine._conda_lock_is_stale(tmp_path, Settings(), lock) is edited


def test_the_engine_says_each_phase_with_its_time(capsys) -> None:
    from lockstep.core.engine import PhaseClock

    times = iter([10.0, 10.4, 12.0, 15.25])
    phases = PhaseClock(clock=lambda: next(times))
    for phase in ("validate", "move aside", "install conda side"):
        phases.done(phase)
    assert capsys.readouterr().out.splitlines() == [
        "lockstep: validate: 0.4 s",
        "lockstep: move aside: 1.6 s",
        "lockstep: install conda side: 3.2 s",
    ]
