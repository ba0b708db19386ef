"""What changed between two locks: package, old -> new, and which side (conda or PyPI)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Change:
    """One package that was added, removed or changed."""

    side: str
    name: str
    old: str | None
    new: str | None

    @property
    def kind(self) -> str:
        """added, removed or changed."""
        if self.old is None:
            return "added"
        if self.new is None:
            return "removed"
        return "changed"


def diff_versions(old: Mapping[str, str], new: Mapping[str, str], side: str) -> list[Change]:
    """Every package whose version differs between two name -> version maps."""
    return sorted(
        Change(side, name, old.get(name), new.get(name))
        for name in set(old) | set(new)
        if old.get(name) != new.get(name)
    )


def format_report(changes: list[Change]) -> str:
    """Human-readable table of changes."""
    if not changes:
        return "No package changed."
    width = max(len(c.name) for c in changes)
    lines = [f"{len(changes)} package(s) changed:"]
    for c in changes:
        lines.append(f"  {c.side:<5} {c.name:<{width}}  {c.old or '-'} -> {c.new or '-'}")
    return "\n".join(lines)
