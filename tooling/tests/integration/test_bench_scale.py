"""benchmarks/bench_scale.py cannot rot: its --quick mode (tiny sizes, one run) runs end to end
through the real tasks, make, conda-lock, Poetry and pip (the conda stand-in behind them) and
prints every row of its table and every target ratio."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from tests.paths import PROJECT, TOOLING

pytestmark = pytest.mark.integration

ROOT = PROJECT
sys.path.insert(0, str(TOOLING / "benchmarks"))

import bench_scale  # noqa: E402

SECONDS = r"\s+\d+\.\d{3} s"


def test_quick_mode_prints_the_whole_table() -> None:
    done = subprocess.run(
        [sys.executable, str(TOOLING / "benchmarks" / "bench_scale.py"), "--quick"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    out = done.stdout
    assert re.search(r"^machine: \d+ cores .*GiB free$", out, re.M), out
    rows = [
        bench_scale.RAW,
        bench_scale.MAKE,
        bench_scale.INVOKE,
        bench_scale.ENGINE,
        bench_scale.CREATE,
        bench_scale.FLOOR,
        bench_scale.PIP,
        bench_scale.PASS,
        bench_scale.CHECK,
        bench_scale.LIST,
        bench_scale.INVOKE_CHECK,
    ]
    for label in rows:
        assert re.search(re.escape(label) + SECONDS, out), f"no timed row {label!r}:\n{out}"
    # warm and cold each have the three reproduce rows
    for label in (
        bench_scale.RAW,
        bench_scale.MAKE,
        bench_scale.INVOKE,
        bench_scale.ENGINE,
        bench_scale.PIP,
    ):
        assert len(re.findall(re.escape(label) + SECONDS, out)) == 2, label
    uv_row = re.search(re.escape(bench_scale.UV) + SECONDS, out)
    assert uv_row or f"{bench_scale.UV}" in out and "n/a" in out, out
    targets = out.split(f"{bench_scale.TARGETS}\n", 1)[1].split("installers, warm")[0].splitlines()
    assert len(targets) == 6, out
    for line in targets:
        assert re.search(r"\d+\.\d\d  target |n/a", line), line
    for label in (
        bench_scale.NEW_RATTLER,
        bench_scale.NEW_FRONTEND,
        bench_scale.NEW_ALONE,
        bench_scale.ENV_FLOOR,
        bench_scale.TWO_RATTLER,
        bench_scale.TWO_FRONTEND,
        bench_scale.TWO_ALONE,
        bench_scale.NOOP,
        bench_scale.UPDATE_RATTLER,
        bench_scale.COLD_RATTLER,
        bench_scale.COLD_FRONTEND,
        bench_scale.COLD_ALONE,
    ):
        assert re.search(re.escape(label) + SECONDS, out), f"no timed row {label!r}:\n{out}"
    targets20 = out.split(f"{bench_scale.INSTALLER_TARGETS}\n", 1)[1].splitlines()
    assert len(targets20) == 9, out
    for line in targets20:
        assert re.search(r"\d+\.\d\d  target ", line), line
    profile = out.split("profile of warm engine runs", 1)[1].split(bench_scale.TARGETS)[0]
    for _module, _path, label in bench_scale.PHASES:
        assert re.search(re.escape(label) + SECONDS, profile), f"no phase {label!r}:\n{out}"
