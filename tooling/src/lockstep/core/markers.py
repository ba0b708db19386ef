"""PEP 508 environment markers and PEP 440 versions, evaluated for a target environment.

Standard library only: the install plan (``python -m lockstep.core.installer``) runs with a bare
host
python3 and inside fresh envs, where ``packaging`` may be absent. The rules follow
``packaging.markers`` (a comparison on a version-valued marker is a PEP 440 specifier when the
right side is one, a string comparison otherwise; pre-releases match), and
tests/unit/test_markers.py checks that, marker by marker, against packaging itself.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from lockstep.core.errors import LockstepError


class MarkerError(LockstepError):
    """A marker or a version that cannot be read."""


# conda's platform -> the values that PEP 508 markers see on it (CPython).
_PLATFORMS: dict[str, dict[str, str]] = {
    "linux-64": {"os_name": "posix", "sys_platform": "linux", "platform_system": "Linux",
                 "platform_machine": "x86_64"},
    "linux-aarch64": {"os_name": "posix", "sys_platform": "linux", "platform_system": "Linux",
                      "platform_machine": "aarch64"},
    "osx-64": {"os_name": "posix", "sys_platform": "darwin", "platform_system": "Darwin",
               "platform_machine": "x86_64"},
    "osx-arm64": {"os_name": "posix", "sys_platform": "darwin", "platform_system": "Darwin",
                  "platform_machine": "arm64"},
    "win-64": {"os_name": "nt", "sys_platform": "win32", "platform_system": "Windows",
               "platform_machine": "AMD64"},
}  # fmt: skip

_VERSION_KEYS = {"implementation_version", "platform_release", "python_full_version",
                 "python_version"}  # fmt: skip
_ALIASES = {"os.name": "os_name", "sys.platform": "sys_platform",
            "platform.version": "platform_version", "platform.machine": "platform_machine",
            "platform.python_implementation": "platform_python_implementation",
            "python_implementation": "platform_python_implementation"}  # fmt: skip
_NAMES = {*_VERSION_KEYS, *_ALIASES, "os_name", "sys_platform", "platform_machine",
          "platform_python_implementation", "platform_system", "platform_version",
          "implementation_name", "extra"}  # fmt: skip


def target_environment(platform: str, python_version: str) -> dict[str, str]:
    """The marker environment of CPython ``python_version`` (e.g. "3.11.10") on a conda platform.

    platform_release and platform_version (the kernel's) are unknown ahead of time: empty.
    """
    if platform not in _PLATFORMS:
        raise MarkerError(
            f"unknown platform {platform!r}; use one of {', '.join(sorted(_PLATFORMS))}"
        )
    parts = python_version.split(".")
    if len(parts) not in (2, 3) or not all(p.isdigit() for p in parts[:2]):
        raise MarkerError(f"python version {python_version!r} is not like 3.11.10 or 3.11")
    full = python_version if len(parts) == 3 else f"{python_version}.0"
    return {
        **_PLATFORMS[platform],
        "python_version": ".".join(parts[:2]),
        "python_full_version": full,
        "implementation_name": "cpython",
        "implementation_version": full,
        "platform_python_implementation": "CPython",
        "platform_release": "",
        "platform_version": "",
    }


# ------------------------------------------------------------------------------------ versions

_VERSION_RE = re.compile(
    r"v?(?:(?P<epoch>\d+)!)?(?P<release>\d+(?:\.\d+)*)"
    r"(?:[-_.]?(?P<pre_l>alpha|a|beta|b|preview|pre|c|rc)[-_.]?(?P<pre_n>\d+)?)?"
    r"(?:-(?P<post_n1>\d+)|[-_.]?(?P<post_l>post|rev|r)[-_.]?(?P<post_n2>\d+)?)?"
    r"(?:[-_.]?(?P<dev_l>dev)[-_.]?(?P<dev_n>\d+)?)?"
    r"(?:\+(?P<local>[a-z0-9]+(?:[-_.][a-z0-9]+)*))?",
    re.IGNORECASE,
)
_PRE_RANK = {"a": 0, "alpha": 0, "b": 1, "beta": 1, "c": 2, "rc": 2, "pre": 2, "preview": 2}


@dataclass(frozen=True)
class Version:
    """A PEP 440 version, ordered as PEP 440 orders them."""

    epoch: int
    release: tuple[int, ...]
    pre: tuple[int, int] | None
    post: int | None
    dev: int | None
    local: tuple[str, ...]

    @classmethod
    def parse(cls, text: str) -> Version:
        match = _VERSION_RE.fullmatch(text.strip())
        if not match:
            raise MarkerError(f"{text!r} is not a PEP 440 version")
        g = match.groupdict()
        post = g["post_n1"] or g["post_n2"] or ("0" if g["post_l"] else None)
        return cls(
            epoch=int(g["epoch"] or 0),
            release=tuple(int(p) for p in g["release"].split(".")),
            pre=(_PRE_RANK[g["pre_l"].lower()], int(g["pre_n"] or 0)) if g["pre_l"] else None,
            post=int(post) if post is not None else None,
            dev=int(g["dev_n"] or 0) if g["dev_l"] else None,
            local=tuple(re.split(r"[-_.]", g["local"].lower())) if g["local"] else (),
        )

    def key(self) -> tuple:
        release = list(self.release)
        while len(release) > 1 and release[-1] == 0:
            release.pop()
        if self.pre is None and self.post is None and self.dev is not None:
            pre: tuple = (-1,)  # 1.0.dev1 sorts before 1.0a1
        else:
            pre = (0, *self.pre) if self.pre else (1,)
        post = (0,) if self.post is None else (1, self.post)
        dev = (1,) if self.dev is None else (0, self.dev)
        local = tuple((1, int(p), "") if p.isdigit() else (0, 0, p) for p in self.local)
        return (self.epoch, tuple(release), pre, post, dev, local)

    def public(self) -> Version:
        return Version(self.epoch, self.release, self.pre, self.post, self.dev, ())

    def base(self) -> Version:
        return Version(self.epoch, self.release, None, None, None, ())

    @property
    def is_prerelease(self) -> bool:
        return self.pre is not None or self.dev is not None


def _padded(release: tuple[int, ...], length: int) -> tuple[int, ...]:
    return release + (0,) * (length - len(release))


def _spec_version(op: str, text: str) -> tuple[Version, bool]:
    """The version of a specifier ``op text`` and whether it ends in ``.*``; MarkerError if the
    specifier is not valid PEP 440 (the caller then compares strings, as packaging does)."""
    wildcard = text.endswith(".*")
    if op == "===":
        return Version(0, (0,), None, None, None, ()), False
    version = Version.parse(text[:-2] if wildcard else text)
    if wildcard and (op not in ("==", "!=") or version.local):
        raise MarkerError(f"{op}{text}: a wildcard only follows == or !=")
    if version.local and op not in ("==", "!="):
        raise MarkerError(f"{op}{text}: a local version only follows == or !=")
    if op == "~=" and len(version.release) < 2:
        raise MarkerError(f"{op}{text}: ~= needs two release numbers")
    return version, wildcard


def _contains(op: str, text: str, candidate: str) -> bool:
    """PEP 440 ``candidate`` in ``op text``, pre-releases included (validated by the caller)."""
    if op == "===":
        return candidate.strip().lower() == text.strip().lower()
    spec, wildcard = _spec_version(op, text)
    try:
        have = Version.parse(candidate)
    except MarkerError:
        return False
    if op in ("==", "!="):
        if wildcard:
            size = len(spec.release)
            equal = have.epoch == spec.epoch and _padded(have.release, size)[:size] == _padded(
                spec.release, size
            )
            if spec.pre or spec.post is not None or spec.dev is not None:
                equal = equal and have.public().key() == spec.key()
        else:
            equal = (have if spec.local else have.public()).key() == spec.key()
        return equal if op == "==" else not equal
    if op == "~=":
        prefix = ".".join(str(p) for p in spec.release[:-1]) + ".*"
        return _contains(">=", text, candidate) and _contains("==", prefix, candidate)
    public = have.public().key()
    if op == "<=":
        return public <= spec.key()
    if op == ">=":
        return public >= spec.key()
    if op == "<":
        if public >= spec.key():
            return False
        return (
            spec.is_prerelease or not have.is_prerelease or have.base().key() != spec.base().key()
        )
    if op == ">":
        if public <= spec.key():
            return False
        if spec.post is None and have.post is not None and have.base().key() == spec.base().key():
            return False
        return not (have.local and have.base().key() == spec.base().key())
    raise MarkerError(f"unknown version operator {op!r}")


def version_matches(version: str, constraint: str) -> bool:
    """``version`` within a constraint of poetry.lock or pyproject: PEP 440 clauses joined by
    commas, Poetry's ``^``, ``~``, ``*`` and ``||``. An unreadable constraint matches."""
    for alternative in constraint.split("||"):
        clauses = [c.strip() for c in re.split(r",|\s+(?=[<>=!~^])", alternative) if c.strip()]
        try:
            if all(_clause_matches(version, clause) for clause in clauses):
                return True
        except MarkerError:
            return True
    return False


def _clause_matches(version: str, clause: str) -> bool:
    if clause in ("*", ""):
        return True
    match = re.fullmatch(r"(===|==|!=|<=|>=|~=|<|>|\^|~|=)?\s*(\S+)", clause)
    if not match:
        raise MarkerError(f"unreadable constraint {clause!r}")
    op, text = match.group(1) or "==", match.group(2)
    if op in ("^", "~"):
        low = Version.parse(text)
        release = list(low.release)
        if op == "^":
            first = next((i for i, p in enumerate(release) if p), len(release) - 1)
            upper = [*release[:first], release[first] + 1]
        else:
            upper = [release[0] + 1] if len(release) == 1 else [release[0], release[1] + 1]
        return _contains(">=", text, version) and _contains("<", ".".join(map(str, upper)), version)
    if op == "=":
        op = "=="
    if text.endswith(".*") and op not in ("==", "!="):
        return True  # Poetry writes ">=1.2.*" at times; lenient, as only a tie-break needs it
    _spec_version(op, text)
    return _contains(op, text, version)


# ------------------------------------------------------------------------------------- markers

_TOKEN_RE = re.compile(
    r"\s*(?:(?P<paren>[()])|(?P<op>===|==|!=|<=|>=|~=|<|>|not\s+in\b|in\b)"
    r"|(?P<bool>and\b|or\b)|'(?P<sq>[^']*)'|\"(?P<dq>[^\"]*)\"|(?P<name>[A-Za-z_][\w.]*))"
)


def _tokens(marker: str) -> list[tuple[str, str]]:
    tokens, position = [], 0
    text = marker.rstrip()
    while position < len(text):
        match = _TOKEN_RE.match(text, position)
        if not match or match.end() == position:
            raise MarkerError(f"cannot read marker {marker!r} at {text[position:]!r}")
        kind = match.lastgroup or ""
        value = match.group(kind)
        if kind in ("sq", "dq"):
            kind = "str"
        elif kind == "op":
            value = " ".join(value.split())
        tokens.append((kind, value))
        position = match.end()
    return tokens


def _normalize_name(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


class _Evaluator:
    def __init__(self, marker: str, environment: Mapping[str, str], extras: frozenset[str]):
        self.marker, self.tokens, self.at = marker, _tokens(marker), 0
        self.environment, self.extras = environment, extras

    def peek(self) -> tuple[str, str]:
        return self.tokens[self.at] if self.at < len(self.tokens) else ("end", "")

    def take(self, kind: str) -> str:
        found, value = self.peek()
        if found != kind:
            raise MarkerError(f"cannot read marker {self.marker!r}: expected {kind}, got {value!r}")
        self.at += 1
        return value

    def run(self) -> bool:
        value = self.disjunction()
        self.take("end")
        return value

    def disjunction(self) -> bool:
        value = self.conjunction()
        while self.peek() == ("bool", "or"):
            self.at += 1
            value = self.conjunction() or value  # evaluate both: errors surface either way
        return value

    def conjunction(self) -> bool:
        value = self.atom()
        while self.peek() == ("bool", "and"):
            self.at += 1
            value = self.atom() and value
        return value

    def atom(self) -> bool:
        if self.peek() == ("paren", "("):
            self.at += 1
            value = self.disjunction()
            self.take("paren")
            return value
        left, op, right = self.operand(), self.take("op"), self.operand()
        return self.compare(left, op, right)

    def operand(self) -> tuple[str, str]:
        kind, value = self.peek()
        if kind == "name":
            name = _ALIASES.get(value, value)
            if name not in _NAMES:
                raise MarkerError(f"unknown marker variable {value!r} in {self.marker!r}")
            self.at += 1
            return ("var", name)
        return ("str", self.take("str"))

    def compare(self, left: tuple[str, str], op: str, right: tuple[str, str]) -> bool:
        if left[0] == right[0]:
            raise MarkerError(f"{self.marker!r} compares two {left[0]}s")
        key = left[1] if left[0] == "var" else right[1]
        literal = right[1] if left[0] == "var" else left[1]
        if key == "extra":
            wanted = _normalize_name(literal)
            if op == "==":
                return wanted in self.extras
            if op == "!=":
                return wanted not in self.extras
            if op in ("in", "not in"):
                values = self.extras or {""}
                hit = any((v in wanted) if left[0] == "var" else (wanted in v) for v in values)
                return hit if op == "in" else not hit
            raise MarkerError(f"{self.marker!r}: extra only with ==, != or in")
        value = self.environment.get(key)
        if value is None:
            raise MarkerError(f"the target environment has no {key!r} for {self.marker!r}")
        lhs, rhs = (value, literal) if left[0] == "var" else (literal, value)
        if key in _VERSION_KEYS and op not in ("in", "not in"):
            try:
                _spec_version(op, rhs)
            except MarkerError:
                pass
            else:
                return _contains(op, rhs, lhs)
        return _compare_strings(lhs, op, rhs)


# Strings that are not versions are not ordered (packaging 26, after PEP 508's revision):
# < and > never hold, <= and >= mean ==.
_STRING_OPERATORS = {
    "==": lambda lhs, rhs: lhs == rhs,
    "!=": lambda lhs, rhs: lhs != rhs,
    "<=": lambda lhs, rhs: lhs == rhs,
    ">=": lambda lhs, rhs: lhs == rhs,
    "<": lambda lhs, rhs: False,
    ">": lambda lhs, rhs: False,
    "in": lambda lhs, rhs: lhs in rhs,
    "not in": lambda lhs, rhs: lhs not in rhs,
}


def _compare_strings(lhs: str, op: str, rhs: str) -> bool:
    if op not in _STRING_OPERATORS:
        raise MarkerError(f"{op} is undefined on {lhs!r} and {rhs!r} (not versions)")
    return _STRING_OPERATORS[op](lhs, rhs)


def evaluate(marker: str, environment: Mapping[str, str], extras: Iterable[str] = ()) -> bool:
    """Whether ``marker`` holds in ``environment`` with ``extras`` asked for; MarkerError if the
    marker cannot be read."""
    if not marker.strip():
        return True
    normalized = frozenset(_normalize_name(e) for e in extras)
    return _Evaluator(marker, environment, normalized).run()
