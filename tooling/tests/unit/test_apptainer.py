"""Apptainer.def builds from the same locks by the same steps as the Dockerfile (no apptainer
here: its promises are asserted, as the Dockerfile's are in test_dockerfile.py)."""

from __future__ import annotations

import re

from tests.paths import PROJECT

ROOT = PROJECT
DEFINITION = (ROOT / "Apptainer.def").read_text(encoding="utf-8")


def _section(name: str) -> str:
    match = re.search(rf"^%{name}\n(.*?)(?=^%|\Z)", DEFINITION, flags=re.M | re.S)
    assert match, f"no %{name} section"
    return match.group(1).replace("\\\n", " ")


def test_header_names_a_pinned_base_image() -> None:
    assert re.search(r"^Bootstrap: docker$", DEFINITION, flags=re.M)
    image = re.search(r"^From: (\S+)$", DEFINITION, flags=re.M)
    assert image and re.fullmatch(r"[\w./-]+:[\w.-]+", image.group(1)), image
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert f"ARG BASE_IMAGE={image.group(1)}" in dockerfile, "the same base as the Dockerfile"


def test_the_locks_and_the_stdlib_installer_are_copied() -> None:
    copied = [line.split()[0] for line in _section("files").splitlines() if line.strip()]
    assert copied == [
        "conda-linux-64.lock",
        "pyproject.toml",
        "poetry.lock",
        # The user's package and what its build reads ([project] readme).
        "README.md",
        "src",
        # The tooling's package, for its standard-library installer and the GPU check only.
        "tooling/src/lockstep",
    ]


def test_the_tooling_is_on_the_path_of_its_own_commands_only() -> None:
    """lockstep is not in the env: every command that runs it names where it was copied."""
    tooling = next(
        line.split()[1] for line in _section("files").splitlines() if "tooling/src" in line
    )
    assert tooling.endswith("/lockstep")
    path = f"PYTHONPATH={tooling.removesuffix('/lockstep')} "
    commands = [s.strip() for name in ("post", "test") for s in _section(name).splitlines()]
    runs_lockstep = [c for c in commands if "-m lockstep." in c]
    assert len(runs_lockstep) == 3 and all(c.startswith(path) for c in runs_lockstep)
    assert "PYTHONPATH" not in _section("environment")


def test_post_installs_the_lock_without_solving_then_the_plan_with_hashes() -> None:
    steps = [line.strip() for line in _section("post").splitlines() if line.strip()]
    install = next(
        i for i, s in enumerate(steps) if "install --yes --prefix /opt/conda --file" in s
    )
    pypi = next(i for i, s in enumerate(steps) if "-m lockstep.core.installer install " in s)
    root = next(i for i, s in enumerate(steps) if "-m lockstep.core.installer install-root" in s)
    assert install < pypi < root
    assert "--no-root" in steps[pypi]
    assert not any(re.search(r"\bcreate\b|env create|poetry install", s) for s in steps)


def test_no_url_is_written_in() -> None:
    assert "://" not in DEFINITION
