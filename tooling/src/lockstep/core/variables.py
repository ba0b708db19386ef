"""Every ``LOCKSTEP_*`` environment variable the tooling reads: its name, meaning and default.

The one place they are declared. Each reader takes the name (and the default, where it has one)
from here; tooling/README.md's table of them is :func:`markdown_table`'s output
(tests/unit/test_variables.py compares the two and scans the repository for a ``LOCKSTEP_`` name
missing here). tooling/scripts/env-engine.sh reads LOCKSTEP_PYTHON itself, before any Python
runs, and says so. The conda stand-in's ``LOCKSTEP_STANDIN_*`` seams belong to that test double
(tests/integration/condastandin), not to the tooling, and are documented there.

``python -m lockstep.core.variables`` prints the table. Standard library only.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

SETTING = "setting"
SEAM = "probe seam"
TEST = "tests"


@dataclass(frozen=True)
class Variable:
    """One environment variable: ``default`` as the reader sees it ("" where unset means off)."""

    name: str
    kind: str
    default: str
    meaning: str
    read_by: str


PYTHON = Variable(
    "LOCKSTEP_PYTHON",
    SETTING,
    "",
    "the Python 3.11+ that runs the env engine for `make reproduce`; unset: the tooling venv's, "
    "then `python3`, `python3.13` ... `python3.11` on PATH, then conda's own",
    "tooling/scripts/env-engine.sh",
)
CONDA_MIRROR = Variable(
    "LOCKSTEP_CONDA_MIRROR",
    SETTING,
    "",
    "base URL that serves every conda channel: each lock URL becomes "
    "`BASE/<channel>/<subdir>/<file>` in a temporary copy of the lock",
    "engine, image (core/mirrors)",
)
CONDA_CHANNEL_MIRRORS = Variable(
    "LOCKSTEP_CONDA_CHANNEL_MIRRORS",
    SETTING,
    "",
    "`NAME=URL ...`: channel NAME served at URL (`URL/<subdir>/<file>`); wins over "
    "LOCKSTEP_CONDA_MIRROR for the channels it names",
    "engine, image (core/mirrors)",
)
QUERY_TIMEOUT = Variable(
    "LOCKSTEP_QUERY_TIMEOUT",
    SETTING,
    "120",
    "seconds a read-only frontend query (`env list`, `info`, `--version`) may take before it is "
    "called hung and everything stops",
    "engine, tasks (core/envs)",
)
VERBOSE = Variable(
    "LOCKSTEP_VERBOSE",
    SETTING,
    "",
    "1 (anything but empty or 0): a failing tool's whole output, a Python traceback included, "
    "is shown; otherwise only the reason it gave and Lockstep's one line",
    "lock (lifecycle, core/errors)",
)
LIBCUDA = Variable(
    "LOCKSTEP_LIBCUDA",
    SEAM,
    "libcuda.so.1",
    "the CUDA driver library the first driver probe loads; empty: that probe is off",
    "engine, verify-gpu (core/nvidia)",
)
NVIDIA_SMI = Variable(
    "LOCKSTEP_NVIDIA_SMI",
    SEAM,
    "nvidia-smi",
    "the nvidia-smi the second driver probe runs (looked up on PATH); empty: that probe is off",
    "engine, verify-gpu (core/nvidia)",
)
NVIDIA_PROC = Variable(
    "LOCKSTEP_NVIDIA_PROC",
    SEAM,
    "/proc/driver/nvidia/version",
    "the kernel module's version file the last driver probe reads; empty: that probe is off",
    "engine, verify-gpu (core/nvidia)",
)
ENGINE_HOLD = Variable(
    "LOCKSTEP_ENGINE_HOLD",
    TEST,
    "",
    "`PHASE:DIR`: the engine writes `DIR/PHASE.reached` at that phase and waits for "
    "`DIR/PHASE.release` (the fault tests signal it there; `linking`: py-rattler's install)",
    "engine, core/rattlerinstall",
)
SKIP_IMAGE = Variable(
    "LOCKSTEP_SKIP_IMAGE",
    TEST,
    "",
    "1: the integration test that builds the Dockerfile with buildah is skipped",
    "tests/integration/test_image.py",
)
TEST_UV = Variable(
    "LOCKSTEP_TEST_UV",
    TEST,
    "",
    "a uv executable for the uv tests and benchmarks; unset: the `uv` wheel in .venv",
    "tests/integration/uvtool.py",
)
REQUIRE_LINTERS = Variable(
    "LOCKSTEP_REQUIRE_LINTERS",
    TEST,
    "",
    "1: a missing linter (actionlint, hadolint) fails its test instead of skipping (CI's lint job)",
    "tests/unit/test_lint_files.py",
)

REGISTRY: tuple[Variable, ...] = (
    PYTHON,
    CONDA_MIRROR,
    CONDA_CHANNEL_MIRRORS,
    QUERY_TIMEOUT,
    VERBOSE,
    LIBCUDA,
    NVIDIA_SMI,
    NVIDIA_PROC,
    ENGINE_HOLD,
    SKIP_IMAGE,
    TEST_UV,
    REQUIRE_LINTERS,
)


def markdown_table(variables: tuple[Variable, ...] = REGISTRY) -> str:
    """The manual's table of the variables, one row each."""
    rows = ["| variable | kind | default | meaning | read by |", "|---|---|---|---|---|"]
    for v in variables:
        default = f"`{v.default}`" if v.default else "unset"
        meaning = v.meaning.replace("|", "\\|")
        rows.append(f"| `{v.name}` | {v.kind} | {default} | {meaning} | {v.read_by} |")
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    sys.stdout.write(markdown_table())
