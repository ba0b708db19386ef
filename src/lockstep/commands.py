"""Every command the tasks run, as argument lists built by pure functions."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from lockstep.frontend import Frontend

REPRODUCE_SCRIPT = "scripts/reproduce.sh"


def env_list(fe: Frontend) -> list[str]:
    """Envs known to the frontend, as JSON."""
    return [fe.path, "env", "list", "--json"]


def env_create(fe: Frontend, name: str, environment_file: str) -> list[str]:
    """First-time env from environment.yml (a solve)."""
    if fe.is_micromamba:
        return [fe.path, "create", "--yes", "--name", name, "--file", environment_file]
    return [fe.path, "env", "create", "--yes", "--name", name, "--file", environment_file]


def run_in_env(fe: Frontend, name: str, command: Sequence[str]) -> list[str]:
    """Run a command inside the named env, output streamed."""
    live = ["--no-capture-output"] if fe.kind == "conda" else []
    return [fe.path, "run", *live, "--name", name, *command]


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


def reproduce(
    fe: Frontend,
    name: str,
    conda_lock_file: str,
    poetry_lock_file: str,
    force: bool = False,
    script: str = REPRODUCE_SCRIPT,
) -> list[str]:
    """The reproduce engine shared with `make reproduce` (needs no Python on the host)."""
    command = ["sh", script, fe.path, name, conda_lock_file, poetry_lock_file]
    return command + (["--force"] if force else [])


def poetry(*args: str, directory: str | None = None) -> list[str]:
    """Poetry, optionally on a project in another directory."""
    return ["poetry", *(["--directory", directory] if directory else []), *args]


def poetry_init(name: str, python_range: str) -> list[str]:
    """Poetry's own init, non-interactive."""
    return poetry("init", "--no-interaction", "--name", name, "--python", python_range)


def verify_gpu(fe: Frontend, name: str, extra: Sequence[str] = ()) -> list[str]:
    """The CUDA sanity check of the package, inside the env."""
    return run_in_env(fe, name, ["python", "-m", "lockstep.gpu", *extra])
