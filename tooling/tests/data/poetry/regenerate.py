"""Re-create the oracle outputs stored beside each real poetry.lock of this folder.

For every NAME/ holding a pyproject.toml and a poetry.lock (copied unchanged from a public project,
see PROVENANCE), Poetry itself answers, and its answers are stored so that CI needs no network:

- NAME/export.txt: ``poetry export --format requirements.txt`` (hashes included: the plugin's
  default; ``--with-hashes`` is no option of poetry-plugin-export 1.10) with ``--with`` for every
  non-optional group, i.e. the set that ``poetry install`` installs by default;
  or NAME/export.error when the exporter refuses the lock;
- NAME/check.txt: ``poetry check --lock`` (its output and exit status);
- NAME/install-dry-run.txt: ``poetry install --dry-run --no-root`` into a fresh virtualenv of the
  Python running Poetry (first line: that Python's version), i.e. what Poetry's own installer
  installs on this machine from the lock alone; absent where the project does not allow that
  Python. The exporter and the installer disagree at times (the exporter drops the dependencies
  that a dependency's extra brings, e.g. requests[socks] -> pysocks); the install plan follows the
  installer.

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
        name for name, table in poetry.get("group", {}).items() if not table.get("optional", False)
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
        )
        # The exporter refuses some real locks (a 2.0 lock with two versions of one name):
        # that refusal is its answer, kept as export.error instead of export.txt.
        (project / "export.txt").unlink(missing_ok=True)
        (project / "export.error").unlink(missing_ok=True)
        if export.returncode == 0:
            (project / "export.txt").write_text(export.stdout, encoding="utf-8")
        else:
            (project / "export.error").write_text(
                f"{export.stderr.strip()}\nexit status {export.returncode}\n", encoding="utf-8"
            )
        check = subprocess.run(
            [poetry, "check", "--lock"], cwd=work, env=env, capture_output=True, text=True
        )
        (project / "check.txt").write_text(
            f"{check.stdout}{check.stderr}exit status {check.returncode}\n", encoding="utf-8"
        )
        install = subprocess.run(
            [poetry, "install", "--dry-run", "--no-root", "--no-interaction"],
            cwd=work,
            env={**env, "POETRY_VIRTUALENVS_PATH": str(work / "venvs")},
            capture_output=True,
            text=True,
        )
        dry_run = project / "install-dry-run.txt"
        dry_run.unlink(missing_ok=True)
        if install.returncode == 0:
            python = next((work / "venvs").glob("*/bin/python"))
            version = subprocess.run(
                [str(python), "-c", "import platform; print(platform.python_version())"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
            dry_run.write_text(f"python {version}\n{install.stdout}", encoding="utf-8")
    print(project.name, "export", export.returncode, "check", check.returncode,
          "install --dry-run", install.returncode)  # fmt: skip


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
