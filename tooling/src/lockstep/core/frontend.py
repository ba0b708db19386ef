"""Which conda frontend runs which step.

- env commands (create from a lock, env create, env list, run): conda, mamba 2 and micromamba 2
  share the syntax used here, so any of them will do.
- conda-lock: mamba/micromamba 2.6 and newer break conda-lock's mamba path (conda-lock issue
  906), so conda is preferred and a newer mamba is refused with the fix.
- never ``update --file``: it fails on conda 25.9+ and removes nothing on mamba 2; updating from
  a lock means recreating the env.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from lockstep.core.errors import LockstepError

FRONTENDS = ("conda", "mamba", "micromamba")
# First mamba/micromamba release whose JSON output conda-lock 4 cannot read.
MAMBA_BREAKS_CONDA_LOCK = (2, 6)


@dataclass(frozen=True)
class Frontend:
    """A conda-compatible executable."""

    kind: str  # conda, mamba or micromamba
    path: str

    @property
    def is_micromamba(self) -> bool:
        """micromamba spells a few sub-commands differently."""
        return self.kind == "micromamba"


def kind_of(executable: str) -> str:
    """conda, mamba or micromamba, from an executable's name."""
    name = Path(executable).name
    # Longest first: "micromamba" also starts with "mamba".
    for kind in sorted(FRONTENDS, key=len, reverse=True):
        if name == kind or name.startswith(kind + "."):
            return kind
    raise LockstepError(f"{executable!r} is not conda, mamba or micromamba")


def find_frontend(requested: str, which: Callable[[str], str | None]) -> Frontend:
    """The frontend asked for, or the first of conda, mamba, micromamba found on PATH."""
    if requested and requested != "auto":
        kind = kind_of(requested)
        path = which(requested)
        if path is None:
            raise LockstepError(
                f"{requested!r} not found; install it or choose another with --frontend"
            )
        return Frontend(kind, path)
    for kind in FRONTENDS:
        path = which(kind)
        if path:
            return Frontend(kind, path)
    raise LockstepError(
        "no conda, mamba or micromamba on PATH; install Miniforge "
        "(it brings conda and mamba) or pass --frontend /path/to/conda"
    )


def parse_version(output: str) -> tuple[int, ...]:
    """The version in ``conda 26.1.0`` / ``2.5.0`` / ``micromamba 2.0.5`` output."""
    match = re.search(r"(\d+)\.(\d+)(?:\.(\d+))?", output)
    if not match:
        raise LockstepError(f"cannot read a version from {output.strip()!r}")
    return tuple(int(g) for g in match.groups() if g is not None)


def frontend_for_lock(available: Mapping[str, str], versions: Mapping[str, str]) -> Frontend:
    """The executable conda-lock should solve with.

    ``available`` maps kind -> path of what is on PATH (or was named); ``versions`` maps kind ->
    its ``--version`` output, for mamba and micromamba.
    """
    if "conda" in available:
        return Frontend("conda", available["conda"])
    for kind in ("mamba", "micromamba"):
        if kind in available:
            version = parse_version(versions.get(kind, "0.0"))
            if version[:2] < MAMBA_BREAKS_CONDA_LOCK:
                return Frontend(kind, available[kind])
            shown = ".".join(map(str, version))
            raise LockstepError(
                f"conda-lock cannot solve with {kind} {shown} (2.6+ breaks it, conda-lock issue "
                "906); install conda (`mamba install -n base conda`) or a mamba older than 2.6"
            )
    raise LockstepError(
        "conda-lock needs conda (or mamba < 2.6) on PATH; install Miniforge or pass --frontend"
    )
