"""Every conda-side module run over real files of public projects (tests/data/conda/PROVENANCE).

The oracles are the real tools' answers, stored beside the files so that no network is needed:
parselmouth's mapping (parselmouth-answers.json, from the same commit as the bundled table),
conda-lock 4's own library (conda-lock-answers.json: the hash it computes and whether it accepts
each lock's header), conda's MatchSpec as conda-lock vendors it (conda-matchspec-answers.json)
and the lock headers themselves.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from lockstep import check, inputhash
from lockstep.core.explicit import parse_explicit, read_explicit
from lockstep.core.mirrors import MirrorConfig, rewrite_lock, unmatched_channels
from lockstep.core.names import NAMESAKES, conda_to_pypi, normalize, pypi_names
from lockstep.core.poetrylock import parse_poetry_lock, read_poetry_lock
from lockstep.core.settings import Settings
from lockstep.pins import desired_pins
from lockstep.spec import load_env_spec, parse_matchspec

CORPUS = Path(__file__).parents[1] / "data" / "conda"
LOCKS = sorted(CORPUS.glob("*/conda-linux-64.lock"))
UNIFIED = sorted(CORPUS.glob("*/conda-lock.yml"))
ENVS = sorted(CORPUS.glob("*/environment.yml"))
HASHES = json.loads((CORPUS / "conda-lock-answers.json").read_text())["linux-64"]
PARSELMOUTH = json.loads((CORPUS / "parselmouth-answers.json").read_text())
MATCHSPECS = json.loads((CORPUS / "conda-matchspec-answers.json").read_text())
SETTINGS = Settings(platforms=("linux-64",))


def project(name: str) -> Path:
    return next(CORPUS.glob(f"{name}*"))


def corpus_conda_names() -> set[str]:
    names = {e.name for lock in LOCKS for e in read_explicit(lock).entries}
    for unified in UNIFIED:
        packages = yaml.safe_load(unified.read_text(encoding="utf-8"))["package"]
        names |= {p["name"] for p in packages if p["manager"] == "conda"}
    return names


def test_corpus_is_what_provenance_lists() -> None:
    listed = {
        line.split("\t")[0]
        for line in (CORPUS / "PROVENANCE").read_text().splitlines()
        if line and not line.startswith("#")
    }
    on_disk = {
        str(p.relative_to(CORPUS)) for p in CORPUS.glob("*/*") if p.parent != CORPUS and p.is_file()
    }
    assert listed == on_disk
    assert len(listed) >= 12


# --------------------------------------------------------------------------- names


def test_every_corpus_name_agrees_with_parselmouth() -> None:
    names = corpus_conda_names()
    assert names == set(PARSELMOUTH)
    wrong = {}
    for name in sorted(names):
        if name in NAMESAKES:  # named like a PyPI project they are not: the one deviation
            assert pypi_names(name) == NAMESAKES[name]
            continue
        answer = PARSELMOUTH[name]
        listed = answer if isinstance(answer, list) else []
        mapped = conda_to_pypi(name)
        if (mapped is None) != (not listed) or (mapped is not None and mapped not in listed):
            wrong[name] = (mapped, answer)
        assert set(pypi_names(name)) <= set(listed)
    assert wrong == {}
    assert len(names) > 1000


@pytest.mark.parametrize(
    ("conda", "pypi"),
    [
        ("matplotlib-base", "matplotlib"),
        ("pyarrow-core", "pyarrow"),
        ("tensorflow-base", "tensorflow"),
        ("msgpack-python", "msgpack"),
        ("cupy-core", "cupy"),
        ("py-opencv", "opencv-python"),
        ("python-tzdata", "tzdata"),
        ("python-flatbuffers", "flatbuffers"),
        ("brotli-python", "brotli"),
        ("pytables", "tables"),
        ("dask-core", "dask"),
        ("py-xgboost", "xgboost"),
        ("python-duckdb", "duckdb"),
        ("pytorch", "torch"),
        ("tzdata", None),
        ("flatbuffers", None),
        ("pytorch-cuda", None),
        ("libcurl", None),
        ("cuda-version", None),
        ("libcublas", None),
        ("python", None),
    ],
)
def test_renamed_and_non_python_packages(conda: str, pypi: str | None) -> None:
    assert conda_to_pypi(conda) == pypi


def test_vendored_distributions_are_not_the_package() -> None:
    # parselmouth lists bleach's vendored six and webencodings; they are not bleach's versions.
    assert pypi_names("bleach") == ("bleach",)


def test_settings_override_the_mapping() -> None:
    assert conda_to_pypi("tzdata", {"tzdata": "tzdata"}) == "tzdata"
    assert conda_to_pypi("pytorch", {"pytorch": ""}) is None


def test_pins_of_a_real_project_hold_only_python_distributions() -> None:
    root = project("Alek96__ultrasound_fetal_images-849ebd46")
    lock = read_explicit(root / "conda-linux-64.lock")
    spec = load_env_spec(root / "environment.yml")
    poetry = parse_poetry_lock(read_poetry_lock(root / "poetry.lock", hashes=False))
    pins = desired_pins([(e.name, e.version) for e in lock.entries], spec, poetry)
    assert "mamba" not in pins and "pytorch-cuda" not in pins
    assert "tzdata" not in pins  # conda's tzdata 2024a is the data set, not PyPI's tzdata
    assert pins["torch"] == lock.by_name()["pytorch"].version


# --------------------------------------------------------------------------- explicit locks


@pytest.mark.parametrize("lock", LOCKS, ids=lambda p: p.parent.name)
def test_explicit_parser_reads_every_line(lock: Path) -> None:
    text = lock.read_text(encoding="utf-8")
    parsed = parse_explicit(text, str(lock))
    urls = [line for line in text.splitlines() if line.startswith(("http://", "https://"))]
    pips = [line for line in text.splitlines() if line.startswith("# pip ")]
    assert [e.url for e in parsed.entries] == [u.split("#")[0] for u in urls]
    assert len(parsed.pip) == len(pips)
    for entry, line in zip(parsed.pip, pips, strict=True):
        assert line == f"# pip {entry.name} @ {entry.url}#sha256={entry.sha256}"


def test_pip_lines_of_a_real_lock() -> None:
    lock = read_explicit(project("Healthy-AI__dalupi") / "conda-linux-64.lock")
    assert [(p.name, p.version) for p in lock.pip][:3] == [
        ("cycler", "0.11.0"),
        ("fonttools", "4.39.4"),
        ("kiwisolver", "1.4.4"),
    ]
    found = check.run_checks(project("Healthy-AI__dalupi"), SETTINGS)
    [pip_lines] = [f for f in found if f.code == "pip-lines"]
    assert "9 `# pip` line(s)" in pip_lines.what and "\n" not in pip_lines.what


# --------------------------------------------------------------------------- input hash


@pytest.mark.parametrize("name", sorted(HASHES))
def test_input_hash_agrees_with_conda_lock_4(name: str) -> None:
    root, answer = CORPUS / name, HASHES[name]
    env, vp = root / "environment.yml", root / "virtual-packages.yml"
    assert read_explicit(root / "conda-linux-64.lock").input_hash == answer["lock_header"]
    assert inputhash.input_hash(env, vp, "linux-64") == answer["conda_lock_hash"]
    accepted = inputhash.accepted_hashes(env, vp, "linux-64")
    assert (answer["lock_header"] in accepted) == answer["conda_lock_accepts_header"]
    stale = "conda-lock-stale" in {f.code for f in check.run_checks(root, SETTINGS)}
    assert stale == (not answer["conda_lock_accepts_header"])


def test_a_conda_lock_3_lock_is_fresh() -> None:
    answer = HASHES["Alek96__ultrasound_fetal_images-0f3d9959"]
    assert answer["lock_header"] != answer["conda_lock_hash"]  # only the legacy variant matches
    assert answer["conda_lock_accepts_header"]


def test_a_bad_virtual_packages_file_is_named(tmp_path: Path) -> None:
    shutil.copytree(project("Alek96__ultrasound_fetal_images-02207e15"), tmp_path / "p")
    (tmp_path / "p" / "virtual-packages.yml").write_text("subdirs: [linux-64]\n")
    found = [
        f for f in check.run_checks(tmp_path / "p", SETTINGS) if f.code == "conda-lock-unverified"
    ]
    assert [f.file for f in found] == ["virtual-packages.yml"]


# --------------------------------------------------------------------------- match specs


@pytest.mark.parametrize("text", sorted(MATCHSPECS))
def test_matchspec_agrees_with_conda(text: str) -> None:
    ours, conda = parse_matchspec(text), MATCHSPECS[text]
    assert ours.name == conda["name"]
    assert ours.channel == conda["channel"]
    assert ours.build == conda["build"]
    # conda spells `=1.2` as `1.2*` and `==1.2` as `1.2`; the same constraint either way.
    assert ours.version.removeprefix("==").rstrip("*").rstrip(".") == conda["version"].rstrip(
        "*"
    ).rstrip(".")


@pytest.mark.parametrize("env", ENVS, ids=lambda p: p.parent.name)
def test_every_real_environment_file_loads(env: Path) -> None:
    assert load_env_spec(env).dependencies


def test_bracket_spec_is_read_and_checked() -> None:
    root = project("METHODS-Group__DRDMannTurb")
    assert load_env_spec(root / "environment.yml").get("ruff").version == ">=0.4.8"
    found = check.run_checks(root, Settings(platforms=()))
    assert "unreadable" not in {f.code for f in found if f.file == "environment.yml"}
    assert "defaults-channel" in {f.code for f in found}  # the spec checks ran


# --------------------------------------------------------------------------- check


def cross_codes(root: Path) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for f in check.run_checks(root, SETTINGS):
        if f.code in {"version-conflict", "duplicate-wheel"}:
            found.setdefault(f.code, []).append(f.what.split(":")[0].split(" ")[0])
    return found


def test_real_conflict_found_and_namesakes_ignored() -> None:
    ekdosi = cross_codes(project("MPierratos__ekdosi"))
    assert "msgpack" in ekdosi["version-conflict"]  # conda msgpack-python 1.0.6, PyPI 1.0.7
    alek = cross_codes(project("Alek96__ultrasound_fetal_images-849ebd46"))
    assert "tzdata" not in alek.get("version-conflict", [])  # tzdata 2024a is the data set
    xcbs = cross_codes(project("DanisAlukaev__XCBs"))
    assert "tzdata" not in xcbs.get("version-conflict", [])


def test_libcurl_is_not_cuda(tmp_path: Path) -> None:
    # A conda-forge lock without CUDA (it holds libcurl) beside a poetry.lock with PyPI torch
    # and its nvidia-* wheels: the wheels are the only CUDA, so nothing is duplicated.
    root = tmp_path / "p"
    shutil.copytree(project("Alek96__ultrasound_fetal_images-02207e15"), root)
    donor = project("Alek96__ultrasound_fetal_images-849ebd46")
    for name in ("poetry.lock", "pyproject.toml"):
        shutil.copy(donor / name, root / name)
    lock = read_explicit(root / "conda-linux-64.lock")
    assert "libcurl" in lock.by_name() and not check.conda_has_cuda(lock)
    assert "nvidia-cublas-cu12" in parse_poetry_lock(
        read_poetry_lock(root / "poetry.lock", hashes=False)
    )
    assert "duplicate-wheel" not in cross_codes(root)


@pytest.mark.parametrize(
    ("name", "cuda"),
    [
        ("Alek96__ultrasound_fetal_images-849ebd46", True),
        ("MPierratos__ekdosi", True),
        ("Denolle-Lab__seisbench-jupyter", True),
        ("Alek96__ultrasound_fetal_images-02207e15", False),
        ("CryoInTheCloud__image-cryo-python-AI", False),
    ],
)
def test_cuda_detected_by_real_package_names(name: str, cuda: bool) -> None:
    assert check.conda_has_cuda(read_explicit(project(name) / "conda-linux-64.lock")) == cuda


# --------------------------------------------------------------------------- mirrors


def test_defaults_channel_is_pkgs_main() -> None:
    text = (project("Denolle-Lab__seisbench-jupyter") / "conda-linux-64.lock").read_text()
    main = [line for line in text.splitlines() if "repo.anaconda.com/pkgs/main/" in line]
    config = MirrorConfig(channels={"pkgs/main": "file:///mirror/main"})
    new, changed = rewrite_lock(text, config)
    assert changed == len(main) == 2
    assert all(
        line.replace("https://repo.anaconda.com/pkgs/main", "file:///mirror/main") in new
        for line in main
    )
    assert unmatched_channels(text, config) == []
    assert unmatched_channels(text, MirrorConfig(channels={"main": "file:///m"})) == ["main"]


# --------------------------------------------------------------------------- namesakes


def test_condas_mamba_is_not_pypis_mamba() -> None:
    # MPierratos/ekdosi's real lock holds conda's mamba 1.5.2, whose dist-info is named `mamba`;
    # PyPI's `mamba` is an unrelated test runner (and mamba 2 ships no Python distribution).
    lock = read_explicit(project("MPierratos__ekdosi") / "conda-linux-64.lock")
    assert lock.by_name()["mamba"].version == "1.5.2"
    assert "mamba" not in check.conda_pypi_versions(lock, {})
    assert conda_to_pypi("mamba") is None and conda_to_pypi("conda") is None


def test_condas_ruamel_yaml_fork_is_no_conflict_with_pypis_ruamel_yaml(tmp_path: Path) -> None:
    # conda's ruamel_yaml 0.15 (its vendored fork; mapping data: ruamel-yaml, ruamel-yaml-conda)
    # next to the real poetry.lock of MPierratos/ekdosi, which locks PyPI's ruamel-yaml 0.17.40.
    # The line is conda-forge's own record (URL and md5 as published), copied verbatim from a
    # public environment listing; no lock in tests/data holds it, so it is written out here.
    line = (
        "https://conda.anaconda.org/conda-forge/linux-64/"
        "ruamel_yaml-0.15.80-py37h8f50634_1001.tar.bz2#a7314a2fe6a28b4d6c8029c1e563f653"
    )
    lock = parse_explicit(f"@EXPLICIT\n{line}\n", "conda-linux-64.lock")
    poetry = read_poetry_lock(project("MPierratos__ekdosi") / "poetry.lock")
    locked = {normalize(p["name"]): p["version"] for p in poetry["package"]}
    assert locked["ruamel-yaml"] == "0.17.40"
    versions = check.conda_pypi_versions(lock, {})
    assert versions == {"ruamel-yaml-conda": "0.15.80"}
    assert "ruamel-yaml" not in versions
