"""Frontend choice: env commands, and conda-lock's solver (mamba 2.6+ breaks it)."""

from __future__ import annotations

import pytest

from lockstep.core.errors import LockstepError
from lockstep.core.frontend import Frontend, find_frontend, frontend_for_lock, parse_version


def _which(available: dict[str, str]):
    return lambda name: available.get(name)


def test_auto_prefers_conda_then_mamba_then_micromamba() -> None:
    everything = {"conda": "/c/conda", "mamba": "/c/mamba", "micromamba": "/c/micromamba"}
    assert find_frontend("auto", _which(everything)) == Frontend("conda", "/c/conda")
    assert find_frontend("auto", _which({"micromamba": "/m"})) == Frontend("micromamba", "/m")


def test_named_frontend_and_path() -> None:
    assert find_frontend("mamba", _which({"mamba": "/x/mamba"})) == Frontend("mamba", "/x/mamba")
    path = "/opt/mm/bin/micromamba"
    assert find_frontend(path, _which({path: path})) == Frontend("micromamba", path)


def test_no_frontend_on_path() -> None:
    with pytest.raises(LockstepError, match="no conda, mamba or micromamba on PATH; install"):
        find_frontend("auto", _which({}))


def test_named_frontend_missing() -> None:
    with pytest.raises(LockstepError, match="'mamba' not found"):
        find_frontend("mamba", _which({}))


def test_not_a_frontend() -> None:
    with pytest.raises(LockstepError, match="is not conda, mamba or micromamba"):
        find_frontend("/usr/bin/pip", _which({}))


@pytest.mark.parametrize(
    ("output", "version"),
    [
        ("conda 26.1.0\n", (26, 1, 0)),
        ("2.5.0\n", (2, 5, 0)),
        ("micromamba 2.6.1", (2, 6, 1)),
        ("mamba 1.5", (1, 5)),
    ],
)
def test_parse_version(output: str, version: tuple[int, ...]) -> None:
    assert parse_version(output) == version


def test_conda_lock_uses_conda_when_present() -> None:
    chosen = frontend_for_lock({"conda": "/c", "mamba": "/m"}, {"mamba": "2.7.0"})
    assert chosen == Frontend("conda", "/c")


def test_conda_lock_accepts_mamba_before_2_6() -> None:
    assert frontend_for_lock({"mamba": "/m"}, {"mamba": "2.5.9"}) == Frontend("mamba", "/m")


@pytest.mark.parametrize("kind", ["mamba", "micromamba"])
def test_conda_lock_refuses_mamba_2_6_and_newer(kind: str) -> None:
    with pytest.raises(LockstepError, match=rf"cannot solve with {kind} 2.6.0 .*issue 906"):
        frontend_for_lock({kind: "/m"}, {kind: "2.6.0"})


def test_conda_lock_without_any_frontend() -> None:
    with pytest.raises(LockstepError, match="conda-lock needs conda"):
        frontend_for_lock({}, {})
