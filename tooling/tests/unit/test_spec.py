"""environment.yml parsing, match specs and the Python constraint."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.paths import PROJECT

from lockstep.core.errors import LockstepError
from lockstep.spec import MatchSpec, load_env_spec, parse_matchspec, python_constraint

ROOT = PROJECT


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("python=3.11", MatchSpec("python", "3.11")),
        ("pytorch=*=cuda*", MatchSpec("pytorch", "*", "cuda*")),
        ("cuda-version=12.9", MatchSpec("cuda-version", "12.9")),
        ("numpy>=1.26,<2", MatchSpec("numpy", ">=1.26,<2")),
        ("pytorch 2.5.* cuda*", MatchSpec("pytorch", "2.5.*", "cuda*")),
        ("conda-forge::pytorch-gpu", MatchSpec("pytorch-gpu", channel="conda-forge")),
        ("pip", MatchSpec("pip")),
        ("python ==3.11.9", MatchSpec("python", "==3.11.9")),
        ("PyYAML", MatchSpec("pyyaml")),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_parse_matchspec(text: str, expected: MatchSpec) -> None:
    assert parse_matchspec(text) == expected


def test_repository_environment_yml() -> None:
    spec = load_env_spec(ROOT / "environment.yml")
    assert spec.channels == ("conda-forge", "nodefaults")
    assert spec.platforms == ("linux-64",)
    assert spec.variables == {"PYTHONNOUSERSITE": "1"}
    assert spec.get("pytorch") == MatchSpec("pytorch", "*", "cuda*")
    assert spec.get("cuda-version") == MatchSpec("cuda-version", "12.9")
    assert spec.pip == ()
    assert python_constraint(spec) == ">=3.11,<3.12"


def _spec(tmp_path: Path, text: str):
    path = tmp_path / "environment.yml"
    path.write_text(text)
    return load_env_spec(path)


@pytest.mark.parametrize(
    ("python", "expected"),
    [
        ("python=3.11", ">=3.11,<3.12"),
        ("python=3.11.9", ">=3.11,<3.12"),
        ("python 3.12.*", ">=3.12,<3.13"),
        ("python>=3.10,<3.13", ">=3.10,<3.13"),
        ("python=3.9", ">=3.9,<3.10"),
    ],
)
def test_python_constraint(tmp_path: Path, python: str, expected: str) -> None:
    spec = _spec(tmp_path, f"channels: [conda-forge]\ndependencies:\n  - {python}\n")
    assert python_constraint(spec) == expected


def test_unpinned_python_is_refused(tmp_path: Path) -> None:
    spec = _spec(tmp_path, "channels: [conda-forge]\ndependencies:\n  - python\n")
    with pytest.raises(LockstepError, match="pin Python's minor version"):
        python_constraint(spec)


def test_pip_section_is_captured(tmp_path: Path) -> None:
    spec = _spec(
        tmp_path,
        "channels: [conda-forge]\ndependencies:\n  - python=3.11\n"
        "  - pip:\n    - requests==2.32.3\n",
    )
    assert spec.pip == ("requests==2.32.3",)


def test_malformed_yaml_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "environment.yml"
    path.write_text("channels:\n  - conda-forge\ndependencies:\n  - python=3.11\n   - bad: [\n")
    with pytest.raises(LockstepError) as info:
        load_env_spec(path)
    message = str(info.value)
    assert message.startswith(f"{path}: invalid YAML at line ")
    assert "\n" not in message


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- just a list\n", "expected a mapping"),
        ("channels: [conda-forge]\n", "'dependencies' must be a non-empty list"),
        ("channels: conda-forge\ndependencies: [python=3.11]\n", "'channels' must be a list"),
        ("dependencies: [python=3.11]\nvariables: [a]\n", "'variables' must be a mapping"),
        ("dependencies:\n  - {conda: x}\n", "neither a spec nor 'pip:'"),
    ],
    ids=["not-mapping", "no-deps", "channels-str", "variables-list", "odd-entry"],
)
def test_bad_structure(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "environment.yml"
    path.write_text(text)
    with pytest.raises(LockstepError, match=message):
        load_env_spec(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(LockstepError, match="file not found"):
        load_env_spec(tmp_path / "environment.yml")
