"""lockstep.core.digests: a digest is reused only for the very file it was taken from."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from lockstep.core import digests, engine
from lockstep.core.errors import LockstepError
from lockstep.core.explicit import read_explicit


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Every file actually read for a digest; files count as settled at once."""
    monkeypatch.setattr(digests, "SETTLED_NS", 0)
    read: list[Path] = []
    real = digests.file_digest

    def spy(path: Path, algorithm: str = "sha256") -> str:
        read.append(Path(path))
        return real(path, algorithm)

    monkeypatch.setattr(digests, "file_digest", spy)
    return read


def _cache(tmp_path: Path) -> Path:
    return tmp_path / "cache" / "lockstep" / "archive-digests.json"


def test_an_unchanged_file_is_read_once(tmp_path: Path, counted: list[Path]) -> None:
    archive = tmp_path / "a.conda"
    archive.write_bytes(b"archive bytes")
    first = digests.Digests(_cache(tmp_path))
    assert first.digest(archive, "md5") == hashlib.md5(b"archive bytes").hexdigest()
    first.save()
    again = digests.Digests(_cache(tmp_path))
    assert again.digest(archive, "md5") == hashlib.md5(b"archive bytes").hexdigest()
    assert counted == [archive]
    # Another algorithm is another digest: the file is read for it.
    assert again.digest(archive, "sha256") == hashlib.sha256(b"archive bytes").hexdigest()
    assert counted == [archive, archive]


def test_a_flipped_byte_with_its_times_put_back_is_read_again(
    tmp_path: Path, counted: list[Path]
) -> None:
    archive = tmp_path / "a.conda"
    archive.write_bytes(b"archive bytes")
    known = digests.Digests(_cache(tmp_path))
    known.digest(archive, "md5")
    known.save()
    stat = archive.stat()
    with open(archive, "r+b") as handle:  # same inode, same size
        handle.write(b"X")
    os.utime(archive, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # mtime as it was; ctime moves
    assert archive.stat().st_mtime_ns == stat.st_mtime_ns
    later = digests.Digests(_cache(tmp_path))
    assert later.digest(archive, "md5") == hashlib.md5(b"Xrchive bytes").hexdigest()
    assert counted == [archive, archive]


def test_a_file_changed_just_before_it_was_hashed_is_not_remembered(
    tmp_path: Path, counted: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(digests, "SETTLED_NS", 3600 * 10**9)
    archive = tmp_path / "a.conda"
    archive.write_bytes(b"new")
    known = digests.Digests(_cache(tmp_path))
    known.digest(archive, "md5")
    known.save()
    assert not _cache(tmp_path).exists()
    digests.Digests(_cache(tmp_path)).digest(archive, "md5")
    assert counted == [archive, archive]


@pytest.mark.parametrize("text", ["not json", '{"version": 99, "archives": {}}', "[]"])
def test_an_unreadable_cache_means_hashing_everything(
    tmp_path: Path, counted: list[Path], text: str
) -> None:
    cache = _cache(tmp_path)
    cache.parent.mkdir(parents=True)
    cache.write_text(text)
    archive = tmp_path / "a.conda"
    archive.write_bytes(b"x")
    known = digests.Digests(cache)
    known.digest(archive, "md5")
    known.save()
    assert json.loads(cache.read_text())["version"] == digests.VERSION
    assert counted == [archive]


def test_a_cache_that_cannot_be_written_is_skipped(tmp_path: Path, counted: list[Path]) -> None:
    blocker = tmp_path / "cache"
    blocker.write_text("a file where the cache folder would be")
    archive = tmp_path / "a.conda"
    archive.write_bytes(b"x")
    known = digests.Digests(blocker / "lockstep" / "archive-digests.json")
    assert known.digest(archive, "md5") == hashlib.md5(b"x").hexdigest()
    known.save()  # no exception: the next run hashes again
    assert blocker.read_text().startswith("a file")


def test_the_cache_follows_xdg_cache_home(tmp_path: Path) -> None:
    assert digests.cache_file({"XDG_CACHE_HOME": str(tmp_path)}) == (
        tmp_path / "lockstep" / "archive-digests.json"
    )
    home = Path(os.path.expanduser("~"))
    assert digests.cache_file({}) == home / ".cache" / "lockstep" / "archive-digests.json"


def test_verify_archives_finds_a_damaged_archive_that_was_good_on_the_last_run(
    tmp_path: Path, counted: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    channel = tmp_path / "channel" / "linux-64"
    channel.mkdir(parents=True)
    archive = channel / "zlib-1.0-0.conda"
    archive.write_bytes(b"zlib archive")
    md5 = hashlib.md5(b"zlib archive").hexdigest()
    lock = tmp_path / "conda-linux-64.lock"
    lock.write_text(f"# platform: linux-64\n@EXPLICIT\n{archive.as_uri()}#{md5}\n")
    assert engine.verify_archives(read_explicit(lock, "linux-64")) == 1
    assert engine.verify_archives(read_explicit(lock, "linux-64")) == 1
    assert counted == [archive]  # the second run read nothing
    archive.write_bytes(b"zlib archivX")
    with pytest.raises(LockstepError, match="zlib-1.0-0.conda: md5 .* differs from the lock's"):
        engine.verify_archives(read_explicit(lock, "linux-64"))
