"""A hard-link snapshot is a safe undo for an env changed in place, shown on real
runs: py-rattler's transaction from one explicit lock to another (lockstep.core.rattlerinstall,
as the engine runs it), real pip and real uv replacing a wheel, on the local channel and index.

A snapshot shares every inode with the env. Were any of the three to write into an existing file
instead of unlinking it or renaming over it, the snapshot's copy would change with it: each test
links every file of the env, runs one change, checks that each linked copy still has its old
bytes, then puts the env back from the snapshot (lockstep.core.snapshot.restore) and compares
every file.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from tests.paths import SRC

from lockstep.core import commands, snapshot

from .pyindex import PackageIndex
from .uvtool import SKIP_REASON, uv_binary

pytestmark = pytest.mark.integration
OLD, NEW = "3.16.1", "3.17.0"  # filelock, both in the local channel


def _lock(channel: Path, filelock: str) -> str:
    lines = ["# platform: linux-64", "@EXPLICIT"]
    for subdir in ("linux-64", "noarch"):
        packages = json.loads((channel / subdir / "repodata.json").read_text())["packages"]
        for name, record in sorted(packages.items()):
            wanted = record["name"] in {"python", "pip"} or (
                record["name"] == "filelock" and record["version"] == filelock
            )
            if wanted:
                lines.append(f"{(channel / subdir / name).as_uri()}#{record['md5']}")
    return "\n".join(lines) + "\n"


def _tree(root: Path) -> dict[str, str]:
    """Every file and symlink under ``root``: its bytes' sha256 (a link: its target)."""
    found = {}
    for path in sorted(root.rglob("*")):
        if path.is_symlink():
            found[str(path.relative_to(root))] = "-> " + os.readlink(path)
        elif path.is_file():
            found[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def _run(command: list[str], env: dict[str, str]) -> None:
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"


@pytest.fixture
def env(
    tmp_path: Path, conda_channel: Path, integration_env: dict[str, str], wheel_index: PackageIndex
) -> tuple[Path, dict[str, str]]:
    """An env from the older lock by rattler, tinyhelper 1.0 in it by pip."""
    variables = {**integration_env, "PYTHONPATH": str(SRC)}
    for version in (OLD, NEW):
        (tmp_path / f"filelock-{version}.lock").write_text(_lock(conda_channel, version))
    prefix = tmp_path / "an env"
    old_lock = str(tmp_path / f"filelock-{OLD}.lock")
    _run(commands.rattler_install(sys.executable, str(prefix), old_lock), variables)
    _pip(prefix, "tinyhelper==1.0", wheel_index, variables)
    return prefix, variables


def _pip(prefix: Path, requirement: str, index: PackageIndex, env: dict[str, str]) -> None:
    python = str(prefix / "bin" / "python")
    pip = [python, "-m", "pip", "install", "--no-deps", "--index-url", index.url, requirement]
    _run(pip, env)


def _change(how: str, prefix: Path, index: PackageIndex, env: dict[str, str]) -> str:
    """One change of the env; returns the folder that proves it happened."""
    if how == "rattler":
        new_lock = str(prefix.parent / f"filelock-{NEW}.lock")
        _run(commands.rattler_install(sys.executable, str(prefix), new_lock), env)
        return f"filelock-{NEW}.dist-info"
    if how == "pip":
        _pip(prefix, "tinyhelper==1.1", index, env)
    else:
        uv = uv_binary()
        if uv is None:
            pytest.skip(SKIP_REASON)
        command = [str(uv), "pip", "install", "--python", str(prefix / "bin" / "python")]
        _run([*command, "--no-deps", "--index-url", index.url, "tinyhelper==1.1"], env)
    return "tinyhelper-1.1.dist-info"


@pytest.mark.parametrize("how", ["rattler", "pip", "uv"])
def test_a_change_never_writes_into_an_existing_file_and_the_snapshot_undoes_it(
    env: tuple[Path, dict[str, str]], wheel_index: PackageIndex, tmp_path: Path, how: str
) -> None:
    prefix, variables = env
    before = _tree(prefix)
    held = tmp_path / "snapshot"
    linked = snapshot.take(prefix, held, kept=())
    assert linked == len(before)
    proof = _change(how, prefix, wheel_index, variables)
    site = next(prefix.glob("lib/python*/site-packages"))
    assert (site / proof).is_dir(), f"{how} changed nothing"
    assert _tree(prefix) != before
    # Each linked copy shares its inode with what was in the env: its bytes are the old ones.
    assert _tree(held / snapshot.FILES) == before
    restored = snapshot.restore(prefix, held)
    assert restored > 0
    assert _tree(prefix) == before
