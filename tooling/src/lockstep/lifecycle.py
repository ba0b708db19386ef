"""The lifecycle steps that change the project's files: lock, pin and update.

Each step works on a :class:`Project` (its folder and its settings) and reaches the shell only
through a :class:`Shell` the caller passes in (tasks.py adapts invoke's Context), so a test
swaps the shell and asserts the exact commands. Files are written atomically, all or none; a
failure raises LockstepError with one line saying what to do, and changes nothing.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from lockstep import SRC_DIR as TOOLING_SRC
from lockstep.core import commands, variables
from lockstep.core.errors import LockstepError, verbose
from lockstep.core.explicit import ExplicitLock, read_explicit
from lockstep.core.frontend import (
    FRONTENDS,
    Frontend,
    frontend_for_lock,
    kind_of,
    parse_version,
)
from lockstep.core.fsutil import read_text, text_diff, write_files_atomically
from lockstep.core.settings import Cooldown, Settings, load_settings
from lockstep.lockdiff import diff_versions, format_report, hardware_notes, poetry_versions
from lockstep.spec import EnvSpec, load_env_spec, load_yaml

PYPROJECT = "pyproject.toml"

# What `pin` reads versions from: a conda lock, or (name, version) pairs of an installed env.
PinSource = ExplicitLock | list[tuple[str, str]]
# conda name -> the PyPI distributions it ships (lockstep.core.names.mapping_for).
NameTable = Mapping[str, tuple[str, ...]]


class Ran(Protocol):
    """What is left of a command that ran: whether it failed, and what it printed when its
    output was hidden (invoke's Result is one)."""

    @property
    def failed(self) -> bool: ...

    @property
    def stdout(self) -> str: ...

    @property
    def stderr(self) -> str: ...


class Shell(Protocol):
    """The one way out to the shell, as the lifecycle needs it."""

    @property
    def dry(self) -> bool:
        """Commands are shown, not run (``invoke --dry``)."""
        ...

    def run(
        self,
        command: list[str],
        env: Mapping[str, str] | None = None,
        warn: bool = False,
        hide: bool = False,
    ) -> Ran | None:
        """Run an argument list, echoed; ``warn``: a failure is returned, not raised; ``hide``:
        its output is kept in the result instead of shown."""
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


# --------------------------------------------------------------------------- cooldown

# The first releases that honour a release-age cutoff (exclude-newer).
CONDA_EXCLUDE_NEWER = (26, 9)  # conda's exclude_newer setting and --exclude-newer
POETRY_MIN_RELEASE_AGE = (2, 4)  # Poetry's solver.min-release-age


def _shown(version: tuple[int, ...]) -> str:
    return ".".join(map(str, version))


def conda_cooldown_env(shell: Shell, fe: Frontend, cooldown: Cooldown | None) -> dict[str, str]:
    """What conda-lock's solves run with for the cutoff: conda-lock has no flag for it, and
    passes its environment on to the frontend, which reads CONDA_EXCLUDE_NEWER as its
    exclude_newer setting (conda 26.9+). Nothing for this run only is written to a condarc."""
    if cooldown is None:
        return {}
    needed = _shown(CONDA_EXCLUDE_NEWER)
    if fe.kind != "conda":
        raise LockstepError(
            f"exclude-newer needs conda {needed} or newer to lock; conda-lock would solve with "
            f"{fe.kind} here, and the mamba that has --exclude-newer (2.9+) is one conda-lock "
            "cannot use (2.6+, conda-lock issue 906); install conda (`mamba install -n base "
            "conda`) or remove exclude-newer from [tool.lockstep]"
        )
    version = parse_version(shell.query([fe.path, "--version"]))
    if version[:2] < CONDA_EXCLUDE_NEWER:
        raise LockstepError(
            f"exclude-newer needs conda {needed} or newer (its exclude_newer setting); this is "
            f"conda {_shown(version)}: `conda update -n base conda`, or remove exclude-newer "
            "from [tool.lockstep]"
        )
    return {"CONDA_EXCLUDE_NEWER": cooldown.conda_value}


def poetry_cooldown_env(shell: Shell, cooldown: Cooldown | None) -> dict[str, str]:
    """What `poetry lock` runs with for the cutoff: solver.min-release-age (whole days) for this
    run only, through Poetry's environment form of the setting."""
    if cooldown is None:
        return {}
    version = parse_version(shell.query(commands.poetry("--version")))
    if version[:2] < POETRY_MIN_RELEASE_AGE:
        raise LockstepError(
            f"exclude-newer needs Poetry {_shown(POETRY_MIN_RELEASE_AGE)} or newer "
            f"(solver.min-release-age); this is Poetry {_shown(version)}: rebuild the tooling "
            "venv (`make .venv/.installed`) or remove exclude-newer from [tool.lockstep]"
        )
    days = cooldown.poetry_days(datetime.now(UTC))
    return {"POETRY_SOLVER_MIN_RELEASE_AGE": str(days)}


# --------------------------------------------------------------------------- lock


def _conda_lock(
    shell: Shell,
    fe: Frontend,
    environment_file: Path,
    virtual_packages_file: Path,
    platforms: Sequence[str],
    template: Path,
    what: str,
    env: Mapping[str, str],
) -> None:
    command = commands.conda_lock(
        fe, str(environment_file), str(virtual_packages_file), platforms, str(template)
    )
    if verbose():
        result = shell.run(command, env=env or None, warn=True)
        if result is not None and result.failed:
            raise LockstepError(
                f"conda-lock could not solve {what} (its output is above); no lock file was changed"
            )
        return
    # Hidden: on a failure conda-lock prints about fifty lines of its own traceback around the
    # one thing the user needs, the frontend's reason.
    result = shell.run(command, env=env or None, warn=True, hide=True)
    if result is not None and result.failed:
        reason = solver_reason(f"{result.stderr}\n{result.stdout}")
        raise LockstepError(
            f"conda-lock could not solve {what} ({fe.kind}'s reason is above; "
            f"{variables.VERBOSE.name}=1 shows conda-lock's whole output); no lock file was "
            "changed",
            reason=reason,
        )


# conda-lock's report of a failed solve: this line, the frontend's message (the `message` of
# its --json error), then `    Command: ...` and the frontend's raw STDOUT/STDERR.
_SOLVE_FAILED = re.compile(
    r"^Could not lock the environment for platform \S+\n(?P<reason>.*?)(?=^    Command: |\Z)",
    re.M | re.S,
)


def solver_reason(output: str) -> str:
    """What the frontend said about a failed solve, out of conda-lock's output; else the last
    line that names an error (conda-lock's own, e.g. a spec it cannot parse)."""
    found = _SOLVE_FAILED.search(output)
    if found and found.group("reason").strip():
        lines = found.group("reason").strip().splitlines()
    else:
        errors = [ln for ln in output.splitlines() if re.match(r"^\w*(Error|Exception)\b", ln)]
        lines = errors[-1:] or [ln for ln in output.splitlines() if ln.strip()][-1:]
    return "\n".join(f"  {line}" if line.strip() else "" for line in lines)


def solve(
    shell: Shell,
    project: Project,
    spec: EnvSpec,
    out_dir: Path,
    cooldown: Cooldown | None = None,
) -> dict[str, Path]:
    """Run conda-lock into ``out_dir`` (nothing newer than ``cooldown``'s cutoff); returns
    platform -> written lock."""
    check_spec_for_lock(spec)
    settings = project.settings
    vp_file = project.virtual_packages_file
    if not vp_file.is_file():
        raise LockstepError(
            f"{vp_file}: not found; it lists the virtual packages (__cuda, __glibc, ...)"
        )
    fe = lock_frontend(shell, settings)
    env = conda_cooldown_env(shell, fe, cooldown)
    template = out_dir / Path(settings.lock_file_template).name
    _conda_lock(
        shell,
        fe,
        project.environment_file,
        vp_file,
        settings.platforms,
        template,
        "environment.yml",
        env,
    )
    return {p: out_dir / Path(settings.lock_file(p)).name for p in settings.platforms}


# A CPU solve pinned to the CUDA lock's versions may reach other packages than the free one did.
CPU_ROUNDS = 3


def solve_cpu(
    shell: Shell,
    project: Project,
    cuda_locks: Mapping[str, Path],
    out_dir: Path,
    cooldown: Cooldown | None = None,
) -> dict[str, Path]:
    """The CPU variant of each platform, solved from the derived spec files (lockstep.cpuspec)
    with every package it shares with the CUDA lock pinned to the CUDA lock's version."""
    from lockstep import cpuspec

    settings = project.settings
    fe = lock_frontend(shell, settings)
    env = conda_cooldown_env(shell, fe, cooldown)
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
                env,
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


def lock(shell: Shell, project: Project, cooldown: Cooldown | None = None) -> list[Path]:
    """Solve environment.yml into the conda locks (and the CPU variant's, where declared),
    nothing newer than ``cooldown``'s cutoff; returns the files written (none under --dry),
    all of them or, on any failure, none."""
    spec = project.spec()
    with tempfile.TemporaryDirectory(prefix="lockstep-lock-") as tmp:
        written = solve(shell, project, spec, Path(tmp), cooldown)
        cpu = {}
        if project.settings.has_cpu_variant:
            cpu = solve_cpu(shell, project, written, Path(tmp), cooldown)
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


def poetry_lock_in(shell: Shell, directory: Path, cooldown_env: Mapping[str, str]) -> None:
    # No throwaway virtualenv per scratch folder: locking needs none.
    env = {"POETRY_VIRTUALENVS_CREATE": "false", **cooldown_env}
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
    cooldown_env = poetry_cooldown_env(shell, project.settings.cooldown())
    for round_number in range(2):
        text = pyproject.read_text(encoding="utf-8")
        pinned = pin_text(project, text, source, scratch / "poetry.lock", table)
        if round_number and pinned == text:
            return
        pyproject.write_text(pinned, encoding="utf-8")
        poetry_lock_in(shell, scratch, cooldown_env)


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
    cooldown = settings.cooldown()
    # Poetry too old for the cutoff stops the update before the first solve.
    poetry_cooldown_env(shell, cooldown)
    with tempfile.TemporaryDirectory(prefix="lockstep-update-") as tmp:
        scratch = Path(tmp)
        one = project.with_overrides(platforms=(platform,))
        new_lock_path = solve(shell, one, spec, scratch, cooldown)[platform]
        new_cpu_path = None
        if settings.has_cpu_variant:
            cpu = solve_cpu(shell, one, {platform: new_lock_path}, scratch, cooldown)
            new_cpu_path = cpu.get(platform)
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
        if cooldown is not None:
            notes.append(f"cooldown: {cooldown.describe()}")
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
