"""What NVIDIA driver and GPUs this machine has, read without torch and without a conda env.

Three probes, the first that answers wins, each one injectable (tests, and a GPU node whose
driver lives elsewhere):

1. the CUDA driver library through ctypes: ``cuDriverGetVersion`` (the highest CUDA version the
   driver runs, the number conda's ``__cuda`` is made of) and each device's compute capability;
2. ``nvidia-smi --query-gpu`` (with a timeout: a wedged driver makes it hang), which gives the
   driver's version and each GPU's compute capability;
3. ``/proc/driver/nvidia/version`` (the kernel module's version; no GPU list).

Probes 2 and 3 give a driver version, not a CUDA version: :data:`MIN_DRIVER` turns one into the
other. Standard library only: the env engine runs this before any package is installed.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from lockstep.core import variables

Version = tuple[int, int]

# Where each probe looks by default; LOCKSTEP_LIBCUDA, LOCKSTEP_NVIDIA_SMI and LOCKSTEP_NVIDIA_PROC
# (lockstep.core.variables) move them, for tests and for a node whose driver lives elsewhere.
LIBCUDA = variables.LIBCUDA.default
PROC_FILE = variables.NVIDIA_PROC.default
SMI = variables.NVIDIA_SMI.default
SMI_TIMEOUT_S = 5.0
# The oldest Linux x86_64 driver of each CUDA toolkit's first release (NVIDIA's CUDA Toolkit
# release notes, "CUDA Toolkit and Corresponding Driver Versions"): the CUDA version a driver
# runs when only its own version is known.
MIN_DRIVER: dict[Version, tuple[int, ...]] = {
    (11, 8): (520, 61, 5),
    (12, 0): (525, 60, 13),
    (12, 1): (530, 30, 2),
    (12, 2): (535, 54, 3),
    (12, 3): (545, 23, 6),
    (12, 4): (550, 54, 14),
    (12, 5): (555, 42, 2),
    (12, 6): (560, 28, 3),
    (12, 8): (570, 26),
    (12, 9): (575, 51, 3),
    (13, 0): (580, 65, 6),
}
# cuDeviceGetAttribute's CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR / _MINOR.
_CC_MAJOR, _CC_MINOR = 75, 76
_CUDA_SUCCESS = 0
_PROC_RE = re.compile(r"Kernel Module(?:\s+for\s+\S+)?\s+(\d+(?:\.\d+)+)")


@dataclass(frozen=True)
class Gpu:
    """One GPU: its name where known, and its compute capability."""

    name: str
    capability: Version


@dataclass(frozen=True)
class Driver:
    """What a probe found. ``cuda``: the highest CUDA version the driver runs (None: unknown);
    ``gpus``: None where the probe cannot list them."""

    source: str
    cuda: Version | None
    version: str | None = None
    gpus: tuple[Gpu, ...] | None = None

    def describe(self) -> str:
        cuda = show(self.cuda) if self.cuda else "unknown"
        version = f" {self.version}" if self.version else ""
        return f"NVIDIA driver{version} (CUDA {cuda}, from {self.source})"


def show(version: Version) -> str:
    return f"{version[0]}.{version[1]}"


def parse_version(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", text))


def cuda_of_driver(driver_version: str) -> Version | None:
    """The newest CUDA whose first release the driver runs (MIN_DRIVER), or None if older."""
    have = parse_version(driver_version)
    fits = [cuda for cuda, needed in MIN_DRIVER.items() if have >= needed]
    return max(fits) if fits else None


def driver_for_cuda(cuda: Version) -> str | None:
    """The oldest driver of ``cuda``'s first release, as NVIDIA writes it (None: not listed)."""
    needed = MIN_DRIVER.get(cuda)
    return ".".join(f"{n:02d}" if i else str(n) for i, n in enumerate(needed)) if needed else None


# --------------------------------------------------------------------------- the probes


def read_libcuda(lib: object) -> Driver | None:
    """Ask a loaded CUDA driver library (ctypes.CDLL or a test double with the same calls)."""
    version = ctypes.c_int(0)
    if lib.cuDriverGetVersion(ctypes.byref(version)) != _CUDA_SUCCESS:  # type: ignore[attr-defined]
        return None
    cuda = (version.value // 1000, version.value % 1000 // 10)
    if lib.cuInit(0) != _CUDA_SUCCESS:  # type: ignore[attr-defined]
        # A driver without a usable device (CUDA_ERROR_NO_DEVICE and kin): no GPU to run on.
        return Driver("libcuda", cuda, gpus=())
    count = ctypes.c_int(0)
    if lib.cuDeviceGetCount(ctypes.byref(count)) != _CUDA_SUCCESS:  # type: ignore[attr-defined]
        return Driver("libcuda", cuda, gpus=None)
    gpus = []
    for ordinal in range(count.value):
        device, major, minor = ctypes.c_int(0), ctypes.c_int(0), ctypes.c_int(0)
        name = ctypes.create_string_buffer(256)
        ok = lib.cuDeviceGet(ctypes.byref(device), ordinal) == _CUDA_SUCCESS  # type: ignore[attr-defined]
        ok = ok and lib.cuDeviceGetAttribute(ctypes.byref(major), _CC_MAJOR, device) == 0  # type: ignore[attr-defined]
        ok = ok and lib.cuDeviceGetAttribute(ctypes.byref(minor), _CC_MINOR, device) == 0  # type: ignore[attr-defined]
        if not ok:
            return Driver("libcuda", cuda, gpus=None)
        with contextlib.suppress(Exception):
            lib.cuDeviceGetName(name, len(name), device)  # type: ignore[attr-defined]
        label = name.value.decode(errors="replace") or f"GPU {ordinal}"
        gpus.append(Gpu(label, (major.value, minor.value)))
    return Driver("libcuda", cuda, gpus=tuple(gpus))


def probe_libcuda(library: str) -> Driver | None:
    """The CUDA driver API through ctypes; None where the library does not load."""
    if not library:
        return None
    try:
        lib = ctypes.CDLL(library)
    except OSError:
        return None
    try:
        return read_libcuda(lib)
    except AttributeError:  # not a CUDA driver library
        return None


def parse_smi(text: str) -> Driver | None:
    """``nvidia-smi --query-gpu=name,compute_cap,driver_version --format=csv,noheader``."""
    gpus, versions = [], set()
    for line in text.splitlines():
        fields = [f.strip() for f in line.split(",")]
        if len(fields) != 3 or not fields[0]:
            continue
        name, capability, driver = fields
        numbers = parse_version(capability)
        if len(numbers) != 2:
            return None
        gpus.append(Gpu(name, (numbers[0], numbers[1])))
        versions.add(driver)
    if not gpus or len(versions) != 1:
        return None
    version = versions.pop()
    return Driver("nvidia-smi", cuda_of_driver(version), version, tuple(gpus))


SMI_QUERY = ("--query-gpu=name,compute_cap,driver_version", "--format=csv,noheader")


def probe_smi(executable: str | None, timeout: float = SMI_TIMEOUT_S) -> Driver | None:
    if not executable:
        return None
    try:
        proc = subprocess.run(
            [executable, *SMI_QUERY], capture_output=True, text=True, timeout=timeout
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return parse_smi(proc.stdout) if proc.returncode == 0 else None


def parse_proc(text: str) -> Driver | None:
    """``/proc/driver/nvidia/version``: NVRM's kernel module line."""
    match = _PROC_RE.search(text)
    if match is None:
        return None
    version = match.group(1)
    return Driver(PROC_FILE, cuda_of_driver(version), version, None)


def probe_proc(path: str) -> Driver | None:
    try:
        return parse_proc(Path(path).read_text(encoding="utf-8", errors="replace"))
    except OSError:
        return None


@dataclass(frozen=True)
class Probes:
    """Where each probe looks; an empty value switches that probe off."""

    libcuda: str = LIBCUDA
    nvidia_smi: str | None = SMI
    proc_file: str = PROC_FILE
    timeout: float = SMI_TIMEOUT_S

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] = os.environ) -> Probes:
        smi = environ.get(variables.NVIDIA_SMI.name, SMI)
        return cls(
            libcuda=environ.get(variables.LIBCUDA.name, LIBCUDA),
            nvidia_smi=shutil.which(smi) if smi else None,
            proc_file=environ.get(variables.NVIDIA_PROC.name, PROC_FILE),
        )


def detect(
    probes: Probes | None = None, libcuda: Callable[[str], Driver | None] = probe_libcuda
) -> Driver | None:
    """The driver this machine has, or None where no probe finds one.

    A driver version from /proc with GPUs from nvidia-smi is merged: each probe fills what the
    one before it could not say.
    """
    probes = probes or Probes.from_environ()
    found = libcuda(probes.libcuda)
    if found is not None and found.gpus is not None:
        return found
    smi = probe_smi(probes.nvidia_smi, probes.timeout)
    if found is not None:
        return Driver(found.source, found.cuda, found.version, smi.gpus if smi else None)
    if smi is not None:
        return smi
    return probe_proc(probes.proc_file) if probes.proc_file else None


def driver_version(probes: Probes | None = None) -> str | None:
    """The driver's own version, as nvidia-smi reports it, else the kernel module's (/proc); None
    where neither answers. libcuda is not asked: it tells the CUDA version a driver runs, not
    the driver's."""
    probes = probes or Probes.from_environ()
    found = probe_smi(probes.nvidia_smi, probes.timeout)
    if found is None and probes.proc_file:
        found = probe_proc(probes.proc_file)
    return found.version if found else None
