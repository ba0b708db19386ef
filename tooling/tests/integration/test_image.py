"""The Dockerfile built for real: buildah with chroot isolation, no image registry.

The base image is made here with debootstrap from the machine's own Debian mirror (read from its
apt sources at run time), once per session. The conda frontend inside is the py-rattler stand-in
(a test double of the CLI), the channel and the wheel index are served on 127.0.0.1. The test
builds the starter's Dockerfile from the locks, imports torch and runs the GPU check with
--allow-cpu inside the image, and proves with doctor that the env inside is the locked one.

Needs root, buildah and debootstrap (`apt-get install -y podman buildah debootstrap`, as
.ci/run does) and about a minute; LOCKSTEP_SKIP_IMAGE=1 skips it (or `-m "not image"`).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from lockstep.core.variables import SKIP_IMAGE

from .channel import (
    PYTORCH_VERSIONS,
    build_channel,
    default_packages,
    python_package,
    pytorch_package,
)
from .condastandin.conda_standin import ROOT_VAR
from .helpers import run
from .project import REPO, Project, create_project, lock_records
from .pyindex import PackageIndex, serve_index

pytestmark = [pytest.mark.integration, pytest.mark.image]

SKIP_VAR = SKIP_IMAGE.name
ENV_PREFIX = "/opt/conda"
IMAGE_PYTHON = "/usr/bin/python3.11"
# The image's user: the id the Dockerfile runs as (mambauser of the default base image).
USER_ID = 57439
STANDIN_DIR = "/opt/standin"
INCLUDE = ("--include=python3.11,ca-certificates",)


def _why_not() -> str | None:
    if os.environ.get(SKIP_VAR) == "1":
        return f"{SKIP_VAR}=1"
    if os.geteuid() != 0:
        return "debootstrap and buildah's chroot isolation need root"
    missing = [t for t in ("buildah", "debootstrap") if shutil.which(t) is None]
    if missing:
        return f"{', '.join(missing)} not installed (apt-get install -y podman buildah debootstrap)"
    return None


@pytest.fixture(scope="session")
def can_build() -> None:
    reason = _why_not()
    if reason:
        pytest.skip(reason)


# --------------------------------------------------------------------------- the machine's mirror


def apt_mirror(
    sources_dir: Path = Path("/etc/apt/sources.list.d"),
    sources_list: Path = Path("/etc/apt/sources.list"),
) -> tuple[str, str] | None:
    """(mirror URL, suite) of the machine's main distribution archive, from its apt sources
    (deb822 *.sources first, then one-line sources.list), or None."""
    for path in sorted(sources_dir.glob("*.sources")):
        for stanza in path.read_text(encoding="utf-8").split("\n\n"):
            fields = dict(
                (key.strip(), value.strip())
                for key, _, value in (line.partition(":") for line in stanza.splitlines())
                if value and not key.startswith("#")
            )
            uris, suites = fields.get("URIs", "").split(), fields.get("Suites", "").split()
            is_deb = fields.get("Types", "deb").split()[0] == "deb"
            if is_deb and uris and suites and "security" not in uris[0]:
                return uris[0], suites[0]
    if sources_list.is_file():
        for line in sources_list.read_text(encoding="utf-8").splitlines():
            words = re.sub(r"\[[^]]*\]", "", line).split()
            if len(words) >= 3 and words[0] == "deb" and "security" not in words[1]:
                return words[1], words[2]
    return None


# --------------------------------------------------------------------------- buildah


@dataclass(frozen=True)
class Buildah:
    """buildah with a storage of its own (no other image on the machine is touched)."""

    root: Path

    def command(self, *args: str | os.PathLike[str]) -> list[str]:
        return [
            "buildah",
            "--root",
            str(self.root / "storage"),
            "--runroot",
            str(self.root / "run"),
            *(os.fspath(a) for a in args),
        ]

    def __call__(self, *args: str | os.PathLike[str], timeout: float = 600) -> str:
        done = run(self.command(*args), self.root, dict(os.environ), timeout=timeout)
        return done.stdout.strip()

    def run_in(self, image: str, argv: Sequence[str], env: Sequence[str] = ()) -> str:
        """A command inside a container of ``image``, as its user, with chroot isolation."""
        container = self("from", "--pull=never", "--quiet", image)
        try:
            options = [x for e in env for x in ("--env", e)]
            return self("run", "--isolation", "chroot", *options, container, "--", *argv)
        finally:
            self("rm", container)


@pytest.fixture(scope="session")
def buildah(tmp_path_factory: pytest.TempPathFactory, can_build: None) -> Buildah:
    return Buildah(tmp_path_factory.mktemp("buildah"))


@dataclass(frozen=True)
class Base:
    image: str
    python_version: str
    seconds: float


@pytest.fixture(scope="session")
def debian_base(buildah: Buildah, tmp_path_factory: pytest.TempPathFactory) -> Base:
    """A minimal Debian with Python 3.11 made by debootstrap, once per session."""
    found = apt_mirror()
    if found is None:
        pytest.skip("no deb line in the machine's apt sources: no mirror for debootstrap")
    mirror, suite = found
    rootfs = tmp_path_factory.mktemp("rootfs")
    started = time.monotonic()
    done = subprocess.run(
        # ca-certificates: rattler (the stand-in's engine) will not build an HTTP client
        # without a CA store, even for a plain-http channel.
        ["debootstrap", "--variant=minbase", *INCLUDE, suite, rootfs, mirror],
        capture_output=True,
        text=True,
        timeout=900,
    )
    if done.returncode != 0:
        last = (done.stdout + done.stderr).strip().splitlines()[-1:]
        pytest.skip(f"debootstrap {suite} from {mirror} failed: {last}")
    container = buildah("from", "scratch")
    mount = Path(buildah("mount", container))
    # cp -a, not copytree: the root file system holds device nodes (dev/console), which a
    # copy that reads files would block on.
    run(["cp", "-a", f"{rootfs}/.", mount], rootfs, dict(os.environ))
    buildah("umount", container)
    buildah("commit", "--quiet", "--rm", container, "localhost/lockstep-test/debian:base")
    run(["rm", "-rf", rootfs], rootfs.parent, dict(os.environ))
    version = buildah.run_in(
        "localhost/lockstep-test/debian:base",
        [IMAGE_PYTHON, "-c", "import platform; print(platform.python_version())"],
    )
    return Base("localhost/lockstep-test/debian:base", version, time.monotonic() - started)


@pytest.fixture(scope="session")
def standin_base(buildah: Buildah, debian_base: Base) -> str:
    """The Debian base with the conda stand-in as `conda` and an empty env root at ENV_PREFIX
    owned by the image's user, as the micromamba image has /opt/conda."""
    import rattler
    import yaml

    container = buildah("from", "--pull=never", "--quiet", debian_base.image)
    mount = Path(buildah("mount", container))
    lib = mount / STANDIN_DIR.lstrip("/")
    for module in (rattler, yaml):
        source = Path(module.__file__ or "").parent
        shutil.copytree(source, lib / source.name, ignore=shutil.ignore_patterns("__pycache__"))
    here = Path(__file__).resolve().parent / "condastandin"
    shutil.copytree(here, lib / "condastandin", ignore=shutil.ignore_patterns("__pycache__"))
    wrapper = mount / "usr/local/bin/conda"
    wrapper.write_text(
        f"#!{IMAGE_PYTHON}\n"
        '"""conda: test stand-in of the CLI (tests/integration/condastandin)."""\n'
        f"import sys\nsys.path.insert(0, {STANDIN_DIR!r})\n"
        "from condastandin.conda_standin import exit_now, main\n"
        "exit_now(main(prog='conda'))\n"
    )
    wrapper.chmod(0o755)
    (mount / "usr/local/bin/python").symlink_to(IMAGE_PYTHON)  # as python:3.11-slim has it
    with open(mount / "etc/passwd", "a") as passwd:
        passwd.write(f"mambauser:x:{USER_ID}:{USER_ID}::/home/mambauser:/bin/sh\n")
    with open(mount / "etc/group", "a") as group:
        group.write(f"mambauser:x:{USER_ID}:\n")
    for folder in (f"{ENV_PREFIX}/conda-meta", "/home/mambauser/app"):
        (mount / folder.lstrip("/")).mkdir(parents=True)
    for top in (ENV_PREFIX, "/home/mambauser"):
        for path in [mount / top.lstrip("/"), *(mount / top.lstrip("/")).rglob("*")]:
            os.chown(path, USER_ID, USER_ID, follow_symlinks=False)
    buildah("umount", container)
    buildah("config", "--env", f"{ROOT_VAR}={ENV_PREFIX}", container)
    image = "localhost/lockstep-test/standin:base"
    buildah("commit", "--quiet", "--rm", container, image)
    return image


# --------------------------------------------------------------------------- the build


@dataclass(frozen=True)
class Built:
    project: Project
    image: str
    seconds: float
    output: str


@pytest.fixture(scope="session")
def built(
    buildah: Buildah,
    debian_base: Base,
    standin_base: str,
    tmp_path_factory: pytest.TempPathFactory,
    standin_bin: Path,
    wheel_index: PackageIndex,
) -> Iterator[Built]:
    """The starter's Dockerfile built from a project locked against a channel whose python is
    the image's own (the stand-in python is a pyvenv.cfg over an interpreter)."""
    base = tmp_path_factory.mktemp("image")
    packages = [p for p in default_packages() if p.name not in {"python", "pytorch"}]
    python = python_package(Path(IMAGE_PYTHON), debian_base.python_version)
    torch = [pytorch_package(v, torch_like=True) for v in PYTORCH_VERSIONS]
    channel = build_channel(base / "channel", [python, *torch, *packages])
    project = create_project(
        base / "project", base / "state", channel, standin_bin, wheel_index.url, "imaged"
    )
    for task in ("poetry-init", "lock", "pin"):
        project.invoke(task)
    for name in ("Dockerfile", ".dockerignore"):
        shutil.copyfile(REPO / name, project.root / name)
    image = "localhost/lockstep-test/app:latest-build"
    with serve_index(channel) as served:
        http_channel = served.url.removesuffix("/simple/")
        args = {
            "BASE_IMAGE": standin_base,
            "LOCK_IMAGE": standin_base,
            "FRONTEND": "conda",
            "LOCKSTEP_CONDA_CHANNEL_MIRRORS": f"{channel.as_uri()}={http_channel}",
            "PIP_INDEX_URL": wheel_index.url,
        }
        started = time.monotonic()
        output = buildah(
            "bud",
            "--isolation",
            "chroot",
            "--pull=never",
            "--layers=false",
            *(x for key, value in args.items() for x in ("--build-arg", f"{key}={value}")),
            "--tag",
            image,
            project.root,
            timeout=1200,
        )
        seconds = time.monotonic() - started
    print(f"\nimage: debootstrap base {debian_base.seconds:.0f} s, build {seconds:.0f} s")
    yield Built(project, image, seconds, output)


def test_the_image_imports_torch_from_the_locked_env(buildah: Buildah, built: Built):
    answer = buildah.run_in(
        built.image, ["python", "-c", "import sys, torch; print(sys.prefix, torch.__version__)"]
    )
    locked = {name: version for name, version, *_ in lock_records(built.project.lock)}
    assert answer.splitlines()[-1] == f"{ENV_PREFIX} {locked['pytorch']}"


def test_the_images_own_check_passes_with_allow_cpu(buildah: Buildah, built: Built):
    """The image's CMD as it is configured (lockstep.gpu from the copied tooling: lockstep is
    not in the env), with nothing added to its environment."""
    config = json.loads(buildah("inspect", "--type", "image", built.image))
    command = config["OCIv1"]["config"]["Cmd"]
    assert command[-3:] == ["lockstep.gpu", "--quick", "--allow-cpu"]
    answer = buildah.run_in(built.image, command)
    assert "no CUDA device, accepted because of --allow-cpu" in answer
    # And the env itself has no lockstep: only that command's path has it.
    probe = "import importlib.util as u; print(u.find_spec('lockstep'))"
    assert buildah.run_in(built.image, ["python", "-c", probe]).splitlines()[-1] == "None"


def test_the_env_inside_is_the_locked_one(buildah: Buildah, built: Built):
    container = buildah("from", "--pull=never", "--quiet", built.image)
    try:
        prefix = Path(buildah("mount", container)) / ENV_PREFIX.lstrip("/")
        meta = [json.loads(p.read_text()) for p in (prefix / "conda-meta").glob("*.json")]
        installed = {(m["name"], m["version"], m["build"], m["md5"]) for m in meta}
        assert installed == {r[:4] for r in lock_records(built.project.lock)}
        # doctor reads conda-meta, every dist-info and both locks: one installer each, the
        # PyPI side equal to poetry.lock's plan, conda's files unaltered.
        done = built.project.invoke("doctor", "--prefix", str(prefix), "--json")
        assert json.loads(done.stdout)["findings"] == []
    finally:
        buildah("umount", container)
        buildah("rm", container)
