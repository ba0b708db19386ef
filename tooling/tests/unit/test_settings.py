"""Settings: defaults < [tool.lockstep] < arguments, and refusals with one clear line."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.paths import PROJECT

from lockstep.core.errors import LockstepError
from lockstep.core.settings import Settings, check_env_name, load_settings, settings_from_table

ROOT = PROJECT


def test_repository_settings_are_the_defaults_plus_mapping() -> None:
    settings = load_settings(ROOT)
    assert settings.env_name == "ml-project"
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
        ({"installer": "pixi"}, "installer 'pixi' is not one of auto, rattler, frontend"),
    ],
    ids=[
        "typo",
        "platforms-not-list",
        "name-not-str",
        "mapping-values",
        "template",
        "frontend",
        "installer",
    ],
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


@pytest.mark.parametrize(
    ("table", "message"),
    [
        (
            {"lock-file-template": "../../x-{platform}.lock"},
            "pyproject.toml: lock-file-template '../../x-{platform}.lock' gives "
            "'../../x-linux-64.lock' for platform 'linux-64', which is not a file name in the "
            "project folder; use e.g. 'conda-{platform}.lock'",
        ),
        (
            {"lock-file-template": "/tmp/x-{platform}.lock"},
            "pyproject.toml: lock-file-template '/tmp/x-{platform}.lock' gives "
            "'/tmp/x-linux-64.lock' for platform 'linux-64', which is not a file name in the "
            "project folder; use e.g. 'conda-{platform}.lock'",
        ),
        (
            {"platforms": ["linux-64", "../linux-64"]},
            "pyproject.toml: lock-file-template 'conda-{platform}.lock' gives "
            "'conda-../linux-64.lock' for platform '../linux-64', which is not a file name in the "
            "project folder; use e.g. 'conda-{platform}.lock'",
        ),
        (
            {"lock-file-template": "conda-{platform}-{cuda}.lock"},
            "pyproject.toml: lock-file-template 'conda-{platform}-{cuda}.lock' has a placeholder "
            "other than {platform}; use e.g. 'conda-{platform}.lock'",
        ),
        (
            {"environment-file": "../other/environment.yml"},
            "pyproject.toml: environment-file '../other/environment.yml' points outside the "
            "project; use a path relative to the project folder without '..', e.g. "
            "'environment.yml'",
        ),
        (
            {"virtual-packages-file": "/etc/virtual-packages.yml"},
            "pyproject.toml: virtual-packages-file '/etc/virtual-packages.yml' points outside the "
            "project; use a path relative to the project folder without '..', e.g. "
            "'virtual-packages.yml'",
        ),
        (
            {"poetry-lock-file": "locks/../../poetry.lock"},
            "pyproject.toml: poetry-lock-file 'locks/../../poetry.lock' points outside the "
            "project; use a path relative to the project folder without '..', e.g. 'poetry.lock'",
        ),
    ],
    ids=[
        "template-up",
        "template-absolute",
        "platform-with-slash",
        "template-other-field",
        "environment-up",
        "virtual-packages-absolute",
        "poetry-lock-up-inside",
    ],
)
def test_a_file_setting_that_leaves_the_project_is_refused(table: dict, message: str) -> None:
    with pytest.raises(LockstepError) as info:
        settings_from_table(table)
    assert str(info.value) == message


def test_file_settings_inside_the_project_pass() -> None:
    settings = settings_from_table(
        {"poetry-lock-file": "locks/poetry.lock", "environment-file": "envs/ml.yml"}
    )
    assert (settings.poetry_lock_file, settings.environment_file) == (
        "locks/poetry.lock",
        "envs/ml.yml",
    )


def test_an_argument_that_leaves_the_project_is_refused(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.lockstep]\n")
    with pytest.raises(LockstepError, match=r"^arguments: lock-file-template '\.\./x-\{platform"):
        load_settings(tmp_path, lock_file_template="../x-{platform}.lock")
