"""The environment lifecycle as invoke tasks (`invoke --list`; `invoke --dry TASK` shows commands).

Layers call one way: Makefile -> tasks.py -> the ``lockstep`` package under src/. The package
parses and computes; this file turns arguments into commands, runs them through one runner that
echoes each, and prints. Settings: task argument > [tool.lockstep] in pyproject.toml > default.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import sys
import tempfile
from collections.abc import Mapping
from contextlib import contextmanager
from pathlib import Path

from invoke import Collection, Context, Exit, Task
from invoke import task as _invoke_task
from invoke.exceptions import CommandTimedOut

ROOT = Path(__file__).resolve().parent
# The package must import before any env exists (first-time setup runs from a bare Python).
sys.path.insert(0, str(ROOT / "src"))

from lockstep import commands, envs  # noqa: E402
from lockstep.errors import LockstepError  # noqa: E402
from lockstep.explicit import ExplicitLock, read_explicit  # noqa: E402
from lockstep.frontend import Frontend, find_frontend, frontend_for_lock  # noqa: E402
from lockstep.fsutil import (  # noqa: E402
    atomic_write_text,
    describe_os_error,
    read_text,
    write_files_atomically,
)

# lockstep.pins (and tomlkit under it) is imported by the tasks that edit pyproject.toml, so that
# `invoke check` and `invoke --list` start without it.
from lockstep.lockdiff import poetry_versions  # noqa: E402
from lockstep.names import normalize  # noqa: E402
from lockstep.pypi import read_poetry_lock  # noqa: E402
from lockstep.report import diff_versions, format_report  # noqa: E402
from lockstep.settings import Settings, load_settings, read_toml  # noqa: E402
from lockstep.spec import EnvSpec, load_env_spec, python_constraint  # noqa: E402

PYPROJECT = ROOT / "pyproject.toml"

# --------------------------------------------------------------------------- helpers


def _fail(message: str) -> Exit:
    return Exit(f"error: {message}", code=1)


@contextmanager
def _one_line():
    """What the user can fix ends in one line and exit 1, never in a traceback."""
    try:
        yield
    except LockstepError as exc:
        raise _fail(str(exc)) from None
    except OSError as exc:
        raise _fail(describe_os_error(exc)) from None


class _Task(Task):
    def __call__(self, *args, **kwargs):
        with _one_line():
            return super().__call__(*args, **kwargs)


def task(*args, **kwargs):
    """invoke's @task, with every task body run under _one_line."""
    return _invoke_task(*args, klass=_Task, **kwargs)


def _settings(**overrides: object) -> Settings:
    """[tool.lockstep] with the task's arguments; an empty argument means unset (make passes its
    variables whether set or not)."""
    given = {key: value for key, value in overrides.items() if value != ""}
    try:
        return load_settings(ROOT, **given)
    except LockstepError as exc:
        raise _fail(str(exc)) from None


def _run(c: Context, command: list[str], env: dict[str, str] | None = None, **kwargs: object):
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
    try:
        limit = envs.query_timeout()
        result = c.run(shlex.join(command), hide=True, warn=True, dry=False, timeout=limit)
    except CommandTimedOut:
        raise _fail(
            f"`{shlex.join(command)}` did not answer in {limit:g} s; the frontend hangs: fix it, "
            f"or raise {envs.QUERY_TIMEOUT_VAR}; nothing was changed"
        ) from None
    except LockstepError as exc:
        raise _fail(str(exc)) from None
    if result is None or result.failed:
        detail = (result.stderr or result.stdout).strip() if result else ""
        raise _fail(f"`{shlex.join(command)}` failed: {detail.splitlines()[-1:] or ''}")
    return result.stdout


def _frontend(settings: Settings) -> Frontend:
    try:
        return find_frontend(settings.frontend, shutil.which)
    except LockstepError as exc:
        raise _fail(str(exc)) from None


def _lock_frontend(c: Context, settings: Settings) -> Frontend:
    names = [settings.frontend] if settings.frontend != "auto" else ["conda", "mamba", "micromamba"]
    available: dict[str, str] = {}
    for name in names:
        path = shutil.which(name)
        if path:
            available[Path(name).name.split(".")[0]] = path
    versions = {
        kind: _query(c, [path, "--version"]) for kind, path in available.items() if kind != "conda"
    }
    try:
        return frontend_for_lock(available, versions)
    except LockstepError as exc:
        raise _fail(str(exc)) from None


def _machine_platform() -> str:
    return envs.machine_platform()


def _env_prefix(c: Context, fe: Frontend, name: str) -> Path | None:
    """The prefix of the env called ``name``, by its real name (lockstep.envs), or None."""
    try:
        listing = envs.parse_listing(
            _query(c, commands.info(fe)), _query(c, commands.env_list(fe)), fe
        )
    except LockstepError as exc:
        raise _fail(str(exc)) from None
    return listing.prefix_of(name)


def _engine(c: Context, command: list[str]) -> None:
    """Run the env engine (lockstep.engine): the package on its path, its exit code kept."""
    _run(c, command, env={"PYTHONPATH": str(ROOT / "src")})


def _spec(settings: Settings) -> EnvSpec:
    try:
        return load_env_spec(ROOT / settings.environment_file)
    except LockstepError as exc:
        raise _fail(str(exc)) from None


def _check_spec_for_lock(spec: EnvSpec) -> None:
    if spec.pip:
        raise _fail(
            f"{spec.path}: a 'pip:' section cannot go into an explicit lock; move those "
            "packages to pyproject.toml (`poetry add NAME`)"
        )


def _read_lock(path: Path, platform: str | None = None) -> ExplicitLock:
    try:
        return read_explicit(path, platform)
    except LockstepError as exc:
        raise _fail(str(exc)) from None


def _conda_versions(lock: ExplicitLock | None) -> dict[str, str]:
    return {e.name: e.version for e in lock.entries} if lock else {}


def _solve(c: Context, settings: Settings, spec: EnvSpec, out_dir: Path) -> dict[str, Path]:
    """Run conda-lock into ``out_dir``; returns platform -> written lock."""
    _check_spec_for_lock(spec)
    vp_file = ROOT / settings.virtual_packages_file
    if not vp_file.is_file():
        raise _fail(f"{vp_file}: not found; it lists the virtual packages (__cuda, __glibc, ...)")
    fe = _lock_frontend(c, settings)
    template = str(out_dir / Path(settings.lock_file_template).name)
    result = _run(
        c,
        commands.conda_lock(
            fe, str(ROOT / settings.environment_file), str(vp_file), settings.platforms, template
        ),
        warn=True,
    )
    if result is not None and result.failed:
        raise _fail(
            "conda-lock could not solve environment.yml (its reason is above); "
            "no lock file was changed"
        )
    return {p: out_dir / Path(settings.lock_file(p)).name for p in settings.platforms}


PinSource = ExplicitLock | list[tuple[str, str]]


def _pin_text(
    settings: Settings,
    pyproject_text: str,
    source: PinSource,
    poetry_lock: Path,
    table: Mapping[str, tuple[str, ...]] | None = None,
) -> str:
    """pyproject.toml's text with the pins that ``source`` (a lock or an env's list) calls for;
    ``table`` is the name mapping (an env's conda-meta over the bundled one)."""
    if isinstance(source, ExplicitLock):
        entries = [(e.name, e.version) for e in source.entries]
    else:
        entries = source
    from lockstep.pins import apply_pins, desired_pins

    pins = desired_pins(
        entries,
        _spec(settings),
        poetry_versions(poetry_lock),
        settings.pypi_names,
        settings.pin_extra,
        table,
    )
    return apply_pins(pyproject_text, pins, settings.pin_group)


def _poetry_lock_in(c: Context, directory: Path) -> None:
    # No throwaway virtualenv per scratch folder: locking needs none.
    env = {"POETRY_VIRTUALENVS_CREATE": "false"}
    result = _run(c, commands.poetry("lock", directory=str(directory)), env=env, warn=True)
    if result is not None and result.failed:
        raise _fail("`poetry lock` failed; pyproject.toml and poetry.lock were left as they were")


# --------------------------------------------------------------------------- tasks

_HELP_NAME = "env name (default: env-name in [tool.lockstep])"
_HELP_FRONTEND = "conda, mamba, micromamba or a path to one (default: first on PATH)"


@task(
    help={
        "name": _HELP_NAME,
        "frontend": _HELP_FRONTEND,
        "force": "replace an existing env of that name",
    }
)
def env_create(c, name=None, frontend=None, force=False):
    """Create the conda env from environment.yml (first-time setup; solves)."""
    settings = _settings(env_name=name, frontend=frontend)
    spec = _spec(settings)
    if spec.pip:
        _check_spec_for_lock(spec)
    fe = _frontend(settings)
    virtual = _virtual_packages(settings, _machine_platform())
    command = commands.engine_create(
        sys.executable,
        str(ROOT),
        fe,
        settings.env_name,
        spec.channels,
        spec.specs,
        {"PYTHONNOUSERSITE": "1", **spec.variables},
        virtual,
        force,
    )
    _engine(c, command)


def _virtual_packages(settings: Settings, platform: str) -> dict[str, str]:
    """virtual-packages.yml's packages for ``platform`` (conda reads them only as overrides)."""
    from lockstep.spec import load_yaml

    path = ROOT / settings.virtual_packages_file
    if not path.is_file():
        return {}
    try:
        data = load_yaml(path) or {}
    except LockstepError as exc:
        raise _fail(str(exc)) from None
    packages = ((data.get("subdirs") or {}).get(platform) or {}).get("packages") or {}
    return {str(k): str(v) for k, v in packages.items()}


@task(
    help={
        "platform": "lock only this platform (default: platforms in [tool.lockstep])",
        "frontend": "executable conda-lock solves with (default: conda, else mamba < 2.6)",
    }
)
def lock(c, platform=None, frontend=None):
    """Solve environment.yml into conda-<platform>.lock with conda-lock; writes only on success."""
    settings = _settings(frontend=frontend, platforms=(platform,) if platform else None)
    spec = _spec(settings)
    with tempfile.TemporaryDirectory(prefix="lockstep-lock-") as tmp:
        written = _solve(c, settings, spec, Path(tmp))
        if c.config.run.dry:
            return
        new = {ROOT / settings.lock_file(p): read_text(path) for p, path in written.items()}
        write_files_atomically(new)
        for target in new:
            print(f"wrote {target.name}")


@task(help={"name": "package name for a new [project] (default: the folder's name)"})
def poetry_init(c, name=None):
    """Create or repair pyproject.toml for Poetry, Python range from environment.yml."""
    import tomlkit

    from lockstep.pins import ensure_poetry_project

    settings = _settings()
    python_range = python_constraint(_spec(settings))
    project_name = normalize(name or ROOT.name)
    if not PYPROJECT.exists():
        _run(c, commands.poetry_init(project_name, python_range))
        if c.config.run.dry:
            return
    old = read_text(PYPROJECT)
    try:
        doc, changes = ensure_poetry_project(tomlkit.parse(old), python_range, project_name)
    except tomlkit.exceptions.ParseError as exc:
        raise _fail(f"{PYPROJECT}: invalid TOML: {exc}; fix the syntax at that line") from None
    if not changes:
        print("pyproject.toml is ready for Poetry; nothing to change")
        return
    for change in changes:
        print(f"pyproject.toml: {change}")
    if not c.config.run.dry:
        atomic_write_text(PYPROJECT, tomlkit.dumps(doc))


@task(
    help={
        "from_env": "read versions from the installed env instead of the lock",
        "name": "env to read with --from-env (default: env-name)",
        "dry_run": "show the change to pyproject.toml and write nothing",
        "no_lock": "do not refresh poetry.lock after pinning",
    }
)
def pin(c, from_env=False, name=None, dry_run=False, no_lock=False):
    """Pin the versions conda installs (torch, ...) in pyproject.toml, then refresh poetry.lock."""
    from lockstep.pins import text_diff

    settings = _settings(env_name=name)
    platform = _machine_platform() if from_env else settings.platforms[0]
    if from_env:
        fe = _frontend(settings)
        prefix = _env_prefix(c, fe, settings.env_name)
        if prefix is None:
            raise _fail(f"env '{settings.env_name}' not found; create it with `invoke reproduce`")
        from lockstep.doctor import read_conda_meta
        from lockstep.names import mapping_for, names_from_conda_meta

        records = read_conda_meta(Path(prefix)).values()
        source: PinSource = [(r.name, r.version) for r in records]
        table = mapping_for(names_from_conda_meta((r.name, r.files) for r in records))
    else:
        source = _read_lock(ROOT / settings.lock_file(platform))
        table = None
    poetry_lock = ROOT / settings.poetry_lock_file
    old = read_text(PYPROJECT)
    new = _pin_text(settings, old, source, poetry_lock, table)
    diff = text_diff(old, new, "pyproject.toml")
    if dry_run or c.config.run.dry:
        print(diff or "pins are up to date")
        return
    if diff:
        print(diff)
    if no_lock:
        if diff:
            atomic_write_text(PYPROJECT, new)
        return
    with tempfile.TemporaryDirectory(prefix="lockstep-pin-") as tmp:
        project = _scratch_project(settings, old, Path(tmp) / "project")
        _pin_and_lock(c, settings, source, project, table)
        write_files_atomically(
            {
                PYPROJECT: read_text(project / "pyproject.toml"),
                poetry_lock: read_text(project / "poetry.lock"),
            }
        )


def _pin_and_lock(
    c: Context,
    settings: Settings,
    source: PinSource,
    project: Path,
    table: Mapping[str, tuple[str, ...]] | None = None,
) -> None:
    """Pin, then lock with Poetry, in a scratch ``project`` holding pyproject.toml (+ poetry.lock).

    Locking can bring in packages that conda also provides (torch's filelock, say): those are
    pinned too and Poetry locks once more, so both locks agree on one version of each.
    """
    pyproject = project / "pyproject.toml"
    for round_number in range(2):
        text = pyproject.read_text(encoding="utf-8")
        pinned = _pin_text(settings, text, source, project / "poetry.lock", table)
        if round_number and pinned == text:
            return
        pyproject.write_text(pinned, encoding="utf-8")
        _poetry_lock_in(c, project)


def _scratch_project(settings: Settings, pyproject_text: str, into: Path) -> Path:
    """A copy of pyproject.toml and poetry.lock for Poetry to work on without touching ours."""
    into.mkdir()
    (into / "pyproject.toml").write_text(pyproject_text, encoding="utf-8")
    poetry_lock = ROOT / settings.poetry_lock_file
    if poetry_lock.exists():
        shutil.copyfile(poetry_lock, into / "poetry.lock")
    return into


@task(
    help={
        "name": _HELP_NAME,
        "frontend": _HELP_FRONTEND,
        "force": "delete an existing env first instead of keeping it until the new one is built",
        "locked": "refuse when there is no conda lock, instead of locking first (CI, images)",
    }
)
def reproduce(c, name=None, frontend=None, force=False, locked=False):
    """Recreate the exact env from conda-<platform>.lock and poetry.lock (no solve).

    With no conda lock yet (a fresh clone), locks and pins first, then builds; --locked refuses.
    """
    settings = _settings(env_name=name, frontend=frontend)
    fe = _frontend(settings)
    lock_path = ROOT / settings.lock_file(_machine_platform())
    if not lock_path.exists() and not locked:
        print(f"lockstep: no {lock_path.name} yet: locking environment.yml, then pinning")
        lock(c, frontend=frontend)
        pin(c)
        made = True
    else:
        made = False
    command = commands.engine_reproduce(
        sys.executable, str(ROOT), fe, settings.env_name, force=force, locked=locked
    )
    _engine(c, command)
    if made and not c.config.run.dry:
        files = f"{lock_path.name}, pyproject.toml and {settings.poetry_lock_file}"
        print(f"lockstep: first locks made: commit {files}")


@task(
    help={
        "name": _HELP_NAME,
        "frontend": _HELP_FRONTEND,
        "dry_run": "solve and report what would change; write and rebuild nothing",
    }
)
def update(c, name=None, frontend=None, dry_run=False):
    """Re-lock, rebuild the env from the new lock, refresh Poetry's side, report what changed."""
    settings = _settings(env_name=name, frontend=frontend)
    spec = _spec(settings)
    platform = _machine_platform()
    lock_path = ROOT / settings.lock_file(platform)
    poetry_lock = ROOT / settings.poetry_lock_file
    fe = _frontend(settings)
    if not dry_run:
        # An update killed half-way is undone first, so what is read below is what was there.
        _engine(c, commands.engine_recover(sys.executable, str(ROOT), fe, settings.env_name))
    old_lock = _read_lock(lock_path) if lock_path.exists() else None
    old_pypi = poetry_versions(poetry_lock)
    with tempfile.TemporaryDirectory(prefix="lockstep-update-") as tmp:
        scratch = Path(tmp)
        settings_here = settings.with_overrides(platforms=(platform,))
        new_lock_path = _solve(c, settings_here, spec, scratch)[platform]
        if c.config.run.dry:
            return
        new_lock = _read_lock(new_lock_path, platform)
        project = _scratch_project(settings, PYPROJECT.read_text("utf-8"), scratch / "project")
        _pin_and_lock(c, settings, new_lock, project)
        changes = diff_versions(_conda_versions(old_lock), _conda_versions(new_lock), "conda")
        changes += diff_versions(old_pypi, poetry_versions(project / "poetry.lock"), "pypi")
        if dry_run:
            print(format_report(changes))
            return
        # The engine rebuilds the env from the new locks and writes the three files with it:
        # all of it, or (any failure, any signal) none of it.
        new_pyproject, new_poetry_lock = project / "pyproject.toml", project / "poetry.lock"
        command = commands.engine_reproduce(
            sys.executable,
            str(ROOT),
            fe,
            settings.env_name,
            conda_lock=str(new_lock_path),
            poetry_lock=str(new_poetry_lock),
            pyproject=str(new_pyproject),
            commit=[
                (str(lock_path), str(new_lock_path)),
                (str(PYPROJECT), str(new_pyproject)),
                (str(poetry_lock), str(new_poetry_lock)),
            ],
        )
        _engine(c, command)
        print(format_report(changes))


@task(
    help={
        "name": _HELP_NAME,
        "frontend": _HELP_FRONTEND,
        "allow_cpu": "exit 0 on a machine without a CUDA device",
        "json": "print the report as JSON",
    }
)
def verify_gpu(c, name=None, frontend=None, allow_cpu=False, json=False):  # noqa: A002
    """Run the PyTorch CUDA sanity check (lockstep.gpu) inside the env."""
    settings = _settings(env_name=name, frontend=frontend)
    fe = _frontend(settings)
    extra = (["--allow-cpu"] if allow_cpu else []) + (["--json"] if json else [])
    _run(
        c, commands.verify_gpu(fe, settings.env_name, extra), env={"PYTHONPATH": str(ROOT / "src")}
    )


@task(
    help={
        "name": "your project's name, PEP 508 style (e.g. my-project); also the env name",
        "env_name": "conda env name (default: the project name)",
        "description": "one-line [project] description (default: the starter's is replaced)",
        "dry_run": "show the diff and write nothing",
    }
)
def rename(c, name, env_name=None, description=None, dry_run=False):
    """Make the starter yours: project name and description, env name, README title."""
    from lockstep.pins import text_diff
    from lockstep.rename import RENAMED_FILES, plan_rename

    files = {p: read_text(ROOT / p) for p in RENAMED_FILES if (ROOT / p).is_file()}
    changes = plan_rename(files, name, env_name, description)
    if not changes:
        print(f"the project is already named {name!r}; nothing to change")
        return
    for change in changes:
        print(text_diff(change.old, change.new, change.path), end="")
    if dry_run or c.config.run.dry:
        return
    write_files_atomically({ROOT / change.path: change.new for change in changes})
    for change in changes:
        print(f"wrote {change.path}")
    print("next: `make reproduce` builds the env under its new name (the old env is left as is)")


def _report(tool: str, findings: list, as_json: bool, extra: dict | None = None) -> None:
    """Print findings as a table or JSON; exit 1 unless there are none (pre-commit, CI)."""
    from lockstep.findings import to_json, to_table

    print(to_json(tool, findings, extra) if as_json else to_table(tool, findings))
    if findings:
        raise Exit(code=1)


@task(help={"json": "print the findings as JSON (stable schema, for CI)"})
def check(c, json=False):  # noqa: A002
    """Check the spec files and both locks: stale, conflicting, risky (no solve, no network)."""
    from lockstep import checkcli  # the one implementation, also `lockstep-check` (pre-commit)

    text, code = checkcli.run(ROOT, json)
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
def doctor(c, name=None, prefix=None, frontend=None, json=False, no_file_check=False):  # noqa: A002
    """Compare the installed env with both locks: who installed what, altered files, user site."""
    from dataclasses import asdict

    from lockstep.doctor import doctor as examine

    settings = _settings(env_name=name, frontend=frontend)
    if prefix is None:
        prefix = _env_prefix(c, _frontend(settings), settings.env_name)
        if prefix is None:
            raise _fail(f"env '{settings.env_name}' not found; create it with `invoke reproduce`")
    if not (Path(prefix) / "conda-meta").is_dir():
        raise _fail(f"{prefix}: not a conda env (no conda-meta); pass the env's prefix")
    platform = _machine_platform()
    lock = _read_lock(ROOT / settings.lock_file(platform), platform)
    poetry_lock = ROOT / settings.poetry_lock_file
    try:
        pyproject = read_toml(PYPROJECT)
        locked = read_poetry_lock(poetry_lock, hashes=False) if poetry_lock.exists() else None
    except LockstepError as exc:
        raise _fail(str(exc)) from None
    report = examine(
        Path(prefix),
        lock,
        poetry_lock.name,
        locked,
        pyproject,
        settings.pin_group,
        check_files=not no_file_check,
    )
    inventory = {"prefix": str(prefix), "distributions": [asdict(d) for d in report.distributions]}
    if report.file_check is not None:
        inventory["file_check"] = asdict(report.file_check)
    _report("doctor", report.findings, json, inventory)


@task(
    help={
        "source": "a parselmouth compressed_mapping.json (file or URL), repeatable; the first "
        "that names a package wins: give conda-forge's (files/v0/conda-forge/ in "
        "github.com/prefix-dev/parselmouth) first, then pytorch's"
    },
    iterable=["source"],
)
def refresh_names(c, source):
    """Rebuild the bundled conda-to-PyPI name mapping from parselmouth's files."""
    import gzip
    import os
    import urllib.request

    from lockstep.names import DATA_FILE, render_table, table_from_parselmouth

    if not source:
        raise _fail("give --source FILE-OR-URL (parselmouth's compressed_mapping.json)")
    documents = []
    for item in source:
        try:
            if item.startswith(("http://", "https://")):
                with urllib.request.urlopen(item, timeout=60) as response:  # noqa: S310
                    documents.append(json.load(response))
            else:
                documents.append(json.loads(Path(item).read_text(encoding="utf-8")))
        except (OSError, ValueError) as exc:
            message = f"{item}: cannot read a JSON mapping ({exc}); check the path or URL"
            raise _fail(message) from None
    table = table_from_parselmouth(*documents)
    text = render_table(table, " + ".join(source))
    # mtime=0: the same mapping gives the same bytes, so a refresh without news is no diff.
    data = gzip.compress(text.encode("utf-8"), compresslevel=9, mtime=0)
    target = ROOT / "src" / "lockstep" / "data" / DATA_FILE
    if c.config.run.dry:
        print(f"would write {len(table)} names to {target}")
        return
    target.parent.mkdir(exist_ok=True)
    partial = target.with_name(f".{target.name}.tmp")
    partial.write_bytes(data)
    os.replace(partial, target)
    print(f"{target.relative_to(ROOT)}: {len(table)} conda names with PyPI distributions")


ns = Collection(
    env_create,
    lock,
    poetry_init,
    pin,
    reproduce,
    update,
    verify_gpu,
    rename,
    check,
    doctor,
    refresh_names,
)
ns.configure({"run": {"env": {"PYTHONNOUSERSITE": "1"}}})
