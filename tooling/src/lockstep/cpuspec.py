"""The CPU variant's spec files, derived from environment.yml and virtual-packages.yml.

environment.yml stays the one file a user edits. [tool.lockstep.cpu-specs] says how the CPU
variant differs (``pytorch = "pytorch=*=cpu*"`` swaps a spec, ``cuda-version = ""`` drops one),
cpu-drop-virtual which virtual packages it solves without (``__cuda``). Every package the CUDA
lock shares with the CPU solve is pinned to the CUDA lock's version, so one poetry.lock and one
set of pins serve both locks.

`invoke lock` solves what :func:`cpu_inputs` writes; `invoke check` rebuilds the same text from
the committed locks and hashes it, so a CPU lock is fresh exactly when it was solved from these
inputs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from lockstep.core.errors import LockstepError
from lockstep.core.explicit import ExplicitLock
from lockstep.core.settings import Settings
from lockstep.spec import parse_matchspec

HEADER = "# The CPU variant of environment.yml, derived by `invoke lock`; edit environment.yml.\n"


def _load(text: str, what: str) -> Any:
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise LockstepError(f"{what}: invalid YAML ({exc}); fix it first") from None


def _dump(data: Any) -> str:
    import yaml

    return HEADER + yaml.safe_dump(data, sort_keys=False, default_flow_style=False)


def pinned(spec: str, version: str) -> str:
    """``spec`` held at exactly ``version``, its build pattern (``*=cpu*``) kept."""
    parsed = parse_matchspec(spec)
    channel = f"{parsed.channel}::" if parsed.channel else ""
    # conda reads `=1.2=build` as exactly 1.2 (and conda-lock hashes both spellings alike).
    held = f"={version}={parsed.build}" if parsed.build else f"=={version}"
    return f"{channel}{parsed.name}{held}"


def cpu_environment(env_text: str, settings: Settings, pins: Mapping[str, str]) -> str:
    """environment.yml's CPU variant: swapped and dropped specs, then every pin."""
    data = _load(env_text, settings.environment_file)
    if not isinstance(data, dict) or not isinstance(data.get("dependencies"), list):
        raise LockstepError(f"{settings.environment_file}: no 'dependencies' list")
    swaps = settings.cpu_specs
    dependencies: list[Any] = []
    listed: set[str] = set()
    for entry in data["dependencies"]:
        if not isinstance(entry, str):
            dependencies.append(entry)
            continue
        name = parse_matchspec(entry).name
        spec = swaps.get(name, entry)
        if not spec:
            continue
        listed.add(name)
        dependencies.append(pinned(spec, pins[name]) if name in pins else spec)
    for name in sorted(set(pins) - listed - {n for n, s in swaps.items() if not s}):
        dependencies.append(pinned(swaps.get(name) or name, pins[name]))
    return _dump({**data, "dependencies": dependencies})


def cpu_virtual_packages(vp_text: str, settings: Settings) -> str:
    """virtual-packages.yml without the virtual packages a CPU build must not need."""
    data = _load(vp_text, settings.virtual_packages_file) or {}
    dropped = set(settings.cpu_drop_virtual)
    subdirs = {
        subdir: {
            **(body or {}),
            "packages": {
                k: v for k, v in ((body or {}).get("packages") or {}).items() if k not in dropped
            },
        }
        for subdir, body in (data.get("subdirs") or {}).items()
    }
    return _dump({**data, "subdirs": subdirs})


def shared_pins(cuda: ExplicitLock, cpu_names: Iterable[str], settings: Settings) -> dict[str, str]:
    """The CUDA lock's version of every package the CPU solve also installs."""
    dropped = {name for name, spec in settings.cpu_specs.items() if not spec}
    versions = {e.name: e.version for e in cuda.entries}
    return {n: versions[n] for n in sorted(set(cpu_names) & set(versions)) if n not in dropped}


def cpu_inputs(
    env_text: str, vp_text: str, settings: Settings, pins: Mapping[str, str]
) -> tuple[str, str]:
    """The texts of the CPU variant's environment file and virtual packages file."""
    return cpu_environment(env_text, settings, pins), cpu_virtual_packages(vp_text, settings)


def version_mismatches(cuda: ExplicitLock, cpu: ExplicitLock) -> list[tuple[str, str, str]]:
    """(name, CUDA lock's version, CPU lock's version) of each shared package that differs."""
    cpu_versions = {e.name: e.version for e in cpu.entries}
    return [
        (e.name, e.version, cpu_versions[e.name])
        for e in cuda.entries
        if e.name in cpu_versions and cpu_versions[e.name] != e.version
    ]
