"""scripts/reproduce.sh with a fake frontend on PATH: the old env survives every failure.

The fake records its calls and builds an env folder whose bin/python is the host interpreter;
the real frontends run in tests/integration.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from tests.conftest import generated_lock_text, realistic_packages

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "reproduce.sh"

FAKE_CONDA = f"""#!{sys.executable}
# Test double of a conda frontend: env list, create --file, env remove. Records every call.
import json, os, sys
from pathlib import Path
root = Path(os.environ["FAKE_ROOT"])
with open(root / "calls.jsonl", "a") as log:
    log.write(json.dumps(sys.argv[1:]) + "\\n")
args = sys.argv[1:]
envs = root / "envs"
if args[:2] == ["env", "list"]:
    print("# conda environments:\\n#")
    for env in sorted(envs.iterdir()) if envs.exists() else []:
        if not env.name.endswith(".lockstep-backup"):
            print(f"{{env.name:<20}}   {{env}}")
elif args[:2] == ["create", "--yes"]:
    name, lock = args[args.index("--name") + 1], args[args.index("--file") + 1]
    prefix = envs / name
    (prefix / "conda-meta").mkdir(parents=True)
    if "FAIL_CREATE" in Path(lock).read_text():
        sys.exit("fake conda: download failed")
    (prefix / "bin").mkdir()
    (prefix / "bin" / "python").symlink_to(sys.executable)
    (prefix / "from-lock").write_text(Path(lock).read_text())
elif args[:3] == ["env", "remove", "--yes"]:
    import shutil
    shutil.rmtree(envs / args[args.index("--name") + 1])
else:
    sys.exit(f"fake conda: not implemented: {{args}}")
"""

PYPROJECT_OK = (
    '[project]\nname = "x"\nversion = "0"\ndependencies = []\n\n'
    "[tool.poetry]\npackage-mode = false\n"
)
PYPROJECT_BROKEN = PYPROJECT_OK.replace("dependencies = []", 'dependencies = ["not-in-the-lock"]')


@pytest.fixture
def fake(tmp_path: Path) -> dict:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    conda = bin_dir / "conda"
    conda.write_text(FAKE_CONDA)
    conda.chmod(0o755)
    lock = tmp_path / "conda-linux-64.lock"
    lock.write_text(generated_lock_text(realistic_packages(10)))
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(PYPROJECT_OK)
    env = {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "FAKE_ROOT": str(tmp_path),
        "LOCKSTEP_PYPROJECT": str(pyproject),
        "HOME": str(tmp_path),
    }
    return {"root": tmp_path, "lock": lock, "pyproject": pyproject, "env": env}


def _reproduce(fake: dict, *extra: str, frontend: str = "conda", name: str = "ml"):
    return subprocess.run(
        ["sh", str(SCRIPT), frontend, name, str(fake["lock"]), str(ROOT / "poetry.lock"), *extra],
        env=fake["env"],
        capture_output=True,
        text=True,
        timeout=60,
    )


def _calls(fake: dict) -> list[list[str]]:
    path = fake["root"] / "calls.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _old_env(fake: dict) -> Path:
    old = fake["root"] / "envs" / "ml"
    (old / "conda-meta").mkdir(parents=True)
    (old / "precious.txt").write_text("user data in the old env")
    return old


def test_fresh_env(fake: dict) -> None:
    done = _reproduce(fake)
    assert done.returncode == 0, done.stderr
    prefix = fake["root"] / "envs" / "ml"
    assert (prefix / "from-lock").read_text() == fake["lock"].read_text()
    state = json.loads((prefix / "conda-meta" / "state").read_text())
    assert state == {"env_vars": {"PYTHONNOUSERSITE": "1"}}
    assert _calls(fake) == [
        ["env", "list"],
        ["create", "--yes", "--name", "ml", "--file", str(fake["lock"])],
        ["env", "list"],
    ]
    assert "0 PyPI packages installed" in done.stdout


def test_existing_env_is_replaced_only_when_the_new_one_is_complete(fake: dict) -> None:
    old = _old_env(fake)
    done = _reproduce(fake)
    assert done.returncode == 0, done.stderr
    assert not (old / "precious.txt").exists() and (old / "from-lock").exists()
    assert not Path(f"{old}.lockstep-backup").exists()


@pytest.mark.parametrize("failure", ["create", "pypi"])
def test_failure_puts_the_old_env_back(fake: dict, failure: str) -> None:
    old = _old_env(fake)
    if failure == "create":
        fake["lock"].write_text(fake["lock"].read_text() + "# FAIL_CREATE\n")
    else:
        fake["pyproject"].write_text(PYPROJECT_BROKEN)
    done = _reproduce(fake)
    assert done.returncode != 0
    assert (old / "precious.txt").read_text() == "user data in the old env"
    assert not (old / "from-lock").exists()
    assert not Path(f"{old}.lockstep-backup").exists()
    assert "reproduce: failed; the previous 'ml' is back at" in done.stderr


def test_force_removes_the_old_env_first(fake: dict) -> None:
    _old_env(fake)
    done = _reproduce(fake, "--force")
    assert done.returncode == 0, done.stderr
    assert ["env", "remove", "--yes", "--name", "ml"] in _calls(fake)


def test_leftover_backup_is_never_overwritten(fake: dict) -> None:
    old = _old_env(fake)
    backup = Path(f"{old}.lockstep-backup")
    backup.mkdir()
    done = _reproduce(fake)
    assert done.returncode == 1
    assert f"{backup} exists from an interrupted run; put it back with: mv" in done.stderr
    assert (old / "precious.txt").exists() and backup.exists()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "my env"}, "invalid env name 'my env'"),
        ({"name": "x';touch pwned;'"}, "invalid env name"),
        ({"frontend": "mamba"}, "frontend 'mamba' not found"),
    ],
    ids=["space", "injection", "missing-frontend"],
)
def test_bad_arguments(fake: dict, kwargs: dict, message: str) -> None:
    done = _reproduce(fake, **kwargs)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"reproduce: {done.stderr.split(': ', 1)[1].strip()}"
    ]
    assert message in done.stderr
    assert _calls(fake) == []
    assert not (fake["root"] / "pwned").exists()


def test_no_frontend_anywhere(fake: dict) -> None:
    fake["env"]["PATH"] = "/usr/bin:/bin"
    done = _reproduce(fake, frontend="")
    assert done.returncode == 1
    assert "no conda, mamba or micromamba on PATH" in done.stderr


def test_lock_for_another_platform(fake: dict) -> None:
    fake["lock"].write_text(generated_lock_text(realistic_packages(5), platform="osx-arm64"))
    done = _reproduce(fake)
    assert done.returncode == 1
    assert "is for 'osx-arm64', this machine is 'linux-64'" in done.stderr
    assert _calls(fake) == []


def test_missing_lock(fake: dict) -> None:
    fake["lock"].unlink()
    done = _reproduce(fake)
    assert done.returncode == 1
    assert "not found; create it with 'invoke lock'" in done.stderr


def test_not_an_explicit_lock(fake: dict) -> None:
    fake["lock"].write_text("version: 1\npackage: []\n")
    done = _reproduce(fake)
    assert "is not an explicit lock" in done.stderr and done.returncode == 1


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="the fake lock is for linux-64")
def test_script_needs_no_host_python_packages(fake: dict) -> None:
    # PYTHONPATH from the caller must not leak in: the script sets it to the repo's src only.
    fake["env"]["PYTHONPATH"] = "/nonexistent"
    assert _reproduce(fake).returncode == 0
