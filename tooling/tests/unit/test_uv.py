"""uv for the PyPI side: the exact commands, and when uv is used instead of pip.

That uv and pip build the same env from the same requirement file is proven on real tools in
tests/integration/test_uv.py; here the builders are pinned as exact lists.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from lockstep.core.installer import (
    editable_command,
    env_uv,
    install_command,
    pip_install_command,
    root_install_command,
    uninstall_command,
    uv_install_command,
    uv_root_install_command,
)

PY = "/e/bin/python"
REQ = "/tmp/r.txt"
LOCAL = "http://127.0.0.1:1/simple"


def test_uv_command_is_exact() -> None:
    assert uv_install_command("/e/bin/uv", PY, REQ, [LOCAL], "http://mirror/simple") == [
        "/e/bin/uv",
        "pip",
        "install",
        "--python",
        PY,
        "--no-deps",
        "--require-hashes",
        "--default-index",
        "http://mirror/simple",
        "--extra-index-url",
        LOCAL,
        "-r",
        REQ,
    ]


def test_uv_without_a_default_index_leaves_uv_its_own() -> None:
    assert uv_install_command("/e/bin/uv", PY, REQ, []) == [
        "/e/bin/uv",
        "pip",
        "install",
        "--python",
        PY,
        "--no-deps",
        "--require-hashes",
        "-r",
        REQ,
    ]


def test_uv_editable_command_is_exact() -> None:
    assert uv_root_install_command("/e/bin/uv", PY, "/w/proj") == [
        "/e/bin/uv",
        "pip",
        "install",
        "--python",
        PY,
        "--no-deps",
        "--no-build-isolation",
        "-e",
        "/w/proj",
    ]


@pytest.mark.parametrize(
    ("environ", "default_index"),
    [
        pytest.param(
            {"PIP_INDEX_URL": "http://mirror/simple"}, "http://mirror/simple", id="pip-index"
        ),
        pytest.param({"PIP_INDEX_URL": ""}, None, id="empty-is-unset"),
        pytest.param({}, None, id="unset"),
    ],
)
def test_uv_gets_the_index_pip_would_use(environ: dict, default_index: str | None) -> None:
    uv = Path("/e/bin/uv")
    assert install_command(PY, REQ, [LOCAL], environ, uv) == uv_install_command(
        str(uv), PY, REQ, [LOCAL], default_index
    )


def test_without_uv_pip_installs_exactly_as_before() -> None:
    environ = {"PIP_INDEX_URL": "http://mirror/simple"}
    assert install_command(PY, REQ, [LOCAL], environ) == pip_install_command(PY, REQ, [LOCAL])
    assert editable_command(PY, "/w/proj") == root_install_command(PY, "/w/proj")
    uv = Path("/e/bin/uv")
    assert editable_command(PY, "/w/proj", uv) == uv_root_install_command(str(uv), PY, "/w/proj")


@pytest.mark.parametrize(
    ("mode", "found"),
    [
        pytest.param(0o755, True, id="executable"),
        pytest.param(0o644, False, id="not-executable"),
        pytest.param(None, False, id="absent"),
    ],
)
def test_env_uv_is_the_env_s_own_executable(tmp_path: Path, mode: int | None, found: bool) -> None:
    (tmp_path / "bin").mkdir()
    uv = tmp_path / "bin" / "uv"
    if mode is not None:
        uv.write_text("#!/bin/sh\n")
        uv.chmod(mode)
    assert env_uv(tmp_path) == (uv if found else None)


def _recording_uv(bin_dir: Path, log: Path) -> Path:
    """A fake uv that records its arguments, one run a line, and installs nothing."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    uv = bin_dir / "uv"
    uv.write_text(f'#!/bin/sh\necho "$0 $@" >> "{log}"\n')
    uv.chmod(0o755)
    return uv


@pytest.mark.parametrize("where", ["env", "path"])
def test_the_installer_cli_uses_uv_from_the_env_or_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    """`python -m lockstep.core.installer install` (the tooling venv's bootstrap) with uv: the
    env's own first, else the one on PATH; requirements with hashes, then the project editable."""
    from lockstep.core.installer import main as pypi_main

    root = Path(__file__).resolve().parents[2]
    prefix = tmp_path / "venv"
    log = tmp_path / "uv-calls"
    uv = _recording_uv(prefix / "bin" if where == "env" else tmp_path / "tools", log)
    monkeypatch.setenv("PATH", f"{tmp_path / 'tools'}:/usr/bin:/bin")
    monkeypatch.delenv("PIP_INDEX_URL", raising=False)
    code = pypi_main(
        [
            "install",
            "--prefix",
            str(prefix),
            "--python-version",
            "3.11.10",
            "--poetry-lock",
            str(root / "poetry.lock"),
            "--pyproject",
            str(root / "pyproject.toml"),
            "--project-dir",
            str(root),
        ]
    )
    assert code == 0
    calls = [line.split() for line in log.read_text().splitlines()]
    python = str(prefix / "bin" / "python")
    assert [c[:8] for c in calls] == [
        [str(uv), "pip", "install", "--python", python, "--no-deps", "--require-hashes", "-r"],
        [str(uv), "pip", "install", "--python", python, "--no-deps", "--no-build-isolation", "-e"],
    ]
    assert calls[1][8:] == [str(root)]


def test_uninstall_by_uv_and_by_pip() -> None:
    uv = Path("/e/bin/uv")
    assert uninstall_command(PY, ["by-hand", "old"], uv) == [
        "/e/bin/uv",
        "pip",
        "uninstall",
        "--python",
        PY,
        "by-hand",
        "old",
    ]
    assert uninstall_command(PY, ["by-hand"]) == [
        PY,
        "-m",
        "pip",
        "uninstall",
        "--yes",
        "--no-input",
        "--disable-pip-version-check",
        "by-hand",
    ]
