"""Poetry's side installed from poetry.lock: the plan, the requirement lines, the pip command."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest
from tests.paths import PROJECT, SRC, TOOLING

from lockstep.core.installer import (
    conda_provided_distributions,
    install_locked,
    pip_install_command,
    root_install_command,
)
from lockstep.core.installer import main as pypi_main
from lockstep.core.markers import target_environment
from lockstep.core.plan import Plan, PlanError, make_plan, requirement_line, root_requirements
from lockstep.core.poetrylock import LockedPackage, parse_poetry_lock

ROOT = PROJECT


def _pkg(name: str, deps: dict | None = None, **kw) -> LockedPackage:
    return LockedPackage(
        name=name,
        version=kw.get("version", "1.0"),
        groups=kw.get("groups", ("main",)),
        markers=kw.get("markers"),
        hashes=kw.get("hashes", (f"sha256:{name}",)),
        dependencies=deps or {},
        extras=kw.get("extras", {}),
    )


# A torch-shaped graph: the project needs lightning, which needs torch; PyPI's torch needs the
# nvidia and triton wheels. conda provides torch, so neither torch nor its wheels may be installed.
GRAPH = {
    "lightning": _pkg("lightning", {"torch": {"version": ">=2"}, "tqdm": {"version": "*"}}),
    "tqdm": _pkg("tqdm"),
    "torch": _pkg(
        "torch",
        {
            "nvidia-cublas-cu12": {"version": "*"},
            "triton": {"version": "*"},
            "filelock": {"version": "*"},
        },
    ),
    "nvidia-cublas-cu12": _pkg("nvidia-cublas-cu12"),
    "triton": _pkg("triton", {"filelock": {"version": "*"}}),
    "filelock": _pkg("filelock"),
    "pytest": _pkg(
        "pytest",
        {"colorama": {"version": "*", "markers": "sys_platform == 'win32'"}},
        groups=("test",),
    ),
    "colorama": _pkg("colorama", groups=("test",), markers="sys_platform == 'win32'"),
}


def test_plan_leaves_torch_and_its_cuda_wheels_to_conda() -> None:
    plan = make_plan(GRAPH, {"lightning": set()}, ["main"], conda_provided=["torch", "filelock"])
    assert [p.name for p in plan.install] == ["lightning", "tqdm"]
    assert plan.provided_by_conda == ["torch"]
    assert plan.only_needed_by_conda == ["nvidia-cublas-cu12", "triton"]
    assert plan.other_groups == ["colorama", "pytest"]


def test_plan_without_conda_installs_everything_reachable_on_the_target() -> None:
    roots = {"lightning": set(), "pytest": set()}
    linux = make_plan(GRAPH, roots, ["main", "test"], [], target_environment("linux-64", "3.11.10"))
    windows = make_plan(GRAPH, roots, ["main", "test"], [], target_environment("win-64", "3.11.10"))
    assert [p.name for p in windows.install] == ["colorama"] + [p.name for p in linux.install]
    assert "colorama" in linux.other_groups  # its edge holds on win32 only
    assert [p.name for p in linux.install] == [
        "filelock",
        "lightning",
        "nvidia-cublas-cu12",
        "pytest",
        "torch",
        "tqdm",
        "triton",
    ]


def test_optional_dependencies_only_with_their_extra() -> None:
    graph = {
        "app": _pkg("app", {"lib": {"version": "*", "extras": ["fast"]}}),
        "lib": _pkg(
            "lib",
            {
                "speedups": {"version": "*", "optional": True},
                "unused": {"version": "*", "optional": True},
            },
            extras={"fast": ("speedups (>=1)",)},
        ),
        "speedups": _pkg("speedups"),
        "unused": _pkg("unused"),
    }
    plan = make_plan(graph, {"app": set()}, ["main"], [])
    assert [p.name for p in plan.install] == ["app", "lib", "speedups"]


def test_dependency_missing_from_lock_says_relock() -> None:
    with pytest.raises(PlanError, match="not in poetry.lock; run `poetry lock`"):
        make_plan({}, {"requests": set()}, ["main"], [])


def test_requirement_line_has_every_hash_and_no_marker() -> None:
    # Markers are evaluated by the plan: a package not needed on the target gets no line at all.
    package = _pkg(
        "colorama",
        groups=("test",),
        markers={"test": "sys_platform == 'win32'"},
        hashes=("sha256:aa", "sha256:bb"),
        version="0.4.6",
    )
    assert requirement_line(package, ["main", "test"]) == (
        "colorama==0.4.6 \\\n    --hash=sha256:aa \\\n    --hash=sha256:bb"
    )


def test_lock_21_marker_of_one_group_is_dropped_when_another_group_needs_it_always() -> None:
    graph = {
        "pytest": _pkg("pytest", {"colorama": {"version": "*"}}, groups=("dev", "test")),
        "colorama": _pkg("colorama", groups=("dev", "test"), markers={"test": "os_name == 'nt'"}),
    }
    linux = target_environment("linux-64", "3.11.10")
    roots = {"pytest": set()}
    both = make_plan(graph, roots, ["dev", "test"], [], linux, lock_markers=True)
    test = make_plan(graph, roots, ["test"], [], linux, lock_markers=True)
    assert [p.name for p in both.install] == ["colorama", "pytest"]
    assert [p.name for p in test.install] == ["pytest"]


def test_requirement_line_refuses_unhashed_and_vcs() -> None:
    with pytest.raises(PlanError, match="no hashes"):
        requirement_line(_pkg("x", hashes=()), ["main"])
    # the decision (tooling/README.md): refused with the reason and the fix, never installed
    # unchecked; Poetry's own installer would install it
    with pytest.raises(PlanError) as refused:
        requirement_line(_pkg("x", hashes=()), ["main"])
    assert str(refused.value).endswith(
        "poetry.lock has no hashes for it (its index served none when it was locked), so it "
        "cannot be installed with its hashes checked; lock it from an index that serves hashes "
        "(PyPI does: `poetry lock --regenerate`), or move it to environment.yml; nothing was "
        "changed"
    )
    git = LockedPackage("y", "1", ("main",), None, (), {}, {}, source_type="git", source_url="u")
    with pytest.raises(PlanError, match="git sources are not installable with hashes"):
        requirement_line(git, ["main"])


@pytest.mark.parametrize(
    ("folder", "expected"),
    [
        (TOOLING, {"invoke", "pytest", "pytest-mock", "conda-lock", "tomlkit", "tqdm"}),
        # Poetry's own venv (conda-lock 4.0 and Poetry 2.5 need different dulwich)
        (TOOLING / "poetry-cli", {"poetry", "dulwich"}),
    ],
    ids=["tooling", "poetry-cli"],
)
def test_plan_of_the_repository_lock_is_complete_and_consistent(
    folder: Path, expected: set[str]
) -> None:
    data = tomllib.loads((folder / "poetry.lock").read_text())
    packages = parse_poetry_lock(data)
    pyproject = tomllib.loads((folder / "pyproject.toml").read_text())
    groups = ["main", "dev", "test"]
    plan = make_plan(packages, root_requirements(pyproject, groups), groups, [])
    names = {p.name.lower() for p in plan.install}
    assert expected <= names
    for package in plan.install:
        line = requirement_line(package, groups)
        assert line.startswith(f"{package.name}=={package.version}")
        assert "--hash=sha256:" in line


def test_root_requirements_reads_project_and_groups() -> None:
    pyproject = {
        "project": {"dependencies": ["lightning[extra]>=2.4", "numpy"]},
        "tool": {
            "poetry": {
                "group": {
                    "dev": {"dependencies": {"ruff": "^0.8"}},
                    "conda": {"dependencies": {"torch": "2.7.1"}},
                }
            }
        },
    }
    assert root_requirements(pyproject, ["main", "dev"]) == {
        "lightning": {"extra"},
        "numpy": set(),
        "ruff": set(),
    }


def _fake_env(prefix: Path) -> None:
    meta = prefix / "conda-meta"
    meta.mkdir(parents=True)
    records = {
        "pytorch-2.7.1-cuda129_0.json": {
            "name": "pytorch",
            "files": [
                "lib/python3.11/site-packages/torch/__init__.py",
                "lib/python3.11/site-packages/torch-2.7.1.dist-info/METADATA",
            ],
        },
        "typing_extensions-4.12.2-pyh_0.json": {
            "name": "typing_extensions",
            "files": [
                "lib/python3.11/site-packages/typing_extensions-4.12.2.dist-info/INSTALLER",
            ],
        },
        "libcublas-12.9-h_0.json": {"name": "libcublas", "files": ["lib/libcublas.so.12"]},
        "python-3.11.10-hc5c86c4_3_cpython.json": {
            "name": "python",
            "version": "3.11.10",
            "files": ["bin/python3.11", "lib/python3.11/os.py"],
        },
    }
    for name, record in records.items():
        (meta / name).write_text(json.dumps(record))
    (meta / "history").write_text("not json")


def test_conda_provided_distributions(tmp_path: Path) -> None:
    _fake_env(tmp_path)
    assert conda_provided_distributions(tmp_path) == {
        "torch": "pytorch",
        "typing-extensions": "typing_extensions",
    }


def test_pip_commands_are_exact() -> None:
    assert pip_install_command("/e/bin/python", "/tmp/r.txt", ["http://127.0.0.1:1/simple"]) == [
        "/e/bin/python",
        "-m",
        "pip",
        "install",
        "--no-deps",
        "--require-hashes",
        "--no-input",
        "--disable-pip-version-check",
        "--no-warn-script-location",
        "--extra-index-url",
        "http://127.0.0.1:1/simple",
        "-r",
        "/tmp/r.txt",
    ]
    assert root_install_command("/e/bin/python", "/w/proj") == [
        "/e/bin/python",
        "-m",
        "pip",
        "install",
        "--no-deps",
        "--no-build-isolation",
        "--no-input",
        "--disable-pip-version-check",
        "-e",
        "/w/proj",
    ]


def _install_recorded(
    uv: Path | None = None, find_links: str | None = None, project_dir: Path | None = None
) -> list[list[str]]:
    """install_locked with a runner that records each command and the requirement file it read."""
    plan = Plan(
        install=[_pkg("tqdm"), LockedPackage(**{**vars(_pkg("six")), "source_url": "http://i/s"})],
        provided_by_conda=["torch"],
        only_needed_by_conda=["triton"],
    )
    commands: list[list[str]] = []
    read: list[str] = []

    def run(command: list[str]) -> None:
        commands.append(command)
        if "-r" in command:
            read.append(Path(command[command.index("-r") + 1]).read_text())

    reported: list[str] = []
    lines = [requirement_line(p) for p in plan.install]
    install_locked(
        run, "/e/bin/python", plan, lines, {}, uv, find_links, project_dir, reported.append
    )
    assert reported == [
        "lockstep: 2 PyPI packages installed; left to conda: torch, triton",
    ]
    assert read == ["\n".join(lines) + "\n"]
    requirements = commands[0][commands[0].index("-r") + 1]
    assert not Path(requirements).exists()  # the temporary file is gone
    return [c[:-1] if "-r" in c else c for c in commands]  # the temporary file's name dropped


def test_install_locked_by_pip_then_the_project(tmp_path: Path) -> None:
    commands = _install_recorded(project_dir=tmp_path)
    assert commands == [
        pip_install_command("/e/bin/python", "R", ["http://i/s"])[:-1],
        root_install_command("/e/bin/python", str(tmp_path.resolve())),
    ]


def test_install_locked_from_a_bundle_by_pip_alone_and_no_project(tmp_path: Path) -> None:
    uv = tmp_path / "uv"
    commands = _install_recorded(uv=uv, find_links="/b/wheels")
    assert commands == [
        pip_install_command("/e/bin/python", "R", ["http://i/s"], "/b/wheels")[:-1],
    ]


def test_install_locked_by_uv(tmp_path: Path) -> None:
    uv = tmp_path / "uv"
    commands = _install_recorded(uv=uv, project_dir=tmp_path)
    assert commands == [
        [str(uv), "pip", "install", "--python", "/e/bin/python", "--no-deps", "--require-hashes"]
        + ["--extra-index-url", "http://i/s", "-r"],
        [str(uv), "pip", "install", "--python", "/e/bin/python", "--no-deps"]
        + ["--no-build-isolation", "-e", str(tmp_path.resolve())],
    ]


def test_install_locked_with_nothing_to_install_runs_only_the_project(tmp_path: Path) -> None:
    commands: list[list[str]] = []
    reported: list[str] = []
    install_locked(
        commands.append, "/py", Plan(), [], {}, project_dir=tmp_path, report=reported.append
    )
    assert commands == [root_install_command("/py", str(tmp_path.resolve()))]
    assert reported == ["lockstep: 0 PyPI packages installed; left to conda: none"]


def test_cli_plan_on_the_repository_lock(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    _fake_env(tmp_path)
    code = pypi_main(
        [
            "plan",
            "--prefix",
            str(tmp_path),
            "--poetry-lock",
            str(TOOLING / "poetry.lock"),
            "--pyproject",
            str(TOOLING / "pyproject.toml"),
        ]
    )
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert "typing-extensions" in out["provided_by_conda"]
    assert not any(line.startswith("typing-extensions==") for line in out["install"])


def test_cli_reports_a_broken_lock_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    bad = tmp_path / "poetry.lock"
    bad.write_text("[[package]\n")
    code = pypi_main(
        [
            "plan",
            "--prefix",
            str(tmp_path),
            "--poetry-lock",
            str(bad),
            "--pyproject",
            str(TOOLING / "pyproject.toml"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith(f"error: {bad}: invalid TOML") and err.count("\n") == 1


def test_default_groups_are_poetrys_defaults() -> None:
    from lockstep.core.plan import default_groups

    pyproject = {
        "tool": {
            "poetry": {
                "group": {
                    "dev": {"dependencies": {}},
                    "docs": {"optional": True},
                    "conda": {"optional": True},
                    "test": {},
                }
            }
        }
    }
    assert default_groups(pyproject, "conda") == ["main", "dev", "test"]
    assert default_groups({}, "conda") == ["main"]


def test_cli_plans_before_the_env_exists(capsys: pytest.CaptureFixture) -> None:
    lock, pyproject = str(TOOLING / "poetry.lock"), str(TOOLING / "pyproject.toml")
    args = ["plan", "--poetry-lock", lock, "--pyproject", pyproject]
    assert pypi_main([*args, "--python-version", "3.11.10"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert any(line.startswith("typing-extensions==") for line in out["install"])
    assert pypi_main(args) == 1
    err = capsys.readouterr().err
    assert err == "error: give --prefix (an existing env) or --python-version (e.g. 3.11.10)\n"
    assert pypi_main([*args, "--python-version", "3.11.10", "--platform", "linux-32"]) == 1
    assert capsys.readouterr().err.startswith("error: unknown platform 'linux-32'; use one of")


def test_env_python_version_of_a_plain_venv_asks_its_interpreter(tmp_path: Path) -> None:
    from lockstep.core.installer import env_python_version

    with pytest.raises(PlanError, match="no python in this env; pass --python-version"):
        env_python_version(tmp_path)
    python = tmp_path / "bin" / "python"
    python.parent.mkdir()
    python.write_text("#!/bin/sh\necho 3.12.4\n")
    python.chmod(0o755)
    assert env_python_version(tmp_path) == "3.12.4"
    _fake_env(tmp_path)  # a conda env: its conda-meta record answers, no interpreter started
    assert env_python_version(tmp_path) == "3.11.10"


def test_cli_runs_on_the_standard_library_alone() -> None:
    """`python -S` has no site-packages (no packaging): the plan of a real lock still works."""
    import subprocess
    import sys

    corpus = TOOLING / "tests" / "data" / "poetry" / "lerobot-2025-02"
    command = [
        sys.executable,
        "-S",
        "-m",
        "lockstep.core.installer",
        "plan",
        "--python-version",
        "3.12.7",
    ]
    command += ["--poetry-lock", str(corpus / "poetry.lock")]
    command += ["--pyproject", str(corpus / "pyproject.toml")]
    done = subprocess.run(command, capture_output=True, text=True, env={"PYTHONPATH": str(SRC)})
    assert done.returncode == 0, done.stderr
    plan = json.loads(done.stdout)
    assert "torch==2.6.0" in plan["install"] and "zarr==3.0.3" in plan["install"]
