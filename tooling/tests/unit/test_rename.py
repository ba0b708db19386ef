"""`invoke rename` on a copy of the repository: exact contents, dry-run, idempotence, refusals."""

from __future__ import annotations

import re
import shutil
import tomllib
from pathlib import Path

import pytest
import tasks
from invoke import Context, Exit, MockContext
from tests.paths import PROJECT
from tests.testdata import context_at

from lockstep.core.errors import LockstepError
from lockstep.core.settings import load_settings
from lockstep.rename import (
    RENAMED_FILES,
    STARTER_DESCRIPTION,
    FileChange,
    check_project_name,
    plan_rename,
    rename_environment,
    rename_makefile,
    rename_readme,
)

ROOT = PROJECT
# Files the tasks read besides the renamed ones, so load_settings works on the copy.
OTHER_FILES = ("virtual-packages.yml",)


def _sub_line(text: str, pattern: str, replacement: str) -> str:
    """``text`` with exactly one whole line matching ``pattern`` replaced."""
    new, count = re.subn(rf"^{pattern}$", replacement, text, count=1, flags=re.M)
    assert count == 1, f"no line matches {pattern!r}"
    return new


def _expected(original: dict[str, str], name: str, env_name: str, description: str) -> dict:
    pyproject = original["pyproject.toml"]
    pyproject = _sub_line(pyproject, r'name = "ml-project"', f'name = "{name}"')
    pyproject = _sub_line(
        pyproject,
        re.escape(f'description = "{STARTER_DESCRIPTION}"'),
        f'description = "{description}"',
    )
    pyproject = _sub_line(pyproject, r'env-name = "ml-project"', f'env-name = "{env_name}"')
    readme = original["README.md"]
    return {
        "pyproject.toml": pyproject,
        "environment.yml": _sub_line(
            original["environment.yml"], "name: ml-project", f"name: {env_name}"
        ),
        "Makefile": _sub_line(original["Makefile"], r"IMAGE \?= lockstep", f"IMAGE ?= {env_name}"),
        "README.md": f"# {name}\n" + readme.partition("\n")[2],
    }


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the repository's files that rename touches (the tasks' root: context_at)."""
    for name in (*RENAMED_FILES, *OTHER_FILES):
        shutil.copy(ROOT / name, tmp_path / name)
    return tmp_path


def _read(repo: Path) -> dict[str, str]:
    return {name: (repo / name).read_text(encoding="utf-8") for name in RENAMED_FILES}


def test_the_starter_is_called_ml_project() -> None:
    # The expectations below rewrite these exact lines; if the starter changes, so must they.
    original = {name: (ROOT / name).read_text(encoding="utf-8") for name in RENAMED_FILES}
    assert original["README.md"].startswith("# ml-project\n")
    assert tomllib.loads(original["pyproject.toml"])["project"]["description"] == (
        STARTER_DESCRIPTION
    )


def test_rename_task_rewrites_exactly_the_project_lines(repo: Path, capsys) -> None:
    original = _read(repo)
    tasks.rename(MockContext(config=context_at(repo).config), name="my-project")
    description = "my-project: a machine learning project."
    assert _read(repo) == _expected(original, "my-project", "my-project", description)
    settings = load_settings(repo)
    assert settings.env_name == "my-project"
    pyproject = tomllib.loads((repo / "pyproject.toml").read_text(encoding="utf-8"))
    # Not yet renamed with the project (the package move comes with the rename of src/).
    assert pyproject["tool"]["poetry"]["packages"] == [{"include": "ml_project", "from": "src"}]
    out = capsys.readouterr().out
    assert '+name = "my-project"' in out and "wrote pyproject.toml" in out


def test_rename_task_is_idempotent(repo: Path, capsys) -> None:
    tasks.rename(
        MockContext(config=context_at(repo).config),
        name="my-project",
        env_name="mp-env",
        description="Mine.",
    )
    first = _read(repo)
    capsys.readouterr()
    tasks.rename(
        MockContext(config=context_at(repo).config),
        name="my-project",
        env_name="mp-env",
        description="Mine.",
    )
    assert _read(repo) == first
    assert (
        capsys.readouterr().out == "the project is already named 'my-project'; nothing to change\n"
    )


def test_rename_task_with_env_name_and_description(repo: Path) -> None:
    original = _read(repo)
    tasks.rename(
        MockContext(config=context_at(repo).config),
        name="vision_lab",
        env_name="vlab",
        description="Vision lab.",
    )
    assert _read(repo) == _expected(original, "vision_lab", "vlab", "Vision lab.")


def test_rename_dry_run_prints_the_diff_and_writes_nothing(repo: Path, capsys) -> None:
    original = _read(repo)
    tasks.rename(MockContext(config=context_at(repo).config), name="my-project", dry_run=True)
    assert _read(repo) == original
    out = capsys.readouterr().out
    for path in RENAMED_FILES:
        assert f"--- {path}\n+++ {path}\n" in out
    assert "-IMAGE ?= lockstep\n+IMAGE ?= my-project\n" in out
    assert "wrote" not in out


def test_invoke_dry_writes_nothing(repo: Path) -> None:
    original = _read(repo)
    context = Context()
    context.config.run.dry = True
    tasks.rename(context, name="my-project")
    assert _read(repo) == original


@pytest.mark.parametrize(
    "name",
    ["", "-dash-first", "trailing.", "has space", "quote'd", "a/b", "base", "x" * 65],
    ids=["empty", "dash-first", "dot-last", "space", "quote", "slash", "base", "too-long"],
)
def test_rename_refuses_invalid_names_and_writes_nothing(repo: Path, name: str) -> None:
    original = _read(repo)
    with pytest.raises(Exit) as raised:
        tasks.rename(MockContext(config=context_at(repo).config), name=name)
    assert str(raised.value.message).startswith("error: invalid ")
    assert _read(repo) == original


def test_rename_refuses_an_invalid_env_name(repo: Path) -> None:
    with pytest.raises(Exit, match="invalid env name 'root'"):
        tasks.rename(MockContext(config=context_at(repo).config), name="ok", env_name="root")


def test_rename_refuses_a_multiline_description() -> None:
    with pytest.raises(LockstepError, match="one non-empty line"):
        plan_rename({"pyproject.toml": "[project]\n"}, "ok", description="a\nb")


def test_plan_keeps_a_description_the_user_wrote() -> None:
    text = '[project]\nname = "old"\ndescription = "Mine."\n'
    [change] = plan_rename({"pyproject.toml": text}, "new")
    assert change == FileChange(
        "pyproject.toml",
        text,
        '[project]\nname = "new"\ndescription = "Mine."\n\n[tool.lockstep]\nenv-name = "new"\n',
    )


def test_plan_needs_pyproject_with_a_project_table() -> None:
    with pytest.raises(LockstepError, match="pyproject.toml not found"):
        plan_rename({"README.md": "# x\n"}, "ok")
    with pytest.raises(LockstepError, match=r"no \[project\] table"):
        plan_rename({"pyproject.toml": "[tool.poetry]\n"}, "ok")


def test_check_project_name_accepts_pep508_names() -> None:
    assert check_project_name("My.Project_2") == "My.Project_2"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("# head\nname: old  # why\nchannels: []\n", "# head\nname: new  # why\nchannels: []\n"),
        ("# head\n\nchannels: []\n", "# head\n\nname: new\nchannels: []\n"),
        ("channels: []\n  name: nested\n", "name: new\nchannels: []\n  name: nested\n"),
    ],
    ids=["replace-keep-comment", "insert-after-header", "only-top-level"],
)
def test_rename_environment(text: str, expected: str) -> None:
    assert rename_environment(text, "new") == expected


def test_rename_makefile_only_touches_the_image_default() -> None:
    text = "ENV_NAME ?=\nIMAGE ?= old\n"
    assert rename_makefile(text, "new") == "ENV_NAME ?=\nIMAGE ?= new\n"
    assert rename_makefile("all:\n", "new") == "all:\n"


@pytest.mark.parametrize(
    ("text", "expected"),
    [("# Old\n\nbody\n", "# new\n\nbody\n"), ("body\n", "# new\n\nbody\n"), ("", "# new\n\n")],
    ids=["replace", "add", "empty"],
)
def test_rename_readme(text: str, expected: str) -> None:
    assert rename_readme(text, "new") == expected
