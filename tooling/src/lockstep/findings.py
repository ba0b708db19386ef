"""Findings of `invoke check` and `invoke doctor`: one problem each, with the fix.

The JSON form is a stable schema for CI and pre-commit wrappers::

    {"schema": 1, "tool": "check", "clean": false,
     "findings": [{"code": ..., "severity": "error", "file": ..., "what": ..., "fix": ...}]}
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal

SCHEMA_VERSION = 1
Severity = Literal["error", "warning"]
_ORDER = {"error": 0, "warning": 1}


@dataclass(frozen=True)
class Finding:
    """One problem: how bad, where, what is wrong, and how to fix it."""

    code: str  # stable identifier, e.g. "conda-lock-stale"; tests and CI filters key on it
    severity: Severity
    file: str
    what: str
    fix: str


def error(code: str, file: str, what: str, fix: str) -> Finding:
    """A finding that breaks reproducibility."""
    return Finding(code, "error", file, what, fix)


def warning(code: str, file: str, what: str, fix: str) -> Finding:
    """A finding that risks it."""
    return Finding(code, "warning", file, what, fix)


def ordered(findings: Iterable[Finding]) -> list[Finding]:
    """Errors first, then by file and code, so output is stable."""
    return sorted(findings, key=lambda f: (_ORDER[f.severity], f.file, f.code, f.what))


def to_json(tool: str, findings: Iterable[Finding], extra: Mapping[str, Any] | None = None) -> str:
    """The machine-readable report."""
    items = ordered(findings)
    document: dict[str, Any] = {
        "schema": SCHEMA_VERSION,
        "tool": tool,
        "clean": not items,
        "findings": [asdict(f) for f in items],
    }
    document.update(extra or {})
    return json.dumps(document, indent=2, sort_keys=False)


def _wrap(text: str, width: int) -> list[str]:
    lines: list[str] = []
    for word in text.split():
        if lines and len(lines[-1]) + 1 + len(word) <= width:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return lines or [""]


def to_table(tool: str, findings: Iterable[Finding], width: int = 100) -> str:
    """The human-readable report: one block per finding, fix indented below."""
    items = ordered(findings)
    if not items:
        return f"{tool}: clean, nothing found"
    errors = sum(f.severity == "error" for f in items)
    out = [f"{tool}: {errors} error(s), {len(items) - errors} warning(s)", ""]
    sev_w = len("severity")
    file_w = min(max(len(f.file) for f in items), 28)
    indent = sev_w + file_w + 4
    out.append(f"{'severity':<{sev_w}}  {'file':<{file_w}}  what / how to fix")
    for f in items:
        what = _wrap(f.what, max(width - indent, 40))
        out.append(f"{f.severity:<{sev_w}}  {f.file:<{file_w}}  {what[0]}")
        out += [" " * indent + line for line in what[1:]]
        out += [
            " " * indent + ("fix: " if i == 0 else "     ") + line
            for i, line in enumerate(_wrap(f.fix, max(width - indent - 5, 35)))
        ]
    return "\n".join(out)
