"""CUDA sanity check for a new machine: build facts, device coverage, numerics and speed.

Run it as ``python -m lockstep.gpu`` or ``lockstep-verify-gpu``; ``--help`` lists the options and
docs/verify-gpu.md describes the JSON schema and the exit codes.

The module imports only the standard library and lockstep.core (the standard library's too: the
driver probe is lockstep.core.nvidia's) at the top, so that it runs, and reports clearly,
where torch is missing. torch is imported in one place (:func:`load_torch`) and then passed to
every function that needs it, which keeps each step testable with a fake module.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import os
import platform
import re
import statistics
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lockstep.core import nvidia

SCHEMA_VERSION = 1

EXIT_OK = 0
EXIT_CHECK_FAILED = 1
# 2 stays argparse's "usage error", so the two "cannot check" outcomes take 3 and 4.
EXIT_NO_CUDA = 3
EXIT_NO_TORCH = 4

STATUS_OK = "ok"
STATUS_FAILED = "failed"
STATUS_NO_CUDA = "no_cuda"
STATUS_NO_TORCH = "no_torch"

SEED = 1234
# Largest |gpu - reference| allowed, as a fraction of max |reference|. The reference is computed on
# the CPU in float64 from the same (already rounded) inputs, so the budget only has to cover the
# GPU's accumulation and output rounding. fp32 runs with TF32 switched off: TF32 keeps 10 mantissa
# bits (errors near 1e-3), which would either fail this budget or force one too loose to mean much.
# bf16 outputs carry 8 mantissa bits (rounding up to 2**-9) plus split-K partial sums.
TOLERANCES = {"float32": 1e-4, "bfloat16": 1e-2}

MATMUL_SHAPE = (256, 512, 384)  # m, k, n: small, fast, and k large enough to exercise accumulation
CONV_INPUT_SHAPE = (4, 16, 32, 32)
CONV_WEIGHT_SHAPE = (32, 16, 3, 3)

# Benchmark sizes keep a whole run well under 15 s on a modern GPU, CUDA start-up included.
BENCH_MATMUL_N_AMPERE = 8192  # large enough to approach peak on Hopper, ~1 TFLOP per product
BENCH_MATMUL_N_OLDER = 4096  # pre-Ampere cards run "tf32" as plain fp32: keep it short
BENCH_WARMUP = 3
BENCH_ITERS = 10
H2D_BYTES = 256 * 2**20
D2D_BYTES = 512 * 2**20
# Small sizes and few iterations never reach the datasheet peak; far below this is worth a look.
LOW_PEAK_FRACTION = 0.3


@dataclass(frozen=True)
class CardPeak:
    """Dense (no sparsity) datasheet peaks of one known card."""

    card: str
    bf16_tflops: float | None
    tf32_tflops: float | None
    memory_gbps: float | None
    source: str


@dataclass(frozen=True)
class _PeakRule:
    """Name tokens that identify a card: all of ``required`` and none of ``excluded``."""

    required: frozenset[str]
    excluded: frozenset[str]
    peak: CardPeak


def _rule(required: str, peak: CardPeak, excluded: str = "") -> _PeakRule:
    return _PeakRule(frozenset(required.split()), frozenset(excluded.split()), peak)


_H100_SHEET = "NVIDIA H100 Tensor Core GPU datasheet (dense = half the with-sparsity figure)"
_H200_SHEET = "NVIDIA H200 Tensor Core GPU datasheet (dense = half the with-sparsity figure)"
_A100_SHEET = "NVIDIA A100 Tensor Core GPU datasheet"
_NO_TENSOR = "no BF16/TF32 tensor cores"

# First match wins, so the more specific variants come before the generic name.
PEAK_RULES: tuple[_PeakRule, ...] = (
    _rule("H200 NVL", CardPeak("H200 NVL", 835.5, 417.5, 4800, _H200_SHEET)),
    _rule("H200", CardPeak("H200 SXM", 989.5, 494.5, 4800, _H200_SHEET)),
    _rule("H100 NVL", CardPeak("H100 NVL", 835.5, 417.5, 3900, _H100_SHEET)),
    _rule("H100 PCIE", CardPeak("H100 PCIe", 756.5, 378.0, 2000, _H100_SHEET)),
    _rule("H100", CardPeak("H100 SXM", 989.5, 494.5, 3350, _H100_SHEET)),
    _rule("A100 80GB PCIE", CardPeak("A100 80GB PCIe", 312.0, 156.0, 1935, _A100_SHEET)),
    _rule("A100 80GB", CardPeak("A100 80GB SXM", 312.0, 156.0, 2039, _A100_SHEET)),
    _rule("A100 PCIE", CardPeak("A100 40GB PCIe", 312.0, 156.0, 1555, _A100_SHEET)),
    _rule("A100", CardPeak("A100 40GB SXM", 312.0, 156.0, 1555, _A100_SHEET)),
    _rule("L40S", CardPeak("L40S", 362.05, 183.0, 864, "NVIDIA L40S GPU datasheet")),
    _rule("L40", CardPeak("L40", 181.05, 90.5, 864, "NVIDIA L40 GPU datasheet")),
    _rule("L4", CardPeak("L4", 121.0, 60.0, 300, "NVIDIA L4 Tensor Core GPU datasheet")),
    _rule("A10", CardPeak("A10", 125.0, 62.5, 600, "NVIDIA A10 Tensor Core GPU datasheet")),
    _rule(
        "RTX 4090",
        CardPeak(
            "GeForce RTX 4090",
            165.2,
            82.6,
            1008,
            "NVIDIA Ada GPU Architecture whitepaper (BF16 with FP32 accumulate)",
        ),
        excluded="D LAPTOP",
    ),
    _rule(
        "RTX 3090",
        CardPeak(
            "GeForce RTX 3090",
            71.0,
            35.6,
            936,
            "NVIDIA Ampere GA102 GPU Architecture whitepaper (BF16 with FP32 accumulate)",
        ),
        excluded="TI LAPTOP",
    ),
    _rule("V100", CardPeak("V100", None, None, 900, f"NVIDIA V100 datasheet ({_NO_TENSOR})")),
    _rule("T4", CardPeak("T4", None, None, 320, f"NVIDIA T4 datasheet ({_NO_TENSOR})")),
)

UNKNOWN_PEAK = CardPeak("unknown", None, None, None, "unknown")


@dataclass
class LibraryInfo:
    """Whether a CUDA library is usable from this torch build, and its version."""

    available: bool
    version: str | None


@dataclass
class TorchInfo:
    """Facts about the installed torch build and the driver it would talk to."""

    version: str
    cuda_build: bool
    cuda_version: str | None
    driver_version: str | None
    cudnn: LibraryInfo
    nccl: LibraryInfo
    arch_list: list[str]


@dataclass
class HostInfo:
    """Facts about the machine that hold with or without a GPU."""

    platform: str
    python: str
    cpu_count: int | None
    torch_threads: int | None


@dataclass
class DeviceInfo:
    """One visible CUDA device and whether the build carries code that runs on it."""

    index: int
    name: str
    capability: str
    total_memory_bytes: int
    multiprocessor_count: int
    bf16_supported: bool
    arch_covered: bool
    covered_by: str | None
    coverage: str


@dataclass
class NumericCheck:
    """One GPU-versus-CPU comparison of an op in a dtype."""

    device: int
    op: str
    dtype: str
    passed: bool
    max_abs_error: float | None
    reference_scale: float | None
    relative_error: float | None
    tolerance: float
    tf32: bool
    message: str


@dataclass
class Benchmark:
    """Achieved speed on one device, next to the card's datasheet peaks where known."""

    device: int
    matmul_n: int
    bf16_tflops: float | None
    tf32_tflops: float | None
    h2d_pinned_gbps: float | None
    d2d_gbps: float | None
    bf16_fraction_of_peak: float | None
    tf32_fraction_of_peak: float | None
    d2d_fraction_of_peak: float | None
    peak: CardPeak
    error: str | None


@dataclass
class VariantInfo:
    """Which variant the env holds (torch's build) and whether the driver runs the CUDA lock."""

    installed: str
    cuda_lock_needs: str | None
    driver: str | None
    driver_matches: bool | None
    message: str


@dataclass
class Report:
    """Everything the check found; the JSON output is this, field for field."""

    schema_version: int
    status: str
    exit_code: int
    allow_cpu: bool
    quick: bool
    problems: list[str]
    warnings: list[str]
    host: HostInfo
    torch: TorchInfo | None
    devices: list[DeviceInfo] = field(default_factory=list)
    checks: list[NumericCheck] = field(default_factory=list)
    benchmarks: list[Benchmark] = field(default_factory=list)
    elapsed_s: float = 0.0
    variant: VariantInfo | None = None


# --- pure helpers -------------------------------------------------------------------------------


def parse_arch(entry: str) -> tuple[str, int, int, str] | None:
    """Split an arch-list entry such as ``sm_90a`` into ``("sm", 9, 0, "a")``; None if unknown."""
    match = re.fullmatch(r"(sm|compute)_(\d+)(\d)([a-z]?)", entry.strip())
    if match is None:
        return None
    kind, major, minor, suffix = match.groups()
    return kind, int(major), int(minor), suffix


def arch_coverage(arch_list: Sequence[str], capability: tuple[int, int]) -> tuple[bool, str | None]:
    """Say whether a build's arch list runs on a device, and which entry covers it.

    SASS (``sm_XY``) runs on the same major version with an equal or higher minor; PTX
    (``compute_XY``) is JIT-compiled by the driver for any equal or higher capability. The
    architecture-specific ``a``/``f`` variants are not forward compatible, so they count only on
    an exact match. SASS is preferred because PTX JIT costs start-up time.
    """
    major, minor = capability
    sass_match: str | None = None
    ptx_match: str | None = None
    for entry in arch_list:
        parsed = parse_arch(entry)
        if parsed is None:
            continue
        kind, a_major, a_minor, suffix = parsed
        exact = (a_major, a_minor) == (major, minor)
        if kind == "sm" and (exact or (not suffix and a_major == major and a_minor <= minor)):
            sass_match = sass_match or entry
        elif kind == "compute" and (exact or (not suffix and (a_major, a_minor) <= capability)):
            ptx_match = ptx_match or entry
    if sass_match:
        return True, sass_match
    return (True, ptx_match) if ptx_match else (False, None)


def format_cudnn_version(raw: int) -> str:
    """Turn ``torch.backends.cudnn.version()`` (8902, 90100) into ``8.9.2`` or ``9.1.0``."""
    # cuDNN 9 changed the encoding from major*1000 to major*10000.
    if raw >= 90000:
        return f"{raw // 10000}.{raw % 10000 // 100}.{raw % 100}"
    return f"{raw // 1000}.{raw % 1000 // 100}.{raw % 100}"


def find_peak(device_name: str) -> CardPeak:
    """Return the datasheet peaks of a known card, matched by name tokens, else UNKNOWN_PEAK."""
    tokens = set(re.split(r"[\s\-_]+", device_name.upper()))
    for rule in PEAK_RULES:
        if rule.required <= tokens and not rule.excluded & tokens:
            return rule.peak
    return UNKNOWN_PEAK


def judge_error(
    device: int, op: str, dtype: str, max_abs_error: float, reference_scale: float
) -> NumericCheck:
    """Compare a measured error with the dtype's tolerance; NaN or inf always fails."""
    tolerance = TOLERANCES[dtype]
    relative = max_abs_error / max(reference_scale, 1e-30)
    # Written as "not <=" so that NaN fails instead of slipping through a ">" test.
    passed = math.isfinite(relative) and relative <= tolerance
    verdict = "agrees with" if passed else "DISAGREES with"
    message = (
        f"GPU {device} {op} {dtype} {verdict} the CPU float64 reference: "
        f"max error {relative:.2e} of the output scale (tolerance {tolerance:.0e})"
    )
    return NumericCheck(
        device=device,
        op=op,
        dtype=dtype,
        passed=passed,
        max_abs_error=max_abs_error,
        reference_scale=reference_scale,
        relative_error=relative,
        tolerance=tolerance,
        tf32=False,
        message=message,
    )


def failed_check(device: int, op: str, dtype: str, error: BaseException) -> NumericCheck:
    """Record an op that raised instead of returning a result."""
    return NumericCheck(
        device=device,
        op=op,
        dtype=dtype,
        passed=False,
        max_abs_error=None,
        reference_scale=None,
        relative_error=None,
        tolerance=TOLERANCES[dtype],
        tf32=False,
        message=f"GPU {device} {op} {dtype} raised {type(error).__name__}: {error}",
    )


def matmul_tflops(n: int, milliseconds: float) -> float:
    """TFLOP/s of one n x n by n x n product (2 n^3 flops) that took ``milliseconds``."""
    return 2 * n**3 / (milliseconds * 1e-3) / 1e12


def bandwidth_gbps(nbytes: int, milliseconds: float) -> float:
    """GB/s (10^9 bytes) for ``nbytes`` moved in ``milliseconds``."""
    return nbytes / (milliseconds * 1e-3) / 1e9


def _fraction(achieved: float | None, peak: float | None) -> float | None:
    if achieved is None or not peak:
        return None
    return achieved / peak


def with_peaks(
    device: int,
    name: str,
    matmul_n: int,
    measured: dict[str, float | None],
    error: str | None = None,
) -> Benchmark:
    """Attach the card's datasheet peaks to measured numbers and work out the fractions."""
    peak = find_peak(name)
    return Benchmark(
        device=device,
        matmul_n=matmul_n,
        bf16_tflops=measured.get("bf16_tflops"),
        tf32_tflops=measured.get("tf32_tflops"),
        h2d_pinned_gbps=measured.get("h2d_pinned_gbps"),
        d2d_gbps=measured.get("d2d_gbps"),
        bf16_fraction_of_peak=_fraction(measured.get("bf16_tflops"), peak.bf16_tflops),
        tf32_fraction_of_peak=_fraction(measured.get("tf32_tflops"), peak.tf32_tflops),
        d2d_fraction_of_peak=_fraction(measured.get("d2d_gbps"), peak.memory_gbps),
        peak=peak,
        error=error,
    )


def benchmark_warnings(bench: Benchmark) -> list[str]:
    """Flag results far below the datasheet peak; they do not fail the check."""
    found = []
    if bench.error:
        found.append(f"GPU {bench.device} benchmark stopped early: {bench.error}")
    pairs = (
        ("bf16 matmul", bench.bf16_fraction_of_peak, bench.peak.bf16_tflops, "TFLOP/s"),
        ("tf32 matmul", bench.tf32_fraction_of_peak, bench.peak.tf32_tflops, "TFLOP/s"),
        ("device-to-device copy", bench.d2d_fraction_of_peak, bench.peak.memory_gbps, "GB/s"),
    )
    for label, fraction, peak, unit in pairs:
        if fraction is not None and fraction < LOW_PEAK_FRACTION:
            found.append(
                f"GPU {bench.device} {label} reached {fraction:.0%} of the {bench.peak.card} "
                f"peak ({peak} {unit}, {bench.peak.source}); check clocks, power and other "
                "processes: nvidia-smi -q -d PERFORMANCE"
            )
    return found


def decide(
    problems: Sequence[str], has_cuda: bool, has_torch: bool, allow_cpu: bool
) -> tuple[str, int]:
    """Map what was found to ``(status, exit_code)``."""
    if not has_torch:
        return STATUS_NO_TORCH, EXIT_NO_TORCH
    if not has_cuda:
        return STATUS_NO_CUDA, EXIT_OK if allow_cpu else EXIT_NO_CUDA
    if problems:
        return STATUS_FAILED, EXIT_CHECK_FAILED
    return STATUS_OK, EXIT_OK


# --- facts gathering ----------------------------------------------------------------------------


def load_torch() -> tuple[Any | None, str | None]:
    """Import torch, the one place this module does; return ``(module, None)`` or the error."""
    try:
        import torch
    except Exception as error:  # a broken install raises more than ImportError (OSError, ...)
        return None, f"{type(error).__name__}: {error}"
    return torch, None


def host_info(torch: Any | None) -> HostInfo:
    """Collect platform facts; torch (when present) adds its intra-op thread count."""
    return HostInfo(
        platform=platform.platform(),
        python=platform.python_version(),
        cpu_count=os.cpu_count(),
        torch_threads=torch.get_num_threads() if torch is not None else None,
    )


def _cudnn_info(torch: Any) -> LibraryInfo:
    try:
        if not torch.backends.cudnn.is_available():
            return LibraryInfo(False, None)
        raw = torch.backends.cudnn.version()
    except Exception:  # a missing libcudnn surfaces as various errors depending on the build
        return LibraryInfo(False, None)
    return LibraryInfo(True, format_cudnn_version(raw) if raw else None)


def _nccl_info(torch: Any) -> LibraryInfo:
    try:
        available = bool(torch.distributed.is_available() and torch.distributed.is_nccl_available())
    except Exception:
        available = False
    if not available:
        return LibraryInfo(False, None)
    try:
        version = ".".join(str(part) for part in torch.cuda.nccl.version())
    except Exception:
        version = None
    return LibraryInfo(True, version)


def torch_info(torch: Any, driver: Callable[[], str | None] | None = None) -> TorchInfo:
    """Collect build facts: versions, CUDA libraries, driver and the compiled arch list."""
    # Looked up at call time, not bound as a default, so a patched driver_version takes effect.
    driver = driver or nvidia.driver_version
    cuda_version = torch.version.cuda
    cuda_build = cuda_version is not None
    return TorchInfo(
        version=str(torch.__version__),
        cuda_build=cuda_build,
        cuda_version=cuda_version,
        driver_version=driver() if cuda_build else None,
        cudnn=_cudnn_info(torch) if cuda_build else LibraryInfo(False, None),
        nccl=_nccl_info(torch) if cuda_build else LibraryInfo(False, None),
        arch_list=list(torch.cuda.get_arch_list()) if cuda_build else [],
    )


def cuda_devices_visible(torch: Any) -> tuple[bool, list[str]]:
    """Ask torch whether CUDA works, keeping the warnings it raises: they name the cause."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        available = bool(torch.cuda.is_available()) and torch.cuda.device_count() > 0
    return available, [str(item.message) for item in caught]


def no_cuda_problem(info: TorchInfo, torch: Any, init_warnings: Sequence[str]) -> str:
    """Explain in one message why there is no CUDA device, and what to do about it."""
    if not info.cuda_build:
        if getattr(torch.version, "hip", None):
            return f"torch {info.version} is a ROCm build; this check covers CUDA builds only"
        return (
            f"torch {info.version} is a CPU-only build (torch.version.cuda is None); install a "
            "CUDA build, e.g. conda-forge pytorch=*=cuda* with cuda-version set"
        )
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    hint = f"; CUDA_VISIBLE_DEVICES={visible!r}" if visible is not None else ""
    cause = f"; torch says: {' | '.join(init_warnings)}" if init_warnings else ""
    return (
        f"torch {info.version} is a CUDA {info.cuda_version} build but sees no CUDA device"
        f"{hint}{cause}; check `nvidia-smi` and the driver"
    )


def _bf16_supported(torch: Any) -> bool:
    # Native bf16 only: with emulation allowed, pre-Ampere cards claim support and run slowly.
    try:
        return bool(torch.cuda.is_bf16_supported(including_emulation=False))
    except TypeError:  # torch older than 2.3 has no including_emulation argument
        return bool(torch.cuda.is_bf16_supported())


def device_infos(torch: Any, arch_list: Sequence[str]) -> list[DeviceInfo]:
    """Describe every visible device and check the build's arch list against it."""
    devices = []
    for index in range(torch.cuda.device_count()):
        props = torch.cuda.get_device_properties(index)
        capability = (int(props.major), int(props.minor))
        covered, entry = arch_coverage(arch_list, capability)
        if entry is None:
            coverage = "none"
        elif entry.startswith("sm_"):
            coverage = "native"
        else:
            coverage = "ptx-jit"
        with torch.cuda.device(index):
            bf16 = _bf16_supported(torch)
        devices.append(
            DeviceInfo(
                index=index,
                name=str(props.name),
                capability=f"{capability[0]}.{capability[1]}",
                total_memory_bytes=int(props.total_memory),
                multiprocessor_count=int(props.multi_processor_count),
                bf16_supported=bf16,
                arch_covered=covered,
                covered_by=entry,
                coverage=coverage,
            )
        )
    return devices


def coverage_problem(device: DeviceInfo, arch_list: Sequence[str]) -> str:
    """Explain an uncovered device: what it is, what the build has, what to install instead."""
    cap = device.capability.replace(".", "")
    return (
        f"GPU {device.index} {device.name} (compute capability {device.capability}, sm_{cap}) is "
        f"not covered by this torch build's arch list [{' '.join(arch_list) or 'empty'}]; install "
        f"a build compiled for sm_{cap} or carrying PTX for compute capability <= "
        f"{device.capability}"
    )


# --- GPU work -----------------------------------------------------------------------------------


@contextlib.contextmanager
def tf32_enabled(torch: Any, enabled: bool) -> Iterator[None]:
    """Set TF32 for cuBLAS and cuDNN inside the block and restore the caller's settings."""
    saved = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    torch.backends.cuda.matmul.allow_tf32 = enabled
    torch.backends.cudnn.allow_tf32 = enabled
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def measure_op_error(torch: Any, op: str, dtype: str, device: str) -> tuple[float, float]:
    """Run ``op`` on ``device`` and on the CPU in float64; return (max |diff|, max |reference|).

    Inputs come from a seeded CPU generator so every device sees the same numbers; they are
    rounded to ``dtype`` first and the reference uses those rounded values, so the error measures
    the device's arithmetic only.
    """
    generator = torch.Generator().manual_seed(SEED)
    if op == "matmul":
        m, k, n = MATMUL_SHAPE
        inputs = [torch.randn(m, k, generator=generator), torch.randn(k, n, generator=generator)]

        def apply(a: Any, b: Any) -> Any:
            return torch.matmul(a, b)

    elif op == "conv2d":
        inputs = [
            torch.randn(*CONV_INPUT_SHAPE, generator=generator),
            torch.randn(*CONV_WEIGHT_SHAPE, generator=generator),
        ]

        def apply(a: Any, b: Any) -> Any:
            return torch.nn.functional.conv2d(a, b, padding=1)

    else:
        raise ValueError(f"unknown op {op!r}")
    rounded = [tensor.to(getattr(torch, dtype)) for tensor in inputs]
    reference = apply(*(tensor.double() for tensor in rounded))
    with tf32_enabled(torch, False):
        result = apply(*(tensor.to(device) for tensor in rounded))
    result = result.double().cpu()
    max_abs_error = (result - reference).abs().max().item()
    return float(max_abs_error), float(reference.abs().max().item())


def numeric_checks(torch: Any, device: DeviceInfo) -> list[NumericCheck]:
    """Compare matmul and conv2d with the CPU in fp32 (TF32 off) and, where native, bf16."""
    dtypes = ["float32", "bfloat16"] if device.bf16_supported else ["float32"]
    results = []
    for dtype in dtypes:
        for op in ("matmul", "conv2d"):
            try:
                error, scale = measure_op_error(torch, op, dtype, f"cuda:{device.index}")
            except Exception as failure:  # "no kernel image", cuDNN errors, OOM: all a failure
                results.append(failed_check(device.index, op, dtype, failure))
                continue
            results.append(judge_error(device.index, op, dtype, error, scale))
    return results


def time_cuda_ms(torch: Any, work: Callable[[], Any], warmup: int, iters: int) -> list[float]:
    """Time ``work`` with CUDA events, one pair per iteration, after ``warmup`` untimed runs."""
    for _ in range(warmup):
        work()
    torch.cuda.synchronize()
    pairs = [
        (torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True))
        for _ in range(iters)
    ]
    for start, end in pairs:
        start.record()
        work()
        end.record()
    torch.cuda.synchronize()
    return [start.elapsed_time(end) for start, end in pairs]


def _matmul_tflops(torch: Any, target: str, dtype: str, n: int, tf32: bool) -> float:
    """Median TFLOP/s of an n x n product in ``dtype`` on ``target``."""
    a, b, out = (torch.randn(n, n, device=target, dtype=getattr(torch, dtype)) for _ in range(3))
    with tf32_enabled(torch, tf32):
        times = time_cuda_ms(torch, lambda: torch.matmul(a, b, out=out), BENCH_WARMUP, BENCH_ITERS)
    return matmul_tflops(n, statistics.median(times))


def _h2d_gbps(torch: Any, target: str) -> float:
    """Median GB/s of a copy from pinned host memory to ``target``."""
    host = torch.empty(H2D_BYTES, dtype=torch.uint8, pin_memory=True)
    landing = torch.empty(H2D_BYTES, dtype=torch.uint8, device=target)
    times = time_cuda_ms(
        torch, lambda: landing.copy_(host, non_blocking=True), BENCH_WARMUP, BENCH_ITERS
    )
    return bandwidth_gbps(H2D_BYTES, statistics.median(times))


def _d2d_gbps(torch: Any, target: str) -> float:
    """Median GB/s of a copy within ``target``, counting bytes read plus bytes written."""
    source = torch.empty(D2D_BYTES, dtype=torch.uint8, device=target)
    copy = torch.empty(D2D_BYTES, dtype=torch.uint8, device=target)
    times = time_cuda_ms(torch, lambda: copy.copy_(source), BENCH_WARMUP, BENCH_ITERS)
    return bandwidth_gbps(2 * D2D_BYTES, statistics.median(times))


def measure_speed(torch: Any, device: DeviceInfo) -> tuple[int, dict[str, float | None]]:
    """Measure bf16/tf32 matmul TFLOP/s and pinned H2D / D2D bandwidth on one device.

    Each figure is the median over BENCH_ITERS timed runs. D2D counts bytes read plus bytes
    written, the convention that makes it comparable with the memory bandwidth on a datasheet.
    On pre-Ampere cards "tf32" is plain fp32: they have no TF32 tensor cores.
    """
    major = int(device.capability.split(".")[0])
    n = BENCH_MATMUL_N_AMPERE if major >= 8 else BENCH_MATMUL_N_OLDER
    target = f"cuda:{device.index}"
    measured: dict[str, float | None] = {}
    with torch.cuda.device(device.index):
        measured["bf16_tflops"] = (
            _matmul_tflops(torch, target, "bfloat16", n, tf32=False)
            if device.bf16_supported
            else None
        )
        measured["tf32_tflops"] = _matmul_tflops(torch, target, "float32", n, tf32=True)
        measured["h2d_pinned_gbps"] = _h2d_gbps(torch, target)
        measured["d2d_gbps"] = _d2d_gbps(torch, target)
        # Give the benchmark buffers back before the next device or the caller's own work.
        torch.cuda.empty_cache()
    return n, measured


def benchmark_device(torch: Any, device: DeviceInfo) -> Benchmark:
    """Measure one device and set the result against its datasheet peaks."""
    try:
        n, measured = measure_speed(torch, device)
    except Exception as failure:  # e.g. OOM when another process holds the memory
        return with_peaks(device.index, device.name, 0, {}, f"{type(failure).__name__}: {failure}")
    return with_peaks(device.index, device.name, n, measured)


# --- the whole check ----------------------------------------------------------------------------


def build_report(
    torch: Any | None,
    *,
    quick: bool = False,
    allow_cpu: bool = False,
    import_error: str | None = None,
    driver: Callable[[], str | None] | None = None,
    cuda_lock: Path | None = None,
    variant: Callable[[], Any] | None = None,
) -> Report:
    """Run every step that applies and return the findings; prints nothing. ``cuda_lock``: the
    project's CUDA lock, to say whether the driver runs it (``variant``: the driver probe)."""
    started = time.perf_counter()
    problems: list[str] = []
    notes: list[str] = []
    report = Report(
        schema_version=SCHEMA_VERSION,
        status="",
        exit_code=0,
        allow_cpu=allow_cpu,
        quick=quick,
        problems=problems,
        warnings=notes,
        host=host_info(torch),
        torch=None,
    )
    has_cuda = False
    if torch is None:
        problems.append(
            f"torch is not importable ({import_error or 'not installed'}); create the env from "
            "the conda lock first"
        )
    else:
        info = torch_info(torch, driver)
        report.torch = info
        has_cuda, init_warnings = cuda_devices_visible(torch) if info.cuda_build else (False, [])
        if not has_cuda:
            problems.append(no_cuda_problem(info, torch, init_warnings))
        else:
            notes.extend(init_warnings)
            report.devices = device_infos(torch, info.arch_list)
            for device in report.devices:
                if not device.arch_covered:
                    # Kernels would fail with "no kernel image"; the coverage message says more.
                    problems.append(coverage_problem(device, info.arch_list))
                    continue
                checks = numeric_checks(torch, device)
                report.checks.extend(checks)
                problems.extend(check.message for check in checks if not check.passed)
                if not quick:
                    bench = benchmark_device(torch, device)
                    report.benchmarks.append(bench)
                    notes.extend(benchmark_warnings(bench))
    if cuda_lock is not None or variant is not None:
        report.variant = variant_info(report.torch, cuda_lock, variant)
        if report.variant.installed == "cuda" and report.variant.driver_matches is False:
            problems.append(report.variant.message)
    report.status, report.exit_code = decide(problems, has_cuda, torch is not None, allow_cpu)
    report.elapsed_s = round(time.perf_counter() - started, 3)
    return report


def variant_info(
    info: TorchInfo | None, cuda_lock: Path | None, detect: Callable[[], Any] | None = None
) -> VariantInfo:
    """The installed variant, and the driver against what the CUDA lock needs
    (lockstep.core.variants: the same rule reproduce chooses by)."""
    from lockstep.core import variants
    from lockstep.core.errors import LockstepError
    from lockstep.core.explicit import read_explicit

    installed = "unknown" if info is None else ("cuda" if info.cuda_build else "cpu")
    driver = (detect or nvidia.detect)()
    shown = driver.describe() if driver else None
    needs = None
    if cuda_lock is not None:
        try:
            needs = variants.needs_of(read_explicit(cuda_lock))
        except LockstepError as exc:
            return VariantInfo(installed, None, shown, None, str(exc))
    if needs is None:
        return VariantInfo(installed, None, shown, None, f"{installed} build of torch installed")
    try:
        choice = variants.choose(driver, needs)
    except LockstepError as exc:
        return VariantInfo(installed, needs.describe(), shown, False, str(exc))
    matches = choice.variant == variants.CUDA
    lock = cuda_lock.name if cuda_lock else "the CUDA lock"
    if installed == "cpu":
        message = f"CPU variant installed; {choice.reason}" + (
            "; `make reproduce` would install the CUDA lock here" if matches else ""
        )
    else:
        message = f"{installed.upper()} variant installed; {choice.reason} ({lock})"
    return VariantInfo(installed, needs.describe(), shown, matches, message)


# --- output -------------------------------------------------------------------------------------


def report_to_dict(report: Report) -> dict[str, Any]:
    """Return the JSON document of a report (schema in docs/verify-gpu.md)."""
    return dataclasses.asdict(report)


def render_json(report: Report) -> str:
    """Serialise a report as indented JSON with the schema's key order."""
    return json.dumps(report_to_dict(report), indent=2)


def _num(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def _peak_text(achieved: float | None, fraction: float | None, peak: float | None) -> str:
    if achieved is None:
        return "not run"
    if fraction is None or peak is None:
        return f"{achieved:.1f}"
    return f"{achieved:.1f} ({fraction:.0%} of {peak})"


def render_text(report: Report) -> str:
    """Render a report as a short human-readable summary."""
    lines = [f"verify-gpu: {report.status.upper()} (exit {report.exit_code}, {report.elapsed_s} s)"]
    host = report.host
    lines.append(
        f"host: {host.platform}, Python {host.python}, {host.cpu_count} CPUs, "
        f"torch threads {host.torch_threads}"
    )
    info = report.torch
    if info is not None:
        build = f"CUDA {info.cuda_version} build" if info.cuda_build else "CPU-only build"
        lines.append(f"torch {info.version} ({build})")
        if info.cuda_build:
            lines.append(
                f"driver {info.driver_version or 'unknown'}, "
                f"cuDNN {info.cudnn.version if info.cudnn.available else 'unavailable'}, "
                f"NCCL {info.nccl.version if info.nccl.available else 'unavailable'}"
            )
            lines.append(f"arch list: {' '.join(info.arch_list) or '(empty)'}")
    for device in report.devices:
        lines.append(
            f"GPU {device.index}: {device.name}, cc {device.capability}, "
            f"{device.total_memory_bytes / 2**30:.1f} GiB, {device.multiprocessor_count} SMs, "
            f"bf16 {'yes' if device.bf16_supported else 'no'}, "
            f"code: {device.covered_by or 'NONE'} ({device.coverage})"
        )
        for check in report.checks:
            if check.device == device.index:
                mark = "ok  " if check.passed else "FAIL"
                error = _num(check.relative_error, ".1e")
                lines.append(
                    f"  {mark} {check.op:<7} {check.dtype:<9} rel. error {error} "
                    f"(tol {check.tolerance:.0e})"
                )
        for bench in report.benchmarks:
            if bench.device == device.index:
                peak = bench.peak
                bf16 = _peak_text(bench.bf16_tflops, bench.bf16_fraction_of_peak, peak.bf16_tflops)
                tf32 = _peak_text(bench.tf32_tflops, bench.tf32_fraction_of_peak, peak.tf32_tflops)
                d2d = _peak_text(bench.d2d_gbps, bench.d2d_fraction_of_peak, peak.memory_gbps)
                h2d = _num(bench.h2d_pinned_gbps, ".1f")
                lines.append(
                    f"  speed (n={bench.matmul_n}): bf16 {bf16} TFLOP/s, tf32 {tf32} TFLOP/s"
                )
                lines.append(f"  copies: H2D pinned {h2d} GB/s, D2D {d2d} GB/s")
                lines.append(f"  peaks: {peak.card} ({peak.source})")
    if report.variant is not None:
        lines.append(f"variant: {report.variant.message}")
    if report.quick:
        lines.append("benchmark skipped (--quick)")
    lines.extend(f"warning: {text}" for text in report.warnings)
    lines.extend(f"problem: {text}" for text in report.problems)
    if report.status == STATUS_NO_CUDA and report.allow_cpu:
        lines.append("no CUDA device, accepted because of --allow-cpu")
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(
        prog="lockstep-verify-gpu",
        description=(
            "Check that torch, the driver and every visible CUDA device work together:\n"
            "build facts, arch coverage, GPU-vs-CPU numerics and a short speed test."
        ),
        epilog=(
            "exit codes:\n"
            f"  {EXIT_OK} all good (or no CUDA device with --allow-cpu)\n"
            f"  {EXIT_CHECK_FAILED} a check failed\n"
            "  2 usage error\n"
            f"  {EXIT_NO_CUDA} no CUDA device (CPU-only build, or no device visible)\n"
            f"  {EXIT_NO_TORCH} torch not importable\n"
            "JSON schema: docs/verify-gpu.md"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--json", action="store_true", help="print the report as JSON (schema_version 1)"
    )
    parser.add_argument(
        "--quick", action="store_true", help="skip the speed benchmark; run only the checks"
    )
    parser.add_argument(
        "--allow-cpu",
        action="store_true",
        help=f"exit {EXIT_OK} instead of {EXIT_NO_CUDA} when torch works but has no CUDA device",
    )
    parser.add_argument(
        "--cuda-lock",
        type=Path,
        help="the project's CUDA lock: say which variant is installed and whether the driver "
        "runs that lock",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the check, print the report and return the exit code."""
    args = parse_args(argv)
    torch, import_error = load_torch()
    report = build_report(
        torch,
        quick=args.quick,
        allow_cpu=args.allow_cpu,
        import_error=import_error,
        cuda_lock=args.cuda_lock,
    )
    print(render_json(report) if args.json else render_text(report))
    return report.exit_code


if __name__ == "__main__":
    raise SystemExit(main())
