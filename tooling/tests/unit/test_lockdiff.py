"""The lock-refresh change report (src/lockstep/lockdiff.py)."""

from __future__ import annotations

from pathlib import Path

from tests.testdata import generated_lock_text

from lockstep.lockdiff import Change, lock_changes, main


def _poetry_lock(packages: dict[str, str]) -> str:
    blocks = [
        f'[[package]]\nname = "{name}"\nversion = "{version}"\ngroups = ["main"]\nfiles = []\n'
        for name, version in packages.items()
    ]
    return "\n".join(blocks) + '\n[metadata]\nlock-version = "2.1"\n'


def _locks(folder: Path, conda: list[tuple[str, str, str]] | None, pypi: dict[str, str]) -> Path:
    folder.mkdir()
    if conda is not None:
        (folder / "conda-linux-64.lock").write_text(generated_lock_text(conda), encoding="utf-8")
    (folder / "poetry.lock").write_text(_poetry_lock(pypi), encoding="utf-8")
    return folder


def test_lock_changes_both_sides(tmp_path: Path) -> None:
    old = _locks(
        tmp_path / "old",
        [("python", "3.11.9", "h_0"), ("zlib", "1.3", "h_0")],
        {"rich": "13.0.0", "six": "1.16.0"},
    )
    new = _locks(
        tmp_path / "new",
        [("python", "3.11.10", "h_0"), ("xz", "5.6", "h_0")],
        {"rich": "13.0.0", "six": "1.17.0"},
    )
    changes, notes = lock_changes(old, new)
    assert changes == [
        Change("conda", "python", "3.11.9", "3.11.10"),
        Change("conda", "xz", None, "5.6"),
        Change("conda", "zlib", "1.3", None),
        Change("pypi", "six", "1.16.0", "1.17.0"),
    ]
    assert notes == [
        "conda-linux-64.lock: download size unknown (an explicit lock has no sizes, and none of "
        "its archives is local or in the package cache)"
    ]


def test_first_lock_reports_every_package_added(tmp_path: Path, capsys) -> None:
    old = _locks(tmp_path / "old", None, {})
    new = _locks(tmp_path / "new", [("python", "3.11.9", "h_0")], {})
    assert main(["--old", str(old), "--new", str(new)]) == 0
    assert capsys.readouterr().out == (
        "1 package(s) changed:\n  conda python  - -> 3.11.9\n"
        "  note: conda-linux-64.lock: download size unknown (an explicit lock has no sizes, and "
        "none of its archives is local or in the package cache)\n"
    )


def test_no_change(tmp_path: Path, capsys) -> None:
    old = _locks(tmp_path / "old", [("python", "3.11.9", "h_0")], {"six": "1.17.0"})
    assert main(["--old", str(old), "--new", str(old)]) == 0
    assert capsys.readouterr().out.startswith("No package changed.\n")


def test_the_refresh_report_names_the_cutoff(tmp_path: Path, capsys) -> None:
    # The lock-refresh pull request's body: the cooldown of [tool.lockstep], resolved for it.
    old = _locks(tmp_path / "old", [("python", "3.11.9", "h_0")], {})
    new = _locks(tmp_path / "new", [("python", "3.11.9", "h_0")], {})
    (new / "pyproject.toml").write_text('[tool.lockstep]\nexclude-newer = "2026-04-01"\n')
    assert main(["--old", str(old), "--new", str(new)]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == (
        "  note: cooldown: exclude-newer = '2026-04-01': nothing published after 2026-04-02 "
        "00:00 UTC (conda and PyPI sides), as resolved for this report"
    )
