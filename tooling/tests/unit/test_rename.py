"""`invoke rename` on a copy of the repository: exact contents, the package moved with its
imports, the user's tests passing on the renamed package, dry-run, idempotence, refusals."""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
import tasks
from invoke import Context, Exit, MockContext
from tests.paths import PROJECT, cpu_torch_python
from tests.testdata import context_at

from lockstep.core.errors import LockstepError
from lockstep.core.settings import load_settings
from lockstep.rename import (
    CODE_FOLDERS,
    RENAMED_FILES,
    STARTER_DESCRIPTION,
    FileChange,
    check_project_name,
    import_name,
    plan_project_rename,
    plan_rename,
    rename_environment,
    rename_readme,
    rename_references,
)

ROOT = PROJECT
# Files the tasks read besides the renamed ones, so load_settings works on the copy; the
# Makefile is the tooling's, and must come out of a rename unchanged.
OTHER_FILES = ("virtual-packages.yml", "Makefile", "poetry.lock")


def _sub_line(text: str, pattern: str, replacement: str) -> str:
    """``text`` with exactly one whole line matching ``pattern`` replaced."""
    new, count = re.subn(rf"^{pattern}$", replacement, text, count=1, flags=re.M)
    assert count == 1, f"no line matches {pattern!r}"
    return new


def _expected(
    original: dict[str, str], name: str, env_name: str, description: str, package: str
) -> dict[str, str]:
    """Every file of the copy after the rename, by path (the package's at their new paths)."""
    pyproject = original["pyproject.toml"]
    pyproject = _sub_line(pyproject, r'name = "ml-project"', f'name = "{name}"')
    pyproject = _sub_line(
        pyproject,
        re.escape(f'description = "{STARTER_DESCRIPTION}"'),
        f'description = "{description}"',
    )
    pyproject = _sub_line(pyproject, r'env-name = "ml-project"', f'env-name = "{env_name}"')
    pyproject = _sub_line(
        pyproject,
        re.escape('packages = [{ include = "ml_project", from = "src" }]'),
        f'packages = [{{ include = "{package}", from = "src" }}]',
    )
    expected = dict(original)
    # Plain replacements are the oracle: no longer name in the starter's README, code or tests
    # contains either name (test_the_starter_is_called_ml_project).
    for path, text in original.items():
        if path.startswith(tuple(f"{folder}/" for folder in CODE_FOLDERS)):
            del expected[path]
            new_path = path.replace("src/ml_project/", f"src/{package}/")
            expected[new_path] = text.replace("ml_project", package).replace("ml-project", name)
    readme = original["README.md"].replace("ml-project", name).replace("ml_project", package)
    expected.update(
        {
            "pyproject.toml": pyproject,
            "environment.yml": _sub_line(
                original["environment.yml"], "name: ml-project", f"name: {env_name}"
            ),
            "README.md": f"# {name}\n" + readme.partition("\n")[2],
        }
    )
    return expected


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A copy of the repository's user files (the tasks' root: context_at)."""
    for name in (*RENAMED_FILES, *OTHER_FILES):
        shutil.copy(ROOT / name, tmp_path / name)
    ignore = shutil.ignore_patterns("__pycache__", ".pytest_cache")
    for folder in CODE_FOLDERS:
        shutil.copytree(ROOT / folder, tmp_path / folder, ignore=ignore)
    return tmp_path


def _read(repo: Path) -> dict[str, str]:
    return {
        p.relative_to(repo).as_posix(): p.read_text(encoding="utf-8")
        for p in sorted(repo.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    }


def _rename(repo: Path, **kwargs: str) -> None:
    tasks.rename(MockContext(config=context_at(repo).config), **kwargs)


def test_the_starter_is_called_ml_project() -> None:
    # The expectations below rewrite these exact lines; if the starter changes, so must they.
    original = {name: (ROOT / name).read_text(encoding="utf-8") for name in RENAMED_FILES}
    assert original["README.md"].startswith("# ml-project\n")
    pyproject = tomllib.loads(original["pyproject.toml"])
    assert pyproject["project"]["description"] == STARTER_DESCRIPTION
    assert pyproject["tool"]["poetry"]["packages"] == [{"include": "ml_project", "from": "src"}]
    assert (ROOT / "src" / "ml_project" / "__init__.py").is_file()
    code = [p.read_text() for folder in CODE_FOLDERS for p in (ROOT / folder).rglob("*.*")]
    longer = re.compile(r"[\w.-]ml[-_]project|ml[-_]project[\w-]")
    assert [t for t in [*original.values(), *code] if longer.search(t)] == []


def test_rename_task_moves_the_package_and_rewrites_exactly_the_project_lines(
    repo: Path, capsys
) -> None:
    original = _read(repo)
    _rename(repo, name="my-project")
    description = "my-project: a machine learning project."
    assert _read(repo) == _expected(original, "my-project", "my-project", description, "my_project")
    assert not (repo / "src" / "ml_project").exists()
    assert load_settings(repo).env_name == "my-project"
    pyproject = tomllib.loads((repo / "pyproject.toml").read_text(encoding="utf-8"))
    assert pyproject["tool"]["poetry"]["packages"] == [{"include": "my_project", "from": "src"}]
    out = capsys.readouterr().out
    assert "move src/ml_project/ -> src/my_project/\n" in out
    assert '+name = "my-project"' in out and "wrote pyproject.toml" in out
    assert "wrote tests/test_train.py" in out and "wrote src/my_project/train.py" in out
    assert "Makefile" not in out


def test_the_moved_package_keeps_its_files(repo: Path) -> None:
    """One rename of the folder: its files keep their inodes (the same files, not copies)."""
    before = (repo / "src" / "ml_project" / "model.py").stat().st_ino
    _rename(repo, name="my-project")
    # model.py names nothing of the package, so only the move touched it.
    assert (repo / "src" / "my_project" / "model.py").stat().st_ino == before


def test_after_rename_the_users_tests_import_the_renamed_package(repo: Path) -> None:
    python = cpu_torch_python()
    if python is None:
        pytest.skip("no CPU torch in this Python (.ci/run installs torch 2.13.0+cpu into .venv)")
    _rename(repo, name="vision-lab")
    done = subprocess.run(
        [python, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=repo,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "PYTHONNOUSERSITE": "1", "PYTHONDONTWRITEBYTECODE": "1"},
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    # Every example test ran on the renamed package (the CUDA one skips here with its reason).
    assert re.search(r"^5 passed, 1 skipped", done.stdout.splitlines()[-1]), done.stdout
    assert "from vision_lab.train import" in (repo / "tests" / "test_train.py").read_text()


def test_rename_task_is_idempotent(repo: Path, capsys) -> None:
    _rename(repo, name="my-project", env_name="mp-env", description="Mine.")
    first = _read(repo)
    capsys.readouterr()
    _rename(repo, name="my-project", env_name="mp-env", description="Mine.")
    assert _read(repo) == first
    assert (
        capsys.readouterr().out == "the project is already named 'my-project'; nothing to change\n"
    )


def test_a_second_rename_moves_the_package_again(repo: Path) -> None:
    _rename(repo, name="first-name")
    _rename(repo, name="second-name")
    assert sorted(p.name for p in (repo / "src").iterdir()) == ["second_name"]
    assert "from second_name.train import" in (repo / "tests" / "test_train.py").read_text()


def test_rename_task_with_env_name_and_description(repo: Path) -> None:
    original = _read(repo)
    _rename(repo, name="vision_lab", env_name="vlab", description="Vision lab.")
    assert _read(repo) == _expected(original, "vision_lab", "vlab", "Vision lab.", "vision_lab")


def test_rename_dry_run_prints_the_diff_and_writes_nothing(repo: Path, capsys) -> None:
    original = _read(repo)
    _rename(repo, name="my-project", dry_run=True)
    assert _read(repo) == original
    out = capsys.readouterr().out
    assert "move src/ml_project/ -> src/my_project/\n" in out
    for path in (*RENAMED_FILES, "src/my_project/train.py", "tests/test_train.py"):
        assert f"--- {path}\n+++ {path}\n" in out
    assert "-from ml_project.model import TinyNet\n+from my_project.model import TinyNet\n" in out
    assert "wrote" not in out and "moved" not in out


def test_invoke_dry_writes_nothing(repo: Path) -> None:
    original = _read(repo)
    context = Context(config=context_at(repo).config)
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
        _rename(repo, name=name)
    assert str(raised.value.message).startswith("error: invalid ")
    assert _read(repo) == original


@pytest.mark.parametrize(
    ("name", "why"),
    [("2d-vision", "which Python cannot import"), ("json", "would shadow the module 'json'")],
    ids=["digit-first", "stdlib"],
)
def test_rename_refuses_a_name_whose_package_cannot_be_and_writes_nothing(
    repo: Path, name: str, why: str
) -> None:
    original = _read(repo)
    with pytest.raises(Exit, match=why):
        _rename(repo, name=name)
    assert _read(repo) == original


def test_rename_refuses_an_invalid_env_name(repo: Path) -> None:
    with pytest.raises(Exit, match="invalid env name 'root'"):
        _rename(repo, name="ok", env_name="root")


def test_rename_refuses_when_the_new_package_folder_exists(repo: Path) -> None:
    (repo / "src" / "my_project").mkdir()
    before = _read(repo)
    with pytest.raises(Exit, match=r"src/my_project/ exists already"):
        _rename(repo, name="my-project")
    assert _read(repo) == before and (repo / "src" / "ml_project").is_dir()


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


def test_the_package_stays_where_its_folder_is_gone() -> None:
    """A project that removed src/ml_project/ keeps its packages entry: nothing to move."""
    pyproject = (ROOT / "pyproject.toml").read_text()
    plan = plan_project_rename({"pyproject.toml": pyproject}, {}, [], "my-project")
    assert plan.moves == []
    assert 'include = "ml_project"' in plan.changes[0].new


def test_check_project_name_accepts_pep508_names() -> None:
    assert check_project_name("My.Project_2") == "My.Project_2"


@pytest.mark.parametrize(
    ("name", "package"),
    [("my-project", "my_project"), ("My.Vision--Lab", "my_vision_lab"), ("x2", "x2")],
    ids=["dash", "dots-and-case", "digit"],
)
def test_import_name_is_the_pep503_name_as_an_identifier(name: str, package: str) -> None:
    assert import_name(name) == package


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("2d-vision", "cannot import"),
        ("class", "cannot import"),
        ("json", "shadow the module 'json'"),
        ("torch", "shadow the module 'torch'"),
    ],
    ids=["digit-first", "keyword", "stdlib", "torch"],
)
def test_import_name_refuses_what_python_cannot_import_or_would_shadow(name: str, why: str) -> None:
    with pytest.raises(LockstepError, match=why):
        import_name(name)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("from ml_project.model import X\n", "from new_pkg.model import X\n"),
        ("import ml_project\n", "import new_pkg\n"),
        (
            "python -m ml_project.train; `src/ml_project/`",
            "python -m new_pkg.train; `src/new_pkg/`",
        ),
        ("ml_project_extra other.ml_project", "ml_project_extra other.ml_project"),
    ],
    ids=["from-import", "import", "paths", "longer-names-kept"],
)
def test_rename_references_replaces_whole_names_only(text: str, expected: str) -> None:
    assert rename_references(text, "ml_project", "new_pkg") == expected


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


@pytest.mark.parametrize(
    ("text", "expected"),
    [("# Old\n\nbody\n", "# new\n\nbody\n"), ("body\n", "# new\n\nbody\n"), ("", "# new\n\n")],
    ids=["replace", "add", "empty"],
)
def test_rename_readme(text: str, expected: str) -> None:
    assert rename_readme(text, "new") == expected
