"""Progress of bundle and pack: plain periodic lines in a log, a live tqdm bar on a terminal."""

from __future__ import annotations

import io

from lockstep.progress import Progress


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_log_gets_a_line_every_interval_and_one_at_the_end() -> None:
    out, clock = io.StringIO(), Clock()
    progress = Progress("pack", files=4, total_bytes=400_000_000, stream=out, clock=clock)
    clock.now += 4
    progress.step(100_000_000)  # within the interval: no line
    assert out.getvalue() == ""
    clock.now += 6
    progress.step(100_000_000)
    assert out.getvalue() == (
        "lockstep: pack: 2/4 files, 200.0 MB of 400.0 MB, 20.0 MB/s, 0:10 left\n"
    )
    clock.now += 10
    progress.step(200_000_000, files=2)
    progress.close()
    assert out.getvalue().splitlines()[1:] == [
        "lockstep: pack: 4/4 files, 400.0 MB of 400.0 MB, 20.0 MB/s, 0:00 left",
        "lockstep: pack: 4/4 files, 400.0 MB in 0:20",
    ]


def test_without_a_byte_total_the_time_left_comes_from_the_files() -> None:
    # bundle: an explicit lock has no archive sizes
    out, clock = io.StringIO(), Clock()
    progress = Progress("bundle: conda archives", files=10, stream=out, clock=clock)
    clock.now += 12
    progress.step(30_000_000, files=3)
    assert out.getvalue() == (
        "lockstep: bundle: conda archives: 3/10 files, 30.0 MB, 2.5 MB/s, 0:28 left\n"
    )


def test_a_terminal_gets_a_live_bar_with_bytes_rate_and_time_left() -> None:
    out = io.StringIO()
    with Progress("pack", files=2, total_bytes=2_000_000, stream=out, live=True) as progress:
        progress.step(1_000_000)
        progress.step(1_000_000)
    shown = out.getvalue()
    assert "\r" in shown  # redrawn in place
    final = shown.rsplit("\r", 1)[-1]
    assert "lockstep: pack: 100%" in final and "2.00M/2.00M" in final
    assert "B/s" in final and "2/2 files" in final


def test_the_progress_library_is_the_toolings_not_the_users() -> None:
    import tomllib

    from tests.paths import PROJECT, TOOLING

    tooling = tomllib.loads((TOOLING / "poetry.lock").read_text())
    assert "tqdm" in {p["name"] for p in tooling["package"]}
    for name in ("pyproject.toml", "poetry.lock", "environment.yml"):
        assert "tqdm" not in (PROJECT / name).read_text(), f"the user's {name}"
    # the engine (standard library only) prints its phase lines without it
    engine = (TOOLING / "src" / "lockstep" / "core" / "engine.py").read_text()
    assert "tqdm" not in engine and "lockstep.progress" not in engine
