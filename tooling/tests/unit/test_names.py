"""PEP 503 names and the conda -> PyPI mapping."""

from __future__ import annotations

import pytest

from lockstep.core.names import conda_to_pypi, normalize, requirement_name


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("PyYAML", "pyyaml"),
        ("typing_extensions", "typing-extensions"),
        ("zope.interface", "zope-interface"),
        ("A__B--c", "a-b-c"),
    ],
)
def test_normalize(raw: str, expected: str) -> None:
    assert normalize(raw) == expected


@pytest.mark.parametrize(
    ("conda", "overrides", "expected"),
    [
        ("pytorch", None, "torch"),
        ("typing_extensions", None, "typing-extensions"),
        ("python", None, None),
        ("pytorch-gpu", None, None),
        ("cuda-version", None, None),
        ("numpy", None, "numpy"),
        ("pytorch", {"pytorch": "torch-custom"}, "torch-custom"),
        ("ffmpeg", {"ffmpeg": ""}, None),
    ],
    ids=[
        "pytorch",
        "underscore",
        "python",
        "metapackage",
        "cuda-version",
        "same",
        "override",
        "override-off",
    ],
)
def test_conda_to_pypi(conda: str, overrides: dict | None, expected: str | None) -> None:
    assert conda_to_pypi(conda, overrides) == expected


@pytest.mark.parametrize(
    ("requirement", "name"),
    [
        ("requests>=2", "requests"),
        ("torch[cuda] ==2.5 ; python_version>'3'", "torch"),
        ("a_b", "a_b"),
    ],
)
def test_requirement_name(requirement: str, name: str) -> None:
    assert requirement_name(requirement) == name
