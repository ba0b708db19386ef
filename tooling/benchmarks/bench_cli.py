"""Startup cost of the task runner: `invoke --list` against bare `python -c pass`.

Prints the median of N runs of each (default 10) and their ratio, measured in one run so that
machine noise hits both alike. Usage: python benchmarks/bench_cli.py [N]
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the project, where tasks.py is


def _median_seconds(command: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    bare = _median_seconds([sys.executable, "-c", "pass"], runs)
    listing = _median_seconds([sys.executable, "-m", "invoke", "--list"], runs)
    print(f"runs per command        {runs}")
    print(f"python -c pass          {bare * 1000:8.1f} ms (median)")
    print(f"invoke --list           {listing * 1000:8.1f} ms (median)")
    print(f"ratio                   {listing / bare:8.2f}x")


if __name__ == "__main__":
    main()
