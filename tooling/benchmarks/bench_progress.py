"""What bundle's progress costs: its real download loop (bundlefetch.fetch_archive, streamed and
hashed) over file:// archives made up at run time, without progress, with the plain log lines
and with the live tqdm bar (written to a buffer that says it is a terminal), N runs each.

Prints the medians and each mode's cost against no progress; the issue asks for under 2 %.
Usage: python benchmarks/bench_progress.py [N] [ARCHIVES] [MB_EACH]
"""

from __future__ import annotations

import hashlib
import io
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

TOOLING = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TOOLING / "src"))

from lockstep.bundlefetch import fetch_archive  # noqa: E402
from lockstep.core.explicit import LockEntry, parse_url  # noqa: E402
from lockstep.progress import Progress  # noqa: E402


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _archives(folder: Path, count: int, size: int) -> list[LockEntry]:
    channel = folder / "channel" / "noarch"
    channel.mkdir(parents=True)
    entries = []
    for i in range(count):
        path = channel / f"pkg{i}-1.0-0.tar.bz2"
        data = os.urandom(size)
        path.write_bytes(data)
        entries.append(parse_url(f"{path.as_uri()}#{hashlib.md5(data).hexdigest()}"))
    return entries


def _run(entries: list[LockEntry], out: Path, mode: str) -> float:
    stream = _Terminal() if mode == "live bar" else io.StringIO()
    started = time.perf_counter()
    progress = None if mode == "none" else Progress("bundle", len(entries), stream=stream)
    for entry in entries:
        fetch_archive(entry.url, entry, out / entry.filename, progress)
        if progress is not None:
            progress.step(0)
    if progress is not None:
        progress.close()
    seconds = time.perf_counter() - started
    for entry in entries:
        (out / entry.filename).unlink()
    return seconds


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 40
    size = int(float(sys.argv[3]) * 1e6) if len(sys.argv) > 3 else 25_000_000
    with tempfile.TemporaryDirectory(prefix="bench-progress-") as tmp:
        entries = _archives(Path(tmp), count, size)
        out = Path(tmp) / "out"
        out.mkdir()
        modes = ["none", "plain lines", "live bar"]
        times: dict[str, list[float]] = {m: [] for m in modes}
        for _ in range(runs):
            for mode in modes:  # interleaved, so drift of the machine hits every mode alike
                times[mode].append(_run(entries, out, mode))
        # The calls alone, as many as the loop makes (one per 1 MiB chunk, one per file): the
        # whole-loop medians above move by more than that on a shared machine.
        chunks = count * -(-size // (1 << 20))
        alone: dict[str, list[float]] = {m: [] for m in modes[1:]}
        for _ in range(runs):
            for mode in modes[1:]:
                stream = _Terminal() if mode == "live bar" else io.StringIO()
                started = time.perf_counter()
                with Progress("bundle", count, stream=stream) as progress:
                    for _ in range(chunks):
                        progress.step(1 << 20, files=0)
                    for _ in range(count):
                        progress.step(0)
                alone[mode].append(time.perf_counter() - started)
    base = statistics.median(times["none"])
    print(f"{count} archives x {size / 1e6:.0f} MB, file:// URLs, median of {runs} runs")
    print(f"{'progress':<12} {'loop s':>8} {'vs none':>8} {'calls s':>8} {'calls/loop':>11}")
    for mode in modes:
        median = statistics.median(times[mode])
        calls = statistics.median(alone[mode]) if mode in alone else 0.0
        print(
            f"{mode:<12} {median:>8.3f} {100 * (median / base - 1):>7.2f}% "
            f"{calls:>8.4f} {100 * calls / base:>10.3f}%"
        )


if __name__ == "__main__":
    main()
