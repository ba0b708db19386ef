"""The fast Poetry content hash equals Poetry's own Locker on many pyproject variants."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from tests.paths import PROJECT

from lockstep.core import poetryhash

# Poetry lives in a venv of its own (tooling/poetry-cli): its Locker runs there, fed JSON.
POETRY_PYTHON = (Path(sys.executable).parent / "poetry").resolve().parent / "python"
if not POETRY_PYTHON.is_file():
    pytest.skip(
        f"no Poetry venv beside {sys.executable} (make .venv/.installed)", allow_module_level=True
    )

LOCKER = """
import json, sys
from pathlib import Path
from poetry.packages.locker import Locker
for data in json.load(sys.stdin):
    print(Locker(Path("/nonexistent/poetry.lock"), data)._get_content_hash())
"""

ROOT = PROJECT

PROJECT_PARTS = [
    'requires-python = ">=3.11,<3.12"',
    'dependencies = ["rich>=13", "httpx[http2]>=0.27 ; python_version >= \'3.11\'"]',
    "dependencies = []",
    'name = "demo"\nversion = "0.1.0"',
    'description = "ünïcode text"',
]
OPTIONAL = '[project.optional-dependencies]\nplot = ["matplotlib>=3.8"]'
POETRY_PARTS = [
    "package-mode = false",
    'packages = [{ include = "demo", from = "src" }]',
]
POETRY_TABLES = [
    '[tool.poetry.dependencies]\npython = ">=3.11,<3.12"\nrequests = "^2.32"',
    '[tool.poetry.group.dev.dependencies]\npytest = ">=8"\nruff = { version = ">=0.8" }',
    "[tool.poetry.group.conda]\noptional = true\n[tool.poetry.group.conda.dependencies]\n"
    'torch = "2.5.1"\nnumpy = "1.26.4"',
    '[[tool.poetry.source]]\nname = "local"\nurl = "http://127.0.0.1:8000/simple"\n'
    'priority = "explicit"',
    '[tool.poetry.extras]\nplot = ["matplotlib"]',
    '[tool.poetry.dev-dependencies]\nblack = "*"',
    '[tool.lockstep]\nenv-name = "x"',
]


def _random_pyproject(rng: random.Random) -> str:
    parts: list[str] = []
    project = [p for p in PROJECT_PARTS if rng.random() < 0.5]
    if PROJECT_PARTS[1] in project and PROJECT_PARTS[2] in project:
        project.remove(rng.choice(PROJECT_PARTS[1:3]))  # one dependencies key
    if project or rng.random() < 0.5:
        parts.append("[project]\n" + "\n".join(project))
    if rng.random() < 0.3:
        parts.append(OPTIONAL)
    poetry = [p for p in POETRY_PARTS if rng.random() < 0.5]
    if poetry:
        parts.append("[tool.poetry]\n" + "\n".join(poetry))
    parts += [t for t in POETRY_TABLES if rng.random() < 0.4]
    return "\n\n".join(parts) + "\n"


def _poetry_hashes(datas: list[dict]) -> list[str]:
    run = [str(POETRY_PYTHON), "-c", LOCKER]
    out = subprocess.run(run, input=json.dumps(datas), capture_output=True, text=True, check=True)
    return out.stdout.split()


def test_equal_to_poetry_locker_on_generated_pyprojects() -> None:
    rng = random.Random(11)
    seen = set()
    datas = [tomllib.loads(_random_pyproject(rng)) for _ in range(300)]
    for data, expected in zip(datas, _poetry_hashes(datas), strict=True):
        assert poetryhash.content_hash(data) == expected, data
        seen.add(expected)
    assert len(seen) > 100  # the inputs really differ


def test_equal_on_the_project_pyproject_and_its_lock() -> None:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))
    assert [poetryhash.content_hash(data)] == _poetry_hashes([data])


def test_locked_hash_reads_metadata() -> None:
    assert poetryhash.locked_hash({"metadata": {"content-hash": "ab"}}) == "ab"
    assert poetryhash.locked_hash({}) is None
