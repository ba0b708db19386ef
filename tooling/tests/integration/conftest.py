"""Fixtures of the offline integration suite: a local conda channel, a local wheel index,
conda/mamba stand-ins on PATH and an environment with every cache and config in tmp.

Nothing here reaches beyond 127.0.0.1.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import pytest

from .channel import CondaPackage, build_channel
from .condastandin.conda_standin import ROOT_VAR, write_executables
from .helpers import isolated_env
from .pyindex import PackageIndex, build_index, serve_index


@pytest.fixture(scope="session")
def conda_channel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default local channel (read-only: tests that add packages use channel_factory)."""
    return build_channel(tmp_path_factory.mktemp("conda-channel"))


ChannelFactory = Callable[[Iterable[CondaPackage] | None], Path]


@pytest.fixture
def channel_factory(tmp_path: Path) -> ChannelFactory:
    """Build a private channel (default packages unless given) that a test may extend."""

    def build(packages: Iterable[CondaPackage] | None = None) -> Path:
        return build_channel(tmp_path / "private-channel", packages)

    return build


@pytest.fixture(scope="session")
def wheel_index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PackageIndex]:
    """The local PEP 503 index, served for the whole session; `.url` ends in /simple/."""
    with serve_index(build_index(tmp_path_factory.mktemp("wheel-index"))) as index:
        yield index


@pytest.fixture
def gated_wheel_index(tmp_path: Path) -> Iterator[PackageIndex]:
    """A private index whose wheel downloads wait at a gate (`.wait_reached()`, `.release()`).

    Point one tool run at its `.url` to hold pip mid-way through the PyPI step.
    """
    root = build_index(tmp_path / "gated-wheel-index")
    with serve_index(root, gate_dir=tmp_path / "pip-gate") as index:
        yield index


@pytest.fixture(scope="session")
def standin_bin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A bin/ dir holding the `conda` and `mamba` stand-ins (test doubles of the CLI)."""
    bin_dir = tmp_path_factory.mktemp("standin") / "bin"
    write_executables(bin_dir)
    return bin_dir


@pytest.fixture
def integration_env(tmp_path: Path, standin_bin: Path, wheel_index: PackageIndex) -> dict[str, str]:
    """Environment variables for a tool run: stand-ins first on PATH, all state under tmp_path."""
    return isolated_env(tmp_path / "state", standin_bin, wheel_index.url, ROOT_VAR)
