"""Names of packages: PEP 503 normalisation and the conda -> PyPI mapping.

The mapping is prefix-dev's parselmouth (the one pixi uses): for each conda package, the Python
distributions (``*.dist-info``) its builds ship. It is kept in ``data/pypi-names.tsv.gz`` for
offline use and rebuilt by ``invoke refresh-names``. A conda package that the mapping does not
list, or lists with no distribution, is not a Python distribution: nothing maps to itself by
default (conda's ``tzdata`` is a data set, PyPI's ``tzdata`` is ``python-tzdata``).

Order of truth: ``[tool.lockstep.pypi-names]`` overrides, then NAMESAKES (conda packages named
like a PyPI project they are not), then an env's conda-meta (what the installed packages really
ship: lockstep.core.condameta), then the bundled mapping.
"""

from __future__ import annotations

import gzip
import re
from collections.abc import Iterable, Mapping
from functools import cache
from importlib import resources

DATA_FILE = "pypi-names.tsv.gz"
_NAME_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?$")
_REQUIREMENT_NAME_RE = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")
# Words that conda names add around a distribution's own name (py-opencv, msgpack-python,
# matplotlib-base, dask-core): they say nothing about which distribution a package is.
_PACKAGING_WORDS = frozenset({"py", "python", "python3", "base", "core"})
# A dist-info folder at the top of site-packages: <name>-<version>.dist-info (name escaped).


_SEPARATORS_RE = re.compile(r"[-_.]+")

# conda packages whose dist-info is named like a PyPI project they are not: they ship no PyPI
# distribution, or only the one named here. Wins over the mapping and over an env's conda-meta
# (which reads the same dist-info names). From the mapping data (data/pypi-names.tsv.gz):
# - ruamel_yaml: conda's own vendored fork (module ``ruamel_yaml``, for conda < 4.12); its builds'
#   dist-infos are ``ruamel_yaml`` (old) and ``ruamel_yaml_conda``. PyPI's ``ruamel.yaml`` (module
#   ``ruamel.yaml``) is conda-forge's ``ruamel.yaml``: the two sit side by side, no conflict.
# - mamba: 1.x shipped a ``mamba`` dist-info (the conda frontend's Python part); PyPI's ``mamba``
#   is an unrelated test runner, and mamba 2 ships no Python distribution at all.
# - conda: PyPI's ``conda`` stopped at 4.3 in 2017; conda-forge's ``conda`` is not installable
#   from PyPI, so no PyPI version can stand for it.
NAMESAKES: Mapping[str, tuple[str, ...]] = {
    "ruamel_yaml": ("ruamel-yaml-conda",),
    "mamba": (),
    "conda": (),
}


def normalize(name: str) -> str:
    """PEP 503 normalised form: lower case, runs of ``-_.`` folded to ``-``."""
    return _SEPARATORS_RE.sub("-", name).lower()


def _is_normal(name: str) -> bool:
    """True only where normalize(name) == name, told without a regex: the bundled table has
    20,000 such names and every check and reproduce parses it (a regex was half its parse
    time)."""
    return "_" not in name and "." not in name and "--" not in name and name.islower()


def is_valid_distribution_name(name: str) -> bool:
    """True for a name that PyPI would accept."""
    return bool(_NAME_RE.match(name))


def requirement_name(requirement: str) -> str:
    """The distribution name at the start of a PEP 508 requirement string."""
    match = _REQUIREMENT_NAME_RE.match(requirement)
    if not match:
        raise ValueError(f"not a requirement: {requirement!r}")
    return match.group(1)


# --------------------------------------------------------------------------- the bundled table


def parse_table(text: str) -> dict[str, tuple[str, ...]]:
    """``conda<TAB>pypi,pypi`` lines (a lone name maps to itself) -> {conda: PyPI names}."""
    table: dict[str, tuple[str, ...]] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        conda, _, pypi = line.partition("\t")
        if pypi:
            table[conda] = tuple(pypi.split(","))
        else:
            table[conda] = (conda if _is_normal(conda) else normalize(conda),)
    return table


def render_table(table: Mapping[str, Iterable[str]], source: str) -> str:
    """The text of the data file: sorted, one conda name a line, identity written once."""
    lines = [f"# conda name -> PyPI distributions, from {source}"]
    for conda in sorted(table):
        names = list(table[conda])
        if names == [normalize(conda)]:
            lines.append(conda)
        elif names:
            lines.append(f"{conda}\t{','.join(names)}")
    return "\n".join(lines) + "\n"


def table_from_parselmouth(*mappings: Mapping[str, object]) -> dict[str, tuple[str, ...]]:
    """Merge parselmouth ``compressed_mapping.json`` documents (conda name -> list or null).

    The first document that names a package wins (pass conda-forge's first); packages with no
    distribution are left out, since absence already means "not Python".
    """
    table: dict[str, tuple[str, ...]] = {}
    for mapping in mappings:
        for conda, pypi in mapping.items():
            if conda in table or not isinstance(pypi, list):
                continue
            names = tuple(dict.fromkeys(normalize(str(n)) for n in pypi if n))
            if names:
                table[conda] = names
    return table


@cache
def bundled_table() -> dict[str, tuple[str, ...]]:
    """The mapping shipped with the package; read once, on first use (check runs in pre-commit)."""
    data = resources.files(__package__).joinpath("data", DATA_FILE).read_bytes()
    return parse_table(gzip.decompress(data).decode("utf-8"))


# --------------------------------------------------------------------------- lookups


def _words(name: str) -> frozenset[str]:
    return frozenset(normalize(name).split("-")) - _PACKAGING_WORDS


def own_distributions(conda_name: str, names: Iterable[str]) -> tuple[str, ...]:
    """The names among ``names`` that are the package itself, not what it vendors.

    parselmouth lists every dist-info a package ships, vendored ones too (bleach lists six and
    webencodings, docutils lists setuptools). A distribution is the package's own when its
    words and the conda name's words (packaging words dropped) contain one another.
    """
    names = tuple(names)
    if len(names) <= 1:
        return names
    conda = _words(conda_name)
    own = tuple(n for n in names if (w := _words(n)) and (w <= conda or conda <= w))
    return own or names


def pypi_names(
    conda_name: str,
    overrides: Mapping[str, str] | None = None,
    table: Mapping[str, tuple[str, ...]] | None = None,
) -> tuple[str, ...]:
    """Every PyPI distribution that a conda package is (empty when it is not Python)."""
    if overrides and conda_name in overrides:
        return (normalize(overrides[conda_name]),) if overrides[conda_name] else ()
    if conda_name in NAMESAKES:
        return NAMESAKES[conda_name]
    found = (bundled_table() if table is None else table).get(conda_name, ())
    return own_distributions(conda_name, found)


def conda_to_pypi(
    conda_name: str,
    overrides: Mapping[str, str] | None = None,
    table: Mapping[str, tuple[str, ...]] | None = None,
) -> str | None:
    """The PyPI distribution a conda package installs, or None when it is not one.

    Of several (msgpack-python ships ``msgpack``; older builds shipped ``msgpack-python``), the
    one named like the package without its packaging words is preferred, then the conda name.
    """
    names = pypi_names(conda_name, overrides, table)
    if not names:
        return None
    bare = "-".join(w for w in normalize(conda_name).split("-") if w not in _PACKAGING_WORDS)
    for preferred in (bare, normalize(conda_name)):
        if preferred in names:
            return preferred
    return names[0]


def mapping_for(
    conda_meta: Mapping[str, tuple[str, ...]] | None = None,
) -> Mapping[str, tuple[str, ...]]:
    """The table to look names up in: an env's conda-meta over the bundled mapping."""
    if not conda_meta:
        return bundled_table()
    return {**bundled_table(), **conda_meta}
