"""A temporary Lockstep project: the starter's code, spec files aimed at the local channel and
index, and one environment in which its tasks, make and Poetry run as a user would run them.

The lifecycle tests and benchmarks/bench_reproduce.py share it, so both measure the same thing.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from tests.paths import PROJECT, copy_tooling

from .channel import CondaPackage, build_channel, default_packages, python_package
from .condastandin.conda_standin import ROOT_VAR
from .distinfo import SITE_PACKAGES
from .helpers import isolated_env, run

REPO = PROJECT
LOCK = "conda-linux-64.lock"
POETRY_LOCK = "poetry.lock"

ENVIRONMENT_YML = """\
# Conda side of the test project: the local channel only, so every solve is offline.
name: {env_name}
channels:
  - {channel}
  - nodefaults
# conda ignores this key; conda-lock and the tasks read it.
platforms:
  - linux-64
dependencies:
  # One minor series; requires-python in pyproject.toml follows it.
  - python=3.11
  # Must not exceed __cuda in virtual-packages.yml.
  - cuda-version=12.6
  # conda's `=2.5` is the 2.5 series; the update tests bump this line.
  - pytorch={pytorch}
  - pip
# conda-lock drops this section; reproduce sets PYTHONNOUSERSITE in conda-meta/state instead.
variables:
  PYTHONNOUSERSITE: "1"
"""

VIRTUAL_PACKAGES_YML = """\
# Replaces conda-lock's linux-64 defaults, so every virtual package is listed (values quoted).
subdirs:
  linux-64:
    packages:
      __unix: "0"
      __linux: "5.15"
      __glibc: "2.35"
      __archspec: "1 x86_64"
      __cuda: "12.9"
"""

PYPROJECT_TOML = """\
# Python side of the test project: Poetry owns tinyapp; the conda pins come from `invoke pin`.

[project]
name = "lifecycle-demo"
version = "0.1.0"
# requires-python is left to `invoke poetry-init`, which derives it from environment.yml.
dependencies = ["tinyapp"]

[tool.poetry]
# The local channel has no poetry-core, so the project itself is never built.
package-mode = false

[[tool.poetry.source]]
name = "local"
url = "{index_url}"
priority = "primary"

# Settings of the tasks (one env per test, so tests never share an env by accident).
[tool.lockstep]
env-name = "{env_name}"
"""


# --------------------------------------------------------------------------- the channel


def user_site_python() -> CondaPackage:
    """The channel's python, but with the user site enabled, as a real conda python has it.

    A pyvenv.cfg with include-system-site-packages = false turns the user site off whatever
    PYTHONNOUSERSITE says, so a user-site test would pass for the wrong reason. With `true` the
    host's site-packages also come after the env's on sys.path; the tests read files, not
    sys.path, so that does not blur what they prove.
    """
    base = python_package()
    cfg = base.files["pyvenv.cfg"].replace(
        b"include-system-site-packages = false", b"include-system-site-packages = true"
    )
    return dataclasses.replace(base, files={**base.files, "pyvenv.cfg": cfg})


def build_project_channel(root: Path) -> Path:
    """The default channel with the user-site python in place of the default one."""
    packages = [p for p in default_packages() if p.name != "python"]
    return build_channel(root, [user_site_python(), *packages])


# --------------------------------------------------------------------------- the environment


def tool_env(state: Path, standin_bin: Path, index_url: str) -> dict[str, str]:
    """Variables for a tool run with every cache, config and env root under ``state``.

    The same isolation as the integration_env fixture, for module-scoped fixtures and the
    benchmark, which cannot use a per-test fixture.
    """
    env = isolated_env(state, standin_bin, index_url, ROOT_VAR)
    env.update(
        TMPDIR=str(state / "tmp"),
        # No GPU here: `conda env create` solves against the host, so declare a driver.
        CONDA_OVERRIDE_CUDA="12.9",
        # Bytecode caches are Python's, not the tasks': without them "no file changed" is exact.
        PYTHONDONTWRITEBYTECODE="1",
    )
    for folder in ("home", "tmp"):
        (state / folder).mkdir(parents=True, exist_ok=True)
    return env


# --------------------------------------------------------------------------- the project


@dataclass(frozen=True)
class Project:
    """A project folder, the env it builds, and the variables its tools run with."""

    root: Path
    env_name: str
    env: Mapping[str, str]

    @property
    def lock(self) -> Path:
        return self.root / LOCK

    @property
    def poetry_lock(self) -> Path:
        return self.root / POETRY_LOCK

    @property
    def pyproject(self) -> Path:
        return self.root / "pyproject.toml"

    @property
    def environment_yml(self) -> Path:
        return self.root / "environment.yml"

    @property
    def conda_root(self) -> Path:
        return Path(self.env[ROOT_VAR])

    @property
    def prefix(self) -> Path:
        return self.conda_root / "envs" / self.env_name

    @property
    def tmp(self) -> Path:
        return Path(self.env["TMPDIR"])

    def run(
        self, *cmd: str | os.PathLike[str], expect_rc: int | None = 0, cwd: Path | None = None
    ) -> subprocess.CompletedProcess[str]:
        """A command in the project folder (or ``cwd``), exit code asserted."""
        return run(cmd, cwd or self.root, self.env, expect_rc=expect_rc, timeout=300)

    def invoke(
        self, *args: str, expect_rc: int | None = 0, cwd: Path | None = None
    ) -> subprocess.CompletedProcess[str]:
        """A task as a user runs it (`invoke TASK ...`), through the venv's invoke."""
        return self.run(sys.executable, "-m", "invoke", *args, expect_rc=expect_rc, cwd=cwd)

    def make(self, *args: str, expect_rc: int | None = 0) -> subprocess.CompletedProcess[str]:
        """A make target with the project's env name."""
        return self.run("make", f"ENV_NAME={self.env_name}", *args, expect_rc=expect_rc)

    def copy(self, root: Path, state: Path, standin_bin: Path, only: Iterable[str] = ()) -> Project:
        """The project's files (or just the paths in ``only``) in ``root``, with fresh state.

        Fresh state means another machine: no env, no caches, an empty conda root.
        """
        if only:
            root.mkdir(parents=True)
            for name in only:
                source = self.root / name
                if source.is_dir():
                    shutil.copytree(source, root / name)
                else:
                    shutil.copy2(source, root / name)
        else:
            shutil.copytree(self.root, root)
        return Project(root, self.env_name, tool_env(state, standin_bin, self.env["PIP_INDEX_URL"]))

    def use_installer(self, installer: str) -> None:
        """[tool.lockstep] installer = ... (rattler, frontend or auto) in pyproject.toml."""
        text = self.pyproject.read_text(encoding="utf-8")
        lines = [ln for ln in text.splitlines(keepends=True) if not ln.startswith("installer = ")]
        setting = f'[tool.lockstep]\ninstaller = "{installer}"\n'
        self.pyproject.write_text("".join(lines).replace("[tool.lockstep]\n", setting), "utf-8")

    def without_python_tools(self) -> Project:
        """The same project with the test venv (invoke, Poetry, conda-lock) off PATH."""
        venv_bin = str(Path(sys.executable).parent)
        path = [p for p in self.env["PATH"].split(os.pathsep) if p != venv_bin]
        return dataclasses.replace(self, env={**self.env, "PATH": os.pathsep.join(path)})


def tooling_venv(root: Path) -> Path:
    """A tooling venv as `bootstrap-venv.sh` leaves it (stamp not included), whose packages are
    the test venv's: a run then needs no download of Poetry and conda-lock."""
    run([sys.executable, "-m", "venv", "--without-pip", str(root)], root.parent, os.environ)
    site = next(root.glob("lib/python3.*/site-packages"))
    (site / "test-tooling.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return root


def copy_starter(dest: Path) -> None:
    """The starter's tooling (tasks.py, the Makefile, tooling/'s package and scripts) into
    ``dest``."""
    copy_tooling(dest)


def write_spec_files(
    root: Path, channel: Path, index_url: str, env_name: str, pytorch: str = "2.5"
) -> None:
    """environment.yml, virtual-packages.yml and pyproject.toml of a new project."""
    channel_uri = channel.as_uri()
    environment = ENVIRONMENT_YML.format(env_name=env_name, channel=channel_uri, pytorch=pytorch)
    (root / "environment.yml").write_text(environment, encoding="utf-8")
    (root / "virtual-packages.yml").write_text(VIRTUAL_PACKAGES_YML, encoding="utf-8")
    pyproject = PYPROJECT_TOML.format(index_url=index_url, env_name=env_name)
    (root / "pyproject.toml").write_text(pyproject, encoding="utf-8")


def create_project(
    root: Path, state: Path, channel: Path, standin_bin: Path, index_url: str, env_name: str
) -> Project:
    """A new project in ``root`` (state under ``state``) with no env and no lock yet."""
    copy_starter(root)
    write_spec_files(root, channel, index_url, env_name)
    return Project(root, env_name, tool_env(state, standin_bin, index_url))


def set_pytorch_spec(project: Project, spec: str) -> None:
    """Change the pytorch line of environment.yml, as a user bumping a version would."""
    text = project.environment_yml.read_text(encoding="utf-8")
    lines = [
        f"  - pytorch={spec}" if ln.startswith("  - pytorch=") else ln for ln in text.split("\n")
    ]
    project.environment_yml.write_text("\n".join(lines), encoding="utf-8")


# --------------------------------------------------------------------------- reading results


def file_hashes(root: Path, skip: Iterable[str] = ()) -> dict[str, str]:
    """sha256 of every file (and symlink target) under ``root``, by relative path."""
    skipped = set(skip)
    hashes: dict[str, str] = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if skipped & set(rel.parts):
            continue
        if path.is_symlink():
            hashes[str(rel)] = "-> " + os.readlink(path)
        elif path.is_file():
            hashes[str(rel)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return hashes


def lock_records(lock: Path) -> set[tuple[str, str, str, str, str]]:
    """(name, version, build, md5, url) of every line of an explicit lock."""
    records = set()
    for line in lock.read_text(encoding="utf-8").splitlines():
        if not line or line.startswith(("#", "@")):
            continue
        url, _, md5 = line.partition("#")
        name, version, build = url.rsplit("/", 1)[1].removesuffix(".tar.bz2").rsplit("-", 2)
        records.add((name, version, build, md5, url))
    return records


def conda_meta_records(prefix: Path) -> set[tuple[str, str, str, str, str]]:
    """(name, version, build, md5, url) of every package conda-meta says is installed."""
    records = set()
    for path in (prefix / "conda-meta").glob("*.json"):
        meta = json.loads(path.read_text(encoding="utf-8"))
        records.add((meta["name"], meta["version"], meta["build"], meta["md5"], meta["url"]))
    return records


def conda_owned_files(prefix: Path) -> dict[str, str]:
    """Every file conda installed, relative to the prefix -> the conda package that owns it."""
    owned = {}
    for path in (prefix / "conda-meta").glob("*.json"):
        meta = json.loads(path.read_text(encoding="utf-8"))
        owned.update(dict.fromkeys(meta["files"], meta["name"]))
    return owned


@dataclass(frozen=True)
class Distribution:
    """One *.dist-info folder of the env's site-packages."""

    name: str  # normalised
    version: str
    installer: str
    folder: Path


def distributions(prefix: Path) -> list[Distribution]:
    """Every Python distribution installed in the env, read from its dist-info folders."""
    found = []
    for folder in sorted((prefix / SITE_PACKAGES).glob("*.dist-info")):
        metadata = dict(
            line.split(": ", 1)
            for line in (folder / "METADATA").read_text(encoding="utf-8").splitlines()
            if ": " in line
        )
        installer = folder / "INSTALLER"
        found.append(
            Distribution(
                name=normalize(metadata["Name"]),
                version=metadata["Version"],
                installer=installer.read_text().strip() if installer.exists() else "",
                folder=folder,
            )
        )
    return found


def poetry_lock_versions(path: Path) -> dict[str, str]:
    """Normalised name -> version of every package of a poetry.lock."""
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    return {normalize(p["name"]): p["version"] for p in data.get("package", [])}


def normalize(name: str) -> str:
    """PEP 503 normal form."""
    return name.lower().replace("_", "-").replace(".", "-")
