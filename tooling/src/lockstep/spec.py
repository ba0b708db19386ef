"""environment.yml: loading with clear errors, conda match specs, the Python constraint."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lockstep.core.errors import LockstepError
from lockstep.core.fsutil import read_text

_SPEC_RE = re.compile(
    r"""^\s*
    (?:(?P<channel>[A-Za-z0-9_./:-]+)::)?
    (?P<name>[A-Za-z0-9_][A-Za-z0-9_.-]*)
    \s*(?P<rest>.*?)\s*$""",
    re.VERBOSE,
)
_OPERATORS = ("==", ">=", "<=", "!=", "~=", ">", "<")
# conda's bracket form, name[key=value, key='value'], after or instead of version and build.
_BRACKET_RE = re.compile(r"^(?P<head>[^\[]*)\[(?P<body>[^\]]*)\]\s*$")
_BRACKET_ITEM_RE = re.compile(
    r"""\s*([a-z_]+)\s*=\s*(?:'([^']*)'|"([^"]*)"|([^,'"\s]+))\s*(?:,|$)"""
)


@dataclass(frozen=True)
class MatchSpec:
    """The parts of a conda match spec that the tasks need."""

    name: str
    version: str = ""
    build: str = ""
    channel: str = ""


@dataclass(frozen=True)
class EnvSpec:
    """What environment.yml says."""

    path: str
    name: str | None
    channels: tuple[str, ...]
    dependencies: tuple[MatchSpec, ...]
    pip: tuple[str, ...] = ()
    variables: dict[str, str] = field(default_factory=dict)
    platforms: tuple[str, ...] = ()
    # The conda specs as written (a solve gets them verbatim).
    specs: tuple[str, ...] = ()

    def get(self, name: str) -> MatchSpec | None:
        """The spec of a package by conda name, if listed."""
        return next((d for d in self.dependencies if d.name == name), None)


def _bracket(text: str) -> tuple[str, dict[str, str]]:
    """``head[key=value, ...]`` -> (head, {key: value}); text without brackets unchanged."""
    match = _BRACKET_RE.match(text)
    if match is None:
        if "[" in text or "]" in text:
            raise ValueError(f"not a conda match spec (unbalanced brackets): {text!r}")
        return text, {}
    body, items, at = match.group("body"), {}, 0
    while at < len(body.rstrip()):
        item = _BRACKET_ITEM_RE.match(body, at)
        if item is None:
            raise ValueError(f"not a conda match spec (bad [key=value]): {text!r}")
        items[item.group(1)] = next(v for v in item.groups()[1:] if v is not None)
        at = item.end()
    return match.group("head"), items


def parse_matchspec(text: str) -> MatchSpec:
    """Split ``channel::name version build`` in any of conda's spellings, brackets included."""
    head, items = _bracket(text)
    match = _SPEC_RE.match(head)
    if not match:
        raise ValueError(f"not a conda match spec: {text!r}")
    rest = match.group("rest")
    version = build = ""
    if rest.startswith("=") and not rest.startswith("=="):
        # name=version=build
        version, _, build = rest[1:].partition("=")
    elif rest.startswith(_OPERATORS) or rest:
        version, _, build = rest.partition(" ")
    return MatchSpec(
        name=match.group("name").lower(),
        version=items.get("version", version).replace(" ", ""),
        build=items.get("build", build).strip(),
        channel=items.get("channel", match.group("channel") or ""),
    )


def _yaml_error_line(exc: Exception) -> str:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    return f"line {mark.line + 1}" if mark is not None else "unknown line"


def load_yaml(path: Path) -> Any:
    """Parse a YAML file; errors name the file and the line."""
    import yaml  # imported here so that `python -m lockstep.core.installer` stays stdlib-only

    try:
        text = read_text(Path(path))
    except FileNotFoundError:
        raise LockstepError(f"{path}: file not found") from None
    try:
        # libyaml's loader where PyYAML has it: several times faster, same safe subset.
        return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise LockstepError(
            f"{path}: invalid YAML at {_yaml_error_line(exc)}: {problem}; fix the syntax there"
        ) from None


def load_env_spec(path: Path) -> EnvSpec:
    """Load and check environment.yml."""
    data = load_yaml(path)
    if not isinstance(data, dict):
        raise LockstepError(f"{path}: expected a mapping with 'channels' and 'dependencies'")
    channels = data.get("channels") or []
    deps = data.get("dependencies")
    if not isinstance(deps, list) or not deps:
        raise LockstepError(f"{path}: 'dependencies' must be a non-empty list")
    if not isinstance(channels, list) or not all(isinstance(c, str) for c in channels):
        raise LockstepError(f"{path}: 'channels' must be a list of channel names")
    specs: list[MatchSpec] = []
    pip: list[str] = []
    for entry in deps:
        if isinstance(entry, dict) and set(entry) == {"pip"}:
            if not isinstance(entry["pip"], list):
                raise LockstepError(f"{path}: the 'pip:' entry must be a list of requirements")
            pip.extend(str(p) for p in entry["pip"])
            continue
        if not isinstance(entry, str):
            raise LockstepError(f"{path}: dependency {entry!r} is neither a spec nor 'pip:'")
        try:
            specs.append(parse_matchspec(entry))
        except ValueError as exc:
            raise LockstepError(f"{path}: {exc}") from None
    variables = data.get("variables") or {}
    if not isinstance(variables, dict):
        raise LockstepError(f"{path}: 'variables' must be a mapping")
    platforms = data.get("platforms") or []
    return EnvSpec(
        path=str(path),
        name=data.get("name"),
        channels=tuple(channels),
        dependencies=tuple(specs),
        pip=tuple(pip),
        specs=tuple(str(d) for d in deps if isinstance(d, str)),
        variables={str(k): str(v) for k, v in variables.items()},
        platforms=tuple(str(p) for p in platforms),
    )


def _bump_minor(version: str) -> str:
    major, minor = (version.split(".") + ["0"])[:2]
    return f"{major}.{int(minor) + 1}"


def python_constraint(spec: EnvSpec) -> str:
    """The requires-python range that matches the conda ``python`` spec.

    ``python=3.11``, ``python=3.11.9`` and ``python 3.11.*`` all mean one minor series, written
    ``>=3.11,<3.12`` (Poetry turns ``~3.11`` into an invalid requires-python).
    """
    python = spec.get("python")
    if python is None or not python.version or python.version == "*":
        raise LockstepError(
            f"{spec.path}: pin Python's minor version in dependencies, e.g. 'python=3.11'"
        )
    version = python.version
    exact = re.fullmatch(r"=?=?(\d+\.\d+)(?:\.\d+|\.\*)?\*?", version)
    if exact:
        minor = exact.group(1)
        return f">={minor},<{_bump_minor(minor)}"
    if re.fullmatch(r"[<>=!~,.\d*]+", version) and version[0] in "<>!~":
        return version
    raise LockstepError(f"{spec.path}: cannot read the Python version from {python.version!r}")
