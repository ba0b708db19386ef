"""The install plan against Poetry's own exporter, on real poetry.lock files of public projects.

tests/data/poetry/NAME/ holds a project's pyproject.toml and poetry.lock (PROVENANCE says from
where) and what poetry-plugin-export answered for it (export.txt, by regenerate.py). For a target
(linux-64 and a Python the project allows) the exporter's lines whose markers hold there, as
packaging evaluates them, are what `poetry install` installs; the plan with nothing provided by
conda must be exactly that: same names, versions and hashes.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.markers import Marker

from lockstep.core.markers import target_environment, version_matches
from lockstep.core.names import normalize
from lockstep.core.plan import PlanError, default_groups, plan_for, requirement_line
from lockstep.core.poetrylock import locked_versions, read_poetry_lock

CORPUS = Path(__file__).resolve().parents[1] / "data" / "poetry"
PIN_GROUP = "conda"
DIRECT = {"git", "url", "file", "directory"}  # exported as `name @ url`

# Per project two Pythons it allows, where markers differ (old and new).
PYTHONS = {
    "lerobot-2025-01": ("3.10.14", "3.12.7"),
    "lerobot-2025-02": ("3.10.14", "3.13.1"),
    "poetry-2022": ("3.7.17", "3.11.10"),
    "poetry-2023": ("3.7.17", "3.11.10"),
    "poetry-2026": ("3.10.14", "3.13.1"),
    "pytorch-forecasting-2023": ("3.8.18", "3.10.14"),
    "textual-2021": ("3.7.17", "3.10.13"),
    "textual-2023-02": ("3.7.17", "3.11.10"),
    "textual-2023-12": ("3.8.18", "3.12.7"),
    "textual-2025": ("3.9.19", "3.13.1"),
}
PROJECTS = sorted(p.parent.name for p in CORPUS.glob("*/poetry.lock"))
EXPORTED = [name for name in PROJECTS if (CORPUS / name / "export.txt").is_file()]
REFUSED = [name for name in PROJECTS if (CORPUS / name / "export.error").is_file()]
CASES = [(name, python) for name in EXPORTED for python in PYTHONS[name]]
INSTALLED = [name for name in PROJECTS if (CORPUS / name / "install-dry-run.txt").is_file()]

# Where the exporter and Poetry's installer disagree, the plan follows the installer, and
# test_plan_equals_poetrys_installer proves it: gdown needs requests[socks], whose extra brings
# pysocks; the exporter's walker (lock-version < 2.1) writes `requests[socks]==...` and leaves
# pysocks to pip's resolver, which `pip --no-deps` never runs, while `poetry install` installs it.
EXPORTER_DROPS = {"lerobot-2025-01": {("pysocks", "1.7.1")}}


def _inputs(name: str) -> tuple[dict, dict]:
    pyproject = tomllib.loads((CORPUS / name / "pyproject.toml").read_text(encoding="utf-8"))
    return pyproject, read_poetry_lock(CORPUS / name / "poetry.lock")


def _exported(name: str, environment: dict[str, str]) -> dict[tuple[str, str], set[str]]:
    """The exporter's requirements that hold on the target: (name, version) -> hashes."""
    text = (CORPUS / name / "export.txt").read_text(encoding="utf-8")
    found: dict[tuple[str, str], set[str]] = {}
    for entry in re.split(r"\n(?=\S)", text.strip()):
        head, *hashes = [part.strip() for part in entry.split("\\\n")]
        if head.startswith("-"):  # --extra-index-url and the like
            continue
        requirement, _, marker = head.partition(" ; ")
        if marker and not Marker(marker).evaluate({**environment, "extra": ""}):
            continue
        if " @ " in requirement:  # a git or url source: no version, no hash
            found[(normalize(requirement.split(" @ ")[0]), "@")] = set()
            continue
        dist, _, version = requirement.partition("==")
        dist = dist.split("[")[0]  # rfc3986[idna2008]==1.5.0: the extras are the edge's
        found[(normalize(dist), version)] = {h.removeprefix("--hash=") for h in hashes}
    return found


def _planned(plan) -> dict[tuple[str, str], set[str]]:
    return {
        (normalize(p.name), "@" if p.source_type in DIRECT else p.version): set(p.hashes)
        for p in plan.install
    }


def test_the_corpus_covers_what_the_issue_names() -> None:
    lock_versions = set()
    for name in PROJECTS:
        _, data = _inputs(name)
        lock_versions.add(data["metadata"]["lock-version"])
    assert lock_versions == {"1.1", "2.0", "2.1"}
    assert len(PROJECTS) >= 10 and len(EXPORTED) >= 8
    assert set(PYTHONS) == set(PROJECTS)


@pytest.mark.parametrize(("name", "python"), CASES)
def test_plan_equals_poetrys_exporter(name: str, python: str) -> None:
    pyproject, data = _inputs(name)
    environment = target_environment("linux-64", python)
    groups = default_groups(pyproject, PIN_GROUP)
    plan = plan_for(pyproject, data, groups, [], environment)
    want, got = _exported(name, environment), _planned(plan)
    extra = set(got) - set(want)
    assert (sorted(extra - EXPORTER_DROPS.get(name, set())), sorted(set(want) - set(got))) == (
        [],
        [],
    )
    assert {k: v for k, v in got.items() if k in want and v != want[k]} == {}
    for package in plan.install:  # pip gets one line per package, every hash of it
        if package.source_type in DIRECT:
            with pytest.raises(PlanError, match="sources are not installable with hashes"):
                requirement_line(package, groups)
        else:
            assert requirement_line(package, groups).count("--hash=") == len(package.hashes)


def _installed_by_poetry(name: str) -> tuple[str, set[tuple[str, str]]]:
    """The Python of the dry run, and what `poetry install --dry-run` installs there."""
    first, *lines = (CORPUS / name / "install-dry-run.txt").read_text().splitlines()
    found = set()
    for line in lines:
        match = re.fullmatch(r"\s*- Installing (\S+) \((\S+)(?: \S+)?\)", line)
        if match:  # "...: Skipped for the following reason: Not required" lines do not match
            found.add((normalize(match.group(1)), match.group(2)))
    return first.removeprefix("python "), found


@pytest.mark.parametrize("name", INSTALLED)
def test_plan_equals_poetrys_installer(name: str) -> None:
    python, want = _installed_by_poetry(name)
    pyproject, data = _inputs(name)
    environment = target_environment("linux-64", python)
    plan = plan_for(pyproject, data, default_groups(pyproject, PIN_GROUP), [], environment)
    got = {(normalize(p.name), p.version) for p in plan.install}
    assert (sorted(got - want), sorted(want - got)) == ([], [])


@pytest.mark.parametrize("name", REFUSED)
@pytest.mark.parametrize("which", [0, 1])
def test_plan_where_the_exporter_refuses(name: str, which: int) -> None:
    """The exporter refuses these 2.0 locks (two versions of one name; 'Please relock'), though
    `poetry check --lock` calls them fresh. The plan, computed for one target, takes per name
    the version every edge to it allows (poetry-2023 on 3.11 is also in the installer test)."""
    pyproject, data = _inputs(name)
    environment = target_environment("linux-64", PYTHONS[name][which])
    plan = plan_for(pyproject, data, default_groups(pyproject, PIN_GROUP), [], environment)
    chosen = {normalize(p.name): p for p in plan.install}
    assert len(chosen) == len(plan.install)  # one version per name on one target
    versions = locked_versions(data)
    twice = {n for n, v in versions.items() if len(v) > 1} & set(chosen)
    assert twice
    for package in plan.install:
        for dependency, value in package.dependencies.items():
            for table in value:  # type: ignore[union-attr]
                marker = table.get("markers")
                target = chosen.get(normalize(dependency))
                if target is None or normalize(dependency) not in twice:
                    continue
                if marker and not Marker(marker).evaluate({**environment, "extra": ""}):
                    continue
                assert version_matches(target.version, table.get("version", "*")), (
                    package.name,
                    dependency,
                    target.version,
                )


def test_textual_dev_group_needs_textual_itself() -> None:
    """A dev plugin of the package depends on the package: Poetry skips the root project."""
    pyproject, data = _inputs("textual-2025")
    assert (
        "textual"
        in data["package"][[p["name"] for p in data["package"]].index("textual-dev")][
            "dependencies"
        ]
    )
    environment = target_environment("linux-64", "3.12.7")
    plan = plan_for(pyproject, data, default_groups(pyproject, PIN_GROUP), [], environment)
    assert "textual-dev" in {p.name for p in plan.install}
    assert "textual" not in {p.name for p in plan.install}


def test_lock_11_hashes_come_from_metadata_files() -> None:
    pyproject, data = _inputs("textual-2023-02")
    assert "files" not in data["package"][0] and data["metadata"]["files"]
    environment = target_environment("linux-64", "3.11.10")
    plan = plan_for(pyproject, data, default_groups(pyproject, PIN_GROUP), [], environment)
    assert plan.install and all(p.hashes for p in plan.install)


def test_win32_edges_are_not_installed_on_linux() -> None:
    pyproject, data = _inputs("poetry-2022")
    groups = default_groups(pyproject, PIN_GROUP)
    linux = plan_for(pyproject, data, groups, [], target_environment("linux-64", "3.11.10"))
    windows = plan_for(pyproject, data, groups, [], target_environment("win-64", "3.11.10"))
    only_windows = {p.name for p in windows.install} - {p.name for p in linux.install}
    assert {"pywin32-ctypes", "colorama"} <= only_windows


def test_two_versions_of_one_name_each_under_its_marker() -> None:
    pyproject, data = _inputs("lerobot-2025-02")
    assert len(locked_versions(data)["zarr"]) == 2
    groups = default_groups(pyproject, PIN_GROUP)
    versions = {
        python: {
            p.version
            for p in plan_for(
                pyproject, data, groups, [], target_environment("linux-64", python)
            ).install
            if p.name == "zarr"
        }
        for python in ("3.10.14", "3.13.1")
    }
    assert len(versions["3.10.14"]) == len(versions["3.13.1"]) == 1
    assert versions["3.10.14"] != versions["3.13.1"]


# conda provides torch (and numpy): the plan installs neither, nor the wheels that only torch
# needs; what others still need stays.
@pytest.mark.parametrize("name", ["lerobot-2025-01", "lerobot-2025-02"])
def test_conda_provided_torch_takes_its_wheels_along(name: str) -> None:
    pyproject, data = _inputs(name)
    environment = target_environment("linux-64", "3.11.10")
    groups = default_groups(pyproject, PIN_GROUP)
    full = {p.name for p in plan_for(pyproject, data, groups, [], environment).install}
    provided = ["torch", "numpy"]
    plan = plan_for(pyproject, data, groups, provided, environment)
    names = {normalize(p.name) for p in plan.install}
    assert plan.provided_by_conda == ["numpy", "torch"]
    assert not names & {"torch", "numpy"}
    nvidia = {n for n in full if n.startswith("nvidia-")}
    assert len(nvidia) >= 10 and "triton" in full
    assert not {n for n in names if n.startswith("nvidia-")} and "triton" not in names
    assert nvidia | {"triton"} <= set(plan.only_needed_by_conda)
    # torch's own plain dependencies that other packages need too stay
    assert {"filelock", "jinja2", "fsspec"} <= names


def test_plan_for_refuses_a_lock_missing_a_dependency() -> None:
    pyproject, data = _inputs("textual-2025")
    data = {**data, "package": [p for p in data["package"] if p["name"] != "rich"]}
    with pytest.raises(PlanError, match="rich is a dependency but not in poetry.lock"):
        plan_for(pyproject, data, ["main"], [], target_environment("linux-64", "3.12.7"))


@pytest.mark.parametrize(
    ("name", "extra", "brings"),
    [
        ("lerobot-2025-02", "pi0", "transformers"),  # [project.optional-dependencies]
        ("textual-2023-12", "syntax", "tree-sitter"),  # [tool.poetry.extras], optional = true
    ],
)
def test_project_extras_add_their_dependencies(name: str, extra: str, brings: str) -> None:
    pyproject, data = _inputs(name)
    environment = target_environment("linux-64", "3.11.10")
    groups = default_groups(pyproject, PIN_GROUP)
    without = {p.name for p in plan_for(pyproject, data, groups, [], environment).install}
    with_extra = plan_for(pyproject, data, groups, [], environment, extras=[extra])
    assert brings not in without
    assert brings in {p.name for p in with_extra.install}


@pytest.mark.parametrize("name", ["textual-2023-12", "textual-2025"])
def test_check_finds_no_poetry_plan_error_where_poetry_calls_the_lock_fresh(
    name: str, tmp_path: Path
) -> None:
    """check used to report `poetry-plan` ("textual is a dependency but not in poetry.lock")
    on these locks, which `poetry check --lock` calls fresh (check.txt)."""
    from tests.testdata import generated_lock_text

    from lockstep import check
    from lockstep.core.explicit import parse_explicit
    from lockstep.core.settings import Settings

    assert (CORPUS / name / "check.txt").read_text().endswith("exit status 0\n")
    pyproject, data = _inputs(name)
    inputs = check.Inputs(tmp_path, Settings(), None, None, pyproject, data)
    conda = [("python", "3.12.7", "h_0_cpython"), ("rich", "13.7.0", "pyhd8ed1ab_0")]
    lock = parse_explicit(generated_lock_text(conda))
    found = check.cross_lock_findings(inputs, lock)
    assert "poetry-plan" not in {f.code for f in found}
