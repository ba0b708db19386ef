"""Every command the tasks run, as argument lists built by pure functions."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from lockstep.core import variables
from lockstep.core.frontend import Frontend

ENGINE_MODULE = "lockstep.core.engine"
RATTLER_MODULE = "lockstep.core.rattlerinstall"
# The Dockerfile's build arguments that `docker-build` passes on from the caller's environment.
DOCKER_BUILD_ARGS = (
    "BASE_IMAGE",
    "LOCK_IMAGE",
    "FRONTEND",
    "VARIANT",
    "CONDA_LOCK",
    variables.CONDA_MIRROR.name,
    variables.CONDA_CHANNEL_MIRRORS.name,
    "PIP_INDEX_URL",
)


def info(fe: Frontend) -> list[str]:
    """Where envs go and where the root is, as JSON."""
    return [fe.path, "info", "--json"]


def env_list(fe: Frontend) -> list[str]:
    """Every env the frontend knows, as JSON."""
    return [fe.path, "env", "list", "--json"]


def create_from_lock(fe: Frontend, prefix: str, lock_file: str) -> list[str]:
    """An explicit lock into a new env at ``prefix`` (no solve)."""
    return [fe.path, "create", "--yes", "--prefix", prefix, "--file", lock_file]


def rattler_install(python: str, prefix: str, lock_file: str) -> list[str]:
    """An explicit lock into the env at ``prefix`` by py-rattler (lockstep.core.rattlerinstall):
    a new env, or a transaction of only what differs."""
    return [python, "-s", "-m", RATTLER_MODULE, "--prefix", prefix, "--lock", lock_file]


def rattler_prepare(python: str, fd: int, lock_file: str) -> list[str]:
    """rattler_install started before the env is found: it reads the lock, then waits for the
    prefix on the socket ``fd`` (lockstep.core.rattlerinstall.await_prefix)."""
    return [python, "-s", "-m", RATTLER_MODULE, "--prefix-from-fd", str(fd), "--lock", lock_file]


def create_from_specs(
    fe: Frontend, prefix: str, channels: Sequence[str], specs: Sequence[str], dry_run: bool = False
) -> list[str]:
    """A solve of ``specs`` from exactly ``channels`` (``nodefaults`` is no channel: conda 26.7
    passes environment.yml's channels to the solver as they are, and fails on it)."""
    command = [fe.path, "create", "--yes", "--prefix", prefix]
    if dry_run:
        command += ["--dry-run", "--json"]
    command.append("--override-channels")
    for channel in channels:
        if channel != "nodefaults":
            command += ["--channel", channel]
    return [*command, *specs]


def engine(python: str, action: str, project_dir: str, *options: str) -> list[str]:
    """The env engine (lockstep.core.engine) that `make reproduce` runs too: one implementation."""
    return [python, "-s", "-m", ENGINE_MODULE, action, "--project-dir", project_dir, *options]


@dataclass(frozen=True)
class ReproduceRequest:
    """What the engine's ``reproduce`` is asked to do: the tasks build one, ``engine_reproduce``
    turns it into the engine's command line, and the engine's parser gives it back
    (``lockstep.core.engine.reproduce_request``). ``None`` leaves a value to the project's
    settings or the engine's default; paths are the engine's to resolve against ``project_dir``.
    """

    project_dir: str
    name: str | None = None
    frontend: str | None = None
    conda_lock: str | None = None
    cpu_lock: str | None = None
    variant: str | None = None  # cuda or cpu; None: by the NVIDIA driver
    poetry_lock: str | None = None
    pyproject: str | None = None
    bundle: str | None = None  # an offline bundle's folder instead of channels and indexes
    installer: str | None = None  # rattler, frontend or auto (default: the installer setting)
    force: bool = False
    locked: bool = False  # refuse when there is no conda lock yet
    commit: tuple[tuple[str, str], ...] = ()  # (dest, source): written with the env, all or none


# The options of ``ReproduceRequest`` that carry a value, in the order of the command line.
REPRODUCE_VALUES = (
    ("--name", "name"),
    ("--frontend", "frontend"),
    ("--conda-lock", "conda_lock"),
    ("--cpu-lock", "cpu_lock"),
    ("--variant", "variant"),
    ("--poetry-lock", "poetry_lock"),
    ("--pyproject", "pyproject"),
    ("--bundle", "bundle"),
    ("--installer", "installer"),
)


def engine_reproduce(python: str, request: ReproduceRequest) -> list[str]:
    """Rebuild the env from the locks, as ``request`` says."""
    options: list[str] = []
    for flag, attribute in REPRODUCE_VALUES:
        value = getattr(request, attribute)
        if value:
            options += [flag, value]
    options += ["--force"] if request.force else []
    options += ["--locked"] if request.locked else []
    for dest, source in request.commit:
        options += ["--commit", f"{dest}={source}"]
    return engine(python, "reproduce", request.project_dir, *options)


def engine_create(
    python: str,
    project_dir: str,
    fe: Frontend,
    name: str,
    channels: Sequence[str],
    specs: Sequence[str],
    variables: Mapping[str, str],
    virtual_packages: Mapping[str, str],
    force: bool = False,
) -> list[str]:
    """A new env solved from environment.yml's specs (env-create), through the engine."""
    options = ["--name", name, "--frontend", fe.path]
    for channel in channels:
        options += ["--channel", channel]
    for spec in specs:
        options += ["--spec", spec]
    for key, value in variables.items():
        options += ["--env-var", f"{key}={value}"]
    for key, value in virtual_packages.items():
        options += ["--virtual", f"{key}={value}"]
    return engine(python, "create", project_dir, *options, *(["--force"] if force else []))


def engine_recover(python: str, project_dir: str, fe: Frontend, name: str) -> list[str]:
    """Undo an interrupted run of the env before anything reads the project's files."""
    return engine(python, "recover", project_dir, "--name", name, "--frontend", fe.path)


def run_in_env(
    fe: Frontend, name: str, command: Sequence[str], cwd: str | None = None
) -> list[str]:
    """Run a command inside the named env (in ``cwd``: conda, mamba and micromamba all take
    ``--cwd``), output streamed."""
    live = ["--no-capture-output"] if fe.kind == "conda" else []
    where = ["--cwd", cwd] if cwd else []
    return [fe.path, "run", *live, "--name", name, *where, *command]


def user_tests(
    fe: Frontend, name: str, project_dir: str, pytest_args: Sequence[str] = ()
) -> list[str]:
    """The user's tests (tests/ of the project) by the env's own pytest, in the project's folder
    so pyproject.toml's [tool.pytest.ini_options] and relative paths are the user's."""
    return run_in_env(fe, name, ["python", "-m", "pytest", *pytest_args], cwd=project_dir)


def conda_lock(
    fe: Frontend,
    environment_file: str,
    virtual_packages_file: str,
    platforms: Iterable[str],
    filename_template: str,
) -> list[str]:
    """conda-lock writing explicit locks, solving with ``fe`` and the virtual packages file."""
    command = ["conda-lock", "lock", "--kind", "explicit", "--file", environment_file]
    for platform in platforms:
        command += ["--platform", platform]
    return command + [
        "--virtual-package-spec",
        virtual_packages_file,
        "--conda",
        fe.path,
        "--filename-template",
        filename_template,
    ]


def poetry(*args: str, directory: str | None = None) -> list[str]:
    """Poetry, optionally on a project in another directory."""
    return ["poetry", *(["--directory", directory] if directory else []), *args]


def poetry_init(name: str, python_range: str) -> list[str]:
    """Poetry's own init, non-interactive."""
    return poetry("init", "--no-interaction", "--name", name, "--python", python_range)


def verify_gpu(fe: Frontend, name: str, extra: Sequence[str] = ()) -> list[str]:
    """The CUDA sanity check of the package, inside the env."""
    return run_in_env(fe, name, ["python", "-m", "lockstep.gpu", *extra])


def conda_pack(python: str, prefix: str, output: str) -> list[str]:
    """conda-pack's relocatable tarball of an env, packed by its library in the tooling venv's
    ``python`` with progress (lockstep.packing; the project's editable install stays out)."""
    return [python, "-m", "lockstep.packing", "--prefix", prefix, "--output", output]


def docker_build(image: str, build_args: Iterable[str], context: str) -> list[str]:
    """docker build of the project's Dockerfile. Each build argument is passed by name only:
    docker reads its value from the environment, so no value (an index URL with a token) is
    echoed."""
    command = ["docker", "build", "--tag", image]
    for name in build_args:
        command += ["--build-arg", name]
    return [*command, context]
