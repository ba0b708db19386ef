"""Every command as an exact argument list, for each frontend."""

from __future__ import annotations

import pytest

from lockstep.core import commands
from lockstep.core.frontend import Frontend

CONDA = Frontend("conda", "/opt/conda/bin/conda")
MAMBA = Frontend("mamba", "/opt/conda/bin/mamba")
MICRO = Frontend("micromamba", "/usr/local/bin/micromamba")


@pytest.mark.parametrize("fe", [CONDA, MAMBA, MICRO], ids=["conda", "mamba", "micromamba"])
def test_create_from_lock_names_the_prefix(fe: Frontend) -> None:
    assert commands.create_from_lock(fe, "/e/my envs/ml", "/p/conda-linux-64.lock") == [
        fe.path,
        "create",
        "--yes",
        "--prefix",
        "/e/my envs/ml",
        "--file",
        "/p/conda-linux-64.lock",
    ]


@pytest.mark.parametrize("dry_run", [False, True], ids=["create", "dry-run"])
@pytest.mark.parametrize("fe", [CONDA, MAMBA, MICRO], ids=["conda", "mamba", "micromamba"])
def test_create_from_specs_overrides_channels_and_drops_nodefaults(
    fe: Frontend, dry_run: bool
) -> None:
    command = commands.create_from_specs(
        fe, "/e/ml", ["conda-forge", "nodefaults"], ["python=3.11", "pytorch=*=cuda*"], dry_run
    )
    assert command == [
        fe.path,
        "create",
        "--yes",
        "--prefix",
        "/e/ml",
        *(["--dry-run", "--json"] if dry_run else []),
        "--override-channels",
        "--channel",
        "conda-forge",
        "python=3.11",
        "pytorch=*=cuda*",
    ]


def test_info() -> None:
    assert commands.info(MICRO) == ["/usr/local/bin/micromamba", "info", "--json"]


@pytest.mark.parametrize("fe", [CONDA, MAMBA, MICRO], ids=["conda", "mamba", "micromamba"])
def test_env_list(fe: Frontend) -> None:
    assert commands.env_list(fe) == [fe.path, "env", "list", "--json"]


def test_run_in_env_streams_output_on_conda_only() -> None:
    assert commands.run_in_env(CONDA, "ml", ["python", "-V"]) == [
        "/opt/conda/bin/conda",
        "run",
        "--no-capture-output",
        "--name",
        "ml",
        "python",
        "-V",
    ]
    assert commands.run_in_env(MICRO, "ml", ["python", "-V"]) == [
        "/usr/local/bin/micromamba",
        "run",
        "--name",
        "ml",
        "python",
        "-V",
    ]


def test_conda_lock_command() -> None:
    assert commands.conda_lock(
        CONDA,
        "environment.yml",
        "virtual-packages.yml",
        ["linux-64", "linux-aarch64"],
        "/tmp/x/conda-{platform}.lock",
    ) == [
        "conda-lock",
        "lock",
        "--kind",
        "explicit",
        "--file",
        "environment.yml",
        "--platform",
        "linux-64",
        "--platform",
        "linux-aarch64",
        "--virtual-package-spec",
        "virtual-packages.yml",
        "--conda",
        "/opt/conda/bin/conda",
        "--filename-template",
        "/tmp/x/conda-{platform}.lock",
    ]


def test_engine_reproduce_plain() -> None:
    assert commands.engine_reproduce("/py", "/w/p", MAMBA, "ml") == [
        "/py",
        "-s",
        "-m",
        "lockstep.core.engine",
        "reproduce",
        "--project-dir",
        "/w/p",
        "--name",
        "ml",
        "--frontend",
        "/opt/conda/bin/mamba",
    ]


def test_engine_reproduce_for_update() -> None:
    command = commands.engine_reproduce(
        "/py",
        "/w/p",
        CONDA,
        "ml",
        force=True,
        locked=True,
        conda_lock="/s/c.lock",
        poetry_lock="/s/poetry.lock",
        pyproject="/s/pyproject.toml",
        commit=[("/w/p/c.lock", "/s/c.lock"), ("/w/p/poetry.lock", "/s/poetry.lock")],
    )
    assert command[7:] == [
        "--name",
        "ml",
        "--frontend",
        "/opt/conda/bin/conda",
        "--conda-lock",
        "/s/c.lock",
        "--poetry-lock",
        "/s/poetry.lock",
        "--pyproject",
        "/s/pyproject.toml",
        "--force",
        "--locked",
        "--commit",
        "/w/p/c.lock=/s/c.lock",
        "--commit",
        "/w/p/poetry.lock=/s/poetry.lock",
    ]


def test_engine_create_and_recover() -> None:
    command = commands.engine_create(
        "/py",
        "/w/p",
        MICRO,
        "ml",
        ["conda-forge", "nodefaults"],
        ["python=3.11"],
        {"PYTHONNOUSERSITE": "1"},
        {"__cuda": "12.9"},
        force=True,
    )
    assert command == [
        "/py",
        "-s",
        "-m",
        "lockstep.core.engine",
        "create",
        "--project-dir",
        "/w/p",
        "--name",
        "ml",
        "--frontend",
        "/usr/local/bin/micromamba",
        "--channel",
        "conda-forge",
        "--channel",
        "nodefaults",
        "--spec",
        "python=3.11",
        "--env-var",
        "PYTHONNOUSERSITE=1",
        "--virtual",
        "__cuda=12.9",
        "--force",
    ]
    assert commands.engine_recover("/py", "/w/p", CONDA, "ml")[4:] == [
        "recover",
        "--project-dir",
        "/w/p",
        "--name",
        "ml",
        "--frontend",
        "/opt/conda/bin/conda",
    ]


def test_poetry_commands() -> None:
    assert commands.poetry("lock") == ["poetry", "lock"]
    assert commands.poetry("lock", directory="/tmp/p") == [
        "poetry",
        "--directory",
        "/tmp/p",
        "lock",
    ]
    assert commands.poetry_init("my-proj", ">=3.11,<3.12") == [
        "poetry",
        "init",
        "--no-interaction",
        "--name",
        "my-proj",
        "--python",
        ">=3.11,<3.12",
    ]


def test_verify_gpu() -> None:
    assert commands.verify_gpu(CONDA, "ml", ["--json"]) == [
        "/opt/conda/bin/conda",
        "run",
        "--no-capture-output",
        "--name",
        "ml",
        "python",
        "-m",
        "lockstep.gpu",
        "--json",
    ]
