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
    assert copied == ["conda-linux-64.lock", "pyproject.toml", "poetry.lock", "src"]


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
