"""The harness proven with the real tools: conda-lock 4, Poetry 2 and pip against the local
channel and index, through the conda/mamba stand-ins (test doubles of the CLI)."""

from __future__ import annotations

import json
import tomllib
import urllib.request
from pathlib import Path

import pytest

from .channel import add_packages, filelock_package
from .distinfo import SITE_PACKAGES
from .helpers import run
from .project import VIRTUAL_PACKAGES_YML as VIRTUAL_PACKAGES
from .pyindex import PackageIndex

pytestmark = pytest.mark.integration

LOCK = "conda-linux-64.lock"


def write_project(project: Path, channel: Path, specs: list[str]) -> Path:
    project.mkdir(parents=True, exist_ok=True)
    deps = "".join(f"  - {spec}\n" for spec in specs)
    (project / "environment.yml").write_text(
        f"name: demo\nchannels:\n  - {channel.as_uri()}\ndependencies:\n{deps}"
        "variables:\n  PYTHONNOUSERSITE: '1'\n"
    )
    (project / "virtual-packages.yml").write_text(VIRTUAL_PACKAGES)
    return project


def conda_lock_cmd(conda: Path) -> list[str]:
    return [
        "conda-lock",
        "-k",
        "explicit",
        "-f",
        "environment.yml",
        "-p",
        "linux-64",
        "--virtual-package-spec",
        "virtual-packages.yml",
        "--conda",
        str(conda),
    ]


def lock_lines(lock: Path) -> list[str]:
    return [line for line in lock.read_text().splitlines() if line and line[0] != "#"]


def locked_project(tmp_path: Path, channel: Path, env: dict[str, str], conda: Path) -> Path:
    project = write_project(tmp_path / "project", channel, ["python=3.11", "pip", "pytorch=2.5"])
    run(conda_lock_cmd(conda), project, env)
    return project


@pytest.fixture
def conda(standin_bin: Path) -> Path:
    return standin_bin / "conda"


def test_conda_lock_writes_explicit_lock(tmp_path, conda_channel, integration_env, conda):
    project = locked_project(tmp_path, conda_channel, integration_env, conda)

    text = (project / LOCK).read_text()
    assert "# platform: linux-64" in text
    assert "# input_hash: " in text
    lines = lock_lines(project / LOCK)
    assert lines[0] == "@EXPLICIT"
    names = {url.rsplit("/", 1)[1].rsplit("-", 2)[0] for url in lines[1:]}
    assert names == {"python", "pip", "pytorch", "filelock", "libcudart", "cuda-version"}
    assert all(u.startswith(conda_channel.as_uri()) and "#" in u for u in lines[1:])
    assert any("/pytorch-2.5.1-cuda126_py311_0.tar.bz2#" in u for u in lines)
    # __cuda 12.9 from virtual-packages.yml lets the solver pick the newest cuda-version.
    assert any("/cuda-version-12.9-" in u for u in lines)


def test_conda_lock_fails_on_unsolvable_spec(tmp_path, conda_channel, integration_env, conda):
    project = write_project(tmp_path / "project", conda_channel, ["python=3.11", "pytorch=9"])

    proc = run(conda_lock_cmd(conda), project, integration_env, expect_rc=None)

    assert "pytorch" in proc.stderr
    assert not (project / LOCK).exists()


def test_conda_lock_honors_virtual_packages(tmp_path, conda_channel, integration_env, conda):
    """Without __cuda the CUDA build of pytorch is unsolvable: the spec really reaches the solve."""
    project = write_project(tmp_path / "project", conda_channel, ["pytorch"])
    no_cuda = VIRTUAL_PACKAGES.replace('      __cuda: "12.9"\n', "")
    (project / "virtual-packages.yml").write_text(no_cuda)

    done = run(conda_lock_cmd(conda), project, integration_env, expect_rc=None)
    assert "__cuda >=12, for which no candidates were found" in done.stdout + done.stderr
    assert not (project / LOCK).exists()


def test_relock_sees_a_package_added_to_the_channel(
    tmp_path, channel_factory, integration_env, conda
):
    channel = channel_factory()
    project = locked_project(tmp_path, channel, integration_env, conda)
    before = lock_lines(project / LOCK)

    add_packages(channel, [filelock_package("3.18.0")])
    run(conda_lock_cmd(conda), project, integration_env)

    changed = set(lock_lines(project / LOCK)) ^ set(before)
    assert {line.rsplit("/", 1)[1].split("#")[0] for line in changed} == {
        "filelock-3.17.0-pyh0_0.tar.bz2",
        "filelock-3.18.0-pyh0_0.tar.bz2",
    }


def test_standin_creates_env_matching_the_lock(tmp_path, conda_channel, integration_env, conda):
    project = locked_project(tmp_path, conda_channel, integration_env, conda)

    env = integration_env
    run([conda, "create", "--yes", "--name", "demo", "--file", LOCK], project, env)
    listed = json.loads(run([conda, "list", "--json", "-n", "demo"], project, env).stdout)

    locked = {}
    for line in lock_lines(project / LOCK)[1:]:
        url, md5 = line.split("#")
        locked[url.rsplit("/", 1)[1].removesuffix(".tar.bz2")] = md5
    assert {e["dist_name"] for e in listed} == set(locked)
    prefix = Path(env["LOCKSTEP_STANDIN_ROOT"]) / "envs" / "demo"
    for dist_name, md5 in locked.items():
        meta = json.loads((prefix / "conda-meta" / f"{dist_name}.json").read_text())
        assert meta["md5"] == md5
        assert {"files", "url", "name", "version", "build", "channel"} <= meta.keys()
    torch = next(e for e in listed if e["name"] == "pytorch")
    assert (torch["version"], torch["build_string"]) == ("2.5.1", "cuda126_py311_0")


def test_explicit_create_with_yes_replaces_and_install_adds(
    tmp_path, conda_channel, integration_env, conda
):
    project = locked_project(tmp_path, conda_channel, integration_env, conda)
    env = integration_env
    run([conda, "create", "--yes", "-n", "demo", "--file", LOCK], project, env)
    marker = Path(env["LOCKSTEP_STANDIN_ROOT"]) / "envs" / "demo" / "stray-file"
    marker.write_text("left by a previous env")

    run([conda, "create", "--yes", "-n", "demo", "--file", LOCK], project, env)
    assert not marker.exists()
    run([conda, "create", "-n", "demo", "--file", LOCK], project, env, expect_rc=1)

    extra = project / "extra.lock"
    url = f"{conda_channel.as_uri()}/noarch/filelock-3.16.1-pyh0_0.tar.bz2"
    extra.write_text(f"@EXPLICIT\n{url}\n")
    run([conda, "install", "--yes", "-n", "demo", "--file", extra], project, env)
    listed = json.loads(run([conda, "list", "--json", "-n", "demo"], project, env).stdout)
    versions = {e["name"]: e["version"] for e in listed}
    assert versions["filelock"] == "3.16.1"
    assert versions["pytorch"] == "2.5.1"


def test_env_python_works_and_pip_installs_with_hashes(
    tmp_path, conda_channel, integration_env, conda, wheel_index: PackageIndex
):
    project = locked_project(tmp_path, conda_channel, integration_env, conda)
    env = integration_env
    run([conda, "create", "--yes", "-n", "demo", "--file", LOCK], project, env)
    prefix = Path(env["LOCKSTEP_STANDIN_ROOT"]) / "envs" / "demo"

    probe = "import sys, site, torch; "
    probe += "print(sys.prefix, site.getsitepackages()[0], torch.__version__)"
    out = run([prefix / "bin" / "python", "-c", probe], project, env).stdout.split()
    assert out == [str(prefix), str(prefix / SITE_PACKAGES), "2.5.1"]

    wheel = "tinyhelper-1.1-py3-none-any.whl"
    (project / "req.txt").write_text(f"tinyhelper==1.1 --hash=sha256:{wheel_index.sha256(wheel)}\n")
    pip = ["python", "-m", "pip", "install", "--no-deps", "--require-hashes", "-r", "req.txt"]
    run([conda, "run", "-n", "demo", *pip], project, env)

    site = prefix / SITE_PACKAGES
    assert (site / "tinyhelper-1.1.dist-info" / "INSTALLER").read_text().strip() == "pip"
    torch_info = site / "torch-2.5.1.dist-info"
    assert (torch_info / "INSTALLER").read_text().strip() == "conda"
    assert not (torch_info / "direct_url.json").exists()
    listed = json.loads(run([conda, "list", "--json", "-n", "demo"], project, env).stdout)
    assert {"name": "tinyhelper", "channel": "pypi"}.items() <= next(
        e for e in listed if e["name"] == "tinyhelper"
    ).items()


def test_env_lifecycle_create_vars_run_remove(tmp_path, conda_channel, integration_env, conda):
    env = {**integration_env, "CONDA_OVERRIDE_CUDA": "12.6"}  # no GPU here: declare a driver
    project = write_project(tmp_path / "project", conda_channel, ["python=3.11", "pytorch"])

    run([conda, "env", "create", "-f", "environment.yml", "-n", "life"], project, env)
    run([conda, "env", "config", "vars", "set", "-n", "life", "ML_SEED=42"], project, env)
    vars_out = run([conda, "env", "config", "vars", "list", "-n", "life"], project, env).stdout
    assert vars_out.splitlines() == ["PYTHONNOUSERSITE = 1", "ML_SEED = 42"]

    probe = "import os, torch; print(os.environ['ML_SEED'], os.environ['CONDA_DEFAULT_ENV'], "
    probe += "os.environ['PYTHONNOUSERSITE'], torch.__version__)"
    out = run([conda, "run", "-n", "life", "python", "-c", probe], project, env).stdout
    assert out.split() == ["42", "life", "1", "2.6.0"]  # __cuda 12.6: cuda-version 12.6
    listed = json.loads(run([conda, "list", "--json", "-n", "life"], project, env).stdout)
    assert {e["name"]: e["version"] for e in listed}["cuda-version"] == "12.6"

    text = run([conda, "env", "list"], project, env).stdout
    # conda's listing starts and ends with a blank line.
    assert any(line.split()[:1] == ["life"] for line in text.splitlines() if line[:1] != "#")
    prefixes = json.loads(run([conda, "env", "list", "--json"], project, env).stdout)["envs"]
    assert any(p.endswith("/envs/life") for p in prefixes)
    info = json.loads(run([conda, "info", "--json"], project, env).stdout)
    assert {"envs", "envs_dirs", "pkgs_dirs", "root_prefix", "platform"} <= info.keys()

    # env create replaces an existing env of the same name (conda >= 26.7), vars included.
    run([conda, "env", "create", "-f", "environment.yml", "-n", "life"], project, env)
    vars_out = run([conda, "env", "config", "vars", "list", "-n", "life"], project, env).stdout
    assert vars_out.splitlines() == ["PYTHONNOUSERSITE = 1"]
    spec_create = [conda, "create", "--yes", "-n", "spec", "-c", conda_channel.as_uri(), "pip"]
    run(spec_create, project, env)

    run([conda, "env", "remove", "-n", "life", "--yes"], project, env)
    run([conda, "remove", "--all", "--yes", "-n", "spec"], project, env)
    prefixes = json.loads(run([conda, "env", "list", "--json"], project, env).stdout)["envs"]
    assert not any("/envs/" in p for p in prefixes)
    run([conda, "list", "--json", "-n", "life"], project, env, expect_rc=1)


def test_standin_rejects_what_it_does_not_implement(tmp_path, integration_env, conda):
    for cmd in (["update", "-n", "x", "--all"], ["create", "-n", "x", "--clone", "y"]):
        proc = run([conda, *cmd], tmp_path, integration_env, expect_rc=2)
        assert "not implemented" in proc.stderr


def test_mamba_standin_locks_and_creates(tmp_path, conda_channel, integration_env, standin_bin):
    mamba = standin_bin / "mamba"
    assert run([mamba, "--version"], tmp_path, integration_env).stdout.strip() == "2.5.0"
    newer = {**integration_env, "LOCKSTEP_STANDIN_MAMBA_VERSION": "2.6.0"}
    assert run([mamba, "--version"], tmp_path, newer).stdout.strip() == "2.6.0"

    project = locked_project(tmp_path, conda_channel, integration_env, mamba)
    run([mamba, "create", "-y", "-n", "m", "--file", LOCK], project, integration_env)
    listed = json.loads(run([mamba, "list", "--json", "-n", "m"], project, integration_env).stdout)
    assert "pytorch" in {e["name"] for e in listed}


def test_wheel_index_serves_pep503_pages(wheel_index: PackageIndex):
    with urllib.request.urlopen(f"{wheel_index.url}torch/") as response:
        page = response.read().decode()
    wheel = "torch-2.6.0-py3-none-any.whl"
    assert f"{wheel}#sha256={wheel_index.sha256(wheel)}" in page


def test_poetry_locks_against_the_local_index(tmp_path, integration_env, wheel_index):
    project = tmp_path / "poetry-project"
    project.mkdir()
    env = integration_env
    run(["poetry", "init", "-n", "--name", "demo", "--python", ">=3.11,<3.12"], project, env)
    source = ["poetry", "source", "add", "--priority=primary", "local", wheel_index.url]
    run(source, project, env)
    run(["poetry", "add", "--lock", "tinyapp", "torch==2.6.0"], project, env)

    lock = tomllib.loads((project / "poetry.lock").read_text())
    packages = {p["name"]: p for p in lock["package"]}
    assert set(packages) == {"tinyapp", "tinyhelper", "torch", "filelock", "nvidia-fake-cu12"}
    assert packages["tinyhelper"]["version"] == "1.1"
    for package in packages.values():
        for entry in package["files"]:
            assert entry["hash"] == f"sha256:{wheel_index.sha256(entry['file'])}"


def test_poetry_takes_the_conda_env_as_its_env(tmp_path, conda_channel, integration_env, conda):
    """Under `conda run`, Poetry targets CONDA_PREFIX: the stand-in env passes for a real one."""
    project = locked_project(tmp_path, conda_channel, integration_env, conda)
    env = integration_env
    run([conda, "create", "--yes", "-n", "demo", "--file", LOCK], project, env)
    init = ["poetry", "init", "-n", "--name", "demo", "--python", ">=3.11,<3.12"]
    run(init, project, env)

    info = ["poetry", "env", "info", "--path"]
    out = run([conda, "run", "-n", "demo", *info], project, env).stdout
    assert out.strip() == str(Path(env["LOCKSTEP_STANDIN_ROOT"]) / "envs" / "demo")
