"""Install Poetry's side of the env from poetry.lock without Poetry's installer.

Poetry resolves and locks; this module installs exactly the locked set with ``pip --no-deps
--require-hashes`` into the conda env, minus every distribution conda already installed there and
minus the wheels that only those need (the nvidia-* and triton wheels of PyPI's torch). That is
how no wheel replaces or duplicates what conda provides (poetry issue 6408: Poetry's installer
would reinstall conda's torch and add its CUDA wheels).

The plan is lockstep.core.plan's; the lock model is lockstep.core.poetrylock's. This module is
the installer: its command line, the pip commands, and the env's Python.

Standard library only: it runs inside a freshly created env, as
``python -m lockstep.core.installer install --prefix ENV`` with ``tooling/src`` (the image: its
copy of lockstep.core) on PYTHONPATH, and
before the env exists as ``python -m lockstep.core.installer plan --python-version 3.11.10``
(the engine calls ``plan_for`` in-process).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from lockstep.core.condameta import (
    CondaRecord,
    provided_distributions,
    python_version,
    read_conda_meta,
)
from lockstep.core.errors import LockstepError
from lockstep.core.markers import (
    MarkerError,
    target_environment,
)
from lockstep.core.plan import (
    Plan,
    PlanError,
    default_groups,
    package_mode,
    plan_for,
    requirement_line,
)
from lockstep.core.poetrylock import read_poetry_lock
from lockstep.core.settings import read_toml


def conda_provided_distributions(prefix: Path) -> dict[str, str]:
    """Python distributions that conda installed into ``prefix``: normalised name -> package."""
    return provided_distributions(read_conda_meta(prefix).values())


def pip_install_command(
    python: str, requirements: str, index_urls: Iterable[str], find_links: str | None = None
) -> list[str]:
    """pip that installs exactly the requirements file: no resolver, hashes required; with
    ``find_links`` (an offline bundle's wheels) from that folder alone."""
    command = [python, "-m", "pip", "install", "--no-deps", "--require-hashes", "--no-input"]
    command += ["--disable-pip-version-check", "--no-warn-script-location"]
    if find_links is not None:
        command += ["--no-index", "--find-links", find_links]
    else:
        for url in index_urls:
            command += ["--extra-index-url", url]
    return [*command, "-r", requirements]


def pip_download_command(
    python: str, requirements: str, dest: str, index_urls: Iterable[str], python_version: str
) -> list[str]:
    """pip that fetches exactly the requirements file's files (pip's own index settings), for the
    target's Python: --no-deps lets pip take a target version and still accept sdists."""
    command = [python, "-m", "pip", "download", "--no-deps", "--require-hashes", "--no-input"]
    command += ["--disable-pip-version-check", "--python-version", python_version, "--dest", dest]
    for url in index_urls:
        command += ["--extra-index-url", url]
    return [*command, "-r", requirements]


def pip_wheel_command(python: str, sdist: str, dest: str) -> list[str]:
    """A wheel built from one sdist, as pip would build it at install time (build isolation,
    the backend from pip's index)."""
    command = [python, "-m", "pip", "wheel", "--no-deps", "--no-input"]
    return [*command, "--disable-pip-version-check", "--wheel-dir", dest, sdist]


def root_install_command(python: str, project_dir: str) -> list[str]:
    """The project itself, editable, built with the backend that conda installed."""
    return [
        python,
        "-m",
        "pip",
        "install",
        "--no-deps",
        "--no-build-isolation",
        "--no-input",
        "--disable-pip-version-check",
        "-e",
        project_dir,
    ]


# --- uv: the same requirement file, the same guarantees, several times faster than pip --------


def env_uv(prefix: Path) -> Path | None:
    """The env's own uv (environment.yml's tooling ships it), or None: pip is the fallback."""
    uv = Path(prefix) / "bin" / "uv"
    return uv if os.access(uv, os.X_OK) else None


def uv_install_command(
    uv: str,
    python: str,
    requirements: str,
    index_urls: Iterable[str],
    default_index: str | None = None,
) -> list[str]:
    """What pip_install_command does, by uv: no resolver, hashes required, into ``python``.

    uv reads neither pip.conf nor PIP_INDEX_URL, so the index pip would use is handed over as
    ``default_index``; the lock's own sources come as extra indexes, as for pip.
    """
    command = [uv, "pip", "install", "--python", python, "--no-deps", "--require-hashes"]
    if default_index:
        command += ["--default-index", default_index]
    for url in index_urls:
        command += ["--extra-index-url", url]
    return [*command, "-r", requirements]


def uv_root_install_command(uv: str, python: str, project_dir: str) -> list[str]:
    """root_install_command by uv: editable, with the backend conda installed."""
    command = [uv, "pip", "install", "--python", python, "--no-deps", "--no-build-isolation"]
    return [*command, "-e", project_dir]


def uninstall_command(python: str, names: Iterable[str], uv: Path | None = None) -> list[str]:
    """Distributions removed from the env ``python`` runs in, by the env's uv when it has one."""
    if uv is not None:
        return [str(uv), "pip", "uninstall", "--python", python, *names]
    command = [python, "-m", "pip", "uninstall", "--yes", "--no-input"]
    return [*command, "--disable-pip-version-check", *names]


def install_command(
    python: str,
    requirements: str,
    index_urls: Iterable[str],
    environ: Mapping[str, str],
    uv: Path | None = None,
) -> list[str]:
    """The locked requirements into ``python``: by ``uv`` when given, else by pip."""
    if uv is None:
        return pip_install_command(python, requirements, index_urls)
    default_index = environ.get("PIP_INDEX_URL") or None
    return uv_install_command(str(uv), python, requirements, index_urls, default_index)


def editable_command(python: str, project_dir: str, uv: Path | None = None) -> list[str]:
    """The project itself, editable: by ``uv`` when given, else by pip."""
    if uv is None:
        return root_install_command(python, project_dir)
    return uv_root_install_command(str(uv), python, project_dir)


def install_locked(
    run: Callable[[list[str]], object],
    python: str,
    plan: Plan,
    lines: Sequence[str],
    environ: Mapping[str, str],
    uv: Path | None = None,
    find_links: str | None = None,
    project_dir: Path | None = None,
    report: Callable[[str], object] = print,
) -> None:
    """The one PyPI install of a plan (the engine's and this module's ``install``).

    ``lines`` (hash-pinned requirements) go through a temporary requirements file, by ``uv``
    when given, else by pip; with ``find_links`` (an offline bundle's wheels) by pip from that
    folder alone. Then, with ``project_dir``, the project itself, editable. ``run`` runs one
    command and raises when it fails; ``report`` prints the summary line.
    """
    if lines:
        indexes = sorted({p.source_url for p in plan.install if p.source_url})
        fd, requirements = tempfile.mkstemp(prefix="lockstep-", suffix=".txt")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write("\n".join(lines) + "\n")
            if find_links is None:
                run(install_command(python, requirements, indexes, environ, uv))
            else:
                run(pip_install_command(python, requirements, indexes, find_links))
        finally:
            Path(requirements).unlink(missing_ok=True)
    skipped = plan.provided_by_conda + plan.only_needed_by_conda
    report(
        f"lockstep: {len(plan.install)} PyPI packages installed; left to conda: "
        f"{', '.join(skipped) or 'none'}"
    )
    if project_dir is not None:
        run(editable_command(python, str(project_dir.resolve()), uv))


def env_python(prefix: Path) -> Path:
    """The interpreter of a conda env."""
    return Path(prefix) / "bin" / "python"


def env_python_version(prefix: Path, records: Mapping[str, CondaRecord] | None = None) -> str:
    """The Python version of an env: its conda-meta record (``records`` when already read), else
    (a plain venv, as the bootstrap of .venv makes) what its interpreter says."""
    version = python_version(read_conda_meta(prefix) if records is None else records)
    if version:
        return version
    try:
        answer = subprocess.run(
            python_version_command(str(env_python(Path(prefix)))),
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        raise PlanError(
            f"{prefix}: no python in this env; pass --python-version (e.g. 3.11.10)"
        ) from None
    return answer.stdout.strip()


def python_version_command(python: str) -> list[str]:
    """An interpreter's version, as markers see it (python_full_version)."""
    return [python, "-I", "-c", "import platform; print(platform.python_version())"]


def build_plan(args: argparse.Namespace, pyproject: Mapping[str, Any]) -> tuple[Plan, list[str]]:
    """Plan of the CLI arguments."""
    lock_data = read_poetry_lock(Path(args.poetry_lock))
    groups = args.groups.split(",") if args.groups else default_groups(pyproject, args.pin_group)
    prefix = Path(args.prefix) if args.prefix else None
    provided = conda_provided_distributions(prefix) if prefix else {}
    if args.python_version:
        python = args.python_version
    elif prefix is not None:
        python = env_python_version(prefix)
    else:
        raise PlanError("give --prefix (an existing env) or --python-version (e.g. 3.11.10)")
    try:
        environment = target_environment(args.platform, python)
    except MarkerError as exc:
        raise PlanError(str(exc)) from exc
    extras = [e for e in args.extras.split(",") if e]
    plan = plan_for(pyproject, lock_data, groups, provided, environment, extras)
    return plan, groups


def _run(command: list[str]) -> None:
    print("+", shlex.join(command), flush=True)
    subprocess.run(command, check=True)


def _install_root(args: argparse.Namespace) -> int:
    """The project itself into the env (an image's last layer), unless it is no package."""
    try:
        pyproject = read_toml(Path(args.pyproject))
    except LockstepError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if not package_mode(pyproject):
        print("lockstep: package-mode = false: the project is run from its folder, not installed")
        return 0
    if not args.prefix:
        print("error: install-root needs --prefix (the conda env to install into)", file=sys.stderr)
        return 1
    python = str(env_python(Path(args.prefix)))
    try:
        _run(root_install_command(python, str(Path(args.project_dir).resolve())))
    except subprocess.CalledProcessError as exc:
        return exc.returncode or 1
    return 0


def main(argv: list[str] | None = None) -> int:
    """Command line: ``plan`` prints what would be installed, ``install`` installs it."""
    parser = argparse.ArgumentParser(prog="python -m lockstep.core.installer", description=__doc__)
    parser.add_argument("action", choices=["plan", "install", "install-root"])
    parser.add_argument("--prefix", default="", help="conda env to install into (or to plan for)")
    parser.add_argument(
        "--python-version", default="", help="plan for this Python (default: the env's python)"
    )
    parser.add_argument("--platform", default="linux-64", help="conda platform to plan for")
    parser.add_argument("--extras", default="", help="comma-separated extras of the project")
    parser.add_argument("--poetry-lock", default="poetry.lock", help="Poetry's lock file")
    parser.add_argument("--pyproject", default="pyproject.toml", help="the project's pyproject")
    parser.add_argument(
        "--groups", default="", help="comma-separated groups (default: main and non-optional)"
    )
    parser.add_argument("--pin-group", default="conda", help="group holding conda's pins")
    parser.add_argument("--project-dir", default=".", help="the project to install editable")
    parser.add_argument("--no-root", action="store_true", help="do not install the project")
    args = parser.parse_args(argv)
    if args.action == "install-root":
        return _install_root(args)
    try:
        pyproject = read_toml(Path(args.pyproject))
        plan, groups = build_plan(args, pyproject)
        lines = [requirement_line(p, groups) for p in plan.install]
    except LockstepError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.action == "plan":
        print(
            json.dumps(
                {
                    "install": [f"{p.name}=={p.version}" for p in plan.install],
                    "provided_by_conda": plan.provided_by_conda,
                    "only_needed_by_conda": plan.only_needed_by_conda,
                    "other_groups": plan.other_groups,
                },
                indent=2,
            )
        )
        return 0
    if not args.prefix:
        print("error: install needs --prefix (the conda env to install into)", file=sys.stderr)
        return 1
    python = str(env_python(Path(args.prefix)))
    # The tooling venv is made bare by `python -m venv`; a uv on PATH installs it just the same.
    found = env_uv(Path(args.prefix)) or shutil.which("uv")
    root = None if args.no_root or not package_mode(pyproject) else Path(args.project_dir)
    try:
        install_locked(
            _run,
            python,
            plan,
            lines,
            os.environ,
            uv=Path(found) if found else None,
            project_dir=root,
            report=lambda line: print(line, flush=True),
        )
    except subprocess.CalledProcessError as exc:
        return exc.returncode or 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
