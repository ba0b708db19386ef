"""lockstep.core.envs.list_envs: which queries each frontend is asked, and with what."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Sequence
from pathlib import Path

import pytest

from lockstep.core import envs
from lockstep.core.frontend import Frontend

# Shaped as real conda 26.7.1 (run from its source, FACTS.md) prints it: the keys and their nesting
# are from a real run, the paths are made up, and only the keys read here are kept.
CONDA_INFO = {
    "envs": ["/opt/conda", "/opt/conda/envs/ml", "/data/elsewhere/ml"],
    "envs_details": {
        "/opt/conda": {"name": "base", "base": True},
        "/opt/conda/envs/ml": {"name": "ml", "base": False},
        "/data/elsewhere/ml": {"name": "", "base": False},
    },
    "envs_dirs": ["/opt/conda/envs", "/root/.conda/envs"],
    "root_prefix": "/opt/conda",
}


class Queries:
    def __init__(self, answers: dict[str, dict]) -> None:
        self.answers = answers
        self.asked: list[list[str]] = []

    def __call__(self, command: Sequence[str]) -> str:
        self.asked.append(list(command[1:]))
        return json.dumps(self.answers[" ".join(command[1:])])


def test_conda_is_asked_once_when_its_info_lists_the_envs() -> None:
    query = Queries({"info --json": CONDA_INFO})
    listing = envs.list_envs(Frontend("conda", "/opt/conda/bin/conda"), query)
    assert query.asked == [["info", "--json"]]
    assert listing.prefix_of("ml") == Path("/opt/conda/envs/ml")
    assert listing.new_prefix("new") == Path("/opt/conda/envs/new")


def test_a_conda_info_without_envs_is_followed_by_env_list() -> None:
    info = {k: v for k, v in CONDA_INFO.items() if k in ("envs_dirs", "root_prefix")}
    listed = {k: v for k, v in CONDA_INFO.items() if k in ("envs", "envs_details")}
    query = Queries({"info --json": info, "env list --json": listed})
    listing = envs.list_envs(Frontend("conda", "/opt/conda/bin/conda"), query)
    assert query.asked == [["info", "--json"], ["env", "list", "--json"]]
    assert listing.prefix_of("ml") == Path("/opt/conda/envs/ml")


def test_micromamba_is_asked_both_side_by_side() -> None:
    info = {"envs directories": ["/opt/mm/envs"], "base environment": "/opt/mm"}
    query = Queries({"info --json": info, "env list --json": {"envs": ["/opt/mm/envs/ml"]}})
    listing = envs.list_envs(Frontend("micromamba", "/opt/mm/bin/micromamba"), query)
    assert sorted(query.asked) == [["env", "list", "--json"], ["info", "--json"]]
    assert listing.prefix_of("ml") == Path("/opt/mm/envs/ml")


def test_the_listing_query_turns_cuda_detection_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = tmp_path / "conda"
    answer = '{"envs": [], "envs_dirs": ["/envs/[%s]"]}'
    script = f"#!/bin/sh\nprintf '{answer}' \"${{CONDA_OVERRIDE_CUDA-unset}}\"\n"
    fake.write_text(script)
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("CONDA_OVERRIDE_CUDA", "12.9")  # the user's own setting, for their solves
    listing = envs.list_envs(Frontend("conda", str(fake)))
    assert listing.envs_dirs == (Path("/envs/[]"),)  # it ran with the override set empty
    assert os.environ["CONDA_OVERRIDE_CUDA"] == "12.9"  # and nothing else saw it change


def test_the_prefix_last_given_is_remembered_per_frontend_and_name(tmp_path: Path) -> None:
    cache = tmp_path / "cache" / "env-prefixes.json"
    conda, mamba = Frontend("conda", "/opt/conda/bin/conda"), Frontend("mamba", "/opt/bin/mamba")
    assert envs.remembered(conda, "ml", cache) is None  # no file yet
    envs.remember(conda, "ml", Path("/opt/conda/envs/ml"), cache)
    envs.remember(mamba, "ml", Path("/data/envs/ml"), cache)
    assert envs.remembered(conda, "ml", cache) == Path("/opt/conda/envs/ml")
    assert envs.remembered(mamba, "ml", cache) == Path("/data/envs/ml")
    assert envs.remembered(conda, "other", cache) is None
    written = cache.stat().st_mtime_ns
    envs.remember(conda, "ml", Path("/opt/conda/envs/ml"), cache)  # same answer: not rewritten
    assert cache.stat().st_mtime_ns == written


def test_a_broken_or_unwritable_memory_costs_only_time(tmp_path: Path) -> None:
    conda = Frontend("conda", "/opt/conda/bin/conda")
    cache = tmp_path / "env-prefixes.json"
    for text in ["not json", "[1, 2]", json.dumps({"/opt/conda/bin/conda\nml": 3})]:
        cache.write_text(text)
        assert envs.remembered(conda, "ml", cache) is None
    blocked = tmp_path / "a file" / "env-prefixes.json"  # its folder cannot be made
    (tmp_path / "a file").write_text("")
    envs.remember(conda, "ml", Path("/opt/conda/envs/ml"), blocked)
    assert envs.remembered(conda, "ml", blocked) is None
