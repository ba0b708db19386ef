"""Which conda lock a machine gets: the CUDA lock where the driver runs it, else the CPU lock.

The choice is made before anything is moved or downloaded (the env engine's validation), from
what the CUDA lock needs (its ``cuda-version``, and CUDA 13's compute capability floor) and what
lockstep.core.nvidia finds. Standard library only.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from lockstep.core.errors import LockstepError
from lockstep.core.explicit import ExplicitLock
from lockstep.core.nvidia import Driver, Version, driver_for_cuda, parse_version, show
from lockstep.core.settings import Settings, load_settings

CUDA, CPU, AUTO = "cuda", "cpu", "auto"
VARIANTS = (CUDA, CPU)
# CUDA 13 dropped the GPUs below compute capability 7.5 (Maxwell, Pascal, Volta).
CAPABILITY_FLOORS: dict[int, Version] = {13: (7, 5)}
CUDA_VERSION_PACKAGE = "cuda-version"


@dataclass(frozen=True)
class Needs:
    """What the CUDA lock asks of a machine: None where it asks nothing."""

    cuda: Version | None
    capability: Version | None

    def describe(self) -> str:
        parts = []
        if self.cuda:
            driver = driver_for_cuda(self.cuda)
            parts.append(f"CUDA {show(self.cuda)}" + (f" (driver >= {driver})" if driver else ""))
        if self.capability:
            parts.append(f"compute capability >= {show(self.capability)}")
        return " and ".join(parts) or "nothing"


def needs_of(lock: ExplicitLock) -> Needs:
    """The driver the lock's CUDA packages need: its locked cuda-version, major.minor."""
    entry = lock.by_name().get(CUDA_VERSION_PACKAGE)
    if entry is None:
        return Needs(None, None)
    numbers = parse_version(entry.version)
    if len(numbers) < 2:
        return Needs(None, None)
    cuda = (numbers[0], numbers[1])
    return Needs(cuda, CAPABILITY_FLOORS.get(cuda[0]))


def build_kind(build: str) -> str | None:
    """cuda or cpu for a build string that says so (conda-forge's cuda126_..., cpu_...)."""
    lowered = build.lower()
    if "cuda" in lowered:
        return CUDA
    if "cpu" in lowered:
        return CPU
    return None


@dataclass(frozen=True)
class Choice:
    variant: str
    reason: str


def check_requested(requested: str | None) -> str:
    value = (requested or AUTO).lower()
    if value not in (AUTO, *VARIANTS):
        raise LockstepError(f"variant {requested!r} is not one of auto, cuda, cpu (VARIANT=...)")
    return value


def choose(driver: Driver | None, needs: Needs, requested: str | None = AUTO) -> Choice:
    """The variant for this machine; a driver that cannot run the CUDA lock is refused."""
    wanted = check_requested(requested)
    if wanted != AUTO:
        return Choice(wanted, f"VARIANT={wanted} asked for it")
    if driver is None:
        return Choice(CPU, "no NVIDIA driver found")
    if driver.gpus == ():
        return Choice(CPU, f"{driver.describe()} but no GPU")
    ways_out = (
        "update the NVIDIA driver, or install the CPU lock (make reproduce VARIANT=cpu, "
        "invoke reproduce --variant cpu), or lock an older cuda-version in environment.yml"
    )
    if needs.cuda and (driver.cuda is None or driver.cuda < needs.cuda):
        have = show(driver.cuda) if driver.cuda else "older than the oldest this tool knows"
        raise LockstepError(
            f"{driver.describe()}: runs CUDA {have}, the CUDA lock needs {needs.describe()}; "
            f"{ways_out}; nothing was downloaded or changed"
        )
    if needs.capability and driver.gpus:
        old = [g for g in driver.gpus if g.capability < needs.capability]
        if old:
            listed = ", ".join(f"{g.name} (sm_{g.capability[0]}{g.capability[1]})" for g in old)
            raise LockstepError(
                f"{listed}: the CUDA lock needs {needs.describe()}; "
                "hide that GPU (CUDA_VISIBLE_DEVICES), or "
                f"{ways_out}; nothing was downloaded or changed"
            )
    return Choice(CUDA, f"{driver.describe()} runs what the lock needs ({needs.describe()})")


def installed_lock(
    installed: Iterable[tuple[str, str, str]], locks: Sequence[ExplicitLock]
) -> ExplicitLock:
    """The lock an env was built from: the one sharing the most (name, version, build) with
    the env's conda-meta (doctor compares the env with that one)."""
    have = set(installed)

    def shared(lock: ExplicitLock) -> int:
        return len(have & {(e.name, e.version, e.build) for e in lock.entries})

    return max(locks, key=shared)


def lock_file(settings: Settings, platform: str, variant: str | None) -> str:
    """The lock file of ``variant`` for an image: it is built where it does not run, so there
    is no driver to ask, and the CUDA lock is the default (VARIANT=cpu for the CPU one)."""
    wanted = check_requested(variant)
    if wanted != CPU:
        return settings.lock_file(platform)
    if not settings.has_cpu_variant:
        raise LockstepError(
            "VARIANT=cpu, but [tool.lockstep] declares no CPU variant (cpu-specs); declare one "
            "and run `invoke lock`"
        )
    return settings.cpu_lock_file(platform)


def main(argv: list[str] | None = None) -> int:
    """``python -m lockstep.core.variants lock-file VARIANT``: the lock an image installs."""
    parser = argparse.ArgumentParser(prog="python -m lockstep.core.variants")
    sub = parser.add_subparsers(dest="action", required=True)
    name = sub.add_parser("lock-file", help="print the lock file name of a variant")
    name.add_argument("variant", help="cuda or cpu (empty: cuda)")
    name.add_argument("--platform", default="linux-64")
    name.add_argument("--project-dir", type=Path, default=Path("."))
    args = parser.parse_args(argv)
    try:
        print(lock_file(load_settings(args.project_dir), args.platform, args.variant))
    except LockstepError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
