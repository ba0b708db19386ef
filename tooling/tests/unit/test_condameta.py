"""The one conda-meta reader (lockstep.core.condameta) and what the installer, doctor and
`pin --from-env` derive from it: one rule for which distributions conda owns."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from lockstep.core import condameta
from lockstep.core.installer import conda_provided_distributions

REAL = Path(__file__).resolve().parents[1] / "data" / "doctor-real-env"
SITE = "lib/python3.11/site-packages"


def _env(tmp_path: Path) -> Path:
    meta = tmp_path / "conda-meta"
    meta.mkdir()
    records = {
        "pytorch-2.7.1-cuda129_0.json": {
            "name": "pytorch",
            "version": "2.7.1",
            "files": [f"{SITE}/torch/__init__.py", f"{SITE}/torch-2.7.1.dist-info/METADATA"],
        },
        # An older build ships egg-info; pip vendors a dist-info deeper down: only the top counts.
        "pyyaml-6.0-py311_0.json": {
            "name": "pyyaml",
            "version": "6.0",
            "files": [
                f"{SITE}/PyYAML-6.0-py3.11.egg-info/PKG-INFO",
                f"{SITE}/yaml/_vendor/six-1.0.dist-info/METADATA",
            ],
        },
        "python-3.11.10-h_0.json": {"name": "python", "version": "3.11.10", "files": []},
        "libcublas-12.9-h_0.json": {"name": "libcublas", "files": ["lib/libcublas.so.12"]},
    }
    for name, record in records.items():
        (meta / name).write_text(json.dumps(record))
    (meta / "history").write_text("not json")
    (meta / "broken-1-0.json").write_text("{not json")
    return tmp_path


def test_dist_folders_are_the_top_of_site_packages_dist_and_egg_info(tmp_path: Path) -> None:
    records = condameta.read_conda_meta(_env(tmp_path))
    assert records["pytorch"].dist_dirs == [f"{SITE}/torch-2.7.1.dist-info"]
    assert records["pyyaml"].dist_dirs == [f"{SITE}/PyYAML-6.0-py3.11.egg-info"]
    assert records["libcublas"].dist_dirs == []


def test_every_consumer_derives_the_same_distributions(tmp_path: Path) -> None:
    prefix = _env(tmp_path)
    records = condameta.read_conda_meta(prefix)
    provided = condameta.provided_distributions(records.values())
    assert provided == {"torch": "pytorch", "pyyaml": "pyyaml"}
    assert conda_provided_distributions(prefix) == provided
    names = condameta.distribution_names(records.values())
    assert {d for dists in names.values() for d in dists} == set(provided)
    assert names["libcublas"] == ()
    assert condameta.python_version(records) == "3.11.10"


def test_a_real_noarch_record_names_its_distribution() -> None:
    records = condameta.read_conda_meta(REAL)
    assert records["pip"].dist_dirs == ["lib/python3.13t/site-packages/pip-25.0.1.dist-info"]
    assert condameta.provided_distributions(records.values()) == {"pip": "pip"}
    assert condameta.python_version(records) is None


def test_the_signature_moves_with_every_write_to_the_records(tmp_path: Path) -> None:
    meta = tmp_path / "conda-meta"
    meta.mkdir()
    record = meta / "a-1-0.json"
    record.write_text('{"name": "a"}')
    first = condameta.signature(tmp_path)
    assert first is not None and condameta.signature(tmp_path) == first

    stat = record.stat()
    time.sleep(0.05)  # past the kernel's coarse timestamp tick
    record.write_text('{"name": "b"}')  # same size, written in place, times put back
    os.utime(record, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    rewritten = condameta.signature(tmp_path)
    assert rewritten != first

    (meta / "b-1-0.json").write_text("{}")
    added = condameta.signature(tmp_path)
    assert added not in {first, rewritten}
    (meta / "b-1-0.json").unlink()
    assert condameta.signature(tmp_path) not in {first, added}
    assert condameta.signature(tmp_path / "nowhere") is None
