"""What the tasks cost over typing the commands by hand (a benchmark, not a test).

Builds the integration tests' local channel, wheel index and a temporary project in a temp dir,
locks it once through the tasks, then prints medians of:
  - `make reproduce` and `invoke reproduce` against the raw commands a user would type
    (conda create from the explicit lock, pip with hashes, the env variable), N runs each;
  - `invoke --list` against bare `python -c pass`, M runs each.
Runs of the commands compared are interleaved, so drifting machine load hits both alike.

Usage: .venv/bin/python benchmarks/bench_reproduce.py [N=5] [M=10]
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the harness is imported from the test tree, not copied

from tests.integration.condastandin.conda_standin import write_executables  # noqa: E402
from tests.integration.project import (  # noqa: E402
    Project,
    build_project_channel,
    create_project,
)
from tests.integration.pyindex import build_index, serve_index  # noqa: E402

ENV_NAME = "bench"
BY_HAND = "by hand (conda create + pip + vars)"
Command = Sequence[str | os.PathLike[str]]


def _run(project: Project, command: Command) -> None:
    subprocess.run(
        [os.fspath(part) for part in command],
        cwd=project.root,
        env=dict(project.env),
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _timed(action: Callable[[], None]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def _interleaved_medians(actions: dict[str, Callable[[], None]], runs: int) -> dict[str, float]:
    """Median seconds of each action, the actions taking turns in every round."""
    times: dict[str, list[float]] = {name: [] for name in actions}
    for _ in range(runs):
        for name, action in actions.items():
            times[name].append(_timed(action))
    return {name: statistics.median(values) for name, values in times.items()}


def requirements_from_poetry_lock(poetry_lock: Path) -> str:
    """The hashed requirements a user would export for the main group (done once, untimed)."""
    data = tomllib.loads(poetry_lock.read_text(encoding="utf-8"))
    lines = []
    for package in data["package"]:
        if "main" not in package.get("groups", ["main"]):
            continue
        hashes = "".join(f" --hash={f['hash']}" for f in package["files"])
        lines.append(f"{package['name']}=={package['version']}{hashes}")
    return "\n".join(lines) + "\n"


def raw_reproduce(project: Project, requirements: Path) -> Callable[[], None]:
    """The commands typed by hand: no name checks, no backup of the old env, no planning."""
    conda = Path(project.env["CONDA_EXE"])
    python = project.prefix / "bin" / "python"
    pip = [python, "-m", "pip", "install", "--no-deps", "--require-hashes", "-r", requirements]
    commands: list[Command] = [
        [conda, "create", "--yes", "-n", project.env_name, "--file", project.lock],
        pip,
        [conda, "env", "config", "vars", "set", "-n", project.env_name, "PYTHONNOUSERSITE=1"],
    ]

    def action() -> None:
        for command in commands:
            _run(project, command)

    return action


@contextmanager
def locked_project(workdir: Path) -> Iterator[Project]:
    """A project with both locks written through the tasks, its index served meanwhile."""
    channel = build_project_channel(workdir / "channel")
    standin_bin = workdir / "bin"
    write_executables(standin_bin)
    with serve_index(build_index(workdir / "index")) as index:
        project = create_project(
            workdir / "project", workdir / "state", channel, standin_bin, index.url, ENV_NAME
        )
        for task in ("lock", "poetry-init", "pin"):
            _run(project, [sys.executable, "-m", "invoke", task])
        yield project


def bench_reproduce(project: Project, runs: int) -> dict[str, float]:
    requirements = project.root.parent / "requirements.txt"
    requirements.write_text(requirements_from_poetry_lock(project.poetry_lock), encoding="utf-8")
    invoke = [sys.executable, "-m", "invoke"]
    actions = {
        BY_HAND: raw_reproduce(project, requirements),
        "make reproduce": lambda: _run(project, ["make", f"ENV_NAME={ENV_NAME}", "reproduce"]),
        "invoke reproduce": lambda: _run(project, [*invoke, "reproduce"]),
    }
    actions[BY_HAND]()  # warm the package cache for everyone
    return _interleaved_medians(actions, runs)


def bench_startup(project: Project, runs: int) -> dict[str, float]:
    actions = {
        "python -c pass": lambda: _run(project, [sys.executable, "-c", "pass"]),
        "invoke --list": lambda: _run(project, [sys.executable, "-m", "invoke", "--list"]),
    }
    return _interleaved_medians(actions, runs)


def report(title: str, medians: dict[str, float], baseline: str, runs: int) -> None:
    print(f"{title} (median of {runs} runs)")
    for name, seconds in medians.items():
        ratio = seconds / medians[baseline]
        print(f"  {name:<38}{seconds * 1000:9.1f} ms  {ratio:5.2f}x")


def main(argv: Sequence[str]) -> None:
    runs = int(argv[0]) if argv else 5
    startup_runs = int(argv[1]) if len(argv) > 1 else 10
    with (
        tempfile.TemporaryDirectory(prefix="bench-reproduce-") as tmp,
        locked_project(Path(tmp)) as project,
    ):
        print(f"cpus {os.cpu_count()}, python {sys.version.split()[0]}, stand-in conda")
        reproduce = bench_reproduce(project, runs)
        report("reproduce", reproduce, BY_HAND, runs)
        startup = bench_startup(project, startup_runs)
        report("startup", startup, "python -c pass", startup_runs)


if __name__ == "__main__":
    main(sys.argv[1:])
