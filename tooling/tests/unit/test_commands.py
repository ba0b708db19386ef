"""Every command as an exact argument list, for each frontend."""

from __future__ import annotations

import pytest

from lockstep.core import commands
from lockstep.core.frontend import Frontend

CONDA = Frontend("conda", "/opt/conda/bin/conda")
MAMBA = Frontend("mamba", "/opt/conda/bin/mamba")
MICRO = Frontend("micromamba", "/usr/local/bin/micromamba")


def test_rattler_install_runs_the_module_with_prefix_and_lock() -> None:
    assert commands.rattler_install("/v/bin/python", "/e/my envs/ml", "/p/conda.lock") == [
        "/v/bin/python",
        "-s",
        "-m",
        "lockstep.core.rattlerinstall",
        "--prefix",
        "/e/my envs/ml",
        "--lock",
        "/p/conda.lock",
    ]


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


@pytest.mark.parametrize(
    ("fe", "live"),
    [(CONDA, ["--no-capture-output"]), (MAMBA, []), (MICRO, [])],
    ids=["conda", "mamba", "micromamba"],
)
def test_user_tests_run_the_envs_pytest_in_the_project(fe: Frontend, live: list[str]) -> None:
    assert commands.user_tests(fe, "my-project", "/home/u/my project", ["-k", "seed", "-x"]) == [
        fe.path,
        "run",
        *live,
        "--name",
        "my-project",
        "--cwd",
        "/home/u/my project",
        "python",
        "-m",
        "pytest",
        "-k",
        "seed",
        "-x",
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
    request = commands.ReproduceRequest("/w/p", name="ml", frontend=MAMBA.path)
    assert commands.engine_reproduce("/py", request) == [
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
    request = commands.ReproduceRequest(
        "/w/p",
        name="ml",
        frontend=CONDA.path,
        force=True,
        locked=True,
        conda_lock="/s/c.lock",
        poetry_lock="/s/poetry.lock",
        pyproject="/s/pyproject.toml",
        commit=(("/w/p/c.lock", "/s/c.lock"), ("/w/p/poetry.lock", "/s/poetry.lock")),
    )
    command = commands.engine_reproduce("/py", request)
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


ROUND_TRIPS = {
    "plain": commands.ReproduceRequest("/w/p", name="ml", frontend="/opt/conda/bin/mamba"),
    "settings-only": commands.ReproduceRequest("/w/p"),
    "every-field": commands.ReproduceRequest(
        "/w/my project",
        name="ml",
        frontend="/opt/conda/bin/conda",
        conda_lock="/s/conda-linux-64.lock",
        cpu_lock="/s/conda-cpu-linux-64.lock",
        variant="cpu",
        poetry_lock="/s/poetry.lock",
        pyproject="/s/pyproject.toml",
        bundle="/b/bundle",
        force=True,
        locked=True,
        # DEST=SOURCE splits at the first "=": a source may hold one, a destination may not.
        commit=(("/w/p/c.lock", "/s/x=1/c.lock"), ("/w/p/poetry.lock", "/s/poetry.lock")),
    ),
}


@pytest.mark.parametrize("request_", ROUND_TRIPS.values(), ids=ROUND_TRIPS.keys())
def test_the_engine_parses_back_the_request_its_command_line_was_built_from(
    request_: commands.ReproduceRequest,
) -> None:
    from lockstep.core.engine import build_parser, reproduce_request

    command = commands.engine_reproduce("/py", request_)
    assert command[:5] == ["/py", "-s", "-m", "lockstep.core.engine", "reproduce"]
    assert reproduce_request(build_parser().parse_args(command[4:])) == request_


def test_empty_values_from_make_mean_unset() -> None:
    """make passes its variables whether set or not: `--variant ""` is the driver's choice."""
    from lockstep.core.engine import build_parser, reproduce_request

    argv = ["reproduce", "--name", "", "--frontend", "", "--variant", "", "--project-dir", "/w"]
    assert reproduce_request(build_parser().parse_args(argv)) == commands.ReproduceRequest("/w")


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


def test_docker_build_passes_build_arguments_by_name_only() -> None:
    assert commands.docker_build("my-project:dev", ["BASE_IMAGE", "PIP_INDEX_URL"], "/p") == [
        "docker",
        "build",
        "--tag",
        "my-project:dev",
        "--build-arg",
        "BASE_IMAGE",
        "--build-arg",
        "PIP_INDEX_URL",
        "/p",
    ]
