"""Pins: which conda packages, written into pyproject.toml with comments and layout kept."""

from __future__ import annotations

import tomllib

import tomlkit
from tests.paths import PROJECT, STARTER_0_1

from lockstep.core.explicit import parse_explicit
from lockstep.core.fsutil import text_diff
from lockstep.pins import apply_pins, current_pins, desired_pins
from lockstep.poetryproject import ensure_poetry_project
from lockstep.spec import load_env_spec

ROOT = PROJECT

USER_PYPROJECT = """\
# My project: keep this comment.
[project]
name = "my-ml"
version = "0.3.0"
requires-python = ">=3.11,<3.12"
dependencies = [
    "lightning>=2.4",  # trainer
]

[tool.poetry]
package-mode = false

[tool.poetry.group.dev.dependencies]
ruff = "^0.8"   # linter
"""


def _pins(big_lock_text: str, poetry_names=()) -> dict[str, str]:
    lock = parse_explicit(big_lock_text)
    spec = load_env_spec(STARTER_0_1 / "environment.yml")
    return desired_pins(
        [(e.name, e.version) for e in lock.entries], spec, poetry_names, {"pytorch": "torch"}
    )


def test_pins_from_a_large_lock(big_lock_text: str) -> None:
    # environment.yml names pytorch, torchvision and torchaudio; python, cuda-version and the
    # tooling (pip, poetry) are never pinned.
    assert _pins(big_lock_text) == {
        "torch": "2.7.1",
        "torchaudio": "2.7.1",
        "torchvision": "0.22.0",
    }


def test_pins_follow_poetry_lock_names(big_lock_text: str) -> None:
    pins = _pins(big_lock_text, poetry_names=["filelock", "Typing_Extensions", "sympy", "nccl"])
    assert pins == {
        "filelock": "3.16.1",
        "sympy": "1.13.3",
        "torch": "2.7.1",
        "torchaudio": "2.7.1",
        "torchvision": "0.22.0",
        "typing-extensions": "4.12.2",
    }


def test_tooling_is_pinned_only_when_poetry_lock_has_it(big_lock_text: str) -> None:
    # environment.yml names pip and poetry: that alone must not pull Poetry into its own lock.
    assert not {"pip", "poetry"} & set(_pins(big_lock_text))
    # A test group that runs Poetry puts it in poetry.lock: then both locks must agree on it.
    assert _pins(big_lock_text, poetry_names=["poetry"])["poetry"] == "2.1.1"


def test_python_and_libs_are_never_pinned(big_lock_text: str) -> None:
    pins = _pins(big_lock_text, poetry_names=["libcublas", "python", "nccl"])
    assert not {"libcublas", "python", "cuda-version", "nccl"} & set(pins)


PIN_BLOCK = (
    "[tool.poetry.group.conda]\n"
    "# Written by `invoke pin` from the conda lock: do not edit by hand.\n"
    "optional = true\n\n"
    "[tool.poetry.group.conda.dependencies]\n"
    'filelock = "3.16.1"\n'
    'torch = "2.7.1"\n'
)


def test_apply_pins_keeps_comments_and_layout() -> None:
    out = apply_pins(USER_PYPROJECT, {"filelock": "3.16.1", "torch": "2.7.1"}, "conda")
    assert out == USER_PYPROJECT + "\n" + PIN_BLOCK


def test_pin_group_goes_above_the_comment_of_the_next_table() -> None:
    tail = "\n# Settings of my tool: this comment belongs to [tool.mytool].\n[tool.mytool]\nx = 1\n"
    out = apply_pins(USER_PYPROJECT + tail, {"filelock": "3.16.1", "torch": "2.7.1"}, "conda")
    assert out == USER_PYPROJECT + "\n" + PIN_BLOCK + tail


def test_pin_group_in_a_file_without_poetry_tables() -> None:
    out = apply_pins('[project]\nname = "x"', {"torch": "2.7.1"}, "conda")
    assert tomllib.loads(out)["tool"]["poetry"]["group"]["conda"] == {
        "optional": True,
        "dependencies": {"torch": "2.7.1"},
    }
    assert out.startswith('[project]\nname = "x"\n\n[tool.poetry.group.conda]\n')


def test_apply_pins_updates_and_removes_stale_pins_and_is_idempotent() -> None:
    text = apply_pins(USER_PYPROJECT, {"torch": "2.5.1", "numpy": "1.26.4"}, "conda")
    first = apply_pins(text, {"torch": "2.7.1"}, "conda")
    assert current_pins(tomlkit.parse(first), "conda") == {"torch": "2.7.1"}
    assert apply_pins(first, {"torch": "2.7.1"}, "conda") == first
    assert "# My project: keep this comment." in first and "# linter" in first


def test_ensure_poetry_project_repairs_only_what_is_missing() -> None:
    text = '# keep\n[project]\nname = "x"\nversion = "1.0"\nrequires-python = ">=3.8"\n'
    doc, changes = ensure_poetry_project(tomlkit.parse(text), ">=3.11,<3.12", "x")
    assert changes == [
        "set requires-python '>=3.8' -> '>=3.11,<3.12' (from environment.yml)",
        "added [tool.poetry] with package-mode = false",
    ]
    out = tomlkit.dumps(doc)
    assert out.startswith('# keep\n[project]\nname = "x"\nversion = "1.0"\n')
    doc2, changes2 = ensure_poetry_project(tomlkit.parse(out), ">=3.11,<3.12", "x")
    assert changes2 == [] and tomlkit.dumps(doc2) == out


def test_ensure_poetry_project_on_empty_file() -> None:
    doc, changes = ensure_poetry_project(tomlkit.parse(""), ">=3.11,<3.12", "new-proj")
    assert changes[0] == "added [project]"
    data = tomlkit.parse(tomlkit.dumps(doc))
    assert data["project"]["name"] == "new-proj"
    assert data["project"]["requires-python"] == ">=3.11,<3.12"
    assert data["tool"]["poetry"]["package-mode"] is False


def test_text_diff() -> None:
    assert text_diff("a\n", "a\n", "p") == ""
    assert text_diff("a\n", "b\n", "pyproject.toml") == (
        "--- pyproject.toml\n+++ pyproject.toml\n@@ -1 +1 @@\n-a\n+b\n"
    )
