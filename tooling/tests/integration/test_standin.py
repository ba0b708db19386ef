"""The conda stand-in checked against real conda 26.7.1's captured answers.

Each test repeats, with the stand-in, a step of tests/data/frontends/conda-26.7.1/capture.sh in
the same layout (root, envs and channel paths holding spaces) and compares exit codes, JSON keys
and shapes, names and what is left on disk with what real conda did. Real paths are mapped to
this test's paths by replacing the capture's scratch folder.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest
import rattler

from .channel import CondaPackage, add_packages, cuda_version_package, libcudart_package
from .condastandin.conda_standin import CONDA_VERSION_VAR, ROOT_VAR

pytestmark = pytest.mark.integration

REAL = Path(__file__).parents[1] / "data" / "frontends" / "conda-26.7.1"
PLACEHOLDER = "/opt/anaconda1anaconda2anaconda3"
WAIT_S = 60


def real_out(step: str) -> str:
    return (REAL / f"{step}.stdout").read_text()


def real_json(step: str) -> dict:
    return json.loads(real_out(step))


def real_rc(step: str) -> int:
    return int((REAL / f"{step}.rc").read_text())


REAL_BASE = str(Path(real_json("b-info-json")["root_prefix"]).parent)  # "/tmp/h4 real"


def withprefix_package(channel: Path) -> None:
    """The capture's `withprefix` package: one file with a prefix placeholder, one without."""
    files = {
        "share/demo/config.txt": f"prefix={PLACEHOLDER}\n".encode(),
        "share/demo/plain.txt": b"no placeholder here\n",
    }
    paths = []
    for path, data in sorted(files.items()):
        entry = {"_path": path, "path_type": "hardlink", "size_in_bytes": len(data)}
        entry["sha256"] = hashlib.sha256(data).hexdigest()
        if PLACEHOLDER.encode() in data:
            entry.update(prefix_placeholder=PLACEHOLDER, file_mode="text")
        paths.append(entry)
    pkg = CondaPackage(name="withprefix", version="1.0", build="h0_0", files=files)
    info = {
        "info/index.json": json.dumps(pkg.index_json()).encode(),
        "info/paths.json": json.dumps({"paths": paths, "paths_version": 1}).encode(),
        "info/files": "".join(f"{p}\n" for p in sorted(files)).encode(),
        "info/has_prefix": f"{PLACEHOLDER} text share/demo/config.txt\n".encode(),
    }
    (channel / "noarch").mkdir(parents=True, exist_ok=True)
    with tarfile.open(channel / "noarch" / pkg.filename, "w:bz2") as tar:
        for path, data in sorted({**info, **files}.items()):
            member = tarfile.TarInfo(path)
            member.size = len(data)
            tar.addfile(member, io.BytesIO(data))


@pytest.fixture(scope="module")
def spaced_channel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small channel whose path holds a space, with the capture's packages."""
    channel = tmp_path_factory.mktemp("chan nel") / "channel"
    withprefix_package(channel)
    return add_packages(
        channel,
        [cuda_version_package(v) for v in ("12.6", "12.9")]
        + [libcudart_package(v) for v in ("12.6", "12.9")],
    )


class Standin:
    """The stand-in `conda` run with its root at BASE/root dir, BASE named like the capture's."""

    def __init__(self, base: Path, bin_dir: Path, env: dict[str, str], channel: Path) -> None:
        self.base, self.root = base, base / "root dir"
        self.channel, self.uri = channel, channel.as_uri()
        self.exe = str(bin_dir / "conda")
        self.env = {**env, ROOT_VAR: str(self.root)}

    def __call__(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self.exe, *args], env={**self.env, **env}, capture_output=True, text=True
        )

    def ok(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        done = self(*args, **env)
        assert done.returncode == 0, done.stderr
        return done

    def popen(self, *args: str, **env: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [self.exe, *args],
            env={**self.env, **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def create(self, target: list[str], *specs: str) -> None:
        self.ok("create", "--yes", *target, "--override-channels", "-c", self.uri, *specs)

    def translate(self, real: str) -> str:
        """A real capture's text with its scratch folder replaced by this test's."""
        return real.replace(REAL_BASE, str(self.base))


@pytest.fixture
def conda(tmp_path, standin_bin, integration_env, spaced_channel) -> Standin:
    return Standin(tmp_path / "h4 real", standin_bin, integration_env, spaced_channel)


@pytest.fixture
def listed_layout(conda: Standin) -> Standin:
    """Step a of the capture: base, a named env, a -p env named like it, a backup copy."""
    envs = conda.root / "envs"
    conda.create(["-n", "lockstep"], "cuda-version=12.6")
    conda.create(["-p", str(conda.base / "x y" / "other" / "lockstep")], "cuda-version=12.6")
    shutil.copytree(envs / "lockstep", envs / "lockstep.lockstep-backup", symlinks=True)
    (envs / "not-an-env").mkdir()
    return conda


def test_env_list_json_has_real_envs_and_details(listed_layout: Standin):
    ours = json.loads(listed_layout.ok("env", "list", "--json").stdout)
    real = json.loads(listed_layout.translate(real_out("a-env-list-json")))

    assert ours["envs"] == real["envs"]
    assert ours.keys() == real.keys()
    for prefix, details in real["envs_details"].items():
        mine = ours["envs_details"][prefix]
        assert mine.keys() == details.keys(), prefix
        for key in ("name", "active", "base", "frozen", "writable"):
            assert mine[key] == details[key], (prefix, key)
        for key in ("created", "last_modified"):
            assert type(mine[key]) is type(details[key]), (prefix, key)


def test_env_list_text_is_real_condas(listed_layout: Standin):
    ours = listed_layout.ok("env", "list").stdout
    assert ours == listed_layout.translate(real_out("c-env-list"))
    assert listed_layout.ok("info", "--envs").stdout == listed_layout.translate(
        real_out("b-info-envs")
    )


def test_info_json_has_the_real_keys(listed_layout: Standin):
    ours = json.loads(listed_layout.ok("info", "--json").stdout)
    real = json.loads(listed_layout.translate(real_out("b-info-json")))
    keys = {"envs", "envs_details", "envs_dirs", "pkgs_dirs", "root_prefix", "conda_version"}
    keys |= {"default_prefix", "platform", "virtual_pkgs", "channels", "active_prefix"}
    assert keys <= real.keys() and keys <= ours.keys()
    assert {k: type(ours[k]) for k in keys} == {k: type(real[k]) for k in keys}
    assert ours["root_prefix"] == real["root_prefix"]
    assert ours["envs"] == real["envs"]
    assert ours["envs_dirs"][0] == real["envs_dirs"][0]  # real adds ~/.conda/envs after it


def test_an_env_is_a_folder_with_conda_meta_history(listed_layout: Standin):
    envs = listed_layout.root / "envs"
    (envs / "meta-only" / "conda-meta").mkdir(parents=True)
    (envs / "history-only" / "conda-meta").mkdir(parents=True)
    (envs / "history-only" / "conda-meta" / "history").touch()

    ours = json.loads(listed_layout.ok("env", "list", "--json").stdout)["envs"]
    assert ours == json.loads(listed_layout.translate(real_out("a2-env-list-json")))["envs"]


def test_a_registered_env_that_is_gone_is_not_listed(listed_layout: Standin):
    gone = listed_layout.base / "x y" / "gone"
    listed_layout.create(["-p", str(gone)], "cuda-version=12.6")
    shutil.rmtree(gone)

    ours = json.loads(listed_layout.ok("env", "list", "--json").stdout)["envs"]
    assert ours == json.loads(listed_layout.translate(real_out("a3-env-list-json")))["envs"]


def explicit_lock(conda: Standin, prefix: Path) -> Path:
    """The env's lock as `conda list --explicit --md5` writes it (never written by hand)."""
    lock = conda.base / "the lock.txt"
    lock.write_text(conda.ok("list", "--explicit", "--md5", "-p", str(prefix)).stdout)
    return lock


def test_create_over_an_env_deletes_it_before_fetching(conda: Standin, tmp_path: Path):
    channel = shutil.copytree(conda.channel, tmp_path / "own chan")
    conda.uri = channel.as_uri()
    prefix = conda.base / "x y" / "other" / "lockstep"
    conda.create(["-p", str(prefix)], "cuda-version=12.6")
    lock = explicit_lock(conda, prefix)
    (prefix / "MARKER").write_text("old env\n")
    archive = channel / "noarch" / "cuda-version-12.6-h0_0.tar.bz2"
    archive.rename(tmp_path / "held.tar.bz2")
    shutil.rmtree(conda.root / "pkgs")

    done = conda("create", "--yes", "-p", str(prefix), "--file", str(lock))

    assert done.returncode == real_rc("d2-create-file-fetch-fails") == 1
    assert "PathNotFoundError: " in (REAL / "d2-create-file-fetch-fails.stderr").read_text()
    assert f"PathNotFoundError: {archive}" in done.stderr
    assert "exists=1" in (REAL / "d2-after.ls").read_text()
    assert not prefix.exists()


def test_create_over_an_env_replaces_it(conda: Standin):
    prefix = conda.base / "x y" / "other" / "lockstep"
    conda.create(["-p", str(prefix)], "cuda-version=12.6")
    lock = explicit_lock(conda, prefix)
    (prefix / "MARKER").write_text("old env\n")

    conda.ok("create", "--yes", "-p", str(prefix), "--file", str(lock))

    assert real_rc("d1-create-file-over-existing") == 0
    assert "MARKER" not in (REAL / "d1-after.ls").read_text()
    assert not (prefix / "MARKER").exists()
    assert (prefix / "conda-meta" / "cuda-version-12.6-h0_0.json").is_file()


def test_create_that_cannot_solve_deletes_the_existing_env(conda: Standin):
    conda.create(["-n", "lockstep"], "cuda-version=12.6")
    spec = ["--override-channels", "-c", conda.uri, "cuda-version=99"]

    done = conda("create", "--yes", "-n", "lockstep", *spec)

    real_err = (REAL / "d3-create-unsat-over-existing.stderr").read_text()
    assert done.returncode == real_rc("d3-create-unsat-over-existing")
    assert "\nPackagesNotFoundInChannelsError: " in real_err
    assert "\nPackagesNotFoundInChannelsError: " in done.stderr
    assert "exists=1" in (REAL / "d3-after.ls").read_text()
    assert not (conda.root / "envs" / "lockstep").exists()


def dry_run(conda: Standin, name: str, *specs: str) -> subprocess.CompletedProcess[str]:
    args = ["--dry-run", "--json", "-n", name, "--override-channels", "-c", conda.uri]
    return conda("create", *args, *specs)


def test_dry_run_json_is_shaped_like_real_condas(conda: Standin):
    done = dry_run(conda, "drytest", "libcudart", "cuda-version=12.6")
    ours, real = json.loads(done.stdout), real_json("e1-dry-run-ok")

    assert done.returncode == real_rc("e1-dry-run-ok") == 0
    assert ours.keys() == real.keys()
    assert ours["actions"].keys() == real["actions"].keys()
    assert ours["actions"]["PREFIX"] == str(conda.root / "envs" / "drytest")
    assert {tuple(sorted(e)) for e in ours["actions"]["LINK"]} == {
        tuple(sorted(e)) for e in real["actions"]["LINK"]
    }
    assert {tuple(sorted(e)) for e in ours["actions"]["FETCH"]} == {
        tuple(sorted(e)) for e in real["actions"]["FETCH"]
    }
    assert sorted(e["name"] for e in ours["actions"]["LINK"]) == ["cuda-version", "libcudart"]


ERROR_KEYS = {"caused_by", "error", "exception_name", "exception_type", "message"}


@pytest.mark.parametrize(
    ("step", "specs", "extra_keys"),
    [
        ("e2-dry-run-unsat", ["cuda-version=99"], {"packages", "channel_urls"}),
        ("e3-dry-run-missing", ["no-such-package"], {"packages", "channel_urls"}),
        ("e6-dry-run-conflict", ["libcudart=12.9", "cuda-version=12.6"], set()),
    ],
    ids=["version-not-in-channel", "package-not-in-channel", "conflict"],
)
def test_dry_run_errors_like_real_conda(conda: Standin, step, specs, extra_keys):
    done = dry_run(conda, "drytest", *specs)
    ours, real = json.loads(done.stdout), real_json(step)

    assert done.returncode == real_rc(step) == 1
    assert ours["exception_name"] == real["exception_name"]
    assert ERROR_KEYS | extra_keys <= ours.keys() & real.keys()
    assert "success" not in ours and "success" not in real
    for key in extra_keys - {"channel_urls"}:
        assert ours[key] == real[key]


def test_dry_run_refuses_an_existing_env(conda: Standin):
    conda.create(["-n", "lockstep"], "cuda-version=12.6")
    done = dry_run(conda, "lockstep", "cuda-version=12.6")
    ours, real = json.loads(done.stdout), real_json("e4-dry-run-existing")

    assert done.returncode == real_rc("e4-dry-run-existing") == 1
    assert (ours["exception_name"], ours["message"]) == (real["exception_name"], real["message"])


def write_environment_yml(conda: Standin, step: str) -> Path:
    """The capture's environment.yml, its channel replaced by this test's."""
    real_uri = Path(REAL_BASE, "chan nel", "channel").as_uri()
    text = (REAL / f"{step}.yml").read_text().replace(real_uri, conda.uri)
    conda.base.mkdir(parents=True, exist_ok=True)
    path = conda.base / f"{step}.yml"
    path.write_text(text)
    return path


def test_env_create_with_nodefaults_fails_as_conda_26_7(conda: Standin):
    spec = write_environment_yml(conda, "f-environment-nodefaults")

    done = conda("env", "create", "-f", str(spec), **{CONDA_VERSION_VAR: "26.7.1"})

    real_err = (REAL / "f1-env-create-nodefaults.stderr").read_text()
    alias = rattler.Channel("nodefaults").base_url.removesuffix("nodefaults/")
    real_line = next(line for line in real_err.splitlines() if line.startswith("CondaHTTPError"))
    assert done.returncode == real_rc("f1-env-create-nodefaults") == 1
    assert real_line.replace("https://CHANNEL-ALIAS-HOST/", alias) in done.stderr.splitlines()
    # Before 26.7 `env create` filtered `nodefaults` (the stand-in's default version).
    conda.ok("env", "create", "-f", str(spec))


def test_env_create_replaces_an_existing_env_without_asking(conda: Standin):
    spec = write_environment_yml(conda, "f-environment-plain")
    conda.create(["-n", "envf"], "cuda-version=12.6")
    (conda.root / "envs" / "envf" / "MARKER").write_text("old env\n")

    conda.ok("env", "create", "-f", str(spec), **{CONDA_VERSION_VAR: "26.7.1"})

    after = (REAL / "f3-after.ls").read_text()
    assert real_rc("f3-env-create-plain-over-existing") == 0 and "MARKER" not in after
    assert not (conda.root / "envs" / "envf" / "MARKER").exists()
    state = json.loads((conda.root / "envs" / "envf" / "conda-meta" / "state").read_text())
    assert state == json.loads(after[after.index("{") :])


def test_env_create_at_26_7_deletes_the_env_when_the_solve_fails(conda: Standin):
    spec = write_environment_yml(conda, "f-environment-plain")
    spec.write_text(spec.read_text().replace("cuda-version=12.6", "cuda-version=99"))
    conda.create(["-n", "envf"], "cuda-version=12.6")

    done = conda("env", "create", "-f", str(spec), **{CONDA_VERSION_VAR: "26.7.1"})

    assert done.returncode == 1
    assert not (conda.root / "envs" / "envf").exists()  # as d3: create deletes, then solves


def test_tampered_file_archive_installs_unnoticed_as_in_real_conda(conda: Standin, tmp_path):
    channel = shutil.copytree(conda.channel, tmp_path / "tamper chan")
    conda.uri = channel.as_uri()
    conda.create(["-p", str(conda.base / "g dir" / "env")], "cuda-version=12.6")
    lock = explicit_lock(conda, conda.base / "g dir" / "env")
    archive = channel / "noarch" / "cuda-version-12.6-h0_0.tar.bz2"
    lock_md5 = lock.read_text().rsplit("#", 1)[1].strip()
    with tarfile.open(archive) as old:
        members = [(m, old.extractfile(m).read() if m.isfile() else None) for m in old]
    with tarfile.open(archive, "w:bz2") as new:
        for member, data in members:
            new.addfile(member, io.BytesIO(data) if data is not None else None)
        extra = tarfile.TarInfo("etc/tampered.txt")
        extra.size = 9
        new.addfile(extra, io.BytesIO(b"tampered\n"))
    shutil.rmtree(conda.root / "pkgs")

    prefix = conda.base / "g dir" / "env2"
    done = conda("create", "--yes", "-p", str(prefix), "--file", str(lock))

    assert done.returncode == real_rc("g2-create-other-size") == 0, done.stderr
    real_meta = (REAL / "g2-conda-meta-md5.txt").read_text()
    real_lock_md5 = real_out("g0-lock").rsplit("#", 1)[1].strip()
    assert f'"md5": "{real_lock_md5}"' in real_meta  # real conda records the lock's md5
    meta = json.loads((prefix / "conda-meta" / "cuda-version-12.6-h0_0.json").read_text())
    assert meta["md5"] == lock_md5 != hashlib.md5(archive.read_bytes()).hexdigest()


def test_conda_meta_paths_data_is_shaped_like_real_condas(conda: Standin):
    prefix = conda.base / "h dir" / "env"
    conda.create(["-p", str(prefix)], "withprefix")
    meta_file = prefix / "conda-meta" / "withprefix-1.0-h0_0.json"
    ours = json.loads(meta_file.read_text())["paths_data"]
    real = json.loads((REAL / "h-conda-meta-withprefix.json").read_text())["paths_data"]

    assert ours.keys() == real.keys() and ours["paths_version"] == real["paths_version"]
    by_path = {e["_path"]: e for e in ours["paths"]}
    for entry in real["paths"]:
        mine = by_path[entry["_path"]]
        assert mine.keys() == entry.keys(), entry["_path"]
        for key in ("sha256", "size_in_bytes", "path_type", "prefix_placeholder", "file_mode"):
            assert mine.get(key) == entry.get(key), (entry["_path"], key)
        installed = (prefix / entry["_path"]).read_bytes()
        assert mine["sha256_in_prefix"] == hashlib.sha256(installed).hexdigest()
    assert (prefix / "share/demo/config.txt").read_text() == f"prefix={prefix}\n"
    umask = os.umask(0)
    os.umask(umask)
    assert meta_file.stat().st_mode & 0o777 == 0o666 & ~umask
    assert {"history", "created_at"} <= {p.name for p in meta_file.parent.iterdir()}


@pytest.mark.parametrize(
    ("target", "step"),
    [(["-p", "x y/a b"], "i-create-p-space-in-basename"), (["-n", "base"], "i-create-n-reserved")],
    ids=["space-in-last-component", "reserved-name"],
)
def test_create_refuses_names_as_real_conda_does(conda: Standin, target, step):
    if target[0] == "-p":
        target = ["-p", str(conda.base / target[1])]
    done = conda("create", "--yes", *target, "--override-channels", "-c", conda.uri, "cuda-version")

    real = next(
        line
        for line in (REAL / f"{step}.stderr").read_text().splitlines()
        if line.startswith("CondaValueError")
    )
    assert done.returncode == real_rc(step) == 1
    # Real conda prints the characters as a Python set, in no fixed order.
    assert real.split("{")[0] in done.stderr


# --- fault injection ------------------------------------------------------------------------


def test_fail_fails_every_call_with_a_conda_error(conda: Standin):
    done = conda("env", "list", "--json", LOCKSTEP_STANDIN_FAIL="info,env-list")

    assert done.returncode == 1
    assert json.loads(done.stdout)["exception_name"] == "CondaError"
    assert "CondaError: injected failure of `env-list`" in done.stderr
    assert conda("info", "--json", LOCKSTEP_STANDIN_FAIL="info,env-list").returncode == 1
    assert conda("env", "list", "--json", LOCKSTEP_STANDIN_FAIL="info").returncode == 0


def test_fail_with_a_count_fails_only_the_first_calls(conda: Standin):
    codes = [conda("env", "list", LOCKSTEP_STANDIN_FAIL="env-list:2").returncode for _ in range(3)]
    assert codes == [1, 1, 0]
    assert (conda.root / ".standin-calls" / "env-list").read_text() == "3\n"


def wait_for(path: Path, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + WAIT_S
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, f"{path} did not appear"
        time.sleep(0.02)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP], ids=str)
def test_hang_sleeps_until_a_signal_kills_it(conda: Standin, sig: signal.Signals):
    proc = conda.popen("env", "list", "--json", LOCKSTEP_STANDIN_HANG="env-list")
    with pytest.raises(subprocess.TimeoutExpired):
        proc.wait(timeout=1)
    proc.send_signal(sig)
    assert proc.wait(timeout=WAIT_S) == -sig


def gated_create(conda: Standin) -> tuple[subprocess.Popen[str], Path]:
    """`create --yes -n lockstep` of two packages over an existing env, held at its gate."""
    conda.create(["-n", "lockstep"], "cuda-version=12.6")
    prefix = conda.root / "envs" / "lockstep"
    (prefix / "MARKER").write_text("old env\n")
    args = ["create", "--yes", "-n", "lockstep", "--override-channels", "-c", conda.uri]
    proc = conda.popen(*args, "libcudart", LOCKSTEP_STANDIN_GATE="create")
    wait_for(conda.root / "gate-create.reached", proc)
    return proc, prefix


def installed(prefix: Path) -> list[str]:
    return sorted(p.name for p in (prefix / "conda-meta").glob("*.json"))


def test_gate_holds_create_with_a_partial_env(conda: Standin):
    proc, prefix = gated_create(conda)

    assert not (prefix / "MARKER").exists()  # the old env went first
    assert len(installed(prefix)) == 1  # one of the two packages
    assert proc.poll() is None
    (conda.root / "gate-create.release").touch()
    assert proc.wait(timeout=WAIT_S) == 0, proc.communicate()
    assert installed(prefix) == ["cuda-version-12.9-h0_0.json", "libcudart-12.9.79-h0_0.json"]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL], ids=str)
def test_a_signal_at_the_gate_kills_create_and_leaves_the_partial_env(conda: Standin, sig):
    proc, prefix = gated_create(conda)

    proc.send_signal(sig)

    assert proc.wait(timeout=WAIT_S) == -sig
    assert len(installed(prefix)) == 1


# --- the gated wheel index ------------------------------------------------------------------


def test_gated_index_holds_pip_at_the_wheel_download(gated_wheel_index, tmp_path, integration_env):
    index = gated_wheel_index
    pip = [sys.executable, "-m", "pip", "--isolated", "download"]
    args = [*pip, "--no-deps", "-d", str(tmp_path / "dl"), "-i", index.url, "tinyhelper==1.0"]
    proc = subprocess.Popen(args, env=integration_env, stdout=subprocess.PIPE, text=True)

    index.wait_reached(WAIT_S)  # pip read the index page and asked for the wheel
    with pytest.raises(subprocess.TimeoutExpired):
        proc.wait(timeout=1)
    assert not (tmp_path / "dl").exists() or not any((tmp_path / "dl").iterdir())
    index.release()

    assert proc.wait(timeout=WAIT_S) == 0
    assert [p.name for p in (tmp_path / "dl").iterdir()] == ["tinyhelper-1.0-py3-none-any.whl"]
