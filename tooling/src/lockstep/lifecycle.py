"""The lifecycle steps that change the project's files: lock, pin and update.

Each step works on a :class:`Project` (its folder and its settings) and reaches the shell only
through a :class:`Shell` the caller passes in (tasks.py adapts invoke's Context), so a test
swaps the shell and asserts the exact commands. Files are written atomically, all or none; a
failure raises LockstepError with one line saying what to do, and changes nothing.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

from lockstep import SRC_DIR as TOOLING_SRC
from lockstep.core import commands
from lockstep.core.errors import LockstepError
from lockstep.core.explicit import ExplicitLock, read_explicit
from lockstep.core.frontend import FRONTENDS, Frontend, frontend_for_lock, kind_of
from lockstep.core.fsutil import read_text, text_diff, write_files_atomically
from lockstep.core.settings import Settings, load_settings
from lockstep.lockdiff import diff_versions, format_report, hardware_notes, poetry_versions
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

    def cpu_lock_path(self, platform: str) -> Path:
        return self.root / self.settings.cpu_lock_file(platform)

    def spec(self) -> EnvSpec:
        return load_env_spec(self.environment_file)

    def engine_environ(self) -> dict[str, str]:
        """What the env engine (lockstep.core.engine) runs with: this tooling's package (the
        project's own package is not on the path: the engine needs nothing of it)."""
        return {"PYTHONPATH": str(TOOLING_SRC)}


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


def _conda_lock(
    shell: Shell,
    fe: Frontend,
    environment_file: Path,
    virtual_packages_file: Path,
    platforms: Sequence[str],
    template: Path,
    what: str,
) -> None:
    command = commands.conda_lock(
        fe, str(environment_file), str(virtual_packages_file), platforms, str(template)
    )
    result = shell.run(command, warn=True)
    if result is not None and result.failed:
        raise LockstepError(
            f"conda-lock could not solve {what} (its reason is above); no lock file was changed"
        )


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
    template = out_dir / Path(settings.lock_file_template).name
    _conda_lock(
        shell,
        fe,
        project.environment_file,
        vp_file,
        settings.platforms,
        template,
        "environment.yml",
    )
    return {p: out_dir / Path(settings.lock_file(p)).name for p in settings.platforms}


# A CPU solve pinned to the CUDA lock's versions may reach other packages than the free one did.
CPU_ROUNDS = 3


def solve_cpu(
    shell: Shell, project: Project, cuda_locks: Mapping[str, Path], out_dir: Path
) -> dict[str, Path]:
    """The CPU variant of each platform, solved from the derived spec files (lockstep.cpuspec)
    with every package it shares with the CUDA lock pinned to the CUDA lock's version."""
    from lockstep import cpuspec

    settings = project.settings
    fe = lock_frontend(shell, settings)
    env_text = read_text(project.environment_file)
    vp_text = read_text(project.virtual_packages_file)
    written: dict[str, Path] = {}
    for platform, cuda_path in cuda_locks.items():
        cuda = None if shell.dry else read_explicit(cuda_path, platform)
        pins: dict[str, str] = {}
        for round_number in range(CPU_ROUNDS):
            folder = out_dir / f"cpu-{platform}-{round_number}"
            folder.mkdir()
            env_cpu, vp_cpu = cpuspec.cpu_inputs(env_text, vp_text, settings, pins)
            (folder / "environment.yml").write_text(env_cpu, encoding="utf-8")
            (folder / "virtual-packages.yml").write_text(vp_cpu, encoding="utf-8")
            name = settings.cpu_lock_file(platform)
            _conda_lock(
                shell,
                fe,
                folder / "environment.yml",
                folder / "virtual-packages.yml",
                [platform],
                folder / name,
                "the CPU variant (environment.yml with [tool.lockstep.cpu-specs], held at the "
                "CUDA lock's versions)",
            )
            if cuda is None:
                break
            cpu = read_explicit(folder / name, platform)
            wanted = cpuspec.shared_pins(cuda, (e.name for e in cpu.entries), settings)
            if wanted == pins:
                written[platform] = folder / name
                break
            pins = wanted
        else:
            raise LockstepError(
                f"the CPU variant of {platform} does not settle on the CUDA lock's versions in "
                f"{CPU_ROUNDS} solves; check [tool.lockstep.cpu-specs]; no lock file was changed"
            )
    return written


def lock(shell: Shell, project: Project) -> list[Path]:
    """Solve environment.yml into the conda locks (and the CPU variant's, where declared);
    returns the files written (none under --dry), all of them or, on any failure, none."""
    spec = project.spec()
    with tempfile.TemporaryDirectory(prefix="lockstep-lock-") as tmp:
        written = solve(shell, project, spec, Path(tmp))
        cpu = {}
        if project.settings.has_cpu_variant:
            cpu = solve_cpu(shell, project, written, Path(tmp))
        if shell.dry:
            return []
        new = {project.lock_path(p): read_text(path) for p, path in written.items()}
        new |= {project.cpu_lock_path(p): read_text(path) for p, path in cpu.items()}
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


def _pkgs_dirs(shell: Shell, fe: Frontend) -> list[Path]:
    """The frontend's package caches (archive sizes for the report); none if it does not say."""
    try:
        info = json.loads(shell.query(commands.info(fe)))
    except (LockstepError, ValueError):
        return []
    dirs = info.get("pkgs_dirs") if isinstance(info, dict) else None
    return [Path(d) for d in dirs if isinstance(d, str)] if isinstance(dirs, list) else []


def update(
    shell: Shell,
    project: Project,
    spec: EnvSpec,
    fe: Frontend,
    python: str,
    platform: str,
    dry_run: bool = False,
    variant: str | None = None,
) -> str | None:
    """Re-lock (both variants, where a CPU variant is declared), pin and lock Poetry's side in
    scratch, then have the engine rebuild the env and write the files with it: all of it, or
    (any failure, any signal) none of it.

    Returns the change report (None under --dry, where nothing past the solve runs).
    """
    settings = project.settings
    lock_path = project.lock_path(platform)
    cpu_path = project.cpu_lock_path(platform)
    if not dry_run:
        # An update killed half-way is undone first, so what is read below is what was there.
        recover = commands.engine_recover(python, str(project.root), fe, settings.env_name)
        shell.run(recover, env=project.engine_environ())
    old_lock = read_explicit(lock_path) if lock_path.exists() else None
    old_cpu = read_explicit(cpu_path) if cpu_path.exists() else None
    old_pypi = poetry_versions(project.poetry_lock)
    with tempfile.TemporaryDirectory(prefix="lockstep-update-") as tmp:
        scratch = Path(tmp)
        one = project.with_overrides(platforms=(platform,))
        new_lock_path = solve(shell, one, spec, scratch)[platform]
        new_cpu_path = None
        if settings.has_cpu_variant:
            new_cpu_path = solve_cpu(shell, one, {platform: new_lock_path}, scratch).get(platform)
        if shell.dry:
            return None
        new_lock = read_explicit(new_lock_path, platform)
        new_cpu = read_explicit(new_cpu_path, platform) if new_cpu_path else None
        text = project.pyproject.read_text("utf-8")
        scratch_dir = scratch_project(project, text, scratch / "project")
        pin_and_lock(shell, project, new_lock, scratch_dir)
        new_pyproject, new_poetry_lock = scratch_dir / PYPROJECT, scratch_dir / "poetry.lock"
        changes = diff_versions(conda_versions(old_lock), conda_versions(new_lock), "conda")
        pkgs = _pkgs_dirs(shell, fe)
        notes = hardware_notes(old_lock, new_lock, lock_path.name, pkgs)
        if new_cpu is not None:
            changes += diff_versions(conda_versions(old_cpu), conda_versions(new_cpu), "cpu")
            notes += hardware_notes(old_cpu, new_cpu, cpu_path.name, pkgs)
        changes += diff_versions(old_pypi, poetry_versions(new_poetry_lock), "pypi")
        report = format_report(changes, notes)
        if dry_run:
            return report
        pairs = [
            (lock_path, new_lock_path),
            (project.pyproject, new_pyproject),
            (project.poetry_lock, new_poetry_lock),
        ]
        if new_cpu_path is not None:
            pairs.append((cpu_path, new_cpu_path))
        request = commands.ReproduceRequest(
            str(project.root),
            name=settings.env_name,
            frontend=fe.path,
            conda_lock=str(new_lock_path),
            cpu_lock=str(new_cpu_path) if new_cpu_path else None,
            variant=variant,
            poetry_lock=str(new_poetry_lock),
            pyproject=str(new_pyproject),
            commit=_commit_pairs(pairs),
        )
        command = commands.engine_reproduce(python, request)
        shell.run(command, env=project.engine_environ())
    return report


def _commit_pairs(pairs: Sequence[tuple[Path, Path]]) -> tuple[tuple[str, str], ...]:
    return tuple((str(target), str(source)) for target, source in pairs)
