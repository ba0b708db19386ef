"""Pins: the versions conda installs, written into pyproject.toml so Poetry resolves around them.

The pins live in one Poetry dependency group (``conda`` by default) that is optional, so Poetry
resolves every other group against them but its installer never installs them; the group is owned
by `invoke pin` and rewritten as a whole, with comments and layout elsewhere kept (tomlkit).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # tomlkit is imported where a file is edited: `check` reads only
    from tomlkit.toml_document import TOMLDocument

from lockstep.core.names import conda_to_pypi, normalize, pypi_names
from lockstep.spec import EnvSpec

# A conda version that PEP 440 also accepts; others cannot be pinned in Poetry.
_PEP440_RE = re.compile(
    r"^\d+(?:\.\d+)*(?:(?:a|b|rc)\d+)?(?:\.post\d+)?(?:\.dev\d+)?$", re.IGNORECASE
)
# Tools of the env itself. Naming them in environment.yml does not pin them (that would make
# Poetry resolve itself into the project's lock); when poetry.lock holds them anyway (a test
# group that runs Poetry, say) they are pinned like any other package, so both locks agree.
# conda and mamba ship dist-infos too, but PyPI's `mamba` is another project and PyPI's `conda`
# stopped in 2017: pinning them would make `poetry lock` fail.
TOOLING = frozenset({"pip", "poetry", "conda-lock", "setuptools", "wheel", "conda", "mamba"})

PIN_GROUP_COMMENT = "Written by `invoke pin` from the conda lock: do not edit by hand."


def desired_pins(
    conda_packages: Iterable[tuple[str, str]],
    spec: EnvSpec,
    poetry_names: Iterable[str] = (),
    overrides: Mapping[str, str] | None = None,
    extra: Iterable[str] = (),
    table: Mapping[str, tuple[str, ...]] | None = None,
) -> dict[str, str]:
    """PyPI name -> exact version for every conda package that Poetry must not replace.

    Only conda packages that are Python distributions (lockstep.core.names) are pinned: when
    poetry.lock also holds them (so both locks agree on one version), when environment.yml
    names them (tooling excepted), or when settings list them in ``pin-extra``. ``table`` is
    the name mapping to use (an env's conda-meta over the bundled one; default: bundled).
    """
    overrides = dict(overrides or {})
    direct = {d.name for d in spec.dependencies} | set(extra)
    in_poetry = {normalize(n) for n in poetry_names}
    pins: dict[str, str] = {}
    for conda_name, version in conda_packages:
        primary = conda_to_pypi(conda_name, overrides, table)
        if primary is None or not _PEP440_RE.match(version):
            continue
        locked = [n for n in pypi_names(conda_name, overrides, table) if n in in_poetry]
        named = conda_name in direct and conda_name not in TOOLING
        for pypi in locked or ([primary] if named else []):
            pins[pypi] = version
    return dict(sorted(pins.items()))


def current_pins(doc: TOMLDocument, group: str) -> dict[str, str]:
    """The pins now in pyproject.toml."""
    table = doc.get("tool", {}).get("poetry", {}).get("group", {}).get(group, {})
    deps = table.get("dependencies", {})
    return {normalize(k): str(v) for k, v in deps.items()}


_HEADER_RE = re.compile(r"^\[\[?\s*([A-Za-z0-9_.\"' -]+?)\s*\]\]?\s*(?:#.*)?$")


def _headers(lines: list[str]) -> list[tuple[int, str]]:
    return [(i, m.group(1)) for i, line in enumerate(lines) if (m := _HEADER_RE.match(line))]


def _back_over_comments(lines: list[str], at: int, floor: int) -> int:
    """Step back over the blank and comment lines that head the table at ``at``."""
    while at > floor and (not lines[at - 1].strip() or lines[at - 1].lstrip().startswith("#")):
        at -= 1
    return at


def _render_group(pins: Mapping[str, str], group: str) -> str:
    import tomlkit

    deps = tomlkit.dumps(dict(pins)) if pins else ""
    return (
        f"[tool.poetry.group.{group}]\n# {PIN_GROUP_COMMENT}\noptional = true\n\n"
        f"[tool.poetry.group.{group}.dependencies]\n{deps}"
    )


def _group_span(lines: list[str], group: str) -> tuple[int, int]:
    """Lines [start, end) that the pin group owns, or where it goes when absent (start == end).

    The group is edited as text: tomlkit would put new keys after the comment lines that head the
    next table, moving that comment away from its table. Everything outside the span is kept
    byte for byte.
    """
    headers = _headers(lines)
    prefix = f"tool.poetry.group.{group}"
    owned = [i for i, name in headers if name == prefix or name.startswith(prefix + ".")]
    if owned:
        others = [i for i, _ in headers if owned[0] < i < owned[-1] and i not in owned]
        if others:
            raise ValueError(f"the [{prefix}] tables must be next to each other; move them")
        following = [i for i, _ in headers if i > owned[-1]]
        end = following[0] if following else len(lines)
        return owned[0], _back_over_comments(lines, end, owned[-1] + 1)
    poetry = [i for i, name in headers if name == "tool.poetry" or name.startswith("tool.poetry.")]
    if not poetry:
        return len(lines), len(lines)
    following = [i for i, _ in headers if i > poetry[-1]]
    at = following[0] if following else len(lines)
    at = _back_over_comments(lines, at, poetry[-1] + 1)
    return at, at


def apply_pins(text: str, pins: Mapping[str, str], group: str) -> str:
    """pyproject.toml's text with the pin group holding exactly ``pins``; all else as it was."""
    import tomlkit

    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    start, end = _group_span(lines, group)
    before, after = lines[:start], lines[end:]
    while before and not before[-1].strip() and start == end:
        before.pop()  # one blank line is put back below, whatever was there
    lead = "\n" if before and (start == end or before[-1].strip()) else ""
    trail = "\n" if after and after[0].strip() else ""
    result = "".join(before) + lead + _render_group(pins, group) + trail + "".join(after)
    tomlkit.parse(result)  # never hand back a file Poetry cannot read
    return result
