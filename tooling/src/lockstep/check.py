"""`invoke check`: static checks of the spec files and both locks. Reads files only.

No solve, no network, no subprocess: the conda-lock input hash and Poetry's content hash are
recomputed here (lockstep.inputhash, lockstep.core.poetryhash), so the check is fast enough for
pre-commit. Every check returns findings; none raises for a problem it can describe.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lockstep import cpuspec, inputhash
from lockstep.core import poetryhash
from lockstep.core.errors import LockstepError
from lockstep.core.explicit import ExplicitLock, pip_lines_error, read_explicit
from lockstep.core.names import normalize, pypi_names
from lockstep.core.plan import PlanError, default_groups, lock_environment, plan_for
from lockstep.core.poetrylock import LockedPackage, parse_poetry_lock, read_poetry_lock
from lockstep.core.settings import Settings, read_toml
from lockstep.core.variants import build_kind
from lockstep.findings import Finding, error, warning
from lockstep.pins import current_pins, desired_pins
from lockstep.spec import EnvSpec, MatchSpec, load_env_spec, load_yaml

# Channels that bring Anaconda's `defaults` builds (mixed ABIs, terms of service).
DEFAULTS_CHANNELS = frozenset({"defaults", "anaconda", "main", "r", "msys2", "pkgs/main", "pkgs/r"})
# PyPI wheels that duplicate conda's PyTorch stack when conda provides it.
TORCH_WHEELS = frozenset({"torch", "torchvision", "torchaudio", "triton"})
# conda packages that carry CUDA libraries (the nvidia-* wheels ship the same ones), by name as
# real locks spell them: nvidia's and conda-forge's cuda-* split packages, the libraries split out
# of the toolkit (each also with -dev, -static, ...), and the older all-in-one packages. Names,
# not prefixes: "libcu" would catch libcurl and libcups, which nearly every env holds.
_CUDA_PREFIX = "cuda-"
_CUDA_LIBRARIES = frozenset(
    {
        "cudatoolkit",
        "cudnn",
        "nccl",
        "cutensor",
        "pytorch-cuda",
        "libcublas",
        "libcufft",
        "libcufile",
        "libcurand",
        "libcusolver",
        "libcusparse",
        "libcudnn",
        "libcudss",
        "libcutensor",
        "libnccl",
        "libnpp",
        "libnvjitlink",
        "libnvjpeg",
        "libnvfatbin",
        "libnvrtc",
    }
)
_CUDA_DEPENDENTS = ("pytorch-gpu", "cudnn", "nccl", "cupy", "cuda-toolkit", "cuda-runtime")
_NUMBER = re.compile(r"\d+(?:\.\d+)*")
# The `files = [...]` hash lists of poetry.lock: nine tenths of the text, unused by the checks.


@dataclass(frozen=True)
class Inputs:
    """The project's files, read once; None where a file is missing or unreadable."""

    root: Path
    settings: Settings
    spec: EnvSpec | None
    virtual_packages: Mapping[str, Any] | None
    pyproject: Mapping[str, Any]
    poetry_lock: Mapping[str, Any] | None


# --------------------------------------------------------------------------- helpers


def release(version: str) -> tuple[int, ...]:
    """Numeric release of a version, trailing zeros dropped (1.26 == 1.26.0)."""
    match = _NUMBER.match(version.split("+", 1)[0])
    parts = [int(p) for p in match.group(0).split(".")] if match else []
    while parts and parts[-1] == 0:
        parts.pop()
    return tuple(parts)


def same_version(conda_version: str, pypi_version: str) -> bool:
    """conda and PyPI spell one release alike, modulo trailing zeros and a +local tag."""
    if conda_version == pypi_version:
        return True
    public = pypi_version.split("+", 1)[0]
    rest = lambda v: _NUMBER.sub("", v, count=1)  # noqa: E731 - pre/post suffixes must agree
    return release(conda_version) == release(public) and rest(conda_version) == rest(public)


def conda_pypi_versions(lock: ExplicitLock, overrides: Mapping[str, str]) -> dict[str, str]:
    """PyPI name -> version for the conda packages that are Python distributions."""
    found: dict[str, str] = {}
    for entry in lock.entries:
        for pypi in pypi_names(entry.name, overrides):
            found[pypi] = entry.version
    return found


def is_cuda_package(conda_name: str) -> bool:
    """True for a conda package that carries CUDA libraries (or pins their generation)."""
    base = conda_name.split("-", 1)[0] if conda_name.startswith("lib") else conda_name
    return (
        conda_name.startswith(_CUDA_PREFIX)
        or conda_name in _CUDA_LIBRARIES
        or base in _CUDA_LIBRARIES
    )


def conda_has_cuda(lock: ExplicitLock) -> bool:
    """True when the conda lock installs CUDA libraries."""
    return any(is_cuda_package(e.name) for e in lock.entries)


def _cuda_floor(spec: MatchSpec | None) -> tuple[int, ...] | None:
    if spec is None or not spec.version or spec.version == "*":
        return None
    match = _NUMBER.search(spec.version)
    return tuple(int(p) for p in match.group(0).split(".")) if match else None


def _wants_cuda(spec: EnvSpec) -> bool:
    for dep in spec.dependencies:
        if dep.name.startswith(_CUDA_DEPENDENTS) or dep.name.startswith("cuda-"):
            return True
        if dep.name in {"pytorch", "jaxlib", "tensorflow"} and "cuda" in dep.build:
            return True
    return False


def _show(version: tuple[int, ...]) -> str:
    return ".".join(map(str, version))


# --------------------------------------------------------------------------- spec lint


def spec_findings(inputs: Inputs) -> list[Finding]:
    """environment.yml and virtual-packages.yml: settings that break locks silently."""
    spec, settings = inputs.spec, inputs.settings
    if spec is None:
        return []
    env_file = settings.environment_file
    found: list[Finding] = []
    dep_channels = {d.channel for d in spec.dependencies if d.channel}
    if "pytorch" in spec.channels or "pytorch" in dep_channels:
        found.append(
            error(
                "pytorch-channel",
                env_file,
                "the pytorch channel is frozen since PyTorch 2.5 (pytorch issue 138506) and its "
                "builds break against newer MKL",
                "drop the pytorch channel; use conda-forge's `pytorch=*=cuda*` with `cuda-version`",
            )
        )
    defaults = sorted((set(spec.channels) | dep_channels) & DEFAULTS_CHANNELS)
    if defaults:
        found.append(
            error(
                "defaults-channel",
                env_file,
                f"channel(s) {', '.join(defaults)} mix Anaconda's builds (other ABIs, other terms) "
                "into conda-forge's",
                "remove them from channels and list `nodefaults` last",
            )
        )
    elif "nodefaults" not in spec.channels:
        found.append(
            warning(
                "no-nodefaults",
                env_file,
                "without `nodefaults`, `conda env create` adds the user's default channels "
                "(conda-lock ignores them, so env-create and the lock can disagree)",
                "add `- nodefaults` as the last channel",
            )
        )
    if spec.name is not None and spec.name != settings.env_name:
        found.append(
            warning(
                "env-name-mismatch",
                env_file,
                f"`name: {spec.name}` differs from env-name {settings.env_name!r} in "
                "[tool.lockstep]: the tasks build the env as the latter, `conda env create -f` by "
                "hand as the former",
                f"set `name: {settings.env_name}` (or change env-name; `invoke rename` sets both)",
            )
        )
    found += _cuda_findings(inputs)
    if spec.pip:
        found.append(
            error(
                "pip-section",
                env_file,
                f"a `pip:` section ({', '.join(spec.pip)}) cannot go into an explicit conda lock; "
                "conda-lock drops it, and its input hash then needs the network",
                "move those packages to pyproject.toml (`poetry add NAME`) and delete `pip:`",
            )
        )
    if spec.variables.get("PYTHONNOUSERSITE") != "1":
        found.append(
            error(
                "user-site",
                env_file,
                'PYTHONNOUSERSITE is not "1" in `variables:`: packages in ~/.local can shadow the '
                "env's own (a user-site torch, say)",
                'add `variables: {PYTHONNOUSERSITE: "1"}` to environment.yml',
            )
        )
    return found


def _cuda_findings(inputs: Inputs) -> list[Finding]:
    spec, settings = inputs.spec, inputs.settings
    assert spec is not None
    if not _wants_cuda(spec):
        return []
    floor = _cuda_floor(spec.get("cuda-version"))
    if floor is None:
        return [
            error(
                "no-cuda-version",
                settings.environment_file,
                "CUDA packages without an explicit `cuda-version`: the solver picks the CUDA "
                "generation, and it changes from one lock to the next",
                "add `- cuda-version=12.9` (or the generation your drivers support)",
            )
        ]
    found: list[Finding] = []
    subdirs = (inputs.virtual_packages or {}).get("subdirs") or {}
    for platform in settings.platforms:
        if not platform.startswith(("linux", "win")):
            continue
        packages = (subdirs.get(platform) or {}).get("packages") or {}
        cuda = packages.get("__cuda")
        have = release(str(cuda)) if cuda is not None else None
        if have is not None and have >= floor:
            continue
        what = (
            f"__cuda is not listed for {platform}; this file replaces conda-lock's defaults, so "
            "the solver sees no GPU and finds no CUDA build"
            if cuda is None
            else f"__cuda {cuda} for {platform} is older than cuda-version {_show(floor)}: "
            "no CUDA build of that generation is installable for the solver"
        )
        found.append(
            error(
                "cuda-too-old",
                settings.virtual_packages_file,
                what,
                f'set `__cuda: "{_show(floor)}"` under subdirs.{platform}.packages',
            )
        )
    return found


# --------------------------------------------------------------------------- the locks


def conda_lock_findings(inputs: Inputs, platform: str) -> tuple[list[Finding], ExplicitLock | None]:
    """One platform's explicit lock: present, for that platform, and not older than its inputs."""
    settings = inputs.settings
    name = settings.lock_file(platform)
    path = inputs.root / name
    if not path.is_file():
        return [
            error(
                "conda-lock-missing",
                name,
                f"no conda lock for {platform}",
                f"run `invoke lock --platform {platform}` where conda channels are reachable",
            )
        ], None
    try:
        lock = read_explicit(path)
    except LockstepError as exc:
        return [
            error("conda-lock-invalid", name, str(exc), "regenerate it with `invoke lock`")
        ], None
    if lock.platform != platform:
        return [
            error(
                "conda-lock-platform",
                name,
                f"the lock is for platform {lock.platform or 'unknown'!r}, not {platform!r}",
                f"regenerate it with `invoke lock --platform {platform}`",
            )
        ], lock
    return _stale_conda_lock(inputs, lock, name, platform), lock


def _stale_conda_lock(
    inputs: Inputs, lock: ExplicitLock, name: str, platform: str
) -> list[Finding]:
    settings = inputs.settings
    env = inputs.root / settings.environment_file
    vp = inputs.root / settings.virtual_packages_file
    if inputs.spec is None:
        return []
    if not vp.is_file():
        return [
            error(
                "virtual-packages-missing",
                settings.virtual_packages_file,
                "the virtual packages file is missing, so the lock's input hash cannot be checked "
                "and `invoke lock` would fail",
                "restore virtual-packages.yml "
                "(it lists __unix, __linux, __glibc, __archspec, __cuda)",
            )
        ]
    if lock.input_hash is None:
        return [
            error(
                "conda-lock-no-hash",
                name,
                "the lock has no `# input_hash:` header",
                "regenerate it with `invoke lock`",
            )
        ]
    if inputs.spec.pip:
        return []  # reported as pip-section; conda-lock's hash of it needs the network
    try:
        accepted = inputhash.accepted_hashes(env, vp, platform)
    except inputhash.InputFileError as exc:
        at_fault = settings.virtual_packages_file if exc.path == vp else settings.environment_file
        return [warning("conda-lock-unverified", at_fault, str(exc), "fix that file")]
    except LockstepError as exc:
        return [warning("conda-lock-unverified", name, str(exc), "see the message")]
    if lock.input_hash in accepted:
        return []  # conda-lock 4 also accepts the hashes of earlier versions (3.0 and 2.x)
    expected = inputhash.input_hash(env, vp, platform)
    return [
        error(
            "conda-lock-stale",
            name,
            f"older than {settings.environment_file} + {settings.virtual_packages_file}: the "
            f"input hash is {expected[:12]}…, the lock says {lock.input_hash[:12]}…",
            "run `invoke lock` (then `invoke pin`), and commit the new lock",
        )
    ]


def variant_findings(inputs: Inputs, cuda: ExplicitLock, platform: str) -> list[Finding]:
    """The CPU variant's lock: present, solved from the spec derived from today's inputs and
    the CUDA lock (lockstep.cpuspec; its input hash), free of CUDA builds, and at the CUDA
    lock's version of every package both install."""
    settings = inputs.settings
    if not settings.has_cpu_variant:
        return []
    name = settings.cpu_lock_file(platform)
    path = inputs.root / name
    relock = "run `invoke lock` (it writes both locks) and commit both"
    if not path.is_file():
        what = f"[tool.lockstep.cpu-specs] declares a CPU variant, but there is no {name}"
        return [error("cpu-lock-missing", name, what, relock)]
    try:
        cpu = read_explicit(path, platform)
    except LockstepError as exc:
        return [error("cpu-lock-invalid", name, str(exc), relock)]
    found = []
    mismatches = cpuspec.version_mismatches(cuda, cpu)
    if mismatches:
        listed = ", ".join(f"{n} {a} vs {b}" for n, a, b in mismatches[:5])
        more = f" and {len(mismatches) - 5} more" if len(mismatches) > 5 else ""
        what = (
            f"the CPU lock differs from {settings.lock_file(platform)} in packages both install "
            f"({listed}{more}), so one poetry.lock cannot serve both"
        )
        found.append(error("cpu-lock-mismatch", name, what, relock))
    cuda_builds = [e.name for e in cpu.entries if build_kind(e.build) == "cuda"]
    if cuda_builds:
        what = f"the CPU lock installs CUDA builds: {', '.join(cuda_builds)}"
        fix = "swap their specs in [tool.lockstep.cpu-specs] (e.g. 'NAME=*=cpu*'), then lock"
        found.append(error("cpu-lock-cuda-build", name, what, fix))
    found += _stale_cpu_lock(inputs, cuda, cpu, name, platform)
    return found


def _stale_cpu_lock(
    inputs: Inputs, cuda: ExplicitLock, cpu: ExplicitLock, name: str, platform: str
) -> list[Finding]:
    settings = inputs.settings
    env, vp = inputs.root / settings.environment_file, inputs.root / settings.virtual_packages_file
    if inputs.spec is None or inputs.spec.pip or not vp.is_file() or cpu.input_hash is None:
        return []  # each reported on its own for the CUDA lock
    pins = cpuspec.shared_pins(cuda, (e.name for e in cpu.entries), settings)
    try:
        texts = cpuspec.cpu_inputs(
            env.read_text(encoding="utf-8"), vp.read_text(encoding="utf-8"), settings, pins
        )
        with tempfile.TemporaryDirectory(prefix="lockstep-check-") as tmp:
            derived_env, derived_vp = Path(tmp) / "environment.yml", Path(tmp) / "vp.yml"
            derived_env.write_text(texts[0], encoding="utf-8")
            derived_vp.write_text(texts[1], encoding="utf-8")
            accepted = inputhash.accepted_hashes(derived_env, derived_vp, platform)
    except (LockstepError, OSError, ValueError) as exc:
        return [warning("cpu-lock-unverified", name, str(exc), "see the message")]
    if cpu.input_hash in accepted:
        return []
    what = (
        f"not solved from today's {settings.environment_file} + {settings.virtual_packages_file} "
        f"with [tool.lockstep.cpu-specs] at {settings.lock_file(platform)}'s versions (input hash)"
    )
    return [error("cpu-lock-stale", name, what, "run `invoke lock` and commit both locks")]


def poetry_lock_findings(inputs: Inputs) -> list[Finding]:
    """poetry.lock exists and matches pyproject.toml (Poetry's content hash)."""
    name = inputs.settings.poetry_lock_file
    if inputs.poetry_lock is None:
        return [error("poetry-lock-missing", name, "poetry.lock is missing", "run `poetry lock`")]
    recorded = poetryhash.locked_hash(inputs.poetry_lock)
    if recorded is not None and recorded == poetryhash.content_hash(inputs.pyproject):
        return []
    return [
        error(
            "poetry-lock-stale",
            name,
            "pyproject.toml changed since poetry.lock was written (Poetry's content hash differs)",
            "run `poetry lock` (or `invoke pin` when the pins changed), and commit poetry.lock",
        )
    ]


# --------------------------------------------------------------------------- across locks


def pip_line_findings(
    inputs: Inputs, lock: ExplicitLock, platform: str, packages: Mapping[str, LockedPackage]
) -> list[Finding]:
    """The lock's ``# pip`` lines: refused (a conda install skips them), and compared like
    Poetry's packages with conda's and Poetry's versions of the same distributions."""
    if not lock.pip:
        return []
    name = inputs.settings.lock_file(platform)
    found = [
        error(
            "pip-lines",
            name,
            pip_lines_error(lock).removeprefix(f"{lock.path}: "),
            "move them to pyproject.toml and lock again",
        )
    ]
    conda = conda_pypi_versions(lock, inputs.settings.pypi_names)
    for pip in (p for p in lock.pip if p.version):
        pypi = normalize(pip.name)
        others = [("the conda lock", conda.get(pypi))]
        if pypi in packages:
            others.append(("poetry.lock", packages[pypi].version))
        for where, version in others:
            if version is not None and not same_version(version, pip.version):
                found.append(
                    error(
                        "version-conflict",
                        name,
                        f"{pypi}: a `# pip` line installs {pip.version}, {where} has {version}",
                        "keep one copy: move the package to one side and lock again",
                    )
                )
    return found


def cross_lock_findings(inputs: Inputs, lock: ExplicitLock, platform: str = "") -> list[Finding]:
    """conda and Poetry agree: same versions, no duplicate wheels, pins in line."""
    settings = inputs.settings
    packages = parse_poetry_lock(inputs.poetry_lock) if inputs.poetry_lock is not None else {}
    found = pip_line_findings(inputs, lock, platform or lock.platform or "", packages)
    if inputs.poetry_lock is None:
        return found
    conda = conda_pypi_versions(lock, settings.pypi_names)
    found += _version_conflicts(settings, packages, conda)
    found += _duplicate_wheels(inputs, inputs.poetry_lock, lock, packages, conda)
    found += _pin_findings(inputs, lock, packages)
    return found


def _version_conflicts(
    settings: Settings, packages: Mapping[str, LockedPackage], conda: Mapping[str, str]
) -> list[Finding]:
    found = []
    for name in sorted(set(packages) & set(conda)):
        locked = packages[name].version
        if not same_version(conda[name], locked):
            found.append(
                error(
                    "version-conflict",
                    settings.poetry_lock_file,
                    f"{name}: poetry.lock has {locked}, the conda lock installs {conda[name]}; "
                    "Poetry resolved the rest against a version that is not in the env",
                    "run `invoke pin` (pins conda's versions and refreshes poetry.lock)",
                )
            )
    return found


def _duplicate_wheels(
    inputs: Inputs,
    poetry_lock: Mapping[str, Any],
    lock: ExplicitLock,
    packages: Mapping[str, LockedPackage],
    conda: Mapping[str, str],
) -> list[Finding]:
    settings = inputs.settings
    groups = default_groups(inputs.pyproject, settings.pin_group)
    python = lock.by_name().get("python")
    try:
        environment = lock_environment(lock.platform, python.version if python else None)
        plan = plan_for(inputs.pyproject, poetry_lock, groups, conda, environment)
    except PlanError as exc:
        return [error("poetry-plan", settings.poetry_lock_file, str(exc), "run `poetry lock`")]
    has_torch, has_cuda = "torch" in conda, conda_has_cuda(lock)
    found = []
    for package in plan.install:
        name = normalize(package.name)
        duplicates = (name in TORCH_WHEELS and has_torch) or (
            name.startswith("nvidia-") and has_cuda
        )
        if duplicates:
            found.append(
                error(
                    "duplicate-wheel",
                    settings.poetry_lock_file,
                    f"{name} {package.version} would be installed from PyPI beside conda's "
                    f"{'PyTorch' if name in TORCH_WHEELS else 'CUDA libraries'}: two copies, "
                    "and the wheel shadows conda's",
                    f"find what needs {name} (`poetry show --tree`); keep that package on the "
                    "conda side (environment.yml), or pin it so it needs no wheel of its own",
                )
            )
    return found


def _pin_findings(
    inputs: Inputs, lock: ExplicitLock, packages: Mapping[str, LockedPackage]
) -> list[Finding]:
    settings, spec = inputs.settings, inputs.spec
    if spec is None:
        return []
    have = current_pins(inputs.pyproject, settings.pin_group)  # type: ignore[arg-type]
    want = desired_pins(
        [(e.name, e.version) for e in lock.entries],
        spec,
        packages,
        settings.pypi_names,
        settings.pin_extra,
    )
    table = f"[tool.poetry.group.{settings.pin_group}.dependencies]"
    found = []
    for name in sorted(set(have) | set(want)):
        if have.get(name) == want.get(name):
            continue
        if name not in want:
            what = f"{table} pins {name} {have[name]}, which the conda lock does not install"
        elif name not in have:
            what = f"{table} lacks {name} {want[name]}, which conda installs"
        else:
            what = f"{table} pins {name} {have[name]}, the conda lock installs {want[name]}"
        found.append(error("pin-mismatch", "pyproject.toml", what, "run `invoke pin`"))
    return found


# --------------------------------------------------------------------------- entry point


def _optional(load: Any, path: Path) -> tuple[Any, list[Finding]]:
    try:
        return load(path), []
    except LockstepError as exc:
        return None, [error("unreadable", path.name, str(exc), "fix the file")]


def _read_poetry_lock_fast(path: Path) -> dict[str, Any]:
    return read_poetry_lock(path, hashes=False)


def read_inputs(root: Path, settings: Settings) -> tuple[Inputs, list[Finding]]:
    """Read every file the checks need; unreadable ones become findings."""
    spec, found = _optional(load_env_spec, root / settings.environment_file)
    vp_path = root / settings.virtual_packages_file
    vp, more = _optional(load_yaml, vp_path) if vp_path.is_file() else (None, [])
    found += more
    pyproject, more = _optional(read_toml, root / "pyproject.toml")
    found += more
    lock_path = root / settings.poetry_lock_file
    poetry_lock, more = (
        _optional(_read_poetry_lock_fast, lock_path) if lock_path.is_file() else (None, [])
    )
    found += more
    inputs = Inputs(
        root, settings, spec, vp if isinstance(vp, dict) else None, pyproject or {}, poetry_lock
    )
    return inputs, found


def run_checks(
    root: Path, settings: Settings, platforms: Iterable[str] | None = None
) -> list[Finding]:
    """Every static finding of the project in ``root``."""
    inputs, found = read_inputs(root, settings)
    found += spec_findings(inputs)
    found += poetry_lock_findings(inputs)
    for platform in platforms or settings.platforms:
        lock_found, lock = conda_lock_findings(inputs, platform)
        found += lock_found
        if lock is not None and lock.platform == platform:
            found += cross_lock_findings(inputs, lock, platform)
            found += variant_findings(inputs, lock, platform)
    return list(dict.fromkeys(found))  # one platform's Poetry findings repeat on the next
