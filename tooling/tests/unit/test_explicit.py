"""Explicit locks: parsing every line of a large lock, and each way a lock can be wrong."""

from __future__ import annotations

from pathlib import Path

import pytest
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
