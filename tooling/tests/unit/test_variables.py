"""The LOCKSTEP_* variables: one registry (lockstep.core.variables), the manual's table made from
it, and no variable named anywhere in the repository that the registry lacks."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.paths import PROJECT, SRC, TOOLING

from lockstep.core import variables
from lockstep.core.variables import REGISTRY, markdown_table

NAMES = {v.name for v in REGISTRY}
_NAME = re.compile(r"\bLOCKSTEP_[A-Z0-9_]*[A-Z0-9]\b")
# Real third-party files (tests/data) and the conda stand-in, a test double with seams of its own.
_NOT_OURS = (TOOLING / "tests" / "data", TOOLING / "tests" / "integration" / "condastandin")
_SKIPPED_DIRS = {".git", ".venv", "__pycache__", "node_modules", ".mypy_cache", ".ruff_cache"}
_TABLE_START = (
    "<!-- generated from lockstep.core.variables; tests/unit/test_variables.py checks it -->"
)
_TABLE_END = "<!-- end of the generated table -->"


def _repository_files() -> Iterator[Path]:
    for path in PROJECT.rglob("*"):
        relative = path.relative_to(PROJECT).parts
        if _SKIPPED_DIRS & set(relative) or any(path.is_relative_to(d) for d in _NOT_OURS):
            continue
        if path.is_file() and path.suffix not in {".gz", ".pyc", ".whl", ".lock"}:
            yield path


def named_variables(text: str) -> set[str]:
    """The LOCKSTEP_ variables a text names, the stand-in's own aside."""
    return {n for n in _NAME.findall(text) if not n.startswith("LOCKSTEP_STANDIN_")}


def test_the_registry_names_each_variable_once() -> None:
    names = [v.name for v in REGISTRY]
    assert len(names) == len(set(names))
    assert all(_NAME.fullmatch(n) for n in names)
    assert all(v.kind in (variables.SETTING, variables.SEAM, variables.TEST) for v in REGISTRY)
    assert all(v.meaning and v.read_by for v in REGISTRY)


def test_no_file_of_the_repository_names_a_variable_the_registry_lacks() -> None:
    unknown: dict[str, set[str]] = {}
    for path in _repository_files():
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        for name in named_variables(text) - NAMES:
            unknown.setdefault(name, set()).add(str(path.relative_to(PROJECT)))
    assert unknown == {}, "declare these in lockstep.core.variables (and regenerate the table)"


def test_the_scan_finds_an_undeclared_name() -> None:
    """The check can fail: a name outside the registry is found, the stand-in's are not."""
    made_up = "LOCKSTEP_" + "NOT_DECLARED"
    text = f'x = os.environ["{made_up}"]  # and LOCKSTEP_STANDIN_ROOT, LOCKSTEP_NVIDIA_ (prefix)'
    assert named_variables(text) - NAMES == {made_up}


def _code() -> Iterator[Path]:
    """The tooling's code; the tests may spell a name: they pin what the manual documents."""
    yield PROJECT / "tasks.py"
    yield from (TOOLING / "benchmarks").rglob("*.py")
    for path in SRC.rglob("*.py"):
        if path != SRC / "lockstep" / "core" / "variables.py":
            yield path


def test_code_takes_each_name_from_the_registry() -> None:
    """No module but the registry spells a variable's name as a string of its own (a docstring
    or a message may mention it; the name a reader looks up comes from the registry)."""
    spelled = {
        f"{path.relative_to(PROJECT)}:{node.lineno}"
        for path in _code()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in NAMES
    }
    assert spelled == set()


def _manual_table() -> str:
    text = (TOOLING / "README.md").read_text(encoding="utf-8")
    start = text.index(_TABLE_START) + len(_TABLE_START) + 1
    return text[start : text.index(_TABLE_END)]


def test_the_manual_lists_every_variable_as_the_registry_does() -> None:
    assert _manual_table() == markdown_table(), (
        "regenerate tooling/README.md's table: python -m lockstep.core.variables"
    )


def test_the_table_has_one_row_per_variable_with_its_default() -> None:
    rows = markdown_table().splitlines()[2:]
    assert [row.split(" | ")[0] for row in rows] == [f"| `{v.name}`" for v in REGISTRY]
    timeout = next(row for row in rows if variables.QUERY_TIMEOUT.name in row)
    assert "| `120` |" in timeout


@pytest.mark.parametrize(
    ("reader", "expected"),
    [
        ("from lockstep.core import envs; print(envs.DEFAULT_QUERY_TIMEOUT)", "120.0"),
        ("from lockstep.core import nvidia as n; print(n.Probes.from_environ({}).libcuda)", None),
    ],
    ids=["query-timeout", "libcuda"],
)
def test_readers_take_their_defaults_from_the_registry(reader: str, expected: str | None) -> None:
    done = subprocess.run(
        [sys.executable, "-c", reader], capture_output=True, text=True, env={"PYTHONPATH": str(SRC)}
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == (expected or variables.LIBCUDA.default)


def test_the_shell_script_reads_only_what_it_must_and_points_at_the_registry() -> None:
    script = (TOOLING / "scripts" / "env-engine.sh").read_text(encoding="utf-8")
    assert named_variables(script) == {variables.PYTHON.name}
    assert "lockstep.core.variables" in script


def test_the_module_prints_the_table() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "lockstep.core.variables"],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(SRC)},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == markdown_table()
