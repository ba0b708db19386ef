"""Settings: defaults < [tool.lockstep] < arguments, and refusals with one clear line."""

from __future__ import annotations

from pathlib import Path

import pytest

from lockstep.errors import LockstepError
from lockstep.settings import Settings, check_env_name, load_settings, settings_from_table

ROOT = Path(__file__).resolve().parents[2]


def test_repository_settings_are_the_defaults_plus_mapping() -> None:
    settings = load_settings(ROOT)
    assert settings.env_name == "lockstep"
    assert settings.platforms == ("linux-64",)
    assert settings.lock_file("linux-64") == "conda-linux-64.lock"
    assert settings.pypi_names == {"pytorch": "torch"}


def test_argument_beats_setting_beats_default(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.lockstep]\nenv-name = "from-file"\n')
    assert load_settings(tmp_path).env_name == "from-file"
    assert load_settings(tmp_path, env_name="from-arg").env_name == "from-arg"
    assert load_settings(tmp_path, env_name=None).env_name == "from-file"
    assert Settings().env_name == "lockstep"


def test_lists_become_tuples() -> None:
    settings = settings_from_table({"platforms": ["linux-64", "linux-aarch64"]})
    assert settings.platforms == ("linux-64", "linux-aarch64")


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"env-nam": "x"}, "unknown key [tool.lockstep] 'env-nam'"),
        ({"platforms": "linux-64"}, "platforms must be a list of strings"),
        ({"env-name": 3}, "env-name must be a string"),
        ({"pypi-names": {"pytorch": 1}}, "must map names to strings"),
        ({"lock-file-template": "conda.lock"}, "must contain {platform}"),
        ({"frontend": "pip"}, "frontend 'pip' is not one of"),
    ],
    ids=["typo", "platforms-not-list", "name-not-str", "mapping-values", "template", "frontend"],
)
def test_bad_table_is_refused(table: dict, message: str) -> None:
    with pytest.raises(LockstepError, match=message.replace("[", r"\[").replace("{", r"\{")):
        settings_from_table(table)


@pytest.mark.parametrize(
    "name",
    ["my env", "x'; rm -rf ~; '", 'a"b', "a/b", "$(id)", "", "base", "-x", "a" * 65],
    ids=[
        "space",
        "single-quote-injection",
        "double-quote",
        "slash",
        "subshell",
        "empty",
        "base",
        "leading-dash",
        "too-long",
    ],
)
def test_unsafe_env_names_are_refused(name: str) -> None:
    with pytest.raises(LockstepError, match="invalid env name"):
        check_env_name(name)


@pytest.mark.parametrize("name", ["lockstep", "ml_2026", "proj.v2", "a+b", "x-y"])
def test_safe_env_names_pass(name: str) -> None:
    assert check_env_name(name) == name


def test_malformed_pyproject_names_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.lockstep]\nenv-name = "unterminated\n')
    with pytest.raises(LockstepError) as info:
        load_settings(tmp_path)
    message = str(info.value)
    assert "pyproject.toml: invalid TOML" in message
    assert "line 2" in message
    assert "\n" not in message
