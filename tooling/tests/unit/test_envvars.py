"""Env variables written the way `conda env config vars set` stores them."""

from __future__ import annotations

import json
from pathlib import Path

from lockstep.core.envvars import main, merged_state, set_env_vars


def test_merged_state_keeps_other_keys() -> None:
    current = {"env_vars": {"A": "1"}, "other": True}
    assert merged_state(current, {"PYTHONNOUSERSITE": "1"}) == {
        "env_vars": {"A": "1", "PYTHONNOUSERSITE": "1"},
        "other": True,
    }


def test_set_env_vars_creates_and_updates(tmp_path: Path) -> None:
    (tmp_path / "conda-meta").mkdir()
    set_env_vars(tmp_path, {"PYTHONNOUSERSITE": "1"})
    assert main(["--prefix", str(tmp_path), "X=2"]) == 0
    state = json.loads((tmp_path / "conda-meta" / "state").read_text())
    assert state == {"env_vars": {"PYTHONNOUSERSITE": "1", "X": "2"}}
    assert not list((tmp_path / "conda-meta").glob(".state.*"))
