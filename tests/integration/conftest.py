"""Fixtures of the offline integration suite: a local conda channel, a local wheel index,
conda/mamba stand-ins on PATH and an environment with every cache and config in tmp.

Nothing here reaches beyond 127.0.0.1.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import pytest

from .channel import CondaPackage, build_channel
from .condastandin.conda_standin import ROOT_VAR, write_executables
from .pyindex import PackageIndex, build_index, serve_index

# Variables of the developer's shell that would leak an active env or a config into a test.
_LEAKY_PREFIXES = ("CONDA_", "MAMBA_", "POETRY_", "PIP_", "VIRTUAL_ENV", "PYTHON")


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


@pytest.fixture(scope="session")
def standin_bin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A bin/ dir holding the `conda` and `mamba` stand-ins (test doubles of the CLI)."""
    bin_dir = tmp_path_factory.mktemp("standin") / "bin"
    write_executables(bin_dir)
    return bin_dir


@pytest.fixture
def integration_env(tmp_path: Path, standin_bin: Path, wheel_index: PackageIndex) -> dict[str, str]:
    """Environment variables for a tool run: stand-ins first on PATH, all state under tmp_path.

    The test venv's bin follows, so conda-lock, poetry and invoke resolve to the tested ones.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(_LEAKY_PREFIXES)}
    state = tmp_path / "state"
    venv_bin = str(Path(sys.executable).parent)
    env.update(
        PATH=os.pathsep.join([str(standin_bin), venv_bin, env.get("PATH", "")]),
        HOME=str(state / "home"),
        XDG_CACHE_HOME=str(state / "xdg-cache"),
        XDG_CONFIG_HOME=str(state / "xdg-config"),
        XDG_DATA_HOME=str(state / "xdg-data"),
        CONDA_EXE=str(standin_bin / "conda"),
        **{ROOT_VAR: str(state / "conda-root")},
        POETRY_CACHE_DIR=str(state / "poetry-cache"),
        POETRY_CONFIG_DIR=str(state / "poetry-config"),
        POETRY_DATA_DIR=str(state / "poetry-data"),
        POETRY_NO_INTERACTION="1",
        # A keyring backend probing D-Bus can stall Poetry for seconds.
        PYTHON_KEYRING_BACKEND="keyring.backends.null.Keyring",
        PIP_CACHE_DIR=str(state / "pip-cache"),
        # The host's pip.conf points at other indexes; only the local one may be used.
        PIP_CONFIG_FILE=os.devnull,
        PIP_INDEX_URL=wheel_index.url,
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        PYTHONNOUSERSITE="1",
        # A native crash in a tool (rattler, say) then leaves a traceback in the failure message.
        PYTHONFAULTHANDLER="1",
    )
    (state / "home").mkdir(parents=True)
    return env
