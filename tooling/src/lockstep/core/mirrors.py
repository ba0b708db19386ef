"""Conda channel mirrors for explicit locks, without editing the locks.

An explicit lock holds full URLs, ``<channel base>/<channel>/<subdir>/<file>#<md5>``, so neither
``channel_alias`` nor ``custom_channels`` reaches them. At install time the URLs are rewritten
into a temporary copy of the lock instead:

- ``LOCKSTEP_CONDA_MIRROR=BASE``: every package URL becomes ``BASE/<channel>/<subdir>/<file>``,
  the channel taken from the URL itself (a proxy that mirrors several channels under one root).
- ``LOCKSTEP_CONDA_CHANNEL_MIRRORS="NAME=URL ..."``: the channel ``NAME`` is served at ``URL``
  (``URL/<subdir>/<file>``), for mirrors that rename channels or an air-gapped ``file://`` copy.
  It wins over the base for the channels it names.

The md5 after ``#`` is kept, so conda still checks every archive against the lock. The header
(``# platform``, ``# input_hash``) is kept too: the lock stays the same lock, only the host moves.

Standard library only: the env engine rewrites in-process (``make reproduce`` runs it with any
Python 3.11+), and the Dockerfile runs ``python -m lockstep.core.mirrors rewrite`` with the base
image's Python.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from lockstep.core.fsutil import atomic_write_text
from lockstep.core.variables import CONDA_CHANNEL_MIRRORS, CONDA_MIRROR

_SCHEMES = ("http", "https", "file")
# Channels such as conda-forge/label/broken: the label belongs to the channel, not to the base.
_LABEL = "label"
# Anaconda's own channels (and their mirrors) sit under pkgs/: conda calls them pkgs/main, pkgs/r.
_PKGS = "pkgs"


class MirrorError(ValueError):
    """A mirror setting or a lock line that cannot be rewritten; the message says which."""


@dataclass(frozen=True)
class PackageUrl:
    """The parts of a package URL in an explicit lock."""

    base: str
    channel: str
    subdir: str
    filename: str
    fragment: str = ""

    @property
    def channel_url(self) -> str:
        """The channel's URL as the lock has it (``https://host/prefix/channel``)."""
        return f"{self.base}/{self.channel}"

    def at(self, channel_url: str) -> str:
        """This package served from ``channel_url`` (the URL of its channel), hash kept."""
        url = f"{channel_url}/{self.subdir}/{self.filename}"
        return f"{url}#{self.fragment}" if self.fragment else url


@dataclass(frozen=True)
class MirrorConfig:
    """Where packages come from instead of the lock's hosts."""

    base: str | None = None
    channels: Mapping[str, str] = field(default_factory=dict)

    @property
    def active(self) -> bool:
        """False when nothing is mirrored: the lock is used as it is."""
        return bool(self.base or self.channels)

    def channel_url(self, channel: str, full_url: str = "") -> str | None:
        """The mirror's URL of one channel (named as conda names it, or by its full URL), or
        None to keep the lock's."""
        for key in (channel, full_url.rstrip("/")):
            if key and key in self.channels:
                return self.channels[key]
        return f"{self.base}/{channel}" if self.base else None


def check_mirror_url(url: str, setting: str) -> str:
    """``url`` without a trailing slash, if it is an absolute http(s) or file URL."""
    parts = urlsplit(url.strip())
    if parts.scheme not in _SCHEMES or not (parts.netloc or parts.scheme == "file"):
        raise MirrorError(
            f"{setting}: {url!r} is not an absolute URL; use https://host/path or file:///path"
        )
    return url.strip().rstrip("/")


def parse_channel_mirrors(value: str, setting: str = CONDA_CHANNEL_MIRRORS.name) -> dict[str, str]:
    """``"conda-forge=URL pytorch=URL"`` (spaces or commas between) -> {channel: URL}."""
    mirrors: dict[str, str] = {}
    for item in value.replace(",", " ").split():
        name, sep, url = item.partition("=")
        if not (sep and name and url):
            raise MirrorError(f"{setting}: {item!r} is not CHANNEL=URL")
        # A channel is named as conda names it (conda-forge, pkgs/main, conda-forge/label/X) or
        # by its full URL (https://host/prefix/channel); the name ends at the last `=`'s left.
        name, _, url = item.rpartition("=") if "://" in name else (name, sep, url)
        mirrors[name.rstrip("/")] = check_mirror_url(url, f"{setting} ({name})")
    return mirrors


def config_from_env(environ: Mapping[str, str]) -> MirrorConfig:
    """The mirror settings of the environment; unset or empty variables mean no mirror."""
    base = environ.get(CONDA_MIRROR.name, "").strip()
    return MirrorConfig(
        base=check_mirror_url(base, CONDA_MIRROR.name) if base else None,
        channels=parse_channel_mirrors(environ.get(CONDA_CHANNEL_MIRRORS.name, "")),
    )


def split_package_url(url: str) -> PackageUrl:
    """Split ``<base>/<channel>/<subdir>/<file>[#hash]``; the channel is one path segment,
    or ``<name>/label/<label>``."""
    address, _, fragment = url.partition("#")
    segments = address.split("/")
    # scheme:, "", host or "" (file://), then at least channel, subdir and file.
    if len(segments) < 6 or not segments[-1] or "://" not in address:
        raise MirrorError(f"not a conda package URL: {url!r}")
    *head, channel, subdir, filename = segments
    if len(head) >= 5 and head[-1] == _LABEL:
        channel = f"{head[-2]}/{_LABEL}/{channel}"
        head = head[:-2]
    elif len(head) >= 4 and head[-1] == _PKGS:
        channel = f"{_PKGS}/{channel}"
        head = head[:-1]
    if len(head) < 3 or not channel or not subdir:
        raise MirrorError(f"not a conda package URL: {url!r}")
    return PackageUrl("/".join(head), channel, subdir, filename, fragment)


def rewrite_url(url: str, config: MirrorConfig) -> str:
    """One package URL served from the mirror, or unchanged when its channel is not mirrored."""
    package = split_package_url(url)
    channel_url = config.channel_url(package.channel, package.channel_url)
    return package.at(channel_url) if channel_url else url


def _package_lines(text: str) -> list[str]:
    return [
        line.strip()
        for line in text.splitlines()
        if line.strip() and not line.strip().startswith(("#", "@"))
    ]


def unmatched_channels(text: str, config: MirrorConfig) -> list[str]:
    """The channel mirrors that no package of the lock comes from (a misspelt name, say)."""
    used: set[str] = set()
    for line in _package_lines(text):
        package = split_package_url(line)
        used |= {package.channel, package.channel_url}
    return sorted(name for name in config.channels if name not in used)


def rewrite_lock(text: str, config: MirrorConfig, path: str = "<lock>") -> tuple[str, int]:
    """The lock with every package URL mirrored, and how many lines changed.

    Comments, ``@EXPLICIT`` and blank lines are kept byte for byte.
    """
    lines = text.splitlines(keepends=True)
    changed = 0
    out: list[str] = []
    for number, raw in enumerate(lines, start=1):
        body = raw.rstrip("\r\n")
        line = body.strip()
        if not line or line.startswith("#") or line.startswith("@"):
            out.append(raw)
            continue
        try:
            new = rewrite_url(line, config)
        except MirrorError as exc:
            raise MirrorError(f"{path}: line {number}: {exc}") from None
        changed += new != line
        out.append(new + raw[len(body) :])
    return "".join(out), changed


def redact(url: str) -> str:
    """``url`` with any user:token@ hidden, for messages."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc="***@" + parts.netloc.rpartition("@")[2]))


def describe(config: MirrorConfig) -> str:
    """One line naming the mirrors in use, credentials hidden."""
    shown = [f"{name}={redact(url)}" for name, url in sorted(config.channels.items())]
    if config.base:
        shown.append(f"others under {redact(config.base)}")
    return ", ".join(shown)


def main(argv: list[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    """``python -m lockstep.core.mirrors rewrite LOCK --output FILE`` (settings from the
    environment, or ``--mirror`` / ``--channel NAME=URL``)."""
    parser = argparse.ArgumentParser(
        prog="python -m lockstep.core.mirrors",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("action", choices=["rewrite"])
    parser.add_argument("lock", type=Path, help="explicit lock to read (left unchanged)")
    parser.add_argument("--output", type=Path, required=True, help="where to write the copy")
    parser.add_argument(
        "--mirror", help=f"base URL of all channels (default: ${CONDA_MIRROR.name})"
    )
    parser.add_argument(
        "--channel",
        action="append",
        default=[],
        metavar="NAME=URL",
        help=f"one channel's URL, repeatable (default: ${CONDA_CHANNEL_MIRRORS.name})",
    )
    args = parser.parse_args(argv)
    env = dict(os.environ if environ is None else environ)
    if args.mirror is not None:
        env[CONDA_MIRROR.name] = args.mirror
    if args.channel:
        env[CONDA_CHANNEL_MIRRORS.name] = " ".join(args.channel)
    try:
        config = config_from_env(env)
        original = args.lock.read_text(encoding="utf-8")
        text, changed = rewrite_lock(original, config, str(args.lock))
        unmatched = unmatched_channels(original, config)
        # Renamed into place once complete: a half-written lock is never installed.
        atomic_write_text(args.output, text)
    except (MirrorError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if unmatched:
        print(
            f"lockstep: warning: no package of {args.lock.name} comes from channel(s) "
            f"{', '.join(unmatched)}; name channels as conda does (conda-forge, pkgs/main, "
            "conda-forge/label/X) or by URL",
            file=sys.stderr,
        )
    if config.active:
        print(f"lockstep: {changed} package URLs of {args.lock.name} from {describe(config)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
