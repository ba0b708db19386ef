"""The fast paths (names told without a regex, tables read once) give what the plain code
gives, on the real bundled data."""

from __future__ import annotations

import gzip
from importlib import resources

import pytest

from lockstep.core import names


def _bundled_text() -> str:
    data = resources.files("lockstep.core").joinpath("data", names.DATA_FILE).read_bytes()
    return gzip.decompress(data).decode("utf-8")


def _reference_table(text: str) -> dict[str, tuple[str, ...]]:
    """parse_table as it was: every lone name through normalize()."""
    table = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        conda, _, pypi = line.partition("\t")
        table[conda] = tuple(pypi.split(",")) if pypi else (names.normalize(conda),)
    return table


def test_parse_table_of_the_bundled_mapping_is_unchanged() -> None:
    text = _bundled_text()
    table = names.parse_table(text)
    assert len(table) > 10_000
    assert table == _reference_table(text)


@pytest.mark.parametrize(
    "name",
    ["numpy", "Numpy", "ruamel.yaml", "typing_extensions", "a--b", "-a", "a-", "123", "7zip", "x"],
)
def test_is_normal_never_claims_a_name_normalize_would_change(name: str) -> None:
    if names._is_normal(name):
        assert names.normalize(name) == name


def test_is_normal_holds_for_every_bundled_name_it_accepts() -> None:
    for line in _bundled_text().splitlines():
        conda = line.partition("\t")[0]
        if conda and not conda.startswith("#") and names._is_normal(conda):
            assert names.normalize(conda) == conda, conda
