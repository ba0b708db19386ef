"""lockstep.gpu on a real CUDA device; skipped with a reason anywhere else."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

import pytest

from lockstep import gpu

# tests/conftest.py skips every gpu test, with its reason, where torch sees no CUDA device.
pytestmark = pytest.mark.gpu


@pytest.fixture(scope="module")
def torch() -> ModuleType:
    import torch

    return torch


SRC = Path(gpu.__file__).resolve().parents[1]
# The budget for the whole check, CUDA start-up included.
BUDGET_S = 15.0


@pytest.fixture(scope="module")
def full_run() -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "lockstep.gpu", "--json"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(SRC)},
        timeout=300,
        check=False,
    )
    return done, time.perf_counter() - started


def test_full_check_passes(
    full_run: tuple[subprocess.CompletedProcess[str], float], torch: ModuleType
) -> None:
    done, _ = full_run
    document = json.loads(done.stdout)
    assert done.returncode == gpu.EXIT_OK, document["problems"]
    assert document["status"] == "ok"
    assert len(document["devices"]) == torch.cuda.device_count()
    assert all(device["arch_covered"] for device in document["devices"])
    assert document["checks"] and all(check["passed"] for check in document["checks"])
    for bench in document["benchmarks"]:
        assert bench["error"] is None
        assert bench["tf32_tflops"] > 0
        assert bench["h2d_pinned_gbps"] > 0 and bench["d2d_gbps"] > 0


def test_full_check_fits_the_time_budget(
    full_run: tuple[subprocess.CompletedProcess[str], float],
) -> None:
    done, wall_s = full_run
    assert done.returncode == gpu.EXIT_OK, done.stdout
    assert wall_s < BUDGET_S, f"took {wall_s:.1f} s, budget {BUDGET_S} s"


def test_fp32_check_ignores_a_callers_tf32_setting(torch: ModuleType) -> None:
    # The check switches TF32 off itself, so a caller who enabled it cannot make it flaky.
    saved = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    try:
        for op in ("matmul", "conv2d"):
            error, scale = gpu.measure_op_error(torch, op, "float32", "cuda:0")
            check = gpu.judge_error(0, op, "float32", error, scale)
            assert check.passed, check.message
        assert torch.backends.cuda.matmul.allow_tf32 is True
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def test_bf16_check_where_supported(torch: ModuleType) -> None:
    if not torch.cuda.is_bf16_supported():
        pytest.skip("device 0 has no bfloat16 support")
    for op in ("matmul", "conv2d"):
        error, scale = gpu.measure_op_error(torch, op, "bfloat16", "cuda:0")
        check = gpu.judge_error(0, op, "bfloat16", error, scale)
        assert check.passed, check.message
