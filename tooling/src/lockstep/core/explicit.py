"""conda's explicit lock format (``@EXPLICIT`` then ``url#md5`` lines), as conda-lock writes it."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import unquote, urlsplit

from lockstep.core.errors import LockstepError
from lockstep.core.fsutil import read_text

_ARCHIVE_SUFFIXES = (".conda", ".tar.bz2")
_HASH_RE = re.compile(r"^(?:[0-9a-f]{32}|sha256:[0-9a-f]{64}|[0-9a-f]{64})$")
# conda-lock's line for a PyPI package of the env: `# pip <name> @ <url>#sha256=<hex>`; older
# conda-lock wrote `# pip <name> @ <url> \` and the hash on a continuation line of its own
# (`# pip      --hash=sha256:<hex>`), and a URL may come with no hash at all.
_PIP_LINE_RE = re.compile(
    r"^#\s*pip\s+(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)\s+@\s+(?P<url>\S+)(?:\s+\\)?$"
)
_PIP_HASH_LINE_RE = re.compile(r"^#\s*pip\s+--hash=sha256:(?P<digest>[0-9a-f]{64})$")
_PIP_PREFIX_RE = re.compile(r"^#\s*pip\s")
_SDIST_SUFFIXES = (".tar.gz", ".zip", ".tar.bz2", ".tgz")


@dataclass(frozen=True)
class LockEntry:
    """One package of an explicit lock."""

    name: str
    version: str
    build: str
    channel: str
    subdir: str
    url: str
    md5: str

    @property
    def filename(self) -> str:
        """The package archive's file name."""
        return self.url.rsplit("/", 1)[1]

    @property
    def digest(self) -> tuple[str, str]:
        """The lock's hash of the archive as (algorithm, hex digest): an md5, or a sha256 with
        or without its ``sha256:`` prefix (the digest is empty where the lock has none)."""
        algorithm, _, value = self.md5.rpartition(":")
        return algorithm or ("md5" if len(value) == 32 else "sha256"), value


@dataclass(frozen=True)
class PipEntry:
    """One ``# pip`` line: a PyPI package that only `conda-lock install` would install."""

    name: str
    version: str
    url: str
    sha256: str  # "" where the lock gives none


@dataclass(frozen=True)
class ExplicitLock:
    """A parsed explicit lock."""

    path: str
    platform: str | None
    input_hash: str | None
    entries: tuple[LockEntry, ...]
    pip: tuple[PipEntry, ...] = ()

    def by_name(self) -> dict[str, LockEntry]:
        """Entries keyed by conda package name."""
        return {e.name: e for e in self.entries}


def local_archive(url: str) -> Path | None:
    """The file a ``file://`` package URL names, or None for a remote one."""
    parts = urlsplit(url)
    if parts.scheme != "file":
        return None
    return Path(unquote(parts.path))


def parse_url(url_and_hash: str) -> LockEntry:
    """Split ``<channel>/<subdir>/<name>-<version>-<build>.<ext>#<hash>``."""
    url, _, digest = url_and_hash.partition("#")
    base, _, filename = url.rpartition("/")
    channel, _, subdir = base.rpartition("/")
    stem = next((filename[: -len(s)] for s in _ARCHIVE_SUFFIXES if filename.endswith(s)), None)
    if not (channel and subdir and stem) or stem.count("-") < 2:
        raise ValueError(f"not a conda package URL: {url_and_hash!r}")
    if digest and not _HASH_RE.match(digest):
        raise ValueError(f"bad hash in {url_and_hash!r}")
    name, version, build = stem.rsplit("-", 2)
    return LockEntry(name, version, build, channel, subdir, url, digest)


def _file_version(name: str, filename: str) -> str:
    """The version in a wheel's or sdist's file name (escaped name first, PEP 427/625)."""
    if filename.endswith(".whl"):
        parts = filename[: -len(".whl")].split("-")
        return parts[1] if len(parts) >= 5 else ""
    stem = next((filename[: -len(s)] for s in _SDIST_SUFFIXES if filename.endswith(s)), "")
    escaped = re.sub(r"[-_.]+", "[-_.]+", re.escape(name).replace("\\", ""))
    match = re.fullmatch(rf"(?i){escaped}-(.+)", stem)
    return match.group(1) if match else ""


def parse_pip_line(line: str) -> PipEntry:
    """Split ``# pip name @ url#sha256=hex`` (conda-lock's spelling; the hash may be missing,
    or follow on a ``--hash`` line of its own: parse_explicit attaches it)."""
    match = _PIP_LINE_RE.match(line.strip())
    if match is None:
        raise ValueError(f"not a `# pip NAME @ URL#sha256=HASH` line: {line.strip()!r}")
    url, _, fragment = match.group("url").partition("#")
    algorithm, _, digest = fragment.partition("=")
    if fragment and (algorithm != "sha256" or not re.fullmatch(r"[0-9a-f]{64}", digest)):
        raise ValueError(f"not #sha256=<64 hex> after the URL in {line.strip()!r}")
    name = match.group("name")
    # "" where the file name has none (a GitHub archive, `.../archive/v1.0.tar.gz`)
    version = _file_version(name, url.rsplit("/", 1)[-1])
    return PipEntry(name, version, url, digest)


def pip_lines_error(lock: ExplicitLock) -> str:
    """One line refusing a lock whose ``# pip`` lines conda would skip, and what to do."""
    names = ", ".join(
        f"{p.name} {p.version or '(version not in its URL)'}" + ("" if p.sha256 else " (no hash)")
        for p in lock.pip
    )
    return (
        f"{lock.path}: {len(lock.pip)} `# pip` line(s) ({names}) that a conda install skips; "
        "move those packages to pyproject.toml (`poetry add NAME`), drop the `pip:` section of "
        "environment.yml, and lock again (`invoke lock`)"
    )


def parse_explicit(text: str, path: str = "<lock>") -> ExplicitLock:
    """Parse the text of an explicit lock; a malformed line names the file and line."""
    if not any(line.strip() == "@EXPLICIT" for line in text.splitlines()):
        raise LockstepError(
            f"{path}: not an explicit lock (no @EXPLICIT line); regenerate it with `invoke lock`"
        )
    platform = input_hash = None
    entries: list[LockEntry] = []
    pip: list[PipEntry] = []
    seen_explicit = False
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        hash_line = _PIP_HASH_LINE_RE.match(line)
        if hash_line and pip and not pip[-1].sha256:
            pip[-1] = replace(pip[-1], sha256=hash_line.group("digest"))
            continue
        if _PIP_PREFIX_RE.match(line) and " @ " in line:
            try:
                pip.append(parse_pip_line(line))
            except ValueError as exc:
                raise LockstepError(f"{path}: line {number}: {exc}") from None
            continue
        if line.startswith("#"):
            key, _, value = line[1:].strip().partition(":")
            if key.strip() == "platform":
                platform = value.strip()
            elif key.strip() == "input_hash":
                input_hash = value.strip()
            continue
        if line == "@EXPLICIT":
            seen_explicit = True
            continue
        if not seen_explicit:
            raise LockstepError(f"{path}: line {number}: package line before @EXPLICIT")
        try:
            entries.append(parse_url(line))
        except ValueError as exc:
            raise LockstepError(f"{path}: line {number}: {exc}") from None
    return ExplicitLock(path, platform, input_hash, tuple(entries), tuple(pip))


def read_explicit(path: Path, platform: str | None = None) -> ExplicitLock:
    """Read a lock file, checking that it exists and is for ``platform``."""
    path = Path(path)
    if not path.is_file():
        raise LockstepError(
            f"{path}: lock file not found; create it with `invoke lock` (needs conda channels)"
        )
    lock = parse_explicit(read_text(path), str(path))
    if platform is not None and lock.platform != platform:
        raise LockstepError(
            f"{path}: lock is for platform {lock.platform or 'unknown'!r}, this machine is "
            f"{platform!r}; lock for it with `invoke lock --platform {platform}`"
        )
    return lock
