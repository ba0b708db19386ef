"""The Dockerfile, read as instructions: no engine runs here, so its promises are asserted.

Lock files are copied and the env built before the source is copied; nothing solves; the user
is not root; base images are pinned by tag; no registry URL is written in.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from tests.paths import PROJECT

from lockstep.core.commands import DOCKER_BUILD_ARGS

ROOT = PROJECT
DOCKERFILE = ROOT / "Dockerfile"


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str


def parse(text: str) -> list[Instruction]:
    """Instructions with continuation lines joined and comments dropped."""
    instructions: list[Instruction] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue  # a comment inside a continued instruction
        if line.endswith("\\"):
            pending += line[:-1].strip() + " "
            continue
        keyword, _, args = (pending + line).partition(" ")
        instructions.append(Instruction(keyword.upper(), args.strip()))
        pending = ""
    assert not pending, "the Dockerfile ends inside a continued instruction"
    return instructions


def stages(instructions: list[Instruction]) -> list[list[Instruction]]:
    """Instructions grouped by FROM."""
    grouped: list[list[Instruction]] = []
    for instruction in instructions:
        if instruction.keyword == "FROM":
            grouped.append([])
        if grouped:  # the global ARGs before the first FROM belong to no stage
            grouped[-1].append(instruction)
    return grouped


@pytest.fixture(scope="module")
def final() -> list[Instruction]:
    return stages(parse(DOCKERFILE.read_text(encoding="utf-8")))[-1]


def _index(stage: list[Instruction], keyword: str, pattern: str) -> int:
    found = [
        i for i, ins in enumerate(stage) if ins.keyword == keyword and re.search(pattern, ins.args)
    ]
    assert len(found) == 1, f"expected one {keyword} matching {pattern!r}, found {len(found)}"
    return found[0]


def test_parse_joins_continuations_and_skips_comments() -> None:
    text = "# c\nFROM a:1 AS b\nRUN x \\\n    # inner\n    && y\n"
    assert parse(text) == [Instruction("FROM", "a:1 AS b"), Instruction("RUN", "x && y")]


def _global_args() -> dict[str, str]:
    """The ARGs before the first FROM, with their defaults (what a plain build uses)."""
    found: dict[str, str] = {}
    for instruction in parse(DOCKERFILE.read_text(encoding="utf-8")):
        if instruction.keyword == "FROM":
            break
        if instruction.keyword == "ARG":
            name, _, default = instruction.args.partition("=")
            found[name] = default
    return found


def _image(instruction: Instruction) -> str:
    image = instruction.args.split()[0]
    return re.sub(r"\$\{(\w+)\}", lambda m: _global_args()[m.group(1)], image)


def test_base_images_are_pinned_by_tag() -> None:
    for instruction in parse(DOCKERFILE.read_text(encoding="utf-8")):
        if instruction.keyword == "FROM":
            image = _image(instruction)
            assert re.fullmatch(r"[\w./-]+:[\w.-]+", image), image
            assert not image.endswith(":latest"), image


def test_final_stage_has_a_conda_frontend(final: list[Instruction]) -> None:
    assert _image(final[0]).startswith("mambaorg/micromamba:")
    assert Instruction("ARG", "FRONTEND=micromamba") in final


def test_env_layers_come_before_the_source(final: list[Instruction]) -> None:
    lock_copy = _index(final, "COPY", r"--from=lock\b.*env\.lock")
    conda_install = _index(final, "RUN", r'"\$FRONTEND" install .*--file /tmp/env\.lock')
    poetry_copy = _index(final, "COPY", r"pyproject\.toml poetry\.lock")
    pypi_install = _index(final, "RUN", r"-m lockstep\.core\.installer install .*--no-root")
    source_copy = _index(final, "COPY", r"(^|\s)\. \.$")
    project_install = _index(final, "RUN", r"-m lockstep\.core\.installer install-root .*-dir \.")
    assert lock_copy < conda_install < poetry_copy < pypi_install < source_copy < project_install


def test_the_lock_stage_copies_only_the_lock_and_the_rewrite() -> None:
    lock_stage = stages(parse(DOCKERFILE.read_text(encoding="utf-8")))[0]
    copies = [i.args for i in lock_stage if i.keyword == "COPY"]
    assert copies == [
        "tooling/src/lockstep/__init__.py src/lockstep/",
        "tooling/src/lockstep/core/ src/lockstep/core/",
        "pyproject.toml conda-*.lock ./",
    ]
    # The variant's lock by [tool.lockstep] (lockstep.core.variants), unless CONDA_LOCK names one.
    _index(lock_stage, "RUN", r'-m lockstep\.core\.variants lock-file "\$VARIANT"')
    _index(lock_stage, "RUN", r'-m lockstep\.core\.mirrors rewrite "\$lock" --output env\.lock')


def test_nothing_solves() -> None:
    text = DOCKERFILE.read_text(encoding="utf-8")
    assert "environment.yml" not in text
    for instruction in parse(text):
        if instruction.keyword == "RUN":
            assert "micromamba create" not in instruction.args
            assert "env create" not in instruction.args
            assert "poetry install" not in instruction.args


def test_the_user_is_not_root(final: list[Instruction]) -> None:
    users = [i.args for i in final if i.keyword == "USER"]
    assert users, "the final stage must name its user"
    assert users[-1].split(":")[0] not in {"root", "0"}
    # Every RUN of the final stage runs as that user too.
    first_run = next(i for i, ins in enumerate(final) if ins.keyword == "RUN")
    first_user = next(i for i, ins in enumerate(final) if ins.keyword == "USER")
    assert first_user < first_run


def test_no_url_is_written_in() -> None:
    assert "://" not in DOCKERFILE.read_text(encoding="utf-8")


def test_dockerignore_keeps_local_state_out() -> None:
    ignored = (ROOT / ".dockerignore").read_text(encoding="utf-8").split()
    assert {".git", ".venv", "**/__pycache__", "*.lockstep-backup"} <= set(ignored)
    for needed in ("conda-linux-64.lock", "poetry.lock", "pyproject.toml", "src"):
        assert needed not in ignored


def _copied_sources(stage: list[Instruction], destination: str) -> list[tuple[str, str]]:
    """(source, path under ``destination``) of each COPY of tooling/src/lockstep into it."""
    found = []
    for instruction in stage:
        words = [w for w in instruction.args.split() if not w.startswith("--")]
        if instruction.keyword != "COPY" or not words[-1].startswith(destination):
            continue
        sources = [w for w in words[:-1] if w.startswith("tooling/src/")]
        found += [(w, words[-1][len(destination) :]) for w in sources]
    return found


@pytest.mark.parametrize(
    ("stage_index", "destination", "module"),
    [
        (0, "src/lockstep/", "lockstep.core.mirrors"),
        (-1, "/tmp/installer/lockstep/", "lockstep.core.installer"),
    ],
    ids=["mirror-rewrite", "installer"],
)
def test_the_modules_an_image_copies_import_alone(
    tmp_path: Path, stage_index: int, destination: str, module: str
) -> None:
    """What the Dockerfile copies is all the module needs: standard library and those files."""
    import shutil
    import subprocess
    import sys

    stage = stages(parse(DOCKERFILE.read_text(encoding="utf-8")))[stage_index]
    copied = _copied_sources(stage, destination)
    assert ("tooling/src/lockstep/core/", "core/") in copied, "lockstep.core is copied whole"
    for source, target in copied:
        into = tmp_path / "lockstep" / target
        if source.endswith("/"):
            shutil.copytree(ROOT / source, into, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            into.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(ROOT / source, into / Path(source).name)
    code = f"import sys; sys.path[:0] = [{str(tmp_path)!r}]; import {module}"
    done = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_docker_build_passes_only_arguments_the_dockerfile_declares() -> None:
    declared = {i.args.split("=")[0] for i in parse(DOCKERFILE.read_text()) if i.keyword == "ARG"}
    assert set(DOCKER_BUILD_ARGS) <= declared


def test_the_images_check_runs_the_copied_tooling(final: list[Instruction]) -> None:
    """lockstep is not in the env: the CMD puts the copied tooling/src on its own path only."""
    import json

    [cmd] = [i for i in final if i.keyword == "CMD"]
    workdir = [i.args for i in final if i.keyword == "WORKDIR"][-1]
    assert json.loads(cmd.args) == [
        "env",
        f"PYTHONPATH={workdir}/tooling/src",
        "python",
        "-m",
        "lockstep.gpu",
        "--quick",
        "--allow-cpu",
    ]
    assert (ROOT / "tooling" / "src" / "lockstep" / "gpu.py").is_file()
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    assert not any(line.startswith(("tooling", "/tooling")) for line in ignored)
    assert not any(i.keyword == "ENV" and "PYTHONPATH" in i.args for i in final)
