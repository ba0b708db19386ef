"""lockstep.core runs with the standard library alone: every module of it imports in a bare
interpreter (``python -I``, no site-packages on the path) and pulls in nothing else, and none
of it imports the rest of lockstep (calls go from the package to its core, never back)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
CORE = sorted(p.stem for p in (SRC / "lockstep" / "core").glob("*.py") if p.stem != "__init__")

# Imports every module given, then prints the top-level names of what that imported which are
# neither the standard library nor lockstep (startup's own imports, .pth hooks among them, aside).
_PROBE = """
import sys
before = set(sys.modules)
sys.path[:] = [{src!r}] + [p for p in sys.path if p and "-packages" not in p]
import importlib
for name in {modules!r}:
    importlib.import_module(name)
foreign = sorted(
    {{m.split(".")[0] for m in set(sys.modules) - before}}
    - set(sys.stdlib_module_names) - {{"lockstep"}}
)
print(" ".join(foreign))
"""


def _probe(modules: list[str]) -> subprocess.CompletedProcess[str]:
    code = _PROBE.format(src=str(SRC), modules=modules)
    return subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True)


def test_core_has_the_engine_and_the_installer() -> None:
    assert {"engine", "installer", "mirrors", "envvars", "condameta"} <= set(CORE)


@pytest.mark.parametrize("module", CORE)
def test_a_core_module_imports_with_the_standard_library_alone(module: str) -> None:
    done = _probe([f"lockstep.core.{module}"])
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [], f"lockstep.core.{module} imports {done.stdout.strip()}"


def test_the_probe_catches_a_foreign_import() -> None:
    """The check can fail: a module outside core that needs tomlkit is refused the same way."""
    done = _probe(["lockstep.poetryproject"])
    assert done.returncode != 0 or done.stdout.split(), "lockstep.poetryproject needs tomlkit"
    assert "tomlkit" in done.stderr + done.stdout


def _imports_outside_core(source: str) -> list[str]:
    """The lockstep modules outside lockstep.core that ``source`` imports, at any depth."""
    names = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            base = node.module
            names += [f"{base}.{a.name}" if base == "lockstep" else base for a in node.names]
    inside = ("lockstep.core", "lockstep.core.")
    return [n for n in names if n.split(".")[0] == "lockstep" and not n.startswith(inside)]


@pytest.mark.parametrize("module", CORE)
def test_a_core_module_imports_nothing_of_lockstep_outside_core(module: str) -> None:
    source = (SRC / "lockstep" / "core" / f"{module}.py").read_text(encoding="utf-8")
    assert _imports_outside_core(source) == []


def test_the_import_scan_sees_an_import_inside_a_function() -> None:
    """The engine once imported lockstep.inputhash inside a function; that is found."""
    source = "def f():\n    from lockstep import inputhash\n    import lockstep.spec\n"
    assert _imports_outside_core(source) == ["lockstep.inputhash", "lockstep.spec"]
    assert _imports_outside_core("from lockstep.core import plan\nimport lockstep.core.x") == []


def test_without_pyyaml_the_input_hash_is_unsupported_not_an_error() -> None:
    """`make reproduce` on a bare Python: the engine's staleness warning is skipped."""
    code = (
        "import sys\n"
        f"sys.path[:] = [{str(SRC)!r}] + [p for p in sys.path if '-packages' not in p]\n"
        "from lockstep.core import condalockhash as h\n"
        "try:\n    h.fast_input_hash('channels: []\\n', 'subdirs: {}\\n', 'linux-64')\n"
        "except h.Unsupported as exc:\n    print(exc)\n"
    )
    done = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "PyYAML is not installed"
