"""The lifecycle steps that change the project's files: lock, pin and update.

Each step works on a :class:`Project` (its folder and its settings) and reaches the shell only
through a :class:`Shell` the caller passes in (tasks.py adapts invoke's Context), so a test
swaps the shell and asserts the exact commands. Files are written atomically, all or none; a
failure raises LockstepError with one line saying what to do, and changes nothing.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

from lockstep.core import commands
from lockstep.core.errors import LockstepError
from lockstep.core.explicit import ExplicitLock, read_explicit
from lockstep.core.frontend import FRONTENDS, Frontend, frontend_for_lock, kind_of
from lockstep.core.fsutil import read_text, text_diff, write_files_atomically
from lockstep.core.settings import Settings, load_settings
from lockstep.lockdiff import diff_versions, format_report, poetry_versions
from lockstep.spec import EnvSpec, load_env_spec, load_yaml

PYPROJECT = "pyproject.toml"

# What `pin` reads versions from: a conda lock, or (name, version) pairs of an installed env.
PinSource = ExplicitLock | list[tuple[str, str]]
# conda name -> the PyPI distributions it ships (lockstep.core.names.mapping_for).
NameTable = Mapping[str, tuple[str, ...]]


class Ran(Protocol):
    """What is left of a command that ran: whether it failed (invoke's Result is one)."""

    @property
    def failed(self) -> bool: ...


class Shell(Protocol):
    """The one way out to the shell, as the lifecycle needs it."""

    @property
    def dry(self) -> bool:
        """Commands are shown, not run (``invoke --dry``)."""
        ...

    def run(
        self, command: list[str], env: Mapping[str, str] | None = None, warn: bool = False
    ) -> Ran | None:
        """Run an argument list, echoed; ``warn``: a failure is returned, not raised."""
        ...

    def query(self, command: list[str]) -> str:
        """A read-only command's stdout; it runs even under --dry."""
        ...

    def which(self, name: str) -> str | None:
        """The path of an executable on PATH."""
        ...


@dataclass(frozen=True)
class Project:
    """A project folder and its settings ([tool.lockstep] of its pyproject.toml, arguments)."""

    root: Path
    settings: Settings

    @classmethod
    def load(cls, root: Path, **overrides: Any) -> Project:
        """The project in ``root``; an empty or None override means unset (make passes its
        variables whether set or not)."""
        given = {k: v for k, v in overrides.items() if v is not None and v != ""}
        return cls(root, load_settings(root, **given))

    def with_overrides(self, **overrides: Any) -> Project:
        return replace(self, settings=self.settings.with_overrides(**overrides))

    @property
    def pyproject(self) -> Path:
        return self.root / PYPROJECT

    @property
    def poetry_lock(self) -> Path:
        return self.root / self.settings.poetry_lock_file

    @property
    def environment_file(self) -> Path:
        return self.root / self.settings.environment_file

    @property
    def virtual_packages_file(self) -> Path:
        return self.root / self.settings.virtual_packages_file

    def lock_path(self, platform: str) -> Path:
        return self.root / self.settings.lock_file(platform)

    def spec(self) -> EnvSpec:
        return load_env_spec(self.environment_file)

    def engine_environ(self) -> dict[str, str]:
        """What the env engine (lockstep.core.engine) runs with: the project's package."""
        return {"PYTHONPATH": str(self.root / "src")}


# --------------------------------------------------------------------------- reading


def check_spec_for_lock(spec: EnvSpec) -> None:
    if spec.pip:
        raise LockstepError(
            f"{spec.path}: a 'pip:' section cannot go into an explicit lock; move those "
            "packages to pyproject.toml (`poetry add NAME`)"
        )


def virtual_packages(project: Project, platform: str) -> dict[str, str]:
    """virtual-packages.yml's packages for ``platform`` (conda reads them only as overrides)."""
    path = project.virtual_packages_file
    if not path.is_file():
        return {}
    data = load_yaml(path) or {}
    packages = ((data.get("subdirs") or {}).get(platform) or {}).get("packages") or {}
    return {str(k): str(v) for k, v in packages.items()}


def conda_versions(lock: ExplicitLock | None) -> dict[str, str]:
    return {e.name: e.version for e in lock.entries} if lock else {}


def lock_frontend(shell: Shell, settings: Settings) -> Frontend:
    """The executable conda-lock solves with (lockstep.core.frontend.frontend_for_lock)."""
    names = [settings.frontend] if settings.frontend != "auto" else list(FRONTENDS)
    available: dict[str, str] = {}
    for name in names:
        path = shell.which(name)
        if path:
            available[kind_of(name)] = path
    versions = {
        kind: shell.query([path, "--version"])
        for kind, path in available.items()
        if kind != "conda"
    }
    return frontend_for_lock(available, versions)


# --------------------------------------------------------------------------- lock


def solve(shell: Shell, project: Project, spec: EnvSpec, out_dir: Path) -> dict[str, Path]:
    """Run conda-lock into ``out_dir``; returns platform -> written lock."""
    check_spec_for_lock(spec)
    settings = project.settings
    vp_file = project.virtual_packages_file
    if not vp_file.is_file():
        raise LockstepError(
            f"{vp_file}: not found; it lists the virtual packages (__cuda, __glibc, ...)"
        )
    fe = lock_frontend(shell, settings)
    template = str(out_dir / Path(settings.lock_file_template).name)
    command = commands.conda_lock(
        fe, str(project.environment_file), str(vp_file), settings.platforms, template
    )
    result = shell.run(command, warn=True)
    if result is not None and result.failed:
        raise LockstepError(
            "conda-lock could not solve environment.yml (its reason is above); "
            "no lock file was changed"
        )
    return {p: out_dir / Path(settings.lock_file(p)).name for p in settings.platforms}


def lock(shell: Shell, project: Project) -> list[Path]:
    """Solve environment.yml into the conda locks; returns the files written (none under
    --dry), all of them or, on any failure, none."""
    spec = project.spec()
    with tempfile.TemporaryDirectory(prefix="lockstep-lock-") as tmp:
        written = solve(shell, project, spec, Path(tmp))
        if shell.dry:
            return []
        new = {project.lock_path(p): read_text(path) for p, path in written.items()}
        write_files_atomically(new)
    return list(new)


# --------------------------------------------------------------------------- pin


def pin_text(
    project: Project,
    pyproject_text: str,
    source: PinSource,
    poetry_lock: Path,
    table: NameTable | None = None,
) -> str:
    """pyproject.toml's text with the pins that ``source`` calls for; ``table`` is the name
    mapping (an env's conda-meta over the bundled one)."""
    # Here, not at the top: tomlkit loads only for the steps that edit pyproject.toml.
    from lockstep.pins import apply_pins, desired_pins

    if isinstance(source, ExplicitLock):
        entries = [(e.name, e.version) for e in source.entries]
    else:
        entries = source
    settings = project.settings
    pins = desired_pins(
        entries,
        project.spec(),
        poetry_versions(poetry_lock),
        settings.pypi_names,
        settings.pin_extra,
        table,
    )
    return apply_pins(pyproject_text, pins, settings.pin_group)


def poetry_lock_in(shell: Shell, directory: Path) -> None:
    # No throwaway virtualenv per scratch folder: locking needs none.
    env = {"POETRY_VIRTUALENVS_CREATE": "false"}
    result = shell.run(commands.poetry("lock", directory=str(directory)), env=env, warn=True)
    if result is not None and result.failed:
        raise LockstepError(
            "`poetry lock` failed; pyproject.toml and poetry.lock were left as they were"
        )


def scratch_project(project: Project, pyproject_text: str, into: Path) -> Path:
    """A copy of pyproject.toml and poetry.lock for Poetry to work on without touching ours."""
    into.mkdir()
    (into / PYPROJECT).write_text(pyproject_text, encoding="utf-8")
    if project.poetry_lock.exists():
        shutil.copyfile(project.poetry_lock, into / "poetry.lock")
    return into


def pin_and_lock(
    shell: Shell,
    project: Project,
    source: PinSource,
    scratch: Path,
    table: NameTable | None = None,
) -> None:
    """Pin, then lock with Poetry, in a ``scratch`` copy holding pyproject.toml (+ poetry.lock).

    Locking can bring in packages that conda also provides (torch's filelock, say): those are
    pinned too and Poetry locks once more, so both locks agree on one version of each.
    """
    pyproject = scratch / PYPROJECT
    for round_number in range(2):
        text = pyproject.read_text(encoding="utf-8")
        pinned = pin_text(project, text, source, scratch / "poetry.lock", table)
        if round_number and pinned == text:
            return
        pyproject.write_text(pinned, encoding="utf-8")
        poetry_lock_in(shell, scratch)


@dataclass(frozen=True)
class PinChange:
    """What `pin` found: the diff of pyproject.toml, and the files it wrote."""

    diff: str
    written: tuple[Path, ...] = ()


def pin(
    shell: Shell,
    project: Project,
    source: PinSource,
    table: NameTable | None = None,
    *,
    dry_run: bool = False,
    no_lock: bool = False,
) -> PinChange:
    """Pin ``source``'s versions in pyproject.toml and (unless ``no_lock``) refresh poetry.lock
    in a scratch copy; both files are written together, or neither."""
    old = read_text(project.pyproject)
    new = pin_text(project, old, source, project.poetry_lock, table)
    diff = text_diff(old, new, PYPROJECT)
    if dry_run or shell.dry:
        return PinChange(diff)
    if no_lock:
        if not diff:
            return PinChange(diff)
        write_files_atomically({project.pyproject: new})
        return PinChange(diff, (project.pyproject,))
    with tempfile.TemporaryDirectory(prefix="lockstep-pin-") as tmp:
        scratch = scratch_project(project, old, Path(tmp) / "project")
        pin_and_lock(shell, project, source, scratch, table)
        files = {
            project.pyproject: read_text(scratch / PYPROJECT),
            project.poetry_lock: read_text(scratch / "poetry.lock"),
        }
        write_files_atomically(files)
    return PinChange(diff, tuple(files))


# --------------------------------------------------------------------------- update


def update(
    shell: Shell,
    project: Project,
    spec: EnvSpec,
    fe: Frontend,
    python: str,
    platform: str,
    dry_run: bool = False,
) -> str | None:
    """Re-lock, pin and lock Poetry's side in scratch, then have the engine rebuild the env and
    write the three files with it: all of it, or (any failure, any signal) none of it.

    Returns the change report (None under --dry, where nothing past the solve runs).
    """
    settings = project.settings
    lock_path = project.lock_path(platform)
    if not dry_run:
        # An update killed half-way is undone first, so what is read below is what was there.
        recover = commands.engine_recover(python, str(project.root), fe, settings.env_name)
        shell.run(recover, env=project.engine_environ())
    old_lock = read_explicit(lock_path) if lock_path.exists() else None
    old_pypi = poetry_versions(project.poetry_lock)
    with tempfile.TemporaryDirectory(prefix="lockstep-update-") as tmp:
        scratch = Path(tmp)
        new_lock_path = solve(shell, project.with_overrides(platforms=(platform,)), spec, scratch)[
            platform
        ]
        if shell.dry:
            return None
        new_lock = read_explicit(new_lock_path, platform)
        text = project.pyproject.read_text("utf-8")
        scratch_dir = scratch_project(project, text, scratch / "project")
        pin_and_lock(shell, project, new_lock, scratch_dir)
        new_pyproject, new_poetry_lock = scratch_dir / PYPROJECT, scratch_dir / "poetry.lock"
        changes = diff_versions(conda_versions(old_lock), conda_versions(new_lock), "conda")
        changes += diff_versions(old_pypi, poetry_versions(new_poetry_lock), "pypi")
        if dry_run:
            return format_report(changes)
        command = commands.engine_reproduce(
            python,
            str(project.root),
            fe,
            settings.env_name,
            conda_lock=str(new_lock_path),
            poetry_lock=str(new_poetry_lock),
            pyproject=str(new_pyproject),
            commit=_commit_pairs(
                [
                    (lock_path, new_lock_path),
                    (project.pyproject, new_pyproject),
                    (project.poetry_lock, new_poetry_lock),
                ]
            ),
        )
        shell.run(command, env=project.engine_environ())
    return format_report(changes)


def _commit_pairs(pairs: Sequence[tuple[Path, Path]]) -> list[tuple[str, str]]:
    return [(str(target), str(source)) for target, source in pairs]
