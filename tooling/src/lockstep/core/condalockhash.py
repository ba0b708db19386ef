"""conda-lock's input hash (``# input_hash:`` of an explicit lock), recomputed without conda-lock.

conda-lock hashes the lock specification it would solve: the channels, the specs of one platform
(after selectors, as conda's MatchSpec normalises them) and the virtual packages of that platform.
Importing conda-lock costs about half a second, too slow for a pre-commit check, so this module
recomputes the same hash with yaml, json and hashlib for the spellings environment files use.
A spelling outside that set raises :class:`Unsupported`; lockstep.inputhash then asks conda-lock's
own library, so the answer is always conda-lock's. tests/unit/test_inputhash.py proves the fast
path equal to conda-lock on many generated inputs.

In lockstep.core because the engine warns with it that a lock is older than its spec files; it
runs on the standard library, and where PyYAML does not import (a bare Python running `make
reproduce`) every hash is :class:`Unsupported` and the engine skips that warning.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlparse, urlunparse

# Selectors conda-lock understands, per platform (conda-build's names).
_SELECTORS: Mapping[str, frozenset[str]] = {
    "linux-64": frozenset({"linux64", "unix", "linux"}),
    "linux-aarch64": frozenset({"aarch64", "unix", "linux"}),
    "linux-ppc64le": frozenset({"ppc64le", "unix", "linux"}),
    "osx-64": frozenset({"osx64", "osx", "unix"}),
    "osx-arm64": frozenset({"arm64", "osx", "unix"}),
    "win-64": frozenset({"win", "win64"}),
}
# A line with a trailing `# ... [selector]` comment (nothing but non-parens after the bracket).
_SELECTOR_LINE = re.compile(r"(.+?)\s*(#.*)\[([^\[\]]+)\][^()]*$")
# Subdirs conda-lock's fake virtual-package channel always writes, listed or not.
_ALWAYS_WRITTEN_SUBDIRS = frozenset(
    {"noarch", "linux-64", "linux-aarch64", "linux-ppc64le", "osx-64", "osx-arm64", "win-64"}
)
_VIRTUAL_TIMESTAMP = 1577854800000

# The spec grammar of the fast path; anything else goes to conda-lock itself.
_CHANNEL = r"[a-z0-9][a-z0-9_-]*"
_NAME = r"[A-Za-z0-9_][A-Za-z0-9_.-]*"
_VERSION = r"(?:\*|\d[0-9a-z_]*(?:\.[0-9a-z_]+)*(?:\.?\*)?)"
_BUILD = r"[A-Za-z0-9_.*]+"
# conda keeps an operator clause as written, so no `*` (conda would not add `.`) and no leading
# `==` (conda strips it from the whole list).
_PLAIN_VERSION = r"\d[0-9a-z_]*(?:\.[0-9a-z_]+)*"
_OP = r"(?:>=|<=|>|<|!=|~=)"
_OP_CLAUSE = rf"(?:{_OP}|==){_PLAIN_VERSION}"
_SPEC_FORMS = [
    ("bare", re.compile(r"")),
    ("eq", re.compile(rf"\s*=(?P<v>{_VERSION})")),
    ("eq_build", re.compile(rf"\s*=(?P<v>{_VERSION})(?:=| +)(?P<b>{_BUILD})")),
    ("eqeq", re.compile(rf"\s*==(?P<v>{_VERSION})")),
    ("ops", re.compile(rf"\s*(?P<v>{_OP}{_PLAIN_VERSION}(?:,{_OP_CLAUSE})*)")),
    ("space", re.compile(rf" +(?P<v>{_VERSION})")),
    ("space_build", re.compile(rf" +(?P<v>{_VERSION}) +(?P<b>{_BUILD})")),
]
_SPEC_HEAD = re.compile(rf"^(?:(?P<channel>{_CHANNEL})::)?(?P<name>{_NAME})(?P<rest>.*)$")
# Channel names that conda renames (pkgs/main -> defaults, ...): left to conda-lock.
_RENAMED_CHANNELS = frozenset({"defaults", "local", "pkgs", "main", "r", "msys2"})
_TOKEN_PATH = re.compile(r"/t/[^/]+/")


class Unsupported(Exception):
    """The input uses a spelling the fast path does not cover; conda-lock must compute it."""


# --------------------------------------------------------------------------- the fast path


def load_yaml(text: str) -> Any:
    """YAML as conda-lock reads it; Unsupported where PyYAML is missing or the text is not YAML."""
    try:
        import yaml
    except ImportError:
        raise Unsupported("PyYAML is not installed") from None

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        return yaml.load(text, Loader=loader)  # a safe loader
    except yaml.YAMLError as exc:
        raise Unsupported(f"YAML conda-lock would reject: {exc}") from None


def filter_selectors(text: str, platform: str) -> list[str]:
    """The lines of an environment file that conda-lock keeps for ``platform``."""
    if platform not in _SELECTORS:
        raise Unsupported(f"no selector table for platform {platform!r}")
    kept = []
    for line in text.splitlines():
        if line.lstrip().startswith("#"):
            continue  # conda-lock drops whole-line comments before parsing
        match = _SELECTOR_LINE.match(line)
        if match and match.group(3) not in _SELECTORS[platform]:
            continue
        kept.append(line)
    return kept


def _star_version(version: str) -> str:
    """conda's VersionSpec spelling: a trailing bare ``*`` becomes ``.*``."""
    if version == "*" or "*" in version[:-1] or not version.endswith("*"):
        return version
    return version if version.endswith(".*") else version[:-1] + ".*"


def serialize_spec(spec: str, category: str = "main") -> dict[str, Any]:
    """A conda spec as conda-lock serialises it into the hashed lock specification."""
    head = _SPEC_HEAD.match(spec)
    if head is None or (head.group("channel") or "") in _RENAMED_CHANNELS:
        raise Unsupported(f"spec {spec!r}")
    rest = head.group("rest")
    matches = ((form, p.fullmatch(rest)) for form, p in _SPEC_FORMS)
    form, match = next(((f, m) for f, m in matches if m), ("", None))
    if match is None:
        raise Unsupported(f"spec {spec!r}")
    groups = match.groupdict()
    version, build = groups.get("v") or "", groups.get("b")
    if form == "eq":
        # `=1.2` means the 1.2 series; with a build, `=1.2=b` means exactly 1.2.
        version = version if version.endswith("*") else version + "*"
    if form != "ops":
        version = _star_version(version)
    return {
        "name": head.group("name").lower(),
        "manager": "conda",
        "category": category,
        "extras": [],
        "version": version,
        "build": build,
        "conda_channel": head.group("channel"),
        "hash": None,
    }


def _channel_json(channel: str) -> str:
    if "://" in channel:
        parsed = urlparse(channel)
        if parsed.username or parsed.password or _TOKEN_PATH.search(parsed.path):
            raise Unsupported("channel with credentials")  # conda-lock swaps in env vars
        channel = urlunparse(parsed)
    return json.dumps(
        {"url": channel, "used_env_vars": []}, ensure_ascii=False, separators=(",", ":")
    )


def _channels(env: Mapping[str, Any]) -> list[str]:
    channels = env.get("channels", [])
    if not isinstance(channels, list) or not all(isinstance(c, str) for c in channels):
        raise Unsupported("channels is not a list of names")
    channels = list(channels)
    if "nodefaults" in channels:
        channels.remove("nodefaults")  # only the first, as conda-lock does
    if "nodefaults" in channels:
        raise Unsupported("nodefaults listed twice")  # conda-lock refuses it
    return channels


def _specs(filtered_text: str, category: str) -> list[dict[str, Any]]:
    data = load_yaml(filtered_text)
    deps = data.get("dependencies") if isinstance(data, dict) else None
    if not isinstance(deps, list):
        raise Unsupported("dependencies is not a list")
    unique: dict[str, dict[str, Any]] = {}
    for dep in deps:
        if not isinstance(dep, str):
            raise Unsupported("a pip: section or a non-string dependency")
        spec = serialize_spec(dep, category)
        unique[spec["name"]] = spec  # the last spelling of a name wins, as in conda-lock
    return [unique[name] for name in sorted(unique)]


def _virtual_package(
    name: str, spec: str, subdir: str, legacy_build: bool = True
) -> tuple[str, dict[str, Any]]:
    version, _, build_string = spec.partition(" ")
    # conda-lock >= 3.0.3 re-adds v2's "_0" build suffix so that old hashes stay valid; 3.0.0
    # to 3.0.2 wrote it without, and conda-lock 4 accepts both.
    build = (f"{build_string}_0" if legacy_build else build_string) if build_string else "0"
    entry = {
        "name": name,
        "version": version,
        "build_string": build_string,
        "build_number": 0,
        "noarch": "",
        "depends": [],
        "timestamp": _VIRTUAL_TIMESTAMP,
        "package_type": "virtual_system",
        "build": build,
        "subdir": subdir,
    }
    return f"{name}-{version}-{build}.tar.bz2", entry


def virtual_packages_content(vp: Any, platform: str, legacy_build: bool = True) -> dict[str, Any]:
    """The ``virtual_package_hash`` part: the fake repodata of noarch and ``platform``."""
    subdirs = vp.get("subdirs") if isinstance(vp, dict) else None
    if not isinstance(subdirs, dict):
        raise Unsupported("virtual packages file without a subdirs mapping")
    content: dict[str, Any] = {}
    for subdir in ("noarch", platform):
        listed = subdirs.get(subdir)
        if listed is None and subdir not in _ALWAYS_WRITTEN_SUBDIRS:
            content[subdir] = {}
            continue
        packages = (listed or {}).get("packages") if isinstance(listed, dict) else None
        if listed is not None and not isinstance(packages, dict):
            raise Unsupported(f"subdir {subdir} without packages")
        repodata = {}
        for name, spec in (packages or {}).items():
            if not (isinstance(name, str) and name.startswith("__") and isinstance(spec, str)):
                raise Unsupported(f"virtual package {name!r}: {spec!r}")
            if spec.count(" ") > 1 or "" in spec.split(" "):
                raise Unsupported(f"virtual package spec {spec!r}")
            filename, entry = _virtual_package(name, spec, subdir, legacy_build)
            repodata[filename] = entry
        content[subdir] = {"info": {"subdir": subdir}, "packages": repodata}
    return content


def fast_input_hash(env_text: str, vp_text: str, platform: str) -> str:
    """conda-lock's input hash of ``platform``, or :class:`Unsupported`."""
    return _fast_content_hashes(env_text, vp_text, platform)[0]


def fast_accepted_hashes(env_text: str, vp_text: str, platform: str) -> set[str]:
    """Every hash conda-lock 4 accepts as fresh (backwards_compatible_content_hashes)."""
    if platform == "osx-64":
        raise Unsupported("osx-64 has an __osx 10.15 variant; conda-lock computes it")
    return set(_fast_content_hashes(env_text, vp_text, platform))


def _fast_content_hashes(env_text: str, vp_text: str, platform: str) -> list[str]:
    """The current hash first, then the variants conda-lock 4 still accepts: the virtual
    packages with and without v2's ``_0`` build suffix, the specs with and without the
    ``markers: null`` key that conda-lock 3.0.0 added."""
    env = load_yaml(env_text)
    if not isinstance(env, dict):
        raise Unsupported("environment file is not a mapping")
    if env.get("pip-repositories") or env.get("allow-pypi-requests") is False:
        raise Unsupported("pip settings")
    category = env.get("category") or "main"
    if not isinstance(category, str):
        raise Unsupported("category")
    channels = [_channel_json(c) for c in _channels(env)]
    specs = _specs("\n".join(filter_selectors(env_text, platform)), category)
    vp = load_yaml(vp_text)
    hashes = []
    for legacy_build in (True, False):
        virtual = virtual_packages_content(vp, platform, legacy_build)
        for with_markers in (False, True):
            listed = [{**s, "markers": None} if with_markers else s for s in specs]
            content = {"channels": channels, "specs": listed, "virtual_package_hash": virtual}
            text = json.dumps(content, sort_keys=True).encode("utf-8")
            hashes.append(hashlib.sha256(text).hexdigest())
    return hashes
