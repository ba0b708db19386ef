"""lockstep.gpu against the real torch on a machine without a CUDA device."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from lockstep import gpu

torch = pytest.importorskip("torch", reason="torch is not installed; the mocked tests cover this")

if torch.cuda.is_available():
    pytest.skip(
        "a CUDA device is present: tests/gpu covers the GPU path on this machine",
        allow_module_level=True,
    )

SRC = Path(gpu.__file__).resolve().parents[1]


def run_module(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    return subprocess.run(
        [sys.executable, "-m", "lockstep.gpu", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def test_report_has_the_cpu_facts() -> None:
    report = gpu.build_report(torch, quick=True)
    assert report.status == gpu.STATUS_NO_CUDA
    assert report.torch is not None
    assert report.torch.version == torch.__version__
    assert report.torch.cuda_build is (torch.version.cuda is not None)
    assert report.host.torch_threads == torch.get_num_threads()
    assert report.host.platform and report.host.python
    assert len(report.problems) == 1


@pytest.mark.parametrize(("args", "code"), [((), gpu.EXIT_NO_CUDA), (("--allow-cpu",), 0)])
def test_module_entry_point_exit_code_and_json(args: tuple[str, ...], code: int) -> None:
    done = run_module("--json", *args)
    assert done.returncode == code, done.stderr
    document = json.loads(done.stdout)
    assert document["schema_version"] == gpu.SCHEMA_VERSION
    assert document["status"] == "no_cuda"
    assert document["torch"]["version"] == torch.__version__
    assert document["devices"] == []


def test_text_summary_names_the_build() -> None:
    done = run_module("--allow-cpu")
    assert done.returncode == 0, done.stderr
    assert f"torch {torch.__version__} (" in done.stdout
    assert "accepted because of --allow-cpu" in done.stdout


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
@pytest.mark.parametrize("op", ["matmul", "conv2d"])
def test_error_measure_on_real_tensors_is_within_tolerance(op: str, dtype: str) -> None:
    # The CPU stands in for the device: this runs the real tensor code and checks that the
    # tolerances leave room for honest low-precision arithmetic.
    error, scale = gpu.measure_op_error(torch, op, dtype, "cpu")
    check = gpu.judge_error(0, op, dtype, error, scale)
    assert scale > 1.0
    assert check.passed, check.message


def test_error_measure_catches_a_wrong_result(mocker: Any) -> None:
    real_matmul = torch.matmul

    def off_by_a_bit(a: Any, b: Any) -> Any:
        # Leave the float64 reference alone and corrupt only the "device" result.
        result = real_matmul(a, b)
        return result if a.dtype == torch.float64 else result * 1.01

    mocker.patch.object(torch, "matmul", off_by_a_bit)
    error, scale = gpu.measure_op_error(torch, "matmul", "float32", "cpu")
    check = gpu.judge_error(0, "matmul", "float32", error, scale)
    assert not check.passed
    assert check.relative_error == pytest.approx(0.01, rel=0.05)


def test_tf32_enabled_restores_real_flags() -> None:
    before = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    with gpu.tf32_enabled(torch, not before[0]):
        assert torch.backends.cuda.matmul.allow_tf32 is (not before[0])
    assert (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32) == before
