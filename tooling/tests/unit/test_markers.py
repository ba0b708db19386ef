"""The stdlib marker evaluator against packaging's, on every marker of the real locks and more."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import Version as PackagingVersion

from lockstep.core.markers import (
    MarkerError,
    Version,
    evaluate,
    target_environment,
    version_matches,
)

CORPUS = Path(__file__).resolve().parents[1] / "data" / "poetry"

TARGETS = [
    ("linux-64", "3.8.18"),
    ("linux-64", "3.9.0"),
    ("linux-64", "3.11.10"),
    ("linux-64", "3.12.7"),
    ("linux-64", "3.13.1"),
    ("linux-aarch64", "3.10.4"),
    ("osx-64", "3.11.10"),
    ("osx-arm64", "3.12.7"),
    ("win-64", "3.11.10"),
]
EXTRAS = ["", "dev", "torch", "test"]

TRICKY = [
    'python_version >= "3.8" and python_version < "3.11" or sys_platform == "win32"',
    '(python_version < "3.9" or platform_machine == "arm64") and os_name != "nt"',
    "python_full_version >= '3.11.0rc1'",
    "python_full_version > '3.11'",
    "python_full_version < '3.12.0a1'",
    'python_version == "3.11.*"',
    'python_version != "3.1*"',
    'python_version ~= "3.10"',
    'python_full_version ~= "3.11.2"',
    'python_version === "3.11"',
    '"3.10" <= python_version',
    '"linux" in sys_platform',
    '"win" not in sys_platform',
    'platform_machine in "x86_64 aarch64"',
    'platform_release >= "5.4"',
    'platform_release == ""',
    'platform_system < "M"',
    'implementation_name == "cpython" and implementation_version >= "3.10"',
    'extra == "Torch"',
    'extra != "dev"',
    'extra == "dev" or extra == "test"',
    'python_version >= "3.9" and (extra == "torch" or extra == "test")',
    'os.name == "posix"',
    "python_version > '3.11.0'",
    "python_full_version <= '3.11.10+local'",
    "python_full_version == '3.11.10+local'",
    "python_version in '3.10 3.11'",
]


def _corpus_markers() -> set[str]:
    found: set[str] = set()
    for path in sorted(CORPUS.glob("*/poetry.lock")):
        for package in tomllib.loads(path.read_text(encoding="utf-8")).get("package", []):
            markers = package.get("markers")
            if isinstance(markers, str):
                found.add(markers)
            elif isinstance(markers, dict):
                found.update(markers.values())
            for value in package.get("dependencies", {}).values():
                for table in value if isinstance(value, list) else [value]:
                    if isinstance(table, dict) and table.get("markers"):
                        found.add(table["markers"])
    for path in sorted(CORPUS.glob("*/export.txt")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if " ; " in line:
                found.add(line.split(" ; ", 1)[1].removesuffix("\\").strip())
    return found


CORPUS_MARKERS = sorted(_corpus_markers())


def test_the_corpus_has_many_markers() -> None:
    assert len(CORPUS_MARKERS) > 100


@pytest.mark.parametrize("marker", CORPUS_MARKERS + TRICKY)
def test_same_answer_as_packaging(marker: str) -> None:
    for platform, python in TARGETS:
        environment = target_environment(platform, python)
        for extra in EXTRAS:
            want = Marker(marker).evaluate({**environment, "extra": extra})
            got = evaluate(marker, environment, [extra] if extra else [])
            assert got == want, (marker, platform, python, extra)


@pytest.mark.parametrize(
    "marker",
    ['python_version >= "3.8" and', "python_version >= 3.8", 'os_name == "nt")', "foo == 'x'"],
)
def test_unreadable_markers_are_errors(marker: str) -> None:
    with pytest.raises(MarkerError):
        evaluate(marker, target_environment("linux-64", "3.11.10"))


def test_target_environment_refuses_unknown_platforms_and_versions() -> None:
    with pytest.raises(MarkerError, match="unknown platform 'linux-32'; use one of"):
        target_environment("linux-32", "3.11.10")
    with pytest.raises(MarkerError, match="not like 3.11.10"):
        target_environment("linux-64", "3")
    assert target_environment("win-64", "3.12")["python_full_version"] == "3.12.0"


VERSIONS = ["1.0", "1.0.0", "1.0.post1", "1.0a1", "1.0rc2", "1.0.dev3", "1.0a1.dev1", "1.0+cu121",
            "1.0.1", "2!0.5", "0.9", "1.1", "1.0-1", "1.0.0.post0+local.7", "v1.0"]  # fmt: skip


def test_version_order_is_pep440() -> None:
    ordered = sorted(VERSIONS, key=lambda v: Version.parse(v).key())
    assert ordered == sorted(VERSIONS, key=PackagingVersion)


SPECS = [">=1.0", "<1.0", ">1.0", "<=1.0", "==1.0", "==1.0.*", "!=1.0.*", "~=1.0", "~=1.0.0",
         "!=1.0", ">1.0.post0", "<1.0rc1", "==1.0+cu121", ">=0.9,<1.1", "<2!0"]  # fmt: skip


@pytest.mark.parametrize("spec", SPECS)
def test_version_matches_like_packaging_specifiers(spec: str) -> None:
    for version in VERSIONS:
        want = SpecifierSet(spec).contains(version, prereleases=True)
        assert version_matches(version, spec) == want, (version, spec)


def test_poetry_constraints() -> None:
    assert version_matches("1.4.2", "^1.2")
    assert not version_matches("2.0.0", "^1.2")
    assert version_matches("0.2.9", "^0.2.3") and not version_matches("0.3.0", "^0.2.3")
    assert version_matches("1.2.9", "~1.2") and not version_matches("1.3", "~1.2")
    assert version_matches("3.0", ">=2.0,<2.5 || >=3.0")
    assert version_matches("9", "*")
    with pytest.raises(InvalidSpecifier):
        SpecifierSet("^1.2")  # Poetry's syntax: packaging has no answer to compare with
