"""Every command as an exact argument list, for each frontend."""

from __future__ import annotations

import pytest

from lockstep import commands
from lockstep.frontend import Frontend

CONDA = Frontend("conda", "/opt/conda/bin/conda")
MAMBA = Frontend("mamba", "/opt/conda/bin/mamba")
MICRO = Frontend("micromamba", "/usr/local/bin/micromamba")


@pytest.mark.parametrize(
    ("fe", "expected"),
    [
        (
            CONDA,
            [
                "/opt/conda/bin/conda",
                "env",
                "create",
                "--yes",
                "--name",
                "ml",
                "--file",
                "environment.yml",
            ],
        ),
        (
            MAMBA,
            [
                "/opt/conda/bin/mamba",
                "env",
                "create",
                "--yes",
                "--name",
                "ml",
                "--file",
                "environment.yml",
            ],
        ),
        (
            MICRO,
            [
                "/usr/local/bin/micromamba",
                "create",
                "--yes",
                "--name",
                "ml",
                "--file",
                "environment.yml",
            ],
        ),
    ],
    ids=["conda", "mamba", "micromamba"],
)
def test_env_create(fe: Frontend, expected: list[str]) -> None:
    assert commands.env_create(fe, "ml", "environment.yml") == expected


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


@pytest.mark.parametrize("force", [False, True], ids=["keep-old", "force"])
def test_reproduce_runs_the_shared_script(force: bool) -> None:
    assert commands.reproduce(MAMBA, "ml", "conda-linux-64.lock", "poetry.lock", force) == [
        "sh",
        "scripts/reproduce.sh",
        "/opt/conda/bin/mamba",
        "ml",
        "conda-linux-64.lock",
        "poetry.lock",
        *(["--force"] if force else []),
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


def test_reproduce_script_path_can_be_absolute() -> None:
    command = commands.reproduce(
        CONDA, "ml", "a.lock", "p.lock", script="/w/p/scripts/reproduce.sh"
    )
    assert command[:2] == ["sh", "/w/p/scripts/reproduce.sh"]
