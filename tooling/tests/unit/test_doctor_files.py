"""doctor's installed-file check against conda-meta paths_data, on records conda itself wrote.

tests/data/doctor-real-env (see its PROVENANCE): three conda-meta records from conda's test data
and four files of pip 25.0.1 from pypa/pip. The oracle is conda's own sha256_in_prefix and
size_in_bytes for those files.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest
from tests.unit.fsfaults import run_unprivileged, unprivileged_folder

from lockstep.core.condameta import CondaRecord, InstalledFile, read_conda_meta
from lockstep.doctor import installed_file_findings

DATA = Path(__file__).resolve().parents[1] / "data" / "doctor-real-env"
SITE = "lib/python3.13t/site-packages"
PAYLOAD = sorted(
    p.relative_to(DATA / "payload").as_posix() for p in (DATA / "payload").rglob("*") if p.is_file()
)


def _raw(record: str, path: str) -> dict:
    data = json.loads((DATA / "conda-meta" / f"{record}.json").read_text())
    return next(p for p in data["paths_data"]["paths"] if p["_path"] == path)


@pytest.fixture
def env(tmp_path: Path) -> Path:
    """An env holding conda's pip record and the four real files of pip it describes."""
    prefix = tmp_path / "env"
    (prefix / "conda-meta").mkdir(parents=True)
    shutil.copy(DATA / "conda-meta" / "pip-25.0.1-pyh145f28c_0.json", prefix / "conda-meta")
    for relative in PAYLOAD:
        target = prefix / SITE / relative.removeprefix("site-packages/")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(DATA / "payload" / relative, target)
    return prefix


def _findings(prefix: Path) -> dict[str, str]:
    found, _ = installed_file_findings(read_conda_meta(prefix), prefix)
    return {f.code: f.what for f in found}


# ----------------------------------------------------------------------------- reading


def test_a_noarch_python_record_is_read_at_its_installed_paths() -> None:
    """conda names pip's files site-packages/... in paths_data, lib/python3.13t/... in files."""
    pip = read_conda_meta(DATA)["pip"]
    raw = _raw("pip-25.0.1-pyh145f28c_0", "site-packages/pip/_vendor/vendor.txt")
    entry = next(p for p in pip.paths if p.path.endswith("pip/_vendor/vendor.txt"))
    assert entry == InstalledFile(
        path=f"{SITE}/pip/_vendor/vendor.txt",
        path_type="hardlink",
        sha256=raw["sha256_in_prefix"],
        size=raw["size_in_bytes"],
    )
    assert {p.path for p in pip.paths} <= set(pip.files), "every path is one conda installed"
    assert f"{SITE}/pip-25.0.1.dist-info/INSTALLER" in pip.sha256


def test_a_file_with_a_prefix_placeholder_is_checked_against_sha256_in_prefix() -> None:
    raw = _raw("libsqlite-3.49.1-h3f77e49_1", "lib/pkgconfig/sqlite3.pc")
    assert raw["sha256"] != raw["sha256_in_prefix"], "the data shows what it is here to show"
    entry = next(p for p in read_conda_meta(DATA)["libsqlite"].paths if p.path.endswith(".pc"))
    # The archive's size is not the installed size of a rewritten file: unknown, so it is hashed.
    assert (entry.sha256, entry.size) == (raw["sha256_in_prefix"], None)


def test_links_are_checked_for_presence_only() -> None:
    links = [p for p in read_conda_meta(DATA)["libzlib"].paths if p.path_type == "softlink"]
    assert [p.path for p in links] == ["lib/libz.1.dylib"]


# ----------------------------------------------------------------------------- checking


def test_pips_real_files_match_what_conda_recorded(env: Path) -> None:
    records = read_conda_meta(env)
    found, check = installed_file_findings(records, env)
    assert [f.code for f in found] == ["conda-file-missing"], "the other 439 files were not copied"
    assert not any(relative.split("/")[-1] in found[0].what for relative in PAYLOAD)
    assert found[0].what.startswith("pip 25.0.1 pyh145f28c_0: 439 files gone: ")
    assert (check.files, check.hashed) == (443, len(PAYLOAD))
    assert check.bytes_hashed == sum((DATA / "payload" / p).stat().st_size for p in PAYLOAD)


def test_an_edited_file_of_the_same_size_is_found_by_its_digest(env: Path) -> None:
    target = env / SITE / "pip" / "_vendor" / "vendor.txt"
    data = bytearray(target.read_bytes())
    data[0] ^= 0x20  # one letter's case: the size stays
    target.write_bytes(bytes(data))
    assert _findings(env)["conda-file-altered"] == (
        f"pip 25.0.1 pyh145f28c_0: 1 file changed since the install: {SITE}/pip/_vendor/vendor.txt"
    )


def test_a_file_of_another_size_is_altered_without_reading_it(env: Path) -> None:
    target = env / SITE / "pip-25.0.1.dist-info" / "AUTHORS.txt"
    with open(target, "ab") as handle:
        handle.write(b"Mallory\n")
    found, check = installed_file_findings(read_conda_meta(env), env)
    assert [f.code for f in found] == ["conda-file-missing", "conda-file-altered"]
    assert check.hashed == len(PAYLOAD) - 1


@pytest.mark.parametrize("replacement", ["symlink", "folder"])
def test_a_file_replaced_by_a_link_or_folder_is_altered(env: Path, replacement: str) -> None:
    target = env / SITE / "pip" / "py.typed"
    target.unlink()
    if replacement == "symlink":
        os.symlink(env / SITE / "pip" / "_vendor" / "vendor.txt", target)
    else:
        target.mkdir()
    assert _findings(env)["conda-file-altered"].endswith(f": {SITE}/pip/py.typed")


def test_the_fix_names_the_package_and_the_archive_to_distrust(env: Path) -> None:
    (env / SITE / "pip" / "py.typed").write_text("")
    found, _ = installed_file_findings(read_conda_meta(env), env)
    altered = next(f for f in found if f.code == "conda-file-altered")
    assert altered.fix == (
        "rebuild the env from the locks: `invoke reproduce`; if the files come back altered, the "
        "archive of pip in the package cache or file:// channel is not the one the lock names: "
        "delete it there and run `invoke reproduce` again"
    )


# ----------------------------------------------------------------------------- rules


def _record(tmp_path: Path, content: bytes, **entry: object) -> tuple[dict, Path]:
    """A record as rattler and conda write it, for one file whose bytes are ``content``."""
    prefix = tmp_path / "env"
    (prefix / "share").mkdir(parents=True)
    (prefix / "share" / "x.txt").write_bytes(content)
    paths = [{"_path": "share/x.txt", "path_type": "hardlink", **entry}]
    record = {"name": "x", "version": "1", "build": "0", "files": ["share/x.txt"]}
    record["paths_data"] = {"paths_version": 1, "paths": paths}
    return record, prefix


def _check(record: dict, prefix: Path) -> list[str]:
    (prefix / "conda-meta").mkdir(exist_ok=True)
    (prefix / "conda-meta" / "x-1-0.json").write_text(json.dumps(record))
    found, _ = installed_file_findings(read_conda_meta(prefix), prefix)
    return [f.code for f in found]


def test_a_rewritten_file_is_judged_by_its_digest_not_the_archives_size(tmp_path: Path) -> None:
    installed = b"prefix=/home/me/envs/x\n"
    record, prefix = _record(
        tmp_path,
        installed,
        prefix_placeholder="/opt/placeholder_placeholder_placeholder",
        file_mode="text",
        sha256=hashlib.sha256(b"prefix=/opt/placeholder_placeholder_placeholder\n").hexdigest(),
        sha256_in_prefix=hashlib.sha256(installed).hexdigest(),
        size_in_bytes=len(b"prefix=/opt/placeholder_placeholder_placeholder\n"),
    )
    assert _check(record, prefix) == []


def test_a_payload_that_differs_from_its_own_paths_json_is_altered(tmp_path: Path) -> None:
    """A tampered archive: conda hashes what it installed (sha256_in_prefix), and that is not
    what the package's paths.json says (sha256), with no placeholder to explain it."""
    installed = b"tampered\n"
    record, prefix = _record(
        tmp_path,
        installed,
        sha256=hashlib.sha256(b"original\n").hexdigest(),
        sha256_in_prefix=hashlib.sha256(installed).hexdigest(),
        size_in_bytes=len(installed),
    )
    assert _check(record, prefix) == ["conda-file-altered"]


def test_a_record_without_paths_data_is_checked_for_presence(tmp_path: Path) -> None:
    record, prefix = _record(tmp_path, b"x")
    del record["paths_data"]
    record["files"] += ["share/gone.txt", "lib/python3.11/site-packages/x/__init__.pyc"]
    assert _check(record, prefix) == ["conda-file-missing"]


def test_an_unknown_paths_version_claims_nothing(tmp_path: Path) -> None:
    record, prefix = _record(tmp_path, b"x", sha256="0" * 64, size_in_bytes=1)
    record["paths_data"]["paths_version"] = 2
    record["files"] = []
    assert _check(record, prefix) == []


def test_unreadable_records_and_empty_envs_are_quiet(tmp_path: Path) -> None:
    assert installed_file_findings({}, tmp_path)[0] == []
    empty = CondaRecord("x", "1", "0", "", "", ())
    assert installed_file_findings({"x": empty}, tmp_path)[0] == []


def test_a_file_doctor_may_not_read_is_one_line() -> None:
    with unprivileged_folder() as folder:
        record, prefix = _record(folder, b"x", sha256=hashlib.sha256(b"x").hexdigest())
        (prefix / "conda-meta").mkdir()
        (prefix / "conda-meta" / "x-1-0.json").write_text(json.dumps(record))
        (prefix / "share" / "x.txt").chmod(0o000)
        code = (
            "import json; from pathlib import Path\n"
            "from lockstep.core.condameta import read_conda_meta\n"
            "from lockstep.doctor import installed_file_findings\n"
            "from lockstep.core.errors import LockstepError\n"
            "p = Path('env')\n"
            "try: installed_file_findings(read_conda_meta(p), p)\n"
            "except LockstepError as e: print(json.dumps(str(e)))\n"
        )
        assert run_unprivileged(code, folder) == (
            "cannot read env/share/x.txt: permission denied; make it and its folder readable for "
            "you (chmod u+r) or run as their owner; nothing was changed (or skip this: "
            "--no-file-check)"
        )
