"""How long `invoke check` takes as a whole process on a realistic project.

Builds, in a temporary copy of the project, a conda lock of 300 packages (URLs on a file://
channel made up at run time, with a correct input hash) and a poetry.lock of 150 packages with
hashes and a matching pin group, then runs `invoke check` N times and prints the medians beside
`python -c pass` and `invoke --list`. Usage: python benchmarks/bench_check.py [N]
"""

from __future__ import annotations

import hashlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TOOLING = Path(__file__).resolve().parents[1]
PROJECT = TOOLING.parent
sys.path.insert(0, str(TOOLING / "src"))
sys.path.insert(0, str(PROJECT))

from tests.testdata import generated_lock_text  # noqa: E402

from lockstep import inputhash  # noqa: E402
from lockstep.core import poetryhash  # noqa: E402
from lockstep.pins import desired_pins  # noqa: E402
from lockstep.spec import load_env_spec  # noqa: E402

CONDA_PACKAGES = 300
PYPI_PACKAGES = 150
# What environment.yml names, at the versions the fake lock gives them.
NAMED = {
    "python": "3.11.9",
    "cuda-version": "12.9",
    "pytorch": "2.7.1",
    "torchvision": "0.22.0",
    "torchaudio": "2.7.1",
    "pip": "25.1",
    "poetry": "2.2.1",
    "conda-lock": "4.0.1",
    "invoke": "3.0.1",
    "pyyaml": "6.0.2",
    "tomlkit": "0.13.3",
}


def _digest(text: str, size: int = 32) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:size]


def conda_lock_text(channel: str, input_hash: str) -> str:
    """An explicit lock: the named packages plus filler libraries, 300 lines of URLs."""
    packages = list(NAMED.items())
    packages += [(f"libfiller{i:03d}", f"1.{i}.0") for i in range(CONDA_PACKAGES - len(packages))]
    with_builds = [(name, version, f"h{_digest(name, 7)}_0") for name, version in packages]
    return generated_lock_text(with_builds, channel=channel, input_hash=input_hash)


def pyproject_text(pins: dict[str, str], env_name: str) -> str:
    roots = [f"pkg{i:03d}>=1" for i in range(0, PYPI_PACKAGES - len(pins), 10)]
    lines = [
        "[project]",
        'name = "bench"',
        'version = "0.1.0"',
        'requires-python = ">=3.11,<3.12"',
        "dependencies = [" + ", ".join(f'"{r}"' for r in roots) + "]",
        "",
        "[tool.poetry]",
        "package-mode = false",
        "",
        "[tool.poetry.group.conda]",
        "optional = true",
        "",
        "[tool.poetry.group.conda.dependencies]",
    ]
    lines += [f'{name} = "{version}"' for name, version in pins.items()]
    # The env named as environment.yml names it: the check ends clean, as on the starter.
    lines += ["", "[tool.lockstep]", f'env-name = "{env_name}"']
    return "\n".join(lines) + "\n"


def poetry_lock_text(pins: dict[str, str], content_hash: str) -> str:
    """150 [[package]] tables: the pins (group conda) and a dependency chain (group main)."""
    blocks = []
    for name, version in pins.items():
        blocks.append(_package(name, version, "conda", []))
    for i in range(PYPI_PACKAGES - len(pins)):
        deps = [f"pkg{i + 1:03d}"] if (i + 1) % 10 and i + 1 < PYPI_PACKAGES - len(pins) else []
        blocks.append(_package(f"pkg{i:03d}", f"1.{i}.0", "main", deps))
    metadata = [
        "[metadata]",
        'lock-version = "2.1"',
        'python-versions = ">=3.11,<3.12"',
        f'content-hash = "{content_hash}"',
    ]
    return "# bench\n\n" + "\n\n".join(blocks + ["\n".join(metadata)]) + "\n"


def _package(name: str, version: str, group: str, deps: list[str]) -> str:
    lines = [
        "[[package]]",
        f'name = "{name}"',
        f'version = "{version}"',
        'description = ""',
        "optional = false",
        'python-versions = ">=3.9"',
        f'groups = ["{group}"]',
        "files = [",
    ]
    for suffix in ("-py3-none-any.whl", ".tar.gz"):
        lines.append(
            f'    {{file = "{name}-{version}{suffix}", hash = '
            f'"sha256:{_digest(name + suffix, 64)}"}},'
        )
    lines.append("]")
    if deps:
        lines += ["", "[package.dependencies]"] + [f'{d} = ">=1"' for d in deps]
    return "\n".join(lines)


def build_project(target: Path) -> None:
    """A copy of the project whose locks are big, fresh and consistent."""
    for name in ("tasks.py", "environment.yml", "virtual-packages.yml"):
        shutil.copy2(PROJECT / name, target / name)
    ignore = shutil.ignore_patterns("__pycache__")
    shutil.copytree(TOOLING / "src", target / "tooling" / "src", ignore=ignore)
    channel = (target / "channel").as_uri()  # a placeholder channel: no registry URL anywhere
    spec = load_env_spec(target / "environment.yml")
    pins = desired_pins(list(NAMED.items()), spec)
    pyproject = pyproject_text(pins, spec.name or "ml-project")
    (target / "pyproject.toml").write_text(pyproject, encoding="utf-8")
    import tomllib

    content_hash = poetryhash.content_hash(tomllib.loads(pyproject))
    (target / "poetry.lock").write_text(poetry_lock_text(pins, content_hash), encoding="utf-8")
    lock_hash = inputhash.input_hash(
        target / "environment.yml", target / "virtual-packages.yml", "linux-64"
    )
    (target / "conda-linux-64.lock").write_text(conda_lock_text(channel, lock_hash), "utf-8")


def timed(command: list[str], cwd: Path, runs: int, bytecode: bool = True) -> tuple[float, int]:
    """Median wall time of ``runs`` runs after one warm-up, and the last exit code.

    With ``bytecode`` (a developer's clone, pre-commit, CI after the first run) Python caches
    compiled modules; without it (PYTHONDONTWRITEBYTECODE=1) every run recompiles tasks.py and
    the package.
    """
    environ = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    if not bytecode:
        environ["PYTHONDONTWRITEBYTECODE"] = "1"
        shutil.rmtree(cwd / "__pycache__", ignore_errors=True)
        shutil.rmtree(cwd / "tooling" / "src" / "lockstep" / "__pycache__", ignore_errors=True)
    subprocess.run(command, cwd=cwd, capture_output=True, check=False, env=environ)
    times, code = [], 0
    for _ in range(runs):
        start = time.perf_counter()
        result = subprocess.run(command, cwd=cwd, capture_output=True, check=False, env=environ)
        times.append(time.perf_counter() - start)
        code = result.returncode
    return statistics.median(times), code


def main() -> int:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    invoke = shutil.which("invoke", path=str(Path(sys.executable).parent)) or "invoke"
    with tempfile.TemporaryDirectory(prefix="lockstep-bench-") as tmp:
        project = Path(tmp)
        build_project(project)
        out = subprocess.run([invoke, "check"], cwd=project, capture_output=True, text=True)
        print(out.stdout.strip())
        rows = [
            ("python -c pass", [sys.executable, "-c", "pass"]),
            ("invoke --list", [invoke, "--list"]),
            ("invoke check", [invoke, "check"]),
        ]
        print(f"{CONDA_PACKAGES} conda packages, {PYPI_PACKAGES} poetry.lock packages, {runs} runs")
        for label, command in rows:
            median, code = timed(command, project, runs)
            print(f"  {label:<34} median {median * 1000:6.0f} ms   exit {code}")
        median, code = timed([invoke, "check"], project, runs, bytecode=False)
        label = "invoke check (no bytecode cache)"
        print(f"  {label:<34} median {median * 1000:6.0f} ms   exit {code}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
