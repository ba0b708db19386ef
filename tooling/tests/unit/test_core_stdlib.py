"""lockstep.core runs with the standard library alone: every module of it imports in a bare
interpreter (``python -I``, no site-packages on the path) and pulls in nothing else."""

from __future__ import annotations

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
