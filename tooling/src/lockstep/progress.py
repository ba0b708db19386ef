"""Progress of long work (bundle's downloads, pack's archive): files, bytes, rate, time left.

On a terminal a live bar (tqdm); anywhere else (a CI log, a batch job's output file) one plain
line every ``interval_s`` seconds and one at the end, so a log shows progress without carriage
returns. tqdm lives in the tooling venv only: nothing here runs in the user's env or in the
engine (which is standard library only and prints one line per phase instead).
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, TextIO

# A CI log gets a line this often (and the last one when the work ends).
INTERVAL_S = 10.0


def _size(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if abs(n) < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError("unreachable")


def _duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    minutes, secs = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class Progress:
    """Counts files and bytes done of ``files`` (and of ``total_bytes`` where known; else the
    time left is estimated from the files). Thread-safe: bundle fetches in parallel."""

    def __init__(
        self,
        what: str,
        files: int,
        total_bytes: int | None = None,
        stream: TextIO | None = None,
        interval_s: float = INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
        live: bool | None = None,
    ) -> None:
        self.what, self.files, self.total_bytes = what, files, total_bytes
        self.stream = stream or sys.stderr
        self.interval_s, self.clock = interval_s, clock
        self.done_files = self.done_bytes = 0
        self._lock = threading.Lock()
        self._start = self._last = clock()
        is_tty = getattr(self.stream, "isatty", lambda: False)()
        self._bar: Any = self._live_bar() if (is_tty if live is None else live) else None

    def _live_bar(self) -> Any:
        from tqdm import tqdm  # the tooling venv's; imported only where a terminal shows it

        if self.total_bytes is not None:
            return tqdm(
                total=self.total_bytes,
                unit="B",
                unit_scale=True,
                desc=f"lockstep: {self.what}",
                file=self.stream,
                leave=True,
            )
        return tqdm(total=self.files, unit="file", desc=f"lockstep: {self.what}", file=self.stream)

    def step(self, nbytes: int, files: int = 1) -> None:
        """``files`` more done, ``nbytes`` bytes of them."""
        with self._lock:
            self.done_files += files
            self.done_bytes += nbytes
            if self._bar is not None:
                self._bar.update(nbytes if self.total_bytes is not None else files)
                self._bar.set_postfix_str(self._postfix(), refresh=False)
                return
            now = self.clock()
            if now - self._last >= self.interval_s:
                self._last = now
                print(self.line(now), file=self.stream, flush=True)

    def _postfix(self) -> str:
        if self.total_bytes is not None:
            return f"{self.done_files}/{self.files} files"
        return _size(self.done_bytes)

    def line(self, now: float | None = None) -> str:
        """The plain line: files, bytes, rate, time left."""
        elapsed = max((self.clock() if now is None else now) - self._start, 1e-9)
        rate = self.done_bytes / elapsed
        of = f" of {_size(self.total_bytes)}" if self.total_bytes is not None else ""
        if self.total_bytes is not None and rate > 0:
            left = (self.total_bytes - self.done_bytes) / rate
        elif self.done_files:
            left = elapsed / self.done_files * (self.files - self.done_files)
        else:
            left = None
        shown = _duration(left) if left is not None else "?"
        return (
            f"lockstep: {self.what}: {self.done_files}/{self.files} files, "
            f"{_size(self.done_bytes)}{of}, {_size(rate)}/s, {shown} left"
        )

    def close(self) -> None:
        with self._lock:
            if self._bar is not None:
                self._bar.close()
                self._bar = None
                return
            elapsed = self.clock() - self._start
            print(
                f"lockstep: {self.what}: {self.done_files}/{self.files} files, "
                f"{_size(self.done_bytes)} in {_duration(elapsed)}",
                file=self.stream,
                flush=True,
            )

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
