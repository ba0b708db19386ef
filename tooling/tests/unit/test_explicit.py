"""Explicit locks: parsing every line of a large lock, and each way a lock can be wrong."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.paths import TOOLING
from tests.testdata import generated_lock_text, realistic_packages

from lockstep.core.errors import LockstepError
from lockstep.core.explicit import parse_explicit, parse_url, read_explicit


def test_big_lock_parses_every_package(big_lock_text: str) -> None:
    lock = parse_explicit(big_lock_text, "conda-linux-64.lock")
    assert lock.platform == "linux-64"
    assert lock.input_hash == "0" * 64
    assert len(lock.entries) == 240
    torch = lock.by_name()["pytorch"]
    assert (torch.version, torch.build, torch.subdir) == (
        "2.7.1",
        "cuda129_generic_py311_h1234567_200",
        "linux-64",
    )
    assert torch.channel.endswith("/local-channel")
    assert len(torch.md5) == 32
    assert lock.by_name()["filelock"].subdir == "noarch"


def test_url_with_tar_bz2_and_dashes_in_name() -> None:
    entry = parse_url("file:///c/conda-forge/noarch/typing-extensions-4.12.2-pyha770c72_1.tar.bz2")
    assert (entry.name, entry.version, entry.build) == (
        "typing-extensions",
        "4.12.2",
        "pyha770c72_1",
    )
    assert entry.filename == "typing-extensions-4.12.2-pyha770c72_1.tar.bz2"
    assert entry.md5 == ""


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("@EXPLICIT\nnot-a-url\n", "line 2: not a conda package URL"),
        ("file:///c/x/linux-64/a-1-0.conda\n@EXPLICIT\n", "line 1: package line before @EXPLICIT"),
        ("# platform: linux-64\nfoo==1.0\n", "not an explicit lock"),
        ("@EXPLICIT\nfile:///c/x/linux-64/a-1-0.conda#zzz\n", "line 2: bad hash"),
    ],
    ids=["garbage-line", "before-explicit", "yaml-or-requirements", "bad-hash"],
)
def test_malformed_lock_names_the_line(body: str, message: str) -> None:
    with pytest.raises(LockstepError, match=message):
        parse_explicit(body, "conda-linux-64.lock")


def test_missing_lock_says_how_to_make_it(tmp_path: Path) -> None:
    with pytest.raises(LockstepError, match="lock file not found; create it with `invoke lock`"):
        read_explicit(tmp_path / "conda-linux-64.lock", "linux-64")


def test_lock_for_another_platform(tmp_path: Path) -> None:
    path = tmp_path / "conda-linux-64.lock"
    path.write_text(generated_lock_text(realistic_packages(20), platform="osx-arm64"))
    with pytest.raises(LockstepError, match="lock is for platform 'osx-arm64', this machine is"):
        read_explicit(path, "linux-64")


@pytest.mark.parametrize(
    ("digest", "expected"),
    [
        ("0" * 32, ("md5", "0" * 32)),
        ("a" * 64, ("sha256", "a" * 64)),
        ("sha256:" + "b" * 64, ("sha256", "b" * 64)),
        ("", ("sha256", "")),
    ],
    ids=["md5", "bare-sha256", "prefixed-sha256", "none"],
)
def test_the_hash_of_an_entry_names_its_algorithm(digest: str, expected: tuple[str, str]) -> None:
    url = "https://conda.anaconda.org/conda-forge/noarch/six-1.16.0-pyh6c4a22f_0.tar.bz2"
    entry = parse_url(f"{url}#{digest}" if digest else url)
    assert entry.digest == expected


# conda-lock of 2021 (tests/data/pip-lines/PROVENANCE): `# pip NAME @ URL \` with the hash on a
# `# pip      --hash=sha256:HEX` line of its own; the whole lock was once unreadable.
AMPEL = TOOLING / "tests" / "data" / "pip-lines" / "AmpelAstro__Ampel-HU-astro-0164b569"


def test_a_real_lock_whose_pip_hashes_are_on_lines_of_their_own() -> None:

    lock = read_explicit(AMPEL / "conda-linux-64.lock")
    assert len(lock.pip) == 11 and len(lock.entries) > 100
    first = lock.pip[0]
    assert (first.name, first.version) == ("ampel-interface", "0.8.0a11")
    assert first.sha256 == "8ff40fcca895fb4b9204d6bd31538f2a0ba48d0cc54fdd417ec81d9a6eca0e31"
    assert all(len(p.sha256) == 64 for p in lock.pip)
    pymage = next(p for p in lock.pip if p.name == "pymage")
    assert pymage.url == "https://github.com/MickaelRigault/pymage/archive/v1.0.tar.gz"
    assert pymage.version == ""


def test_the_real_locks_pip_lines_are_reported_not_installed(tmp_path: Path) -> None:
    from lockstep.core.explicit import pip_lines_error

    lock = read_explicit(AMPEL / "conda-linux-64.lock")
    message = pip_lines_error(lock)
    assert "11 `# pip` line(s) (ampel-interface 0.8.0a11, " in message
    assert "pymage (version not in its URL)" in message
    assert message.endswith("and lock again (`invoke lock`)")


def test_a_pip_line_without_any_hash_is_read_and_named() -> None:
    from lockstep.core.explicit import pip_lines_error

    text = (
        "@EXPLICIT\n"
        "https://conda.anaconda.org/conda-forge/noarch/six-1.16.0-pyh6c4a22f_0.tar.bz2"
        "#e5f25f8dbc060e9a8d912e432202afc2\n"
        "# pip sjcl @ https://files.pythonhosted.org/packages/16/70/68/sjcl-0.2.1.tar.gz\n"
    )
    lock = parse_explicit(text, "conda-linux-64.lock")
    [pip] = lock.pip
    assert (pip.name, pip.version, pip.sha256) == ("sjcl", "0.2.1", "")
    assert "(sjcl 0.2.1 (no hash))" in pip_lines_error(lock)


def test_a_pip_line_with_a_broken_hash_is_still_refused() -> None:
    text = "@EXPLICIT\n# pip sjcl @ https://h/sjcl-0.2.1.tar.gz#md5=0123\n"
    with pytest.raises(LockstepError, match=r"line 2: not #sha256=<64 hex> after the URL"):
        parse_explicit(text, "conda-linux-64.lock")
