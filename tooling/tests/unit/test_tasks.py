"""Tasks with the shell mocked: the exact commands, and bad input stopping with one line."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest
import tasks
from invoke import Context, Exit, Result
from tests.paths import PROJECT, STARTER_0_1, TOOLING
from tests.testdata import context_at, generated_lock_text, realistic_packages

ROOT = PROJECT
PROJECT_FILES = ["pyproject.toml", "environment.yml", "virtual-packages.yml", "poetry.lock"]
BIN = "/opt/miniforge/bin"


class Shell(Context):
    """A Context whose run records argument lists and answers from handlers."""

    def __init__(
        self,
        handlers: dict[str, Callable[[list[str]], Result]] | None = None,
        root: Path = ROOT,
    ) -> None:
        super().__init__(context_at(root).config)
        self.calls: list[list[str]] = []
        self.envs: list[dict] = []
        self.handlers = handlers or {}

    def run(self, command: str, **kwargs):  # type: ignore[override]
        argv = shlex.split(command)
        self.calls.append(argv)
        self.envs.append(kwargs.get("env", {}))
        for prefix, handler in self.handlers.items():
            if command.startswith(prefix):
                return handler(argv)
        return Result(stdout="", exited=0)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the starter's spec files (as of tooling 0.1) that the tasks work on."""
    for name in PROJECT_FILES:
        shutil.copy(STARTER_0_1 / name, tmp_path / name)
    monkeypatch.setattr(tasks, "_machine_platform", lambda: "linux-64")
    return tmp_path


@pytest.fixture
def on_path(monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """Pretend which frontends are installed."""

    def install(*names: str) -> None:
        found = {n: f"{BIN}/{n}" for n in names}
        monkeypatch.setattr(tasks.shutil, "which", lambda name: found.get(name))

    install("conda")
    return install


def _snapshot(project: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(project.iterdir()) if p.is_file()}


def _envs(*names: str) -> Callable[[list[str]], Result]:
    return lambda argv: Result(json.dumps({"envs": [f"{BIN}/../envs/{n}" for n in names]}))


def _write_lock(text: str) -> Callable[[list[str]], Result]:
    def solve(argv: list[str]) -> Result:
        template = argv[argv.index("--filename-template") + 1]
        Path(template.format(platform="linux-64")).write_text(text)
        return Result(exited=0)

    return solve


LOCK_TEXT = generated_lock_text(realistic_packages(60))


# ----------------------------------------------------------------------------- env-create


def _engine(action: str, project: Path, *options: str) -> list[str]:
    return [
        sys.executable,
        "-s",
        "-m",
        "lockstep.core.engine",
        action,
        "--project-dir",
        str(project),
        *options,
    ]


def test_env_create_goes_through_the_engine(project: Path, on_path) -> None:
    shell = Shell(root=project)
    tasks.env_create(shell)
    assert shell.calls == [
        _engine(
            "create",
            project,
            "--name",
            "lockstep",
            "--frontend",
            f"{BIN}/conda",
            "--channel",
            "conda-forge",
            "--channel",
            "nodefaults",
            "--spec",
            "python=3.11",
            "--spec",
            "cuda-version=12.9",
            "--spec",
            "pytorch=*=cuda*",
            "--spec",
            "torchvision",
            "--spec",
            "torchaudio",
            "--spec",
            "pip",
            "--spec",
            "uv",
            "--spec",
            "poetry=2.*",
            "--spec",
            "conda-lock=4.*",
            "--spec",
            "invoke=3.*",
            "--spec",
            "pyyaml",
            "--spec",
            "tomlkit",
            "--env-var",
            "PYTHONNOUSERSITE=1",
            "--virtual",
            "__unix=0",
            "--virtual",
            "__linux=5.10",
            "--virtual",
            "__glibc=2.28",
            "--virtual",
            "__archspec=1 x86_64",
            "--virtual",
            "__cuda=12.9",
        )
    ]
    # The engine runs from the tooling's package, whatever the project's src/ holds.
    assert shell.envs[0]["PYTHONPATH"] == str(TOOLING / "src")


def test_env_create_force_and_micromamba(project: Path, on_path) -> None:
    on_path("micromamba")
    shell = Shell(root=project)
    tasks.env_create(shell, name="exp-1", force=True)
    command = shell.calls[0]
    assert command[7:11] == ["--name", "exp-1", "--frontend", f"{BIN}/micromamba"]
    assert command[-1] == "--force"


# ----------------------------------------------------------------------------- lock


def test_lock_writes_the_lock_from_conda_lock(project: Path, on_path) -> None:
    shell = Shell({"conda-lock": _write_lock(LOCK_TEXT)}, root=project)
    tasks.lock(shell)
    argv = shell.calls[0]
    template = argv[argv.index("--filename-template") + 1]
    assert argv == [
        "conda-lock",
        "lock",
        "--kind",
        "explicit",
        "--file",
        str(project / "environment.yml"),
        "--platform",
        "linux-64",
        "--virtual-package-spec",
        str(project / "virtual-packages.yml"),
        "--conda",
        f"{BIN}/conda",
        "--filename-template",
        template,
    ]
    assert not template.startswith(str(project)), "conda-lock must write into a scratch folder"
    assert (project / "conda-linux-64.lock").read_text() == LOCK_TEXT


def test_failed_solve_writes_nothing(project: Path, on_path) -> None:
    (project / "conda-linux-64.lock").write_text(LOCK_TEXT)
    before = _snapshot(project)
    shell = Shell({"conda-lock": lambda argv: Result(exited=1)}, root=project)
    with pytest.raises(
        Exit,
        match=r"conda-lock could not solve environment.yml \(conda's reason is above; "
        r"LOCKSTEP_VERBOSE=1 shows conda-lock's whole output\); no lock file",
    ):
        tasks.lock(shell)
    assert _snapshot(project) == before


def test_lock_prefers_conda_and_refuses_mamba_2_6(project: Path, on_path) -> None:
    on_path("mamba")
    shell = Shell({f"{BIN}/mamba --version": lambda argv: Result("mamba 2.6.0\n")}, root=project)
    with pytest.raises(Exit, match="cannot solve with mamba 2.6.0"):
        tasks.lock(shell)
    assert [c[0] for c in shell.calls] == [f"{BIN}/mamba"]


def test_lock_with_old_mamba(project: Path, on_path) -> None:
    on_path("mamba")
    shell = Shell(
        {
            f"{BIN}/mamba --version": lambda a: Result("2.5.0\n"),
            "conda-lock": _write_lock(LOCK_TEXT),
        },
        root=project,
    )
    tasks.lock(shell)
    assert shell.calls[1][shell.calls[1].index("--conda") + 1] == f"{BIN}/mamba"


def test_lock_refuses_a_pip_section(project: Path, on_path) -> None:
    env = project / "environment.yml"
    env.write_text(
        env.read_text().replace("  - tomlkit\n", "  - tomlkit\n  - pip:\n    - requests\n")
    )
    before = _snapshot(project)
    shell = Shell(root=project)
    with pytest.raises(Exit, match="a 'pip:' section cannot go into an explicit lock"):
        tasks.lock(shell)
    assert shell.calls == [] and _snapshot(project) == before


def test_malformed_environment_yml(project: Path, on_path) -> None:
    (project / "environment.yml").write_text("dependencies:\n  - python=3.11\n - x\n")
    before = _snapshot(project)
    with pytest.raises(Exit) as info:
        tasks.lock(Shell(root=project))
    assert "environment.yml: invalid YAML at line 3" in str(info.value.message)
    assert _snapshot(project) == before


def test_no_frontend_on_path(project: Path, on_path) -> None:
    on_path()
    with pytest.raises(Exit, match="conda-lock needs conda"):
        tasks.lock(Shell(root=project))
    with pytest.raises(Exit, match="no conda, mamba or micromamba on PATH"):
        tasks.env_create(Shell(root=project))


# ----------------------------------------------------------------------------- pin


def _with_lock(project: Path) -> None:
    (project / "conda-linux-64.lock").write_text(LOCK_TEXT)


def test_pin_dry_run_shows_the_diff_and_writes_nothing(project: Path, on_path, capsys) -> None:
    _with_lock(project)
    before = _snapshot(project)
    shell = Shell(root=project)
    tasks.pin(shell, dry_run=True)
    out = capsys.readouterr().out
    assert '+torch = "2.7.1"' in out and '+torchvision = "0.22.0"' in out
    assert shell.calls == [] and _snapshot(project) == before


def test_pin_writes_pins_and_relocks_in_a_scratch_copy(project: Path, on_path) -> None:
    _with_lock(project)
    shell = Shell(root=project)
    tasks.pin(shell)
    [argv] = shell.calls
    assert argv[:2] == ["poetry", "--directory"] and argv[3:] == ["lock"]
    assert argv[2] != str(project)
    text = (project / "pyproject.toml").read_text()
    pins = tomllib.loads(text)["tool"]["poetry"]["group"]["conda"]
    # filelock, poetry and typing-extensions: conda provides them and the repository's
    # poetry.lock has them (poetry through the test group).
    assert pins == {
        "optional": True,
        "dependencies": {
            "filelock": "3.16.1",
            "poetry": "2.1.1",
            "torch": "2.7.1",
            "torchaudio": "2.7.1",
            "torchvision": "0.22.0",
            "typing-extensions": "4.12.2",
        },
    }
    assert text.startswith("# Python side of the Lockstep environment.")
    assert not Path(argv[2]).exists(), "scratch copy removed"


def test_pin_locks_again_when_poetry_brings_conda_packages(project: Path, on_path) -> None:
    _with_lock(project)
    (project / "poetry.lock").unlink()

    def poetry_lock(argv: list[str]) -> Result:
        # Poetry's answer, stood in by the repository's real lock of Poetry itself: it holds
        # poetry, filelock and typing-extensions, which conda provides too.
        shutil.copy(TOOLING / "poetry-cli" / "poetry.lock", Path(argv[2]) / "poetry.lock")
        return Result()

    shell = Shell({"poetry": poetry_lock}, root=project)
    tasks.pin(shell)
    assert len(shell.calls) == 2
    pins = tomllib.loads((project / "pyproject.toml").read_text())["tool"]["poetry"]["group"]
    assert set(pins["conda"]["dependencies"]) == {
        "filelock",
        "poetry",
        "torch",
        "torchaudio",
        "torchvision",
        "typing-extensions",
    }


def test_pin_keeps_files_when_poetry_lock_fails(project: Path, on_path) -> None:
    _with_lock(project)
    before = _snapshot(project)
    with pytest.raises(
        Exit, match="`poetry lock` failed; pyproject.toml and poetry.lock were left"
    ):
        tasks.pin(Shell({"poetry": lambda a: Result(exited=1)}, root=project))
    assert _snapshot(project) == before


def test_pin_without_lock(project: Path, on_path) -> None:
    with pytest.raises(Exit, match="conda-linux-64.lock: lock file not found"):
        tasks.pin(Shell(root=project))


def test_pin_from_installed_env(project: Path, on_path, tmp_path_factory) -> None:
    prefix = tmp_path_factory.mktemp("envs") / "lockstep"
    (prefix / "conda-meta").mkdir(parents=True)
    (prefix / "conda-meta" / "pytorch-2.6.0-cuda_0.json").write_text(
        json.dumps({"name": "pytorch", "version": "2.6.0"})
    )
    # conda 26's answers: the env is named by envs_details, not by its folder.
    details = {"envs_details": {str(prefix): {"name": "lockstep"}}}
    info = {"envs_dirs": ["/elsewhere/envs"], "root_prefix": "/opt/miniforge"}
    shell = Shell(
        {
            f"{BIN}/conda env list": lambda a: Result(
                json.dumps({"envs": [str(prefix)], **details})
            ),
            f"{BIN}/conda info": lambda a: Result(json.dumps(info)),
        },
        root=project,
    )
    tasks.pin(shell, from_env=True, no_lock=True)
    assert (
        '[tool.poetry.group.conda.dependencies]\ntorch = "2.6.0"'
        in (project / "pyproject.toml").read_text()
    )


# ----------------------------------------------------------------------------- reproduce


def test_reproduce_runs_the_engine(project: Path, on_path) -> None:
    _with_lock(project)
    shell = Shell(root=project)
    tasks.reproduce(shell)
    assert shell.calls == [
        _engine("reproduce", project, "--name", "lockstep", "--frontend", f"{BIN}/conda")
    ]


def test_reproduce_locked_never_locks(project: Path, on_path) -> None:
    shell = Shell(root=project)
    tasks.reproduce(shell, locked=True, force=True)
    assert shell.calls == [
        _engine(
            "reproduce",
            project,
            "--name",
            "lockstep",
            "--frontend",
            f"{BIN}/conda",
            "--force",
            "--locked",
        )
    ]


def test_reproduce_without_a_lock_locks_and_pins_first(project: Path, on_path, capsys) -> None:
    shell = Shell({"conda-lock": _write_lock(LOCK_TEXT)}, root=project)
    tasks.reproduce(shell)
    tools = [c[0] if c[0] != sys.executable else c[4] for c in shell.calls]
    # The CUDA lock, then the CPU variant's (a free solve, one at the CUDA lock's versions).
    assert tools == ["conda-lock", "conda-lock", "conda-lock", "poetry", "reproduce"]
    assert (project / "conda-linux-64.lock").read_text() == LOCK_TEXT
    out = capsys.readouterr().out
    assert "no conda-linux-64.lock yet: locking environment.yml, then pinning" in out
    assert out.splitlines()[-1] == (
        "lockstep: first locks made: commit conda-linux-64.lock, conda-linux-64-cpu.lock, "
        "pyproject.toml and poetry.lock"
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "my env"}, "invalid env name 'my env'"),
        ({"name": "x'; touch pwned; '"}, "invalid env name"),
        ({"name": ".."}, "invalid env name '..'"),
        ({"frontend": "pip"}, "frontend 'pip' is not one of"),
    ],
    ids=["space-in-name", "injection", "dot-dot", "bad-frontend"],
)
def test_reproduce_bad_input(project: Path, on_path, kwargs, message) -> None:
    _with_lock(project)
    before = _snapshot(project)
    shell = Shell(root=project)
    with pytest.raises(Exit) as info:
        tasks.reproduce(shell, **kwargs)
    assert message in info.value.message
    assert "\n" not in info.value.message and info.value.code == 1
    assert shell.calls == [] and _snapshot(project) == before


def test_reproduce_with_no_frontend(project: Path, on_path) -> None:
    _with_lock(project)
    on_path()
    with pytest.raises(Exit, match="no conda, mamba or micromamba on PATH"):
        tasks.reproduce(Shell(root=project))


# ----------------------------------------------------------------------------- update


def test_update_failed_solve_changes_nothing(project: Path, on_path) -> None:
    _with_lock(project)
    before = _snapshot(project)
    shell = Shell({"conda-lock": lambda a: Result(exited=1)}, root=project)
    with pytest.raises(Exit, match="could not solve"):
        tasks.update(shell)
    assert _snapshot(project) == before
    recover, solve = shell.calls
    assert recover == _engine(
        "recover", project, "--name", "lockstep", "--frontend", f"{BIN}/conda"
    )
    assert solve[0] == "conda-lock"


def test_update_hands_env_and_files_to_the_engine_together(project: Path, on_path, capsys) -> None:
    _with_lock(project)
    before = _snapshot(project)
    bumped = LOCK_TEXT.replace("pytorch-2.7.1-", "pytorch-2.8.0-")
    seen: dict[str, str] = {}

    def engine(argv: list[str]) -> Result:
        pairs = [argv[i + 1].split("=", 1) for i, a in enumerate(argv) if a == "--commit"]
        seen.update({Path(dest).name: Path(source).read_text() for dest, source in pairs})
        return Result(exited=0)

    shell = Shell(
        {
            "conda-lock": _write_lock(bumped),
            f"{sys.executable} -s -m lockstep.core.engine reproduce": engine,
        },
        root=project,
    )
    tasks.update(shell)
    _recover, _solve, _cpu_free, _cpu_held, poetry_lock, info, rebuild = shell.calls
    assert info == [f"{BIN}/conda", "info", "--json"]  # the package cache, for archive sizes
    assert poetry_lock[:2] == ["poetry", "--directory"] and poetry_lock[3:] == ["lock"]
    assert rebuild[7:11] == ["--name", "lockstep", "--frontend", f"{BIN}/conda"]
    options = dict(zip(rebuild[11:19:2], rebuild[12:19:2], strict=True))
    scratch = Path(options["--conda-lock"]).parent
    assert options == {
        "--conda-lock": str(scratch / "conda-linux-64.lock"),
        "--cpu-lock": str(scratch / "cpu-linux-64-1" / "conda-linux-64-cpu.lock"),
        "--poetry-lock": str(scratch / "project" / "poetry.lock"),
        "--pyproject": str(scratch / "project" / "pyproject.toml"),
    }
    assert seen["conda-linux-64.lock"] == bumped
    assert 'torch = "2.8.0"' in seen["pyproject.toml"]
    # The task itself writes nothing: the engine writes the files once the env is complete.
    assert _snapshot(project) == before
    assert re.search(r"conda pytorch +2\.7\.1 -> 2\.8\.0", capsys.readouterr().out)


def test_update_failed_rebuild_keeps_every_file(project: Path, on_path) -> None:
    _with_lock(project)
    before = _snapshot(project)
    bumped = LOCK_TEXT.replace("pytorch-2.7.1-", "pytorch-2.8.0-")

    def broken(argv: list[str]) -> Result:
        raise Exit("reproduce failed", code=1)

    engine = f"{sys.executable} -s -m lockstep.core.engine reproduce"
    shell = Shell({"conda-lock": _write_lock(bumped), engine: broken}, root=project)
    with pytest.raises(Exit):
        tasks.update(shell)
    assert _snapshot(project) == before


def test_update_dry_run_reports_and_keeps_files(project: Path, on_path, capsys) -> None:
    _with_lock(project)
    before = _snapshot(project)
    shell = Shell(
        {"conda-lock": _write_lock(LOCK_TEXT.replace("numpy-2.1.3-", "numpy-2.2.0-"))}, root=project
    )
    tasks.update(shell, dry_run=True)
    assert re.search(r"conda numpy +2\.1\.3 -> 2\.2\.0", capsys.readouterr().out)
    assert _snapshot(project) == before
    assert not any("lockstep.core.engine" in c for c in shell.calls)


# ----------------------------------------------------------------------------- others


def test_verify_gpu_runs_the_module_in_the_env(project: Path, on_path) -> None:
    shell = Shell(root=project)
    tasks.verify_gpu(shell, allow_cpu=True, json=True)
    assert shell.calls == [
        [
            f"{BIN}/conda",
            "run",
            "--no-capture-output",
            "--name",
            "lockstep",
            "python",
            "-m",
            "lockstep.gpu",
            "--allow-cpu",
            "--json",
        ]
    ]
    assert shell.envs[0]["PYTHONPATH"].endswith("src")


def _listing(prefix: Path) -> dict[str, Callable[[list[str]], Result]]:
    """The frontend's answers for one existing env at ``prefix`` (named by conda 26's details)."""
    envs = {"envs": [str(prefix)], "envs_details": {str(prefix): {"name": prefix.name}}}
    info = {"envs_dirs": [str(prefix.parent)], "root_prefix": "/opt/miniforge"}
    return {
        f"{BIN}/conda env list": lambda a: Result(json.dumps(envs)),
        f"{BIN}/conda info": lambda a: Result(json.dumps(info)),
    }


@pytest.mark.parametrize(
    ("remainder", "pytest_args"),
    [("", []), ("-k 'seed or loss' -x", ["-k", "seed or loss", "-x"])],
    ids=["plain", "after-dashes"],
)
def test_test_runs_the_users_tests_in_the_env(
    project: Path, on_path, remainder: str, pytest_args: list[str]
) -> None:
    shell = Shell(_listing(Path("/opt/miniforge/envs/lockstep")), root=project)
    shell.remainder = remainder
    tasks.test(shell)
    assert shell.calls[-1] == [
        f"{BIN}/conda",
        "run",
        "--no-capture-output",
        "--name",
        "lockstep",
        "--cwd",
        str(project),
        "python",
        "-m",
        "pytest",
        *pytest_args,
    ]
    # The tooling stays out: no PYTHONPATH to tooling/src, the tooling venv's bin not on PATH.
    assert "PYTHONPATH" not in shell.envs[-1]
    assert shell.envs[-1]["PATH"].split(":")[0] != str(Path(sys.executable).parent)


def test_test_names_the_env_and_the_frontend(project: Path, on_path) -> None:
    on_path("micromamba")
    shell = Shell(
        {
            f"{BIN}/micromamba env list": lambda a: Result(
                json.dumps({"envs": ["/opt/mm/envs/mine"]})
            ),
            f"{BIN}/micromamba info": lambda a: Result(
                json.dumps({"envs_dirs": ["/opt/mm/envs"], "root_prefix": "/opt/mm"})
            ),
        },
        root=project,
    )
    tasks.test(shell, name="mine", frontend="micromamba")
    assert shell.calls[-1][:6] == [
        f"{BIN}/micromamba",
        "run",
        "--name",
        "mine",
        "--cwd",
        str(project),
    ]


def test_test_without_the_env_says_to_reproduce_first(project: Path, on_path) -> None:
    shell = Shell(_listing(Path("/opt/miniforge/envs/other")), root=project)
    with pytest.raises(Exit) as raised:
        tasks.test(shell)
    assert raised.value.message == "error: env 'lockstep' not found; run `make reproduce` first"
    assert not any("pytest" in call for call in shell.calls)


def test_docker_build_tags_the_image_with_the_env_name(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for arg in tasks.commands.DOCKER_BUILD_ARGS:
        monkeypatch.delenv(arg, raising=False)
    monkeypatch.setenv("VARIANT", "cpu")
    monkeypatch.setenv("FRONTEND", "")  # make exports it empty: not passed, the default holds
    shell = Shell(root=project)
    tasks.docker_build(shell)
    tasks.docker_build(shell, image="mine:dev")
    build = ["--build-arg", "VARIANT", str(project)]
    assert shell.calls == [
        ["docker", "build", "--tag", "lockstep", *build],
        ["docker", "build", "--tag", "mine:dev", *build],
    ]


def test_every_command_runs_with_the_user_site_off(project: Path, on_path) -> None:
    shell = Shell(root=project)
    shell.config.run.env = tasks.ns.configuration()["run"]["env"]
    tasks.verify_gpu(shell)
    _with_lock(project)
    tasks.reproduce(shell)
    assert [e.get("PYTHONNOUSERSITE") for e in shell.envs] == ["1", "1"]


def test_poetry_init_is_idempotent_on_the_repository(project: Path, capsys) -> None:
    before = _snapshot(project)
    tasks.poetry_init(Shell(root=project))
    assert "nothing to change" in capsys.readouterr().out
    assert _snapshot(project) == before


def test_poetry_init_repairs_requires_python(project: Path, capsys) -> None:
    pyproject = project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('">=3.11,<3.12"', '">=3.8"', 1))
    tasks.poetry_init(Shell(root=project))
    assert 'requires-python = ">=3.11,<3.12"' in pyproject.read_text()
    assert "set requires-python '>=3.8' -> '>=3.11,<3.12'" in capsys.readouterr().out


def test_poetry_init_runs_poetry_init_without_pyproject(project: Path) -> None:
    (project / "pyproject.toml").unlink()
    shell = Shell(root=project)

    def init(argv: list[str]) -> Result:
        (project / "pyproject.toml").write_text('[project]\nname = "x"\nversion = "0.1.0"\n')
        return Result()

    shell.handlers["poetry init"] = init
    tasks.poetry_init(shell, name="My_Project")
    assert shell.calls[0] == [
        "poetry",
        "init",
        "--no-interaction",
        "--name",
        "my-project",
        "--python",
        ">=3.11,<3.12",
    ]
    assert "package-mode = false" in (project / "pyproject.toml").read_text()


def test_malformed_pyproject_stops_every_task(project: Path, on_path) -> None:
    (project / "pyproject.toml").write_text("[tool.lockstep\nenv-name = 1\n")
    with pytest.raises(Exit) as info:
        tasks.reproduce(Shell(root=project))
    assert "pyproject.toml: invalid TOML" in info.value.message
    assert "line 1" in info.value.message
