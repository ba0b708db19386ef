"""Beyond one machine: the offline bundle's format and commands (lockstep.core.bundle, the pip
builders, conda-pack's command line), on real locks of public projects (tests/data/conda, see
its PROVENANCE)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lockstep.core import bundle, commands, mirrors
from lockstep.core.engine import build_parser
from lockstep.core.explicit import local_archive, read_explicit
from lockstep.core.frontend import Frontend
from lockstep.core.fsutil import file_digest
from lockstep.core.installer import (
    pip_download_command,
    pip_install_command,
    pip_wheel_command,
)
from lockstep.core.poetrylock import LockedPackage

DATA = Path(__file__).resolve().parents[1] / "data" / "conda"
THREE_CHANNELS = DATA / "Alek96__ultrasound_fetal_images-849ebd46" / "conda-linux-64.lock"
PKGS_MAIN = DATA / "Denolle-Lab__seisbench-jupyter-7310eae4" / "conda-linux-64.lock"


def test_offline_pip_uses_the_bundles_wheels_alone() -> None:
    assert pip_install_command("/e/bin/python", "/t/r.txt", ["http://i/simple"], "/b/wheels") == [
        "/e/bin/python",
        "-m",
        "pip",
        "install",
        "--no-deps",
        "--require-hashes",
        "--no-input",
        "--disable-pip-version-check",
        "--no-warn-script-location",
        "--no-index",
        "--find-links",
        "/b/wheels",
        "-r",
        "/t/r.txt",
    ]


def test_download_and_wheel_commands_are_exact() -> None:
    assert pip_download_command("/v/python", "/t/r.txt", "/t/d", [], "3.11") == [
        "/v/python",
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--require-hashes",
        "--no-input",
        "--disable-pip-version-check",
        "--python-version",
        "3.11",
        "--dest",
        "/t/d",
        "-r",
        "/t/r.txt",
    ]
    assert pip_wheel_command("/v/python", "/t/d/x-1.0.tar.gz", "/t/w") == [
        "/v/python",
        "-m",
        "pip",
        "wheel",
        "--no-deps",
        "--no-input",
        "--disable-pip-version-check",
        "--wheel-dir",
        "/t/w",
        "/t/d/x-1.0.tar.gz",
    ]


def test_engine_reproduce_from_a_bundle() -> None:
    fe = Frontend("conda", "/opt/conda/bin/conda")
    request = commands.ReproduceRequest(
        "/w/p", name="ml", frontend=fe.path, locked=True, bundle="/b"
    )
    command = commands.engine_reproduce("/py", request)
    assert command[7:] == [
        "--name",
        "ml",
        "--frontend",
        "/opt/conda/bin/conda",
        "--bundle",
        "/b",
        "--locked",
    ]
    assert build_parser().parse_args(command[3 + 1 :]).bundle == "/b"


@pytest.mark.parametrize(
    ("lock", "expected"),
    [
        (
            THREE_CHANNELS,
            {
                "https://conda.anaconda.org/conda-forge": "conda-forge",
                "https://conda.anaconda.org/nvidia": "nvidia",
                "https://conda.anaconda.org/pytorch": "pytorch",
            },
        ),
        (
            PKGS_MAIN,
            {
                "https://conda.anaconda.org/conda-forge": "conda-forge",
                "https://repo.anaconda.com/pkgs/main": "main",
            },
        ),
    ],
    ids=["conda-forge-nvidia-pytorch", "conda-forge-pkgs-main"],
)
def test_every_archive_of_a_real_lock_gets_its_own_path(lock: Path, expected: dict) -> None:
    entries = read_explicit(lock).entries
    folders = bundle.channel_folders(entries)
    assert {url: name.split("-", 1)[1] for url, name in folders.items()} == expected
    manifest = bundle.Manifest("linux-64", {}, folders)
    paths = {bundle.archive_path(Path("/b"), manifest, e) for e in entries}
    assert len(paths) == len(entries)
    # Installing rewrites each URL to its file in the bundle, the md5 kept for the engine's check.
    config = bundle.mirror_config(Path("/b"), manifest)
    text, changed = mirrors.rewrite_lock(lock.read_text(encoding="utf-8"), config)
    assert changed == len(entries)
    rewritten = read_explicit_text(text, lock.parent)
    assert {local_archive(e.url) for e in rewritten} == {
        bundle.archive_path(Path("/b"), manifest, e) for e in entries
    }
    assert [e.md5 for e in rewritten] == [e.md5 for e in entries]


def read_explicit_text(text: str, folder: Path):
    path = folder / "rewritten.lock"
    try:
        path.write_text(text, encoding="utf-8")
        return read_explicit(path).entries
    finally:
        path.unlink()


def test_a_percent_encoded_file_name_lies_decoded_in_the_bundle(tmp_path: Path) -> None:
    entry = next(e for e in read_explicit(THREE_CHANNELS).entries if "!" in e.url)
    encoded = type(entry)(**{**entry.__dict__, "url": entry.url.replace("!", "%21")})
    manifest = bundle.Manifest("linux-64", {}, bundle.channel_folders([entry]))
    assert bundle.archive_path(tmp_path, manifest, encoded) == bundle.archive_path(
        tmp_path, manifest, entry
    )
    assert "!" in bundle.archive_path(tmp_path, manifest, encoded).name


def test_same_named_channels_of_two_hosts_get_two_folders() -> None:
    entries = read_explicit(THREE_CHANNELS).entries[:2]
    mirrored = [
        type(e)(
            e.name, e.version, e.build, "https://mirror.example/conda-forge", e.subdir, e.url, e.md5
        )
        for e in entries[:1]
    ]
    folders = bundle.channel_folders([*entries, *mirrored])
    assert len(set(folders.values())) == len(folders) == 2


def _package(name: str, version: str) -> LockedPackage:
    return LockedPackage(name, version, ("main",), None, ("sha256:" + "a" * 64,), {}, {})


def test_a_package_built_from_its_sdist_is_pinned_to_the_built_wheel() -> None:
    built = bundle.BuiltWheel(
        "Tiny_Sdist", "1.0", "tiny_sdist-1.0.tar.gz", "a" * 64, "w.whl", "b" * 64
    )
    manifest = bundle.Manifest("linux-64", {}, {}, built=[built])
    lines = bundle.requirement_lines(
        manifest, [_package("tiny-sdist", "1.0"), _package("x", "2")], []
    )
    assert lines == [
        f"tiny-sdist==1.0 --hash=sha256:{'b' * 64}",
        f"x==2 \\\n    --hash=sha256:{'a' * 64}",
    ]


def test_manifest_round_trip_and_refusals(tmp_path: Path) -> None:
    with pytest.raises(bundle.BundleError, match="not a bundle .no manifest.json.; make one"):
        bundle.read_manifest(tmp_path)
    lock = tmp_path / "conda-linux-64.lock"
    lock.write_text("@EXPLICIT\n", encoding="utf-8")
    manifest = bundle.Manifest("linux-64", {lock.name: file_digest(lock)}, {})
    (tmp_path / "manifest.json").write_text(manifest.to_json(), encoding="utf-8")
    assert bundle.read_manifest(tmp_path) == manifest
    bundle.check_made_from(tmp_path, manifest, "linux-64", [lock])
    with pytest.raises(
        bundle.BundleError, match="a bundle for linux-64, this machine is osx-arm64"
    ):
        bundle.check_made_from(tmp_path, manifest, "osx-arm64", [lock])
    lock.write_text("@EXPLICIT\n\n", encoding="utf-8")
    with pytest.raises(bundle.BundleError, match="conda-linux-64.lock differs from the one"):
        bundle.check_made_from(tmp_path, manifest, "linux-64", [lock])
    (tmp_path / "manifest.json").write_text(json.dumps({"format": 99}), encoding="utf-8")
    with pytest.raises(bundle.BundleError, match="bundle format 99, this lockstep reads 1"):
        bundle.read_manifest(tmp_path)


def test_conda_pack_command_is_exact() -> None:
    # conda-pack's library through lockstep.packing (progress; editable installs left out
    # there, as --ignore-editable-packages did on conda-pack's command line)
    assert commands.conda_pack("/v/bin/python", "/envs/ml", "ml-linux-64.tar.gz") == [
        "/v/bin/python",
        "-m",
        "lockstep.packing",
        "--prefix",
        "/envs/ml",
        "--output",
        "ml-linux-64.tar.gz",
    ]


def test_every_wheel_and_lock_copy_is_checked_before_anything_is_touched(tmp_path: Path) -> None:
    (tmp_path / "wheels").mkdir()
    (tmp_path / "locks").mkdir()
    locked = tmp_path / "wheels" / "six-1.17.0-py2.py3-none-any.whl"
    locked.write_bytes(b"six's wheel")
    built = tmp_path / "wheels" / "tinysdist-1.0-py3-none-any.whl"
    built.write_bytes(b"built at bundle time")
    copy = tmp_path / "locks" / "poetry.lock"
    copy.write_text("# the lock\n")
    lock_data = {
        "package": [
            {
                "name": "six",
                "version": "1.17.0",
                "files": [{"hash": f"sha256:{file_digest(locked)}"}],
            }
        ]
    }
    manifest = bundle.Manifest(
        "linux-64",
        {"poetry.lock": file_digest(copy)},
        {},
        wheels=[locked.name, built.name],
        built=[
            bundle.BuiltWheel(
                "tinysdist", "1.0", "tinysdist-1.0.tar.gz", "0" * 64, built.name, file_digest(built)
            )
        ],
    )
    assert bundle.verify_files(tmp_path, manifest, lock_data) == 3
    for path, message in [
        (locked, "wheels/six-1.17.0-py2.py3-none-any.whl: sha256 .* is none of poetry.lock's"),
        (built, r"is none of the manifest's \(built from its sdist\)"),
        (copy, "locks/poetry.lock differs from the manifest's sha256"),
    ]:
        original = path.read_bytes()
        path.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))
        with pytest.raises(bundle.BundleError, match=message):
            bundle.verify_files(tmp_path, manifest, lock_data)
        path.write_bytes(original)
    locked.unlink()
    with pytest.raises(
        bundle.BundleError, match="wheels/six-1.17.0-py2.py3-none-any.whl is missing"
    ):
        bundle.verify_files(tmp_path, manifest, lock_data)
