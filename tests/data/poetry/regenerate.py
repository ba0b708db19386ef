"""Re-create the oracle outputs stored beside each real poetry.lock of this folder.

For every NAME/ holding a pyproject.toml and a poetry.lock (copied unchanged from a public project,
see PROVENANCE), Poetry itself answers, and its answers are stored so that CI needs no network:

- NAME/export.txt: ``poetry export --format requirements.txt`` (hashes included: the plugin's
  default; ``--with-hashes`` is no option of poetry-plugin-export 1.10) with ``--with`` for every
  non-optional group, i.e. the set that ``poetry install`` installs by default;
- NAME/check.txt: ``poetry check --lock`` (its output and exit status).

Run by a developer, with Poetry and poetry-plugin-export installed (PyPI):
``python tests/data/poetry/regenerate.py --poetry /path/to/bin/poetry``. Export reads the lock
only; it needs no network. Each project is copied into a temporary folder first, where the README
files that pyproject declares are created empty: `poetry check` refuses a missing README, which is
not what this corpus is about.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
import tomllib
from pathlib import Path

HERE = Path(__file__).resolve().parent


def non_optional_groups(pyproject: dict) -> list[str]:
    """Poetry's default groups besides main, as Poetry reads them (the oracle's own reading)."""
    poetry = pyproject.get("tool", {}).get("poetry", {})
    groups = {
        name
        for name, table in poetry.get("group", {}).items()
        if not table.get("optional", False)
    }
    if "dev-dependencies" in poetry:  # Poetry 1.0's table is the non-optional group "dev"
        groups.add("dev")
    return sorted(groups)


def readme_files(pyproject: dict) -> list[str]:
    readme = pyproject.get("tool", {}).get("poetry", {}).get("readme")
    project_readme = pyproject.get("project", {}).get("readme")
    found = []
    for value in (readme, project_readme):
        if isinstance(value, str):
            found.append(value)
        elif isinstance(value, list):
            found += value
        elif isinstance(value, dict) and "file" in value:
            found.append(value["file"])
    return found


def export_command(poetry: str, groups: list[str]) -> list[str]:
    command = [poetry, "export", "--format", "requirements.txt"]
    for group in groups:
        command += ["--with", group]
    return command


def regenerate(poetry: str, project: Path) -> None:
    pyproject = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for name in ("pyproject.toml", "poetry.lock"):
            shutil.copy(project / name, work / name)
        for readme in readme_files(pyproject):
            (work / readme).parent.mkdir(parents=True, exist_ok=True)
            (work / readme).touch()
        env = {"PATH": "/usr/bin:/bin", "HOME": tmp, "NO_COLOR": "1"}
        export = subprocess.run(
            export_command(poetry, non_optional_groups(pyproject)),
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        (project / "export.txt").write_text(export.stdout, encoding="utf-8")
        check = subprocess.run(
            [poetry, "check", "--lock"], cwd=work, env=env, capture_output=True, text=True
        )
        (project / "check.txt").write_text(
            f"{check.stdout}{check.stderr}exit status {check.returncode}\n", encoding="utf-8"
        )
    print(project.name, "exported", export.stdout.count("=="), "lines")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--poetry", default="poetry", help="Poetry with poetry-plugin-export")
    args = parser.parse_args()
    version = subprocess.run(
        [args.poetry, "--version"], capture_output=True, text=True, check=True
    ).stdout.strip()
    for project in sorted(p.parent for p in HERE.glob("*/poetry.lock")):
        regenerate(args.poetry, project)
    (HERE / "ORACLE").write_text(f"{version}\n", encoding="utf-8")


if __name__ == "__main__":
    main()
