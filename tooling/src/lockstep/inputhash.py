"""conda-lock's input hash of the spec files, as `invoke check` compares it with a lock's header.

The spellings lockstep.core.condalockhash covers are hashed there, fast; any other goes to
conda-lock's own library (slow to import, but the answer is then conda-lock's by construction).
Errors name the input file they are about.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from lockstep.core.condalockhash import (
    Unsupported,
    fast_accepted_hashes,
    fast_input_hash,
    load_yaml,
)
from lockstep.core.errors import LockstepError


class InputFileError(LockstepError):
    """One input file is wrong; ``path`` names it (environment.yml or virtual-packages.yml)."""

    def __init__(self, path: Path | str, message: str) -> None:
        super().__init__(message)
        self.path = Path(path)


# --------------------------------------------------------------------------- conda-lock itself


def _conda_lock_inputs(env_file: Path, vp_file: Path, platform: str) -> tuple[Any, Any]:
    """conda-lock's lock specification and virtual package repo; errors name the file."""
    from conda_lock.lookup import DEFAULT_MAPPING_URL
    from conda_lock.src_parser import make_lock_spec
    from conda_lock.virtual_package import virtual_package_repo_from_specification

    try:
        repo = virtual_package_repo_from_specification(Path(vp_file))
    except Exception as exc:  # pydantic, yaml and value errors alike: one line naming the file
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputFileError(vp_file, f"conda-lock cannot read {vp_file}: {first}") from None
    try:
        spec = make_lock_spec(
            src_files=[Path(env_file)],
            platform_overrides=[platform],
            mapping_url=DEFAULT_MAPPING_URL,
        )
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputFileError(env_file, f"conda-lock cannot read {env_file}: {first}") from None
    return spec, repo


def conda_lock_input_hash(env_file: Path, vp_file: Path, platform: str) -> str:
    """The hash as conda-lock 4 computes it, through its own library (slow import)."""
    from conda_lock.content_hash import compute_content_hashes

    spec, repo = _conda_lock_inputs(env_file, vp_file, platform)
    return compute_content_hashes(spec, repo)[platform]


def conda_lock_accepted_hashes(env_file: Path, vp_file: Path, platform: str) -> set[str]:
    """Every hash conda-lock 4 calls fresh, through its own library (slow import)."""
    from conda_lock.content_hash import backwards_compatible_content_hashes, compute_content_hashes

    spec, repo = _conda_lock_inputs(env_file, vp_file, platform)
    accepted = backwards_compatible_content_hashes(spec, repo, platform)
    return accepted | {compute_content_hashes(spec, repo)[platform]}


def _check_virtual_packages(vp_file: Path) -> str:
    """The text of virtual-packages.yml, if it is the mapping conda-lock reads."""
    text = Path(vp_file).read_text(encoding="utf-8")
    try:
        vp = load_yaml(text)
    except Unsupported as exc:
        raise InputFileError(vp_file, f"{vp_file}: invalid YAML: {exc}") from None
    if not isinstance(vp, dict) or not isinstance(vp.get("subdirs"), dict):
        raise InputFileError(
            vp_file,
            f"{vp_file}: expected `subdirs: {{<platform>: {{packages: {{__cuda: ...}}}}}}`",
        )
    return text


def _fast_or_conda_lock(env_file: Path, vp_file: Path, platform: str, fast: Any, slow: Any) -> Any:
    """``fast(env_text, vp_text, platform)`` where this module can hash the spelling, else
    conda-lock's own ``slow(env_file, vp_file, platform)``."""
    env_text = Path(env_file).read_text(encoding="utf-8")
    if re.search(r"^\s*-?\s*pip\s*:", env_text, re.MULTILINE):
        # conda-lock needs its PyPI name mapping (a download) for a pip: section.
        raise InputFileError(
            env_file, f"{env_file}: has a 'pip:' section; the input hash needs the network"
        )
    vp_text = _check_virtual_packages(vp_file)
    try:
        return fast(env_text, vp_text, platform)
    except Unsupported:
        pass
    try:
        return slow(Path(env_file), Path(vp_file), platform)
    except ImportError:
        raise InputFileError(
            env_file,
            f"{env_file}: a spec spelling needs conda-lock's own parser and conda-lock is not "
            "installed here; run the check where conda-lock is (the project's .venv or env)",
        ) from None


def accepted_hashes(env_file: Path, vp_file: Path, platform: str) -> set[str]:
    """The ``# input_hash`` values conda-lock 4 accepts for ``platform`` (the current one and
    those of earlier conda-lock versions): fast when it can be, conda-lock's otherwise."""
    return _fast_or_conda_lock(
        env_file, vp_file, platform, fast_accepted_hashes, conda_lock_accepted_hashes
    )


def input_hash(env_file: Path, vp_file: Path, platform: str) -> str:
    """conda-lock's input hash of ``platform``: fast when it can be, conda-lock's otherwise."""
    return _fast_or_conda_lock(env_file, vp_file, platform, fast_input_hash, conda_lock_input_hash)
