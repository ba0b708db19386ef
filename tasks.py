"""The environment lifecycle as invoke tasks (`invoke --list`; `invoke --dry TASK` shows commands).

Layers call one way: Makefile -> tasks.py -> the ``lockstep`` package under tooling/src/ (see
tooling/docs/architecture.md). The package parses, computes and orchestrates
(lockstep.lifecycle); this file turns arguments into calls, gives the package one runner that
echoes each command, and prints. Settings: task argument > [tool.lockstep] in pyproject.toml >
default.
"""

from __future__ import annotations

import json as _json
import os
import shlex
import shutil
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from invoke import Collection, Context, Exit, Result, Task
from invoke import task as _invoke_task
from invoke.exceptions import CommandTimedOut

ROOT = Path(__file__).resolve().parent
# The package must import before any env exists (first-time setup runs from a bare Python), and
# from this checkout even where the venv holds another one's.
sys.path.insert(0, str(ROOT / "tooling" / "src"))

from lockstep import SRC_DIR as TOOLING_SRC  # noqa: E402
from lockstep import lifecycle  # noqa: E402
from lockstep.core import commands, envs, variables  # noqa: E402
from lockstep.core.errors import LockstepError  # noqa: E402
from lockstep.core.explicit import read_explicit  # noqa: E402
from lockstep.core.frontend import Frontend, find_frontend  # noqa: E402
from lockstep.core.fsutil import (  # noqa: E402
    atomic_write_bytes,
    atomic_write_text,
    describe_os_error,
    read_text,
    text_diff,
)
from lockstep.core.names import normalize  # noqa: E402
from lockstep.core.poetrylock import read_poetry_lock  # noqa: E402
from lockstep.core.settings import read_toml  # noqa: E402
from lockstep.lifecycle import PinSource, Project  # noqa: E402
from lockstep.spec import python_constraint  # noqa: E402

# --------------------------------------------------------------------------- helpers

F = TypeVar("F", bound=Callable[..., Any])


def _fail(message: str) -> Exit:
    return Exit(f"error: {message}", code=1)


@contextmanager
def _one_line() -> Iterator[None]:
    """What the user can fix ends in one line and exit 1, never in a traceback."""
    try:
        yield
    except LockstepError as exc:
        if exc.reason:
            print(exc.reason, file=sys.stderr)
        raise _fail(str(exc)) from None
    except OSError as exc:
        raise _fail(describe_os_error(exc)) from None


class _Task(Task):
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        with _one_line():
            return super().__call__(*args, **kwargs)


def task(*args: Any, **kwargs: Any) -> Callable[[F], F]:
    """invoke's @task, with every task body run under _one_line."""
    return _invoke_task(*args, klass=_Task, **kwargs)


def _root(c: Context) -> Path:
    """The project's folder: this file's (``lockstep.root`` in invoke's config, for another)."""
    try:
        return Path(c.config.lockstep.root)
    except AttributeError:
        return ROOT


def _project(c: Context, **overrides: Any) -> Project:
    """The project the tasks work on, with the task's arguments over [tool.lockstep]."""
    return Project.load(_root(c), **overrides)


def _run(
    c: Context, command: list[str], env: Mapping[str, str] | None = None, **kwargs: Any
) -> Result | None:
    """The one way out to the shell: an argument list, quoted once, echoed by invoke.

    ``env`` adds to the configured run.env (PYTHONNOUSERSITE=1) instead of replacing it.
    """
    merged = {**c.config.run.env, **(env or {})}
    # The tools of the env the tasks run in (conda-lock, poetry of the tooling venv or the conda
    # env) come first: `make lock` runs `.venv/bin/python -m invoke` with .venv/bin not on PATH.
    tools = str(Path(sys.executable).parent)
    merged.setdefault("PATH", os.pathsep.join([tools, os.environ.get("PATH", "")]))
    return c.run(shlex.join(command), echo=True, env=merged, **kwargs)


def _query(c: Context, command: list[str]) -> str:
    """A read-only command whose output the task needs: runs even under --dry, and a hung one
    is stopped ($LOCKSTEP_QUERY_TIMEOUT)."""
    limit = envs.query_timeout()
    try:
        result = c.run(shlex.join(command), hide=True, warn=True, dry=False, timeout=limit)
    except CommandTimedOut:
        raise LockstepError(
            f"`{shlex.join(command)}` did not answer in {limit:g} s; the frontend hangs: fix it, "
            f"or raise {variables.QUERY_TIMEOUT.name}; nothing was changed"
        ) from None
    if result.failed:
        detail = (result.stderr or result.stdout).strip()
        raise LockstepError(f"`{shlex.join(command)}` failed: {detail.splitlines()[-1:] or ''}")
    return str(result.stdout)


class _Shell:
    """invoke's Context as the lifecycle's Shell (lockstep.lifecycle)."""

    def __init__(self, c: Context) -> None:
        self._c = c

    @property
    def dry(self) -> bool:
        return bool(self._c.config.run.dry)

    def run(
        self,
        command: list[str],
        env: Mapping[str, str] | None = None,
        warn: bool = False,
        hide: bool = False,
    ) -> Result | None:
        return _run(self._c, command, env=env, warn=warn, hide=hide)

    def query(self, command: list[str]) -> str:
        return _query(self._c, command)

    def which(self, name: str) -> str | None:
        return shutil.which(name)


def _frontend(project: Project) -> Frontend:
    return find_frontend(project.settings.frontend, shutil.which)


def _machine_platform() -> str:
    return envs.machine_platform()


def _env_prefix(c: Context, fe: Frontend, name: str) -> Path | None:
    """The prefix of the env called ``name``, by its real name (lockstep.core.envs), or None."""
    listing = envs.parse_listing(_query(c, commands.info(fe)), _query(c, commands.env_list(fe)), fe)
    return listing.prefix_of(name)


def _engine(c: Context, project: Project, command: list[str]) -> None:
    """Run the env engine (lockstep.core.engine): the package on its path, its exit code kept."""
    _run(c, command, env=project.engine_environ())


# --------------------------------------------------------------------------- tasks

_HELP_NAME = "env name (default: env-name in [tool.lockstep])"
_HELP_FRONTEND = "conda, mamba, micromamba or a path to one (default: first on PATH)"
_HELP_VARIANT = "cuda or cpu lock (default: auto, by the NVIDIA driver; see README, Variants)"


@task(
    help={
        "name": _HELP_NAME,
        "frontend": _HELP_FRONTEND,
        "force": "replace an existing env of that name",
    }
)
def env_create(
    c: Context, name: str | None = None, frontend: str | None = None, force: bool = False
) -> None:
    """Create the conda env from environment.yml (first-time setup; solves)."""
    project = _project(c, env_name=name, frontend=frontend)
    spec = project.spec()
    lifecycle.check_spec_for_lock(spec)
    fe = _frontend(project)
    virtual = lifecycle.virtual_packages(project, _machine_platform())
    command = commands.engine_create(
        sys.executable,
        str(project.root),
        fe,
        project.settings.env_name,
        spec.channels,
        spec.specs,
        {"PYTHONNOUSERSITE": "1", **spec.variables},
        virtual,
        force,
    )
    _engine(c, project, command)


@task(
    help={
        "platform": "lock only this platform (default: platforms in [tool.lockstep])",
        "frontend": "executable conda-lock solves with (default: conda, else mamba < 2.6)",
    }
)
def lock(c: Context, platform: str | None = None, frontend: str | None = None) -> None:
    """Solve environment.yml into conda-<platform>.lock with conda-lock; writes only on success."""
    project = _project(c, frontend=frontend, platforms=(platform,) if platform else None)
    cooldown = project.settings.cooldown()
    if cooldown is not None:
        print(f"cooldown: {cooldown.describe()}")
    for target in lifecycle.lock(_Shell(c), project, cooldown):
        print(f"wrote {target.name}")


@task(help={"name": "package name for a new [project] (default: the folder's name)"})
def poetry_init(c: Context, name: str | None = None) -> None:
    """Create or repair pyproject.toml for Poetry, Python range from environment.yml."""
    import tomlkit
    from lockstep.poetryproject import ensure_poetry_project

    project = _project(c)
    pyproject = project.pyproject
    python_range = python_constraint(project.spec())
    project_name = normalize(name or project.root.name)
    if not pyproject.exists():
        _run(c, commands.poetry_init(project_name, python_range))
        if c.config.run.dry:
            return
    old = read_text(pyproject)
    try:
        doc, changes = ensure_poetry_project(tomlkit.parse(old), python_range, project_name)
    except tomlkit.exceptions.ParseError as exc:
        raise _fail(f"{pyproject}: invalid TOML: {exc}; fix the syntax at that line") from None
    if not changes:
        print("pyproject.toml is ready for Poetry; nothing to change")
        return
    for change in changes:
        print(f"pyproject.toml: {change}")
    if not c.config.run.dry:
        atomic_write_text(pyproject, tomlkit.dumps(doc))


@task(
    help={
        "from_env": "read versions from the installed env instead of the lock",
        "name": "env to read with --from-env (default: env-name)",
        "dry_run": "show the change to pyproject.toml and write nothing",
        "no_lock": "do not refresh poetry.lock after pinning",
    }
)
def pin(
    c: Context,
    from_env: bool = False,
    name: str | None = None,
    dry_run: bool = False,
    no_lock: bool = False,
) -> None:
    """Pin the versions conda installs (torch, ...) in pyproject.toml, then refresh poetry.lock."""
    project = _project(c, env_name=name)
    env_name = project.settings.env_name
    table = None
    if from_env:
        prefix = _env_prefix(c, _frontend(project), env_name)
        if prefix is None:
            raise _fail(f"env '{env_name}' not found; create it with `invoke reproduce`")
        from lockstep.core.condameta import distribution_names, read_conda_meta
        from lockstep.core.names import mapping_for

        records = read_conda_meta(Path(prefix)).values()
        source: PinSource = [(r.name, r.version) for r in records]
        table = mapping_for(distribution_names(records))
    else:
        platform = project.settings.platforms[0]
        source = read_explicit(project.lock_path(platform), platform)
    change = lifecycle.pin(_Shell(c), project, source, table, dry_run=dry_run, no_lock=no_lock)
    if dry_run or c.config.run.dry:
        print(change.diff or "pins are up to date")
    elif change.diff:
        print(change.diff)


@task(
    help={
        "name": _HELP_NAME,
        "frontend": _HELP_FRONTEND,
        "force": "delete an existing env first instead of keeping it until the new one is built",
        "locked": "refuse when there is no conda lock, instead of locking first (CI, images)",
        "variant": _HELP_VARIANT,
        "bundle": "install offline from this folder (`invoke bundle`), no channel or index",
    }
)
def reproduce(
    c: Context,
    name: str | None = None,
    frontend: str | None = None,
    force: bool = False,
    locked: bool = False,
    variant: str | None = None,
    bundle: str | None = None,
) -> None:
    """Recreate the exact env from conda-<platform>.lock and poetry.lock (no solve).

    With no conda lock yet (a fresh clone), locks and pins first, then builds; --locked refuses.
    """
    project = _project(c, env_name=name, frontend=frontend)
    fe = _frontend(project)
    lock_path = project.lock_path(_machine_platform())
    made = not lock_path.exists() and not locked and not bundle
    if made:
        print(f"lockstep: no {lock_path.name} yet: locking environment.yml, then pinning")
        lock(c, frontend=frontend)
        pin(c)
    request = commands.ReproduceRequest(
        str(project.root),
        name=project.settings.env_name,
        frontend=fe.path,
        force=force,
        locked=locked,
        variant=variant or None,
        bundle=str(Path(bundle).absolute()) if bundle else None,
    )
    command = commands.engine_reproduce(sys.executable, request)
    _engine(c, project, command)
    if made and not c.config.run.dry:
        locks = [lock_path.name]
        if project.settings.has_cpu_variant:
            locks.append(project.cpu_lock_path(_machine_platform()).name)
        files = f"{', '.join(locks)}, pyproject.toml and {project.settings.poetry_lock_file}"
        print(f"lockstep: first locks made: commit {files}")


@task(
    help={
        "name": _HELP_NAME,
        "frontend": _HELP_FRONTEND,
        "dry_run": "solve and report what would change; write and rebuild nothing",
        "variant": _HELP_VARIANT,
    }
)
def update(
    c: Context,
    name: str | None = None,
    frontend: str | None = None,
    dry_run: bool = False,
    variant: str | None = None,
) -> None:
    """Re-lock, rebuild the env from the new lock, refresh Poetry's side, report what changed."""
    project = _project(c, env_name=name, frontend=frontend)
    spec = project.spec()
    platform = _machine_platform()
    fe = _frontend(project)
    report = lifecycle.update(
        _Shell(c), project, spec, fe, sys.executable, platform, dry_run, variant or None
    )
    if report is not None:
        print(report)


@task(
    help={
        "name": _HELP_NAME,
        "frontend": _HELP_FRONTEND,
        "allow_cpu": "exit 0 on a machine without a CUDA device",
        "json": "print the report as JSON",
    }
)
def verify_gpu(
    c: Context,
    name: str | None = None,
    frontend: str | None = None,
    allow_cpu: bool = False,
    json: bool = False,
) -> None:
    """Run the PyTorch CUDA sanity check (lockstep.gpu) inside the env."""
    project = _project(c, env_name=name, frontend=frontend)
    fe = _frontend(project)
    extra = (["--allow-cpu"] if allow_cpu else []) + (["--json"] if json else [])
    cuda_lock = project.lock_path(_machine_platform())
    if cuda_lock.is_file():  # the variant installed, and whether the driver runs the CUDA lock
        extra += ["--cuda-lock", str(cuda_lock)]
    command = commands.verify_gpu(fe, project.settings.env_name, extra)
    _run(c, command, env=project.engine_environ())


@task(help={"name": _HELP_NAME, "frontend": _HELP_FRONTEND})
def test(c: Context, name: str | None = None, frontend: str | None = None) -> None:
    """Run your tests (tests/) inside the env, where torch is; `invoke test -- -k NAME`."""
    project = _project(c, env_name=name, frontend=frontend)
    fe = _frontend(project)
    env_name = project.settings.env_name
    if _env_prefix(c, fe, env_name) is None:
        raise _fail(f"env '{env_name}' not found; run `make reproduce` first")
    # After a standalone `--`: pytest's own options, split as a shell would, never run by one.
    pytest_args = shlex.split(getattr(c, "remainder", "") or "")
    # Nothing of the tooling on the paths (no PYTHONPATH, not .venv/bin on PATH): the tests see
    # what the env holds, as the user's code does.
    command = commands.user_tests(fe, env_name, str(project.root), pytest_args)
    _run(c, command, env={"PATH": os.environ.get("PATH", "")})


@task(
    help={
        "name": "your project's name, PEP 508 style (e.g. my-project); also the env name",
        "env_name": "conda env name (default: the project name)",
        "description": "one-line [project] description (default: the starter's is replaced)",
        "dry_run": "show the diff and write nothing",
    }
)
def rename(
    c: Context,
    name: str,
    env_name: str | None = None,
    description: str | None = None,
    dry_run: bool = False,
) -> None:
    """Make the starter yours: package (src/ and its imports), project and env name, README."""
    from lockstep import rename as renaming

    root = _root(c)
    files = {p: read_text(root / p) for p in renaming.RENAMED_FILES if (root / p).is_file()}
    code, package_folders = renaming.read_code(root)
    plan = renaming.plan_project_rename(files, code, package_folders, name, env_name, description)
    if not plan:
        print(f"the project is already named {name!r}; nothing to change")
        return
    for old, new in plan.moves:
        print(f"move {old}/ -> {new}/")
    for change in plan.changes:
        print(text_diff(change.old, change.new, change.path), end="")
    if dry_run or c.config.run.dry:
        return
    renaming.apply(root, plan)
    for old, new in plan.moves:
        print(f"moved {old}/ to {new}/")
    for change in plan.changes:
        print(f"wrote {change.path}")
    print("next: `make reproduce` builds the env under its new name (the old env is left as is)")


@task(
    help={
        "image": "image name[:tag] (default: env-name in [tool.lockstep])",
        "name": _HELP_NAME,
    }
)
def docker_build(c: Context, image: str | None = None, name: str | None = None) -> None:
    """Build the image from the lock files (Dockerfile; needs docker and conda-linux-64.lock)."""
    project = _project(c, env_name=name)
    # Only the build arguments that are set: an empty FRONTEND would replace the Dockerfile's.
    passed = [arg for arg in commands.DOCKER_BUILD_ARGS if os.environ.get(arg)]
    tag = image or project.settings.env_name
    _run(c, commands.docker_build(tag, passed, str(project.root)))


def _report(
    tool: str, findings: list[Any], as_json: bool, extra: Mapping[str, Any] | None = None
) -> None:
    """Print findings as a table or JSON; exit 1 unless there are none (pre-commit, CI)."""
    from lockstep.findings import to_json, to_table

    print(to_json(tool, findings, extra) if as_json else to_table(tool, findings))
    if findings:
        raise Exit(code=1)


@task(help={"json": "print the findings as JSON (stable schema, for CI)"})
def check(c: Context, json: bool = False) -> None:
    """Check the spec files and both locks: stale, conflicting, risky (no solve, no network)."""
    from lockstep import precommit  # the one implementation, also `lockstep-check` (pre-commit)

    text, code = precommit.run(_project(c).root, json)
    print(text)
    if code:
        raise Exit(code=code)


@task(
    help={
        "name": "env to examine (default: env-name)",
        "prefix": "path of the env to examine instead of --name (no conda needed)",
        "frontend": "conda, mamba or micromamba to find the env (default: first on PATH)",
        "json": "print the findings and the inventory as JSON",
        "no_file_check": "skip hashing conda's installed files against conda-meta",
    }
)
def doctor(
    c: Context,
    name: str | None = None,
    prefix: str | None = None,
    frontend: str | None = None,
    json: bool = False,
    no_file_check: bool = False,
) -> None:
    """Compare the installed env with both locks: who installed what, altered files, user site."""
    from dataclasses import asdict

    project = _project(c, env_name=name, frontend=frontend)
    where, report = _examine(c, project, prefix, check_files=not no_file_check)
    inventory: dict[str, Any] = {
        "prefix": str(where),
        "distributions": [asdict(d) for d in report.distributions],
    }
    if report.file_check is not None:
        inventory["file_check"] = asdict(report.file_check)
    _report("doctor", report.findings, json, inventory)


def _examine(c: Context, project: Project, prefix: str | None, check_files: bool) -> Any:
    """doctor's examination of the project's env (or the env at ``prefix``): (prefix, report)."""
    from lockstep.doctor import examine

    env_name = project.settings.env_name
    if prefix is None:
        found = _env_prefix(c, _frontend(project), env_name)
        if found is None:
            raise _fail(f"env '{env_name}' not found; create it with `invoke reproduce`")
        prefix = str(found)
    where = Path(prefix)
    if not (where / "conda-meta").is_dir():
        raise _fail(f"{prefix}: not a conda env (no conda-meta); pass the env's prefix")
    platform = _machine_platform()
    lock_file = read_explicit(project.lock_path(platform), platform)
    cpu_path = project.cpu_lock_path(platform)
    if project.settings.has_cpu_variant and cpu_path.is_file():
        from lockstep.core.condameta import read_conda_meta
        from lockstep.core.variants import installed_lock

        installed = [(r.name, r.version, r.build) for r in read_conda_meta(where).values()]
        lock_file = installed_lock(installed, [lock_file, read_explicit(cpu_path, platform)])
    poetry_lock = project.poetry_lock
    pyproject = read_toml(project.pyproject)
    locked = read_poetry_lock(poetry_lock, hashes=False) if poetry_lock.exists() else None
    report = examine(
        where,
        lock_file,
        poetry_lock.name,
        locked,
        pyproject,
        project.settings.pin_group,
        check_files=check_files,
    )
    return where, report


@task(
    help={
        "name": _HELP_NAME,
        "frontend": _HELP_FRONTEND,
        "output": "tarball to write (default: <env-name>-<platform>.tar.gz); must not exist",
    }
)
def pack(
    c: Context, name: str | None = None, frontend: str | None = None, output: str | None = None
) -> None:
    """Pack the reproduced env into a relocatable tarball (conda-pack) for nodes with no cache.

    Only an env that doctor calls clean is packed: a tarball spreads whatever the env holds.
    """
    project = _project(c, env_name=name, frontend=frontend)
    env_name = project.settings.env_name
    where, report = _examine(c, project, None, check_files=True)
    if report.findings:
        first = report.findings[0]
        raise _fail(
            f"env '{env_name}' is not clean ({len(report.findings)} doctor findings; first: "
            f"{first.what}); run `invoke doctor` for all, rebuild it with `invoke reproduce`; "
            "nothing was packed"
        )
    target = output or f"{env_name}-{_machine_platform()}.tar.gz"
    if Path(target).exists():
        raise _fail(f"{target} exists; remove it or give another --output; nothing was packed")
    _run(c, commands.conda_pack(sys.executable, str(where), target))
    if not c.config.run.dry:
        print(f"lockstep: packed '{env_name}' into {target}: unpack it anywhere, then run")
        print("  <dir>/bin/python <dir>/bin/conda-unpack   (README: Many machines)")


@task(
    help={
        "source": "a parselmouth compressed_mapping.json (file or URL), repeatable; the first "
        "that names a package wins: give conda-forge's (files/v0/conda-forge/ in "
        "github.com/prefix-dev/parselmouth) first, then pytorch's"
    },
    iterable=["source"],
)
def refresh_names(c: Context, source: list[str]) -> None:
    """Rebuild the bundled conda-to-PyPI name mapping from parselmouth's files."""
    import gzip
    import urllib.request

    from lockstep.core.names import DATA_FILE, render_table, table_from_parselmouth

    if not source:
        raise _fail("give --source FILE-OR-URL (parselmouth's compressed_mapping.json)")
    documents = []
    for item in source:
        try:
            if item.startswith(("http://", "https://")):
                with urllib.request.urlopen(item, timeout=60) as response:
                    documents.append(_json.load(response))
            else:
                documents.append(_json.loads(Path(item).read_text(encoding="utf-8")))
        except (OSError, ValueError) as exc:
            message = f"{item}: cannot read a JSON mapping ({exc}); check the path or URL"
            raise _fail(message) from None
    table = table_from_parselmouth(*documents)
    text = render_table(table, " + ".join(source))
    # mtime=0: the same mapping gives the same bytes, so a refresh without news is no diff.
    data = gzip.compress(text.encode("utf-8"), compresslevel=9, mtime=0)
    target = TOOLING_SRC / "lockstep" / "core" / "data" / DATA_FILE
    if c.config.run.dry:
        print(f"would write {len(table)} names to {target}")
        return
    target.parent.mkdir(exist_ok=True)
    atomic_write_bytes(target, data)
    shown = target.relative_to(TOOLING_SRC.parent.parent)
    print(f"{shown}: {len(table)} conda names with PyPI distributions")


@task(
    help={
        "output": "folder to write (default: bundle); it must not exist yet",
        "tar": "also write the folder as one tar beside it (<output>.tar)",
    }
)
def bundle(c: Context, output: str = "bundle", tar: bool = False) -> None:
    """Fetch every conda archive and wheel of both locks into one folder for offline reproduce."""
    import time

    from lockstep import bundlefetch
    from lockstep.core.plan import read_poetry_side

    project = _project(c)
    platform = _machine_platform()
    lock_path = project.lock_path(platform)
    lock_file = read_explicit(lock_path, platform)
    side = read_poetry_side(project.pyproject, project.poetry_lock, project.settings.pin_group)
    target = Path(output) if Path(output).is_absolute() else Path.cwd() / output
    if c.config.run.dry:
        print(
            f"would write the bundle of {lock_path.name} and {project.poetry_lock.name} to {target}"
        )
        return
    started = time.monotonic()
    made = bundlefetch.make_bundle(
        target,
        platform,
        lock_path,
        lock_file,
        side,
        project.settings.pypi_names,
        lambda command: _run(c, command),
        tar=tar,
    )
    for line in bundlefetch.describe(made, time.monotonic() - started):
        print(line)


@task(
    help={
        "source": "the starter: a URL git can clone or a local clone (never written to a file)",
        "ref": "the starter's commit, tag or branch to take (default: its HEAD)",
        "dry_run": "print the versions and what would change; write nothing",
    }
)
def upgrade(c: Context, source: str, ref: str | None = None, dry_run: bool = False) -> None:
    """Bring a newer starter's tooling (tooling/, tasks.py, Makefile) in; your files stay."""
    import tempfile

    from lockstep.upgrade import fetch_commands, module_command, module_path

    if not source.strip():
        raise _fail("give the starter: --source URL-OR-PATH (make upgrade STARTER=URL-OR-PATH)")
    root, ref = _root(c), ref or "HEAD"
    # The starter's own copy of lockstep.upgrade plans and writes: its fixes apply to the
    # upgrade that brings them (a bare clone, so --ref names what the source names).
    with tempfile.TemporaryDirectory(prefix="lockstep-upgrade-") as scratch:
        for command in fetch_commands(source, ref, Path(scratch)):
            fetched = _run(c, command, warn=True)
            if fetched is not None and fetched.failed:
                raise _fail(
                    f"cannot fetch {ref} of {source} (git's reason is above); give a local "
                    "clone's path or a URL git can clone, and a ref it has; nothing was changed"
                )
        module = module_path(Path(scratch) / "starter")
        if not c.config.run.dry and not module.is_file():
            raise _fail(
                f"{ref} of {source} has no {module.relative_to(Path(scratch) / 'starter')}: that "
                "starter predates `invoke upgrade`; give a newer --ref; nothing was changed"
            )
        done = _run(c, module_command(sys.executable, Path(scratch), root, ref, dry_run), warn=True)
    if done is not None and done.failed:
        raise Exit(code=done.exited)  # the module printed its one line


ns = Collection(
    env_create,
    lock,
    poetry_init,
    pin,
    reproduce,
    update,
    verify_gpu,
    test,
    rename,
    check,
    doctor,
    refresh_names,
    bundle,
    pack,
    docker_build,
    upgrade,
)
ns.configure({"run": {"env": {"PYTHONNOUSERSITE": "1"}}})
