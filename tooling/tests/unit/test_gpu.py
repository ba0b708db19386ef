"""Unit tests of lockstep.gpu with a fake torch: every branch runs without torch or a GPU."""

from __future__ import annotations

import contextlib
import json
import math
import subprocess
import sys
import types
import warnings
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from lockstep import gpu

SRC = Path(gpu.__file__).resolve().parents[1]

H100 = ("NVIDIA H100 80GB HBM3", 9, 0)
V100 = ("Tesla V100-SXM2-16GB", 7, 0)
RTX5090 = ("NVIDIA GeForce RTX 5090", 12, 0)
GOOD_SPEED = {
    "bf16_tflops": 700.0,
    "tf32_tflops": 350.0,
    "h2d_pinned_gbps": 50.0,
    "d2d_gbps": 2600.0,
}


def make_torch(
    *,
    cuda: str | None = "12.9",
    devices: tuple[tuple[str, int, int], ...] = (),
    arch: tuple[str, ...] = ("sm_80", "sm_90", "compute_90"),
    cudnn: int | None = 91002,
    nccl: tuple[int, ...] | None = (2, 27, 3),
    hip: str | None = None,
    init_warning: str | None = None,
) -> types.ModuleType:
    """Build a stand-in for the parts of torch that gpu.py touches outside the GPU work."""
    props = [
        SimpleNamespace(
            name=name, major=major, minor=minor, total_memory=80 * 2**30, multi_processor_count=132
        )
        for name, major, minor in devices
    ]
    current = {"index": 0}

    @contextlib.contextmanager
    def device(index: int) -> Any:
        current["index"] = index
        yield

    def is_available() -> bool:
        if init_warning:
            warnings.warn(init_warning, UserWarning, stacklevel=2)
        return bool(props)

    def is_bf16_supported(including_emulation: bool = True) -> bool:
        return props[current["index"]].major >= 8

    torch = types.ModuleType("torch")
    torch.__version__ = "2.9.1" if cuda else "2.9.1+cpu"
    torch.version = SimpleNamespace(cuda=cuda, hip=hip)
    torch.get_num_threads = lambda: 8
    torch.cuda = SimpleNamespace(
        is_available=is_available,
        device_count=lambda: len(props),
        get_device_properties=lambda index: props[index],
        get_arch_list=lambda: list(arch) if cuda else [],
        is_bf16_supported=is_bf16_supported,
        device=device,
        nccl=SimpleNamespace(version=lambda: nccl),
    )
    torch.backends = SimpleNamespace(
        cudnn=SimpleNamespace(
            is_available=lambda: cudnn is not None, version=lambda: cudnn, allow_tf32=True
        ),
        cuda=SimpleNamespace(matmul=SimpleNamespace(allow_tf32=False)),
    )
    torch.distributed = SimpleNamespace(
        is_available=lambda: True, is_nccl_available=lambda: nccl is not None
    )
    return torch


@pytest.fixture
def gpu_work(mocker: Any) -> SimpleNamespace:
    """Replace the GPU work with recorded results; each test adjusts what it needs."""
    return SimpleNamespace(
        op_error=mocker.patch.object(gpu, "measure_op_error", return_value=(1e-6, 20.0)),
        speed=mocker.patch.object(gpu, "measure_speed", return_value=(8192, dict(GOOD_SPEED))),
    )


def report_for(torch: Any, **options: Any) -> gpu.Report:
    return gpu.build_report(torch, driver=lambda: "570.124.06", **options)


# --- pure helpers -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ("sm_90", ("sm", 9, 0, "")),
        ("sm_86", ("sm", 8, 6, "")),
        ("sm_100", ("sm", 10, 0, "")),
        ("sm_90a", ("sm", 9, 0, "a")),
        ("compute_120", ("compute", 12, 0, "")),
        ("gfx90a", None),
        ("sm_", None),
    ],
    ids=lambda value: str(value),
)
def test_parse_arch(entry: str, expected: tuple[str, int, int, str] | None) -> None:
    assert gpu.parse_arch(entry) == expected


@pytest.mark.parametrize(
    ("arch_list", "capability", "expected"),
    [
        (["sm_80", "sm_90"], (9, 0), (True, "sm_90")),
        (["sm_80"], (8, 6), (True, "sm_80")),  # SASS runs on a higher minor of the same major
        (["sm_86"], (8, 0), (False, None)),  # but not on a lower minor
        (["sm_80"], (9, 0), (False, None)),  # nor across majors
        (["sm_80", "compute_80"], (9, 0), (True, "compute_80")),  # PTX JITs forward
        (["compute_90"], (8, 6), (False, None)),  # PTX never runs backwards
        (["sm_100"], (12, 0), (False, None)),  # Blackwell datacenter SASS is not RTX 50 SASS
        (["sm_90a"], (9, 0), (True, "sm_90a")),  # arch-specific: exact match only
        (["compute_90a"], (10, 0), (False, None)),
        (["compute_80", "sm_90"], (9, 0), (True, "sm_90")),  # native preferred over JIT
        (["gfx942", "sm_90"], (9, 0), (True, "sm_90")),  # unparsable entries are ignored
        ([], (9, 0), (False, None)),
    ],
    ids=lambda value: str(value),
)
def test_arch_coverage(
    arch_list: list[str], capability: tuple[int, int], expected: tuple[bool, str | None]
) -> None:
    assert gpu.arch_coverage(arch_list, capability) == expected


@pytest.mark.parametrize(
    ("raw", "expected"), [(8902, "8.9.2"), (90100, "9.1.0"), (91002, "9.10.2"), (7605, "7.6.5")]
)
def test_format_cudnn_version(raw: int, expected: str) -> None:
    assert gpu.format_cudnn_version(raw) == expected


@pytest.mark.parametrize(
    ("name", "card"),
    [
        ("NVIDIA H100 80GB HBM3", "H100 SXM"),
        ("NVIDIA H100 PCIe", "H100 PCIe"),
        ("NVIDIA H100 NVL", "H100 NVL"),
        ("NVIDIA H200", "H200 SXM"),
        ("NVIDIA H200 NVL", "H200 NVL"),
        ("NVIDIA A100-SXM4-40GB", "A100 40GB SXM"),
        ("NVIDIA A100-SXM4-80GB", "A100 80GB SXM"),
        ("NVIDIA A100-PCIE-40GB", "A100 40GB PCIe"),
        ("NVIDIA A100 80GB PCIe", "A100 80GB PCIe"),
        ("NVIDIA L4", "L4"),
        ("NVIDIA L40S", "L40S"),
        ("NVIDIA L40", "L40"),
        ("NVIDIA A10", "A10"),
        ("NVIDIA GeForce RTX 4090", "GeForce RTX 4090"),
        ("NVIDIA GeForce RTX 3090", "GeForce RTX 3090"),
        ("Tesla V100-SXM2-16GB", "V100"),
        ("Tesla T4", "T4"),
        ("NVIDIA A10G", "unknown"),  # an AWS variant with its own, unpublished peaks
        ("NVIDIA GeForce RTX 3090 Ti", "unknown"),
        ("NVIDIA GeForce RTX 4090 D", "unknown"),
        ("NVIDIA GH200 480GB", "unknown"),
        ("Some Future GPU", "unknown"),
    ],
)
def test_find_peak_matches_real_device_names(name: str, card: str) -> None:
    assert gpu.find_peak(name).card == card


def test_every_known_card_names_its_source_and_dense_peaks() -> None:
    for rule in gpu.PEAK_RULES:
        peak = rule.peak
        assert "datasheet" in peak.source or "whitepaper" in peak.source, peak
        assert peak.memory_gbps and peak.memory_gbps > 0, peak
        # Dense TF32 is half of dense BF16 on every tensor-core generation listed.
        if peak.bf16_tflops is not None:
            assert peak.tf32_tflops == pytest.approx(peak.bf16_tflops / 2, rel=0.02), peak
    assert gpu.find_peak("nothing").source == "unknown"


@pytest.mark.parametrize(
    ("dtype", "error", "passed"),
    [
        ("float32", 1e-5, True),
        ("float32", 2e-2, False),  # the size of a TF32 error: fails the fp32 budget
        ("bfloat16", 2e-2, True),
        ("bfloat16", 1.0, False),
        ("float32", math.nan, False),
        ("bfloat16", math.inf, False),
    ],
)
def test_judge_error(dtype: str, error: float, passed: bool) -> None:
    check = gpu.judge_error(0, "matmul", dtype, error, 20.0)
    assert check.passed is passed
    assert check.tolerance == gpu.TOLERANCES[dtype]
    assert ("agrees" in check.message) is passed
    assert check.tf32 is False


def test_failed_check_keeps_the_exception_text() -> None:
    check = gpu.failed_check(1, "conv2d", "bfloat16", RuntimeError("no kernel image"))
    assert not check.passed
    assert check.max_abs_error is None
    assert check.message == "GPU 1 conv2d bfloat16 raised RuntimeError: no kernel image"


def test_speed_units() -> None:
    assert gpu.matmul_tflops(1000, 2.0) == pytest.approx(1.0)  # 2e9 flops in 2 ms
    assert gpu.bandwidth_gbps(10**9, 1000.0) == pytest.approx(1.0)


def test_with_peaks_computes_fractions_for_a_known_card() -> None:
    bench = gpu.with_peaks(0, "NVIDIA H100 80GB HBM3", 8192, GOOD_SPEED)
    assert bench.peak.card == "H100 SXM"
    assert bench.bf16_fraction_of_peak == pytest.approx(700 / 989.5)
    assert bench.tf32_fraction_of_peak == pytest.approx(350 / 494.5)
    assert bench.d2d_fraction_of_peak == pytest.approx(2600 / 3350)
    assert gpu.benchmark_warnings(bench) == []


def test_with_peaks_for_an_unknown_card_has_no_fractions() -> None:
    bench = gpu.with_peaks(0, "Mystery GPU", 8192, GOOD_SPEED)
    assert bench.peak == gpu.UNKNOWN_PEAK
    assert (bench.bf16_fraction_of_peak, bench.tf32_fraction_of_peak) == (None, None)
    assert bench.d2d_fraction_of_peak is None
    assert bench.bf16_tflops == 700.0


def test_low_speed_and_errors_become_warnings() -> None:
    slow = gpu.with_peaks(0, "NVIDIA L4", 8192, {**GOOD_SPEED, "bf16_tflops": 10.0})
    found = gpu.benchmark_warnings(slow)
    assert len(found) == 1
    assert "bf16 matmul reached 8% of the L4 peak (121.0 TFLOP/s" in found[0]
    broken = gpu.with_peaks(0, "NVIDIA L4", 0, {}, "OutOfMemoryError: CUDA out of memory")
    assert gpu.benchmark_warnings(broken) == [
        "GPU 0 benchmark stopped early: OutOfMemoryError: CUDA out of memory"
    ]


@pytest.mark.parametrize(
    ("problems", "has_cuda", "has_torch", "allow_cpu", "expected"),
    [
        ([], True, True, False, ("ok", gpu.EXIT_OK)),
        (["x"], True, True, False, ("failed", gpu.EXIT_CHECK_FAILED)),
        (["x"], False, True, False, ("no_cuda", gpu.EXIT_NO_CUDA)),
        (["x"], False, True, True, ("no_cuda", gpu.EXIT_OK)),
        (["x"], False, False, True, ("no_torch", gpu.EXIT_NO_TORCH)),
    ],
)
def test_decide(
    problems: list[str], has_cuda: bool, has_torch: bool, allow_cpu: bool, expected: tuple
) -> None:
    assert gpu.decide(problems, has_cuda, has_torch, allow_cpu) == expected


def test_exit_codes_are_distinct_and_leave_2_to_argparse() -> None:
    codes = [gpu.EXIT_OK, gpu.EXIT_CHECK_FAILED, gpu.EXIT_NO_CUDA, gpu.EXIT_NO_TORCH]
    assert len(set(codes)) == 4
    assert 2 not in codes


# --- driver version -----------------------------------------------------------------------------


def fake_run(stdout: str = "", returncode: int = 0, raises: Exception | None = None) -> Any:
    calls: list[list[str]] = []

    def run(command: list[str], **kwargs: Any) -> Any:
        calls.append(command)
        if raises:
            raise raises
        return SimpleNamespace(stdout=stdout, returncode=returncode)

    run.calls = calls  # type: ignore[attr-defined]
    return run


# --- whole reports, branch by branch ------------------------------------------------------------


def test_no_torch() -> None:
    report = gpu.build_report(None, import_error="ModuleNotFoundError: No module named 'torch'")
    assert (report.status, report.exit_code) == ("no_torch", gpu.EXIT_NO_TORCH)
    assert report.torch is None
    assert report.host.torch_threads is None
    assert "torch is not importable (ModuleNotFoundError" in report.problems[0]


def test_no_torch_is_not_excused_by_allow_cpu() -> None:
    assert gpu.build_report(None, allow_cpu=True).exit_code == gpu.EXIT_NO_TORCH


def test_cpu_build(gpu_work: SimpleNamespace) -> None:
    report = report_for(make_torch(cuda=None))
    assert (report.status, report.exit_code) == ("no_cuda", gpu.EXIT_NO_CUDA)
    assert report.torch is not None
    assert report.torch.cuda_build is False
    assert report.torch.driver_version is None  # no point asking without a CUDA build
    assert report.torch.cudnn == gpu.LibraryInfo(False, None)
    assert report.host.torch_threads == 8
    assert "2.9.1+cpu is a CPU-only build" in report.problems[0]
    gpu_work.op_error.assert_not_called()


def test_cpu_build_with_allow_cpu_exits_0() -> None:
    report = report_for(make_torch(cuda=None), allow_cpu=True)
    assert (report.status, report.exit_code) == ("no_cuda", gpu.EXIT_OK)
    assert "accepted because of --allow-cpu" in gpu.render_text(report)


def test_rocm_build_says_so() -> None:
    report = report_for(make_torch(cuda=None, hip="6.2"))
    assert report.problems == [
        "torch 2.9.1+cpu is a ROCm build; this check covers CUDA builds only"
    ]


def test_cuda_build_without_device_passes_on_torch_warning(monkeypatch: Any) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    torch = make_torch(init_warning="The NVIDIA driver on your system is too old")
    report = report_for(torch)
    assert (report.status, report.exit_code) == ("no_cuda", gpu.EXIT_NO_CUDA)
    assert report.torch is not None and report.torch.cudnn.version == "9.10.2"
    assert report.torch.nccl == gpu.LibraryInfo(True, "2.27.3")
    assert report.torch.driver_version == "570.124.06"
    assert report.problems == [
        "torch 2.9.1 is a CUDA 12.9 build but sees no CUDA device; CUDA_VISIBLE_DEVICES=''; "
        "torch says: The NVIDIA driver on your system is too old; check `nvidia-smi` and the driver"
    ]


def test_all_good(gpu_work: SimpleNamespace) -> None:
    report = report_for(make_torch(devices=(H100,)))
    assert (report.status, report.exit_code) == ("ok", gpu.EXIT_OK)
    assert report.problems == [] and report.warnings == []
    (device,) = report.devices
    assert (device.capability, device.covered_by, device.coverage) == ("9.0", "sm_90", "native")
    assert [(c.op, c.dtype) for c in report.checks] == [
        ("matmul", "float32"),
        ("conv2d", "float32"),
        ("matmul", "bfloat16"),
        ("conv2d", "bfloat16"),
    ]
    assert all(check.passed for check in report.checks)
    assert report.benchmarks[0].peak.card == "H100 SXM"


def test_device_not_covered_by_arch_list_fails_without_running_kernels(
    gpu_work: SimpleNamespace,
) -> None:
    report = report_for(make_torch(devices=(RTX5090,), arch=("sm_80", "sm_90", "compute_90a")))
    assert (report.status, report.exit_code) == ("failed", gpu.EXIT_CHECK_FAILED)
    assert report.devices[0].arch_covered is False
    assert report.devices[0].coverage == "none"
    assert report.problems == [
        "GPU 0 NVIDIA GeForce RTX 5090 (compute capability 12.0, sm_120) is not covered by this "
        "torch build's arch list [sm_80 sm_90 compute_90a]; install a build compiled for sm_120 "
        "or carrying PTX for compute capability <= 12.0"
    ]
    gpu_work.op_error.assert_not_called()
    gpu_work.speed.assert_not_called()


def test_ptx_coverage_passes_and_is_reported(gpu_work: SimpleNamespace) -> None:
    report = report_for(make_torch(devices=(RTX5090,), arch=("sm_90", "compute_90")))
    assert report.exit_code == gpu.EXIT_OK
    assert (report.devices[0].covered_by, report.devices[0].coverage) == ("compute_90", "ptx-jit")


def test_wrong_numerical_result_fails(gpu_work: SimpleNamespace) -> None:
    gpu_work.op_error.side_effect = lambda torch, op, dtype, device: (
        (3.0, 20.0) if (op, dtype) == ("conv2d", "float32") else (1e-6, 20.0)
    )
    report = report_for(make_torch(devices=(H100,)))
    assert (report.status, report.exit_code) == ("failed", gpu.EXIT_CHECK_FAILED)
    assert [c.passed for c in report.checks] == [True, False, True, True]
    assert report.problems == [
        "GPU 0 conv2d float32 DISAGREES with the CPU float64 reference: max error 1.50e-01 of "
        "the output scale (tolerance 1e-04)"
    ]


def test_op_that_raises_is_a_failed_check(gpu_work: SimpleNamespace) -> None:
    gpu_work.op_error.side_effect = RuntimeError("CUDA error: no kernel image is available")
    report = report_for(make_torch(devices=(H100,)))
    assert report.exit_code != gpu.EXIT_OK
    assert len(report.problems) == 4
    assert "matmul float32 raised RuntimeError: CUDA error: no kernel image" in report.problems[0]


def test_several_devices_each_checked(gpu_work: SimpleNamespace) -> None:
    torch = make_torch(devices=(H100, V100), arch=("sm_70", "sm_80", "sm_90"))
    gpu_work.speed.side_effect = lambda torch, device: (
        (8192, dict(GOOD_SPEED))
        if device.index == 0
        else (4096, {**GOOD_SPEED, "bf16_tflops": None})
    )
    report = report_for(torch)
    assert report.exit_code == gpu.EXIT_OK
    assert [(d.index, d.name, d.bf16_supported) for d in report.devices] == [
        (0, H100[0], True),
        (1, V100[0], False),
    ]
    # No native bf16 on the V100: only its fp32 checks run.
    assert [(c.device, c.dtype) for c in report.checks if c.device == 1] == [
        (1, "float32"),
        (1, "float32"),
    ]
    devices_asked = [call.args[3] for call in gpu_work.op_error.call_args_list]
    assert devices_asked == ["cuda:0"] * 4 + ["cuda:1"] * 2
    assert [(b.device, b.peak.card, b.matmul_n) for b in report.benchmarks] == [
        (0, "H100 SXM", 8192),
        (1, "V100", 4096),
    ]
    assert report.benchmarks[1].tf32_fraction_of_peak is None  # Volta has no TF32 peak


def test_one_bad_device_among_several_fails_the_run(gpu_work: SimpleNamespace) -> None:
    torch = make_torch(devices=(H100, H100))
    gpu_work.op_error.side_effect = lambda torch, op, dtype, device: (
        (float("nan"), 20.0) if device == "cuda:1" else (1e-6, 20.0)
    )
    report = report_for(torch)
    assert report.exit_code != gpu.EXIT_OK
    assert len(report.problems) == 4
    assert all(problem.startswith("GPU 1 ") for problem in report.problems)


def test_quick_skips_the_benchmark(gpu_work: SimpleNamespace) -> None:
    report = report_for(make_torch(devices=(H100,)), quick=True)
    assert report.exit_code == gpu.EXIT_OK
    assert report.benchmarks == []
    gpu_work.speed.assert_not_called()
    assert "benchmark skipped (--quick)" in gpu.render_text(report)


def test_benchmark_crash_is_a_warning_not_a_failure(gpu_work: SimpleNamespace) -> None:
    gpu_work.speed.side_effect = RuntimeError("CUDA out of memory")
    report = report_for(make_torch(devices=(H100,)))
    assert report.exit_code == gpu.EXIT_OK
    assert report.benchmarks[0].error == "RuntimeError: CUDA out of memory"
    assert report.benchmarks[0].bf16_tflops is None
    assert report.warnings == ["GPU 0 benchmark stopped early: RuntimeError: CUDA out of memory"]


# --- JSON schema --------------------------------------------------------------------------------

TOP_KEYS = [
    "schema_version",
    "status",
    "exit_code",
    "allow_cpu",
    "quick",
    "problems",
    "warnings",
    "host",
    "torch",
    "devices",
    "checks",
    "benchmarks",
    "elapsed_s",
    "variant",
]
HOST_KEYS = ["platform", "python", "cpu_count", "torch_threads"]
TORCH_KEYS = [
    "version",
    "cuda_build",
    "cuda_version",
    "driver_version",
    "cudnn",
    "nccl",
    "arch_list",
]
DEVICE_KEYS = [
    "index",
    "name",
    "capability",
    "total_memory_bytes",
    "multiprocessor_count",
    "bf16_supported",
    "arch_covered",
    "covered_by",
    "coverage",
]
CHECK_KEYS = [
    "device",
    "op",
    "dtype",
    "passed",
    "max_abs_error",
    "reference_scale",
    "relative_error",
    "tolerance",
    "tf32",
    "message",
]
BENCH_KEYS = [
    "device",
    "matmul_n",
    "bf16_tflops",
    "tf32_tflops",
    "h2d_pinned_gbps",
    "d2d_gbps",
    "bf16_fraction_of_peak",
    "tf32_fraction_of_peak",
    "d2d_fraction_of_peak",
    "peak",
    "error",
]
PEAK_KEYS = ["card", "bf16_tflops", "tf32_tflops", "memory_gbps", "source"]


def test_json_schema_is_stable(gpu_work: SimpleNamespace) -> None:
    document = json.loads(gpu.render_json(report_for(make_torch(devices=(H100,)))))
    assert list(document) == TOP_KEYS
    assert document["schema_version"] == 1
    assert list(document["host"]) == HOST_KEYS
    assert list(document["torch"]) == TORCH_KEYS
    assert list(document["torch"]["cudnn"]) == ["available", "version"]
    assert list(document["torch"]["nccl"]) == ["available", "version"]
    assert list(document["devices"][0]) == DEVICE_KEYS
    assert list(document["checks"][0]) == CHECK_KEYS
    assert list(document["benchmarks"][0]) == BENCH_KEYS
    assert list(document["benchmarks"][0]["peak"]) == PEAK_KEYS


@pytest.mark.parametrize(
    "torch", [None, make_torch(cuda=None), make_torch()], ids=["no-torch", "cpu", "no-device"]
)
def test_json_top_level_is_the_same_whatever_happened(torch: Any) -> None:
    document = json.loads(gpu.render_json(report_for(torch)))
    assert list(document) == TOP_KEYS
    assert list(document["host"]) == HOST_KEYS
    assert document["torch"] is None or list(document["torch"]) == TORCH_KEYS
    assert (document["devices"], document["checks"], document["benchmarks"]) == ([], [], [])


def test_unknown_card_serialises_as_unknown(gpu_work: SimpleNamespace) -> None:
    document = gpu.report_to_dict(report_for(make_torch(devices=(("Mystery GPU", 9, 0),))))
    assert document["benchmarks"][0]["peak"] == {
        "card": "unknown",
        "bf16_tflops": None,
        "tf32_tflops": None,
        "memory_gbps": None,
        "source": "unknown",
    }


# --- main and the command line ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("torch", "argv", "code"),
    [
        (None, [], gpu.EXIT_NO_TORCH),
        (make_torch(cuda=None), [], gpu.EXIT_NO_CUDA),
        (make_torch(cuda=None), ["--allow-cpu"], gpu.EXIT_OK),
        (make_torch(), [], gpu.EXIT_NO_CUDA),
        (make_torch(devices=(H100,)), [], gpu.EXIT_OK),
        (make_torch(devices=(RTX5090,), arch=("sm_90",)), [], gpu.EXIT_CHECK_FAILED),
    ],
    ids=["no-torch", "cpu", "cpu-allowed", "no-device", "ok", "not-covered"],
)
def test_main_exit_codes(
    mocker: Any, gpu_work: SimpleNamespace, capsys: Any, torch: Any, argv: list[str], code: int
) -> None:
    mocker.patch.object(gpu, "load_torch", return_value=(torch, None if torch else "missing"))
    mocker.patch.object(gpu.nvidia, "driver_version", return_value="570.124.06")
    assert gpu.main([*argv, "--json"]) == code
    assert json.loads(capsys.readouterr().out)["exit_code"] == code


def test_main_prints_a_readable_summary(
    mocker: Any, gpu_work: SimpleNamespace, capsys: Any
) -> None:
    mocker.patch.object(gpu, "load_torch", return_value=(make_torch(devices=(H100,)), None))
    mocker.patch.object(gpu.nvidia, "driver_version", return_value="570.124.06")
    assert gpu.main([]) == 0
    out = capsys.readouterr().out
    assert out.startswith("verify-gpu: OK (exit 0, ")
    assert "torch 2.9.1 (CUDA 12.9 build)" in out
    assert "driver 570.124.06, cuDNN 9.10.2, NCCL 2.27.3" in out
    assert "GPU 0: NVIDIA H100 80GB HBM3, cc 9.0, 80.0 GiB, 132 SMs, bf16 yes, code: sm_90" in out
    assert "bf16 700.0 (71% of 989.5) TFLOP/s, tf32 350.0 (71% of 494.5) TFLOP/s" in out
    assert "peaks: H100 SXM (NVIDIA H100 Tensor Core GPU datasheet" in out


def test_help_documents_every_option_and_exit_code(capsys: Any) -> None:
    with pytest.raises(SystemExit) as raised:
        gpu.main(["--help"])
    assert raised.value.code == 0
    out = capsys.readouterr().out
    for option in ("--json", "--quick", "--allow-cpu"):
        assert option in out
    assert "3 no CUDA device" in out and "4 torch not importable" in out


def test_unknown_option_is_a_usage_error(capsys: Any) -> None:
    with pytest.raises(SystemExit) as raised:
        gpu.main(["--bogus"])
    assert raised.value.code == 2
    assert "unrecognized arguments: --bogus" in capsys.readouterr().err


def test_load_torch_reports_a_missing_torch(monkeypatch: Any) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)  # makes `import torch` raise ImportError
    torch, error = gpu.load_torch()
    assert torch is None
    assert error is not None and error.startswith("ModuleNotFoundError")


def test_load_torch_returns_whatever_torch_is(monkeypatch: Any) -> None:
    fake = make_torch()
    monkeypatch.setitem(sys.modules, "torch", fake)
    assert gpu.load_torch() == (fake, None)


def test_module_runs_without_torch_installed() -> None:
    # A fresh interpreter in which `import torch` fails: the module must import and report.
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "from lockstep import gpu\n"
        "raise SystemExit(gpu.main(['--json']))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(SRC), "PATH": ""},
        check=False,
    )
    assert done.returncode == gpu.EXIT_NO_TORCH, done.stderr
    assert json.loads(done.stdout)["status"] == "no_torch"


# --- GPU-work helpers with fake CUDA pieces -----------------------------------------------------


def test_tf32_enabled_restores_the_callers_settings() -> None:
    torch = make_torch()
    with pytest.raises(RuntimeError), gpu.tf32_enabled(torch, False):
        assert torch.backends.cuda.matmul.allow_tf32 is False
        assert torch.backends.cudnn.allow_tf32 is False
        raise RuntimeError("boom")
    assert (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32) == (False, True)


def test_time_cuda_ms_warms_up_then_times_each_iteration() -> None:
    log: list[str] = []

    class Event:
        count = 0

        def __init__(self, enable_timing: bool) -> None:
            assert enable_timing
            Event.count += 1
            self.stamp = float(Event.count)

        def record(self) -> None:
            log.append("record")

        def elapsed_time(self, end: Event) -> float:
            return (end.stamp - self.stamp) * 10

    torch = SimpleNamespace(
        cuda=SimpleNamespace(Event=Event, synchronize=lambda: log.append("sync"))
    )
    times = gpu.time_cuda_ms(torch, lambda: log.append("work"), warmup=2, iters=3)
    assert times == [10.0, 10.0, 10.0]
    assert log == ["work", "work", "sync", *(["record", "work", "record"] * 3), "sync"]


@pytest.mark.parametrize(
    ("device", "n", "bf16_measured"),
    [(H100, 8192, True), (V100, 4096, False)],
    ids=["ampere-or-newer", "volta"],
)
def test_measure_speed_sizes_by_generation(
    mocker: Any, device: tuple[str, int, int], n: int, bf16_measured: bool
) -> None:
    matmul = mocker.patch.object(gpu, "_matmul_tflops", return_value=100.0)
    mocker.patch.object(gpu, "_h2d_gbps", return_value=25.0)
    mocker.patch.object(gpu, "_d2d_gbps", return_value=1000.0)
    torch = make_torch(devices=(device,))
    torch.cuda.empty_cache = mocker.Mock()
    (info,) = gpu.device_infos(torch, ["sm_70", "sm_90"])
    size, measured = gpu.measure_speed(torch, info)
    assert size == n
    assert measured == {
        "bf16_tflops": 100.0 if bf16_measured else None,
        "tf32_tflops": 100.0,
        "h2d_pinned_gbps": 25.0,
        "d2d_gbps": 1000.0,
    }
    dtypes = [call.args[2] for call in matmul.call_args_list]
    assert dtypes == (["bfloat16", "float32"] if bf16_measured else ["float32"])
    torch.cuda.empty_cache.assert_called_once()


# --- the variant --------------------------------------------------------------------------------


def _cuda_lock(tmp_path: Path, cuda_version: str) -> Path:
    lock = tmp_path / "conda-linux-64.lock"
    url = f"https://example.invalid/linux-64/cuda-version-{cuda_version}-h0_0.tar.bz2"
    lock.write_text(f"# platform: linux-64\n@EXPLICIT\n{url}\n")
    return lock


def test_variant_cpu_build_without_a_driver(tmp_path: Path) -> None:
    report = gpu.build_report(
        make_torch(cuda=None), cuda_lock=_cuda_lock(tmp_path, "12.9"), variant=lambda: None
    )
    assert report.variant is not None
    assert (report.variant.installed, report.variant.driver_matches) == ("cpu", False)
    assert "variant: CPU variant installed; no NVIDIA driver found" in gpu.render_text(report)


def test_variant_cuda_build_on_a_too_old_driver_is_a_problem(tmp_path: Path) -> None:
    from lockstep.core.nvidia import Driver, Gpu

    old = Driver("nvidia-smi", (12, 2), "535.183.01", (Gpu("A100", (8, 0)),))
    report = gpu.build_report(
        make_torch(), quick=True, cuda_lock=_cuda_lock(tmp_path, "12.9"), variant=lambda: old
    )
    assert report.variant is not None and report.variant.driver_matches is False
    assert any("runs CUDA 12.2, the CUDA lock needs CUDA 12.9" in p for p in report.problems)
    assert report.exit_code != gpu.EXIT_OK
