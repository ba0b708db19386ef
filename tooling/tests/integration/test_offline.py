"""Beyond one machine: an offline bundle made with the channel and the index online
reproduces the identical env with both servers stopped and the channel's folder gone; a packed
env (the real conda-pack) runs at another path after conda-unpack.

The real pieces: the tasks, make, conda-lock, Poetry and pip; the channel served over HTTP by
http.server (the bundle fetches with urllib), the index likewise; the conda frontend is the
py-rattler stand-in (a test double of the CLI). The index holds one sdist-only project, built
into a wheel once at bundle time.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import tarfile
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from .helpers import run
from .project import (
    LOCK,
    POETRY_LOCK,
    Project,
    build_project_channel,
    conda_meta_records,
    create_project,
    distributions,
    file_hashes,
)
from .pyindex import Wheel, add_sdists, build_index, serve_index

pytestmark = pytest.mark.integration

SDIST_ONLY = Wheel("tinysdist", "1.0", ("tinyhelper>=1.0",))
REPRODUCE_INPUTS = ("Makefile", "tooling", "pyproject.toml", LOCK, POETRY_LOCK)


@dataclass(frozen=True)
class Bundled:
    project: Project
    online: Project  # a machine that reproduced with the channel and the index up
    bundle: Path
    output: str
    seconds: float
    gone: tuple[Path, ...]  # the channel's and the index's folders, moved away


def _with(project: Project, **env: str) -> Project:
    return dataclasses.replace(project, env={**project.env, **env})


@pytest.fixture(scope="module")
def bundled(tmp_path_factory: pytest.TempPathFactory, standin_bin: Path) -> Iterator[Bundled]:
    base = tmp_path_factory.mktemp("offline")
    channel = build_project_channel(base / "channel")
    index_root = add_sdists(build_index(base / "index"), [SDIST_ONLY])
    with serve_index(index_root) as index, serve_index(channel) as served:
        project = create_project(
            base / "project", base / "state", channel, standin_bin, index.url, "offline"
        )
        text = project.pyproject.read_text(encoding="utf-8")
        project.pyproject.write_text(
            text.replace('dependencies = ["tinyapp"]', 'dependencies = ["tinyapp", "tinysdist"]'),
            encoding="utf-8",
        )
        for task in ("poetry-init", "lock", "pin"):
            project.invoke(task)
        online = project.copy(base / "online", base / "online-state", standin_bin)
        online.make("reproduce")
        # The archives come over HTTP, as from a real channel: the mirror setting points the
        # lock's file:// channel at the served copy.
        http_channel = served.url.removesuffix("/simple/")
        fetching = _with(
            project, LOCKSTEP_CONDA_CHANNEL_MIRRORS=f"{channel.as_uri()}={http_channel}"
        )
        started = time.monotonic()
        done = fetching.invoke("bundle", "--output", str(base / "bundle"), "--tar")
        seconds = time.monotonic() - started
    print("\n" + "\n".join(line for line in done.stdout.splitlines() if "lockstep:" in line))
    gone = []
    for folder in (channel, index_root):
        gone.append(folder.rename(folder.with_name(folder.name + "-gone")))
    yield Bundled(project, online, base / "bundle", done.stdout, seconds, tuple(gone))


@pytest.fixture(scope="module")
def offline(
    tmp_path_factory: pytest.TempPathFactory, bundled: Bundled, standin_bin: Path
) -> Project:
    """`make reproduce BUNDLE=...` on a machine with make, the stand-in and the locks only."""
    base = tmp_path_factory.mktemp("air-gapped")
    machine = bundled.project.copy(
        base / "project", base / "state", standin_bin, REPRODUCE_INPUTS
    ).without_python_tools()
    machine.make("reproduce", f"BUNDLE={bundled.bundle}")
    return machine


def _meta(prefix: Path) -> dict[str, dict]:
    """conda-meta records without what names the source, the package cache or the channel's
    index (a bundle has no repodata: the archive's own index.json is read, as conda does)."""
    records = {}
    for path in (prefix / "conda-meta").glob("*.json"):
        data = json.loads(path.read_text(encoding="utf-8"))
        for key in ("url", "channel", "extracted_package_dir", "indexed_timestamp"):
            data.pop(key, None)
        data["link"].pop("source")
        records[path.name] = data
    return records


def _dist_infos(prefix: Path) -> dict[str, tuple[str, str, str]]:
    return {
        d.name: (d.version, d.installer, (d.folder / "RECORD").read_text(encoding="utf-8"))
        for d in distributions(prefix)
    }


def test_the_bundle_holds_both_locks_archives_and_wheels(bundled: Bundled):
    manifest = json.loads((bundled.bundle / "manifest.json").read_text(encoding="utf-8"))
    archives = sorted(p.name for p in (bundled.bundle / "conda").rglob("*.tar.bz2"))
    assert archives == sorted(c["filename"] for c in manifest["conda"])
    assert len(archives) == len(conda_meta_records(bundled.online.prefix))
    assert sorted(p.name for p in (bundled.bundle / "locks").iterdir()) == sorted(
        [LOCK, POETRY_LOCK, "pyproject.toml"]
    )
    for name in (LOCK, POETRY_LOCK):
        assert (bundled.bundle / "locks" / name).read_bytes() == (
            bundled.project.root / name
        ).read_bytes()
    wheels = sorted(p.name for p in (bundled.bundle / "wheels").iterdir())
    assert wheels == manifest["wheels"]
    assert [w.split("-")[0] for w in wheels] == ["tinyapp", "tinyhelper", "tinysdist"]
    with tarfile.open(bundled.bundle.with_name("bundle.tar")) as tar:
        members = {m.name for m in tar.getmembers() if m.isfile()}
    assert members == {
        str(p.relative_to(bundled.bundle.parent)) for p in bundled.bundle.rglob("*") if p.is_file()
    }


def test_an_sdist_only_package_is_built_once_and_recorded(bundled: Bundled):
    manifest = json.loads((bundled.bundle / "manifest.json").read_text(encoding="utf-8"))
    (built,) = manifest["built"]
    assert (built["name"], built["version"], built["sdist"]) == (
        "tinysdist",
        "1.0",
        "tinysdist-1.0.tar.gz",
    )
    lock = tomllib.loads(bundled.project.poetry_lock.read_text(encoding="utf-8"))
    (entry,) = [p for p in lock["package"] if p["name"] == "tinysdist"]
    assert [f["hash"] for f in entry["files"]] == [f"sha256:{built['sdist_sha256']}"]
    assert built["wheel"] in manifest["wheels"]
    assert "built from sdists (recorded in the manifest): tinysdist" in bundled.output


def test_offline_reproduce_is_identical_to_the_online_one(bundled: Bundled, offline: Project):
    assert all(
        not folder.with_name(folder.name.removesuffix("-gone")).exists() for folder in bundled.gone
    )
    assert _meta(offline.prefix) == _meta(bundled.online.prefix)
    assert _dist_infos(offline.prefix) == _dist_infos(bundled.online.prefix)
    assert _dist_infos(offline.prefix)["tinysdist"][1] == "pip"
    skip = ["conda-meta", "__pycache__"]
    assert file_hashes(offline.prefix, skip) == file_hashes(bundled.online.prefix, skip)
    # conda-meta says where each archive came from: the bundle, checked against the lock's md5.
    urls = {url for *_, url in conda_meta_records(offline.prefix)}
    assert all(url.startswith((bundled.bundle / "conda").as_uri()) for url in urls), urls


def test_a_tampered_bundle_archive_is_refused_before_anything_changes(
    bundled: Bundled, tmp_path: Path, standin_bin: Path
):
    bundle = tmp_path / "bundle"
    shutil.copytree(bundled.bundle, bundle)
    archive = next((bundle / "conda").rglob("tinyhelper*.tar.bz2"), None) or next(
        (bundle / "conda").rglob("filelock*.tar.bz2")
    )
    archive.write_bytes(archive.read_bytes() + b"\0")
    machine = bundled.project.copy(tmp_path / "project", tmp_path / "state", standin_bin)
    done = machine.make("reproduce", f"BUNDLE={bundle}", expect_rc=2)
    assert "archive does not match the lock" in done.stderr
    assert not machine.prefix.exists()


def _flip_last_byte(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))  # one bit, same size


# Every frontend command the engine could run, counted by the stand-in (ROOT/.standin-calls)
# and failing only after a thousand calls.
COUNT_CALLS = ",".join(
    f"{c}:1000" for c in ("env-list", "info", "create", "env-create", "install", "list", "run")
)


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("wheels/tinyhelper-*.whl", "is none of poetry.lock's"),
        ("wheels/tinysdist-*.whl", "is none of the manifest's (built from its sdist)"),
        ("locks/poetry.lock", "locks/poetry.lock differs from the manifest's sha256"),
    ],
    ids=["a-locked-wheel", "a-wheel-built-from-its-sdist", "a-lock-copy"],
)
def test_a_flipped_byte_in_any_bundle_file_is_refused_before_anything_moves(
    bundled: Bundled, offline: Project, tmp_path: Path, pattern: str, message: str
):
    bundle = tmp_path / "bundle"
    shutil.copytree(bundled.bundle, bundle)
    [target] = bundle.glob(pattern)
    _flip_last_byte(target)
    env, files = file_hashes(offline.prefix), file_hashes(offline.root)
    counted = _with(offline, LOCKSTEP_STANDIN_FAIL=COUNT_CALLS)
    done = counted.make("reproduce", f"BUNDLE={bundle}", expect_rc=2)
    assert message in done.stderr and "damaged bundle" in done.stderr, done.stderr
    assert done.stderr.splitlines()[0].endswith("nothing was changed")
    assert not (offline.conda_root / ".standin-calls").exists(), "the frontend was called"
    assert file_hashes(offline.prefix) == env and file_hashes(offline.root) == files


def test_a_bundle_of_other_locks_is_refused(bundled: Bundled, tmp_path: Path, standin_bin: Path):
    machine = bundled.project.copy(tmp_path / "project", tmp_path / "state", standin_bin)
    machine.poetry_lock.write_text(machine.poetry_lock.read_text() + "\n", encoding="utf-8")
    done = machine.make("reproduce", f"BUNDLE={bundled.bundle}", expect_rc=2)
    assert f"{POETRY_LOCK} differs from the one {bundled.bundle} was made from" in done.stderr
    assert not machine.prefix.exists()


# --------------------------------------------------------------------------- conda-pack


@pytest.fixture(scope="module")
def packed(tmp_path_factory: pytest.TempPathFactory, bundled: Bundled) -> Path:
    """The online machine's env packed by `invoke pack` (the real conda-pack)."""
    out = tmp_path_factory.mktemp("packed") / "env.tar.gz"
    bundled.online.invoke("pack", "--output", str(out))
    return out


def test_a_packed_env_runs_its_python_at_another_path(
    bundled: Bundled, packed: Path, tmp_path: Path
):
    target = tmp_path / "node-local" / "env"
    target.mkdir(parents=True)
    env = bundled.online.env
    run(["tar", "-xzf", packed, "-C", target], tmp_path, env)
    # The env it came from is gone while the copy runs: nothing may lean on it.
    original = bundled.online.prefix
    away = original.with_name(original.name + "-away")
    original.rename(away)
    try:
        run([target / "bin" / "python", target / "bin" / "conda-unpack"], tmp_path, env)
        probe = "import sys, torch, filelock, tinyapp, tinysdist; print(sys.prefix); " + (
            "print('\\n'.join(m.__file__ for m in (torch, filelock, tinyapp, tinysdist)))"
        )
        done = run([target / "bin" / "python", "-c", probe], tmp_path, env)
    finally:
        away.rename(original)
    lines = done.stdout.splitlines()
    assert lines[0] == str(target)
    assert all(line.startswith(str(target)) for line in lines[1:]), lines
    installers = {d.name: d.installer for d in distributions(target)}
    assert (installers["torch"], installers["filelock"]) == ("conda", "conda")
    assert (installers["tinyapp"], installers["tinysdist"]) == ("pip", "pip")


def test_pack_refuses_an_env_doctor_does_not_call_clean(
    bundled: Bundled, tmp_path: Path, standin_bin: Path
):
    machine = bundled.project.copy(tmp_path / "project", tmp_path / "state", standin_bin)
    machine.make("reproduce", f"BUNDLE={bundled.bundle}")
    torch_init = next(machine.prefix.rglob("torch/__init__.py"))
    torch_init.write_text("altered after the install\n", encoding="utf-8")
    out = tmp_path / "env.tar.gz"
    done = machine.invoke("pack", "--output", str(out), expect_rc=1)
    assert "env 'offline' is not clean" in done.stderr
    assert "nothing was packed" in done.stderr
    assert not out.exists()
