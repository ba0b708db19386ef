"""The fast conda-lock input hash equals conda-lock's own, on many generated inputs."""

from __future__ import annotations

import itertools
import random
from pathlib import Path

import pytest
from tests.paths import PROJECT

from lockstep import inputhash
from lockstep.core import condalockhash
from lockstep.core.errors import LockstepError

conda_common = pytest.importorskip("conda_lock.src_parser.conda_common")

ROOT = PROJECT

NAMES = ["numpy", "Numpy", "ruamel.yaml", "cuda-version", "python", "libblas", "r-base", "_openmp"]
VERSIONS = ["1", "1.2", "1.26.4", "3.11", "12.9", "1.2.3a1", "2.0.0rc1", "1.2.post1", "2024.1"]
STARRED = ["*", "1.*", "1.2.*", "1*", "1.2*"]
BUILDS = ["py_0", "cuda*", "*cuda*", "*_cpython", "h1234_0", "*mkl", "0", "*"]
CHANNELS = ["", "conda-forge::", "nvidia::", "my_chan::"]


def _spec_strings() -> list[str]:
    specs: list[str] = []
    for name, channel in itertools.product(NAMES, CHANNELS):
        specs.append(f"{channel}{name}")
        for version in VERSIONS + STARRED:
            specs += [f"{channel}{name}={version}", f"{channel}{name} {version}"]
            specs += [f"{channel}{name}=={version}"]
            for build in BUILDS[:3]:
                specs += [
                    f"{channel}{name}={version}={build}",
                    f"{channel}{name} {version} {build}",
                ]
        for low, high in itertools.product(VERSIONS[:4], VERSIONS[4:7]):
            specs += [
                f"{name}>={low},<{high}",
                f"{name} >={low}",
                f"{name}!={low}",
                f"{name}~={low}",
            ]
            specs += [
                f"{name}>{low},<={high},!={high}",
                f"{name}<{high}",
                f"{name}>={low},=={high}",
            ]
    return specs


def _reference_spec(spec: str) -> dict:
    dumped = conda_common.conda_spec_to_versioned_dep(spec, "main").model_dump()
    return {k: v for k, v in dumped.items() if not (k == "markers" and v is None)}


def test_every_fast_spec_equals_conda_matchspec() -> None:
    specs = _spec_strings()
    checked = 0
    for spec in specs:
        try:
            fast = condalockhash.serialize_spec(spec)
        except condalockhash.Unsupported:
            continue
        assert fast == _reference_spec(spec), spec
        checked += 1
    assert checked > 0.95 * len(specs) and checked > 1500


@pytest.mark.parametrize(
    "spec",
    [
        "numpy[version='>=1.0']",  # brackets
        "pkgs/main::numpy",  # renamed channel
        "defaults::numpy",
        "numpy=1.2|1.3",  # or-lists keep their `=`
        "numpy >= 1.2",  # space after the operator
        "numpy==1.2=py_0",
        "numpy>=1.2.*",
        "https://host/chan::numpy",
    ],
)
def test_unusual_spellings_are_left_to_conda_lock(spec: str) -> None:
    with pytest.raises(condalockhash.Unsupported):
        condalockhash.serialize_spec(spec)


# --------------------------------------------------------------------------- whole files

PLATFORMS = ["linux-64", "linux-aarch64", "osx-arm64", "osx-64", "win-64"]
CHANNEL_LISTS = [
    ["conda-forge", "nodefaults"],
    ["conda-forge"],
    ["nvidia", "conda-forge", "nodefaults"],
    ["pytorch", "nvidia", "conda-forge"],
    ["conda-forge/label/rc", "conda-forge"],
    ["file:///srv/channel", "nodefaults"],
    ["http://127.0.0.1:8000/chan/"],
    [],
]
SELECTORS = [
    "",
    "  # [linux]",
    "  # [osx]",
    "  # [win]",
    "  # [unix]",
    "  # [linux64]",
    "  # [arm64]",
    "  # pinned [see docs]",
    "  # [aarch64]",
]


def _random_env(rng: random.Random) -> str:
    channels = rng.choice(CHANNEL_LISTS)
    lines = ["# generated", "name: gen", "channels:" if channels else "channels: []"]
    lines += [f"  - {c}" for c in channels]
    if rng.random() < 0.3:
        lines += ["platforms:", "  - linux-64", "  - osx-arm64"]
    if rng.random() < 0.1:
        lines += ["category: dev"]
    lines += ["dependencies:"]
    specs = [s for s in _SPECS if rng.random() < 0.5][:40] or ["python=3.11"]
    for spec in rng.sample(_SPECS_POOL, rng.randint(1, 12)) + specs[: rng.randint(0, 5)]:
        lines.append(f"  - {spec}{rng.choice(SELECTORS) if rng.random() < 0.4 else ''}")
    if rng.random() < 0.2:
        lines += ["  # - commented-out", "variables:", "  PYTHONNOUSERSITE: '1'"]
    return "\n".join(lines) + "\n"


_SPECS_POOL = [
    "python=3.11",
    "cuda-version=12.9",
    "pytorch=*=cuda*",
    "torchvision",
    "pip",
    "poetry=2.*",
    "numpy>=1.26,<2",
    "conda-forge::pyyaml",
    "nvidia::cuda-nvcc 12.9.*",
    "libblas=*=*mkl",
    "invoke 3.*",
    "Tomlkit",
    "python 3.11.9 h1234_0_cpython",
    "numpy",
    "scipy>1.10",
]
_SPECS = _spec_strings()[::37]

VP_FILES = [
    {
        "linux-64": {
            "__unix": "0",
            "__linux": "5.10",
            "__glibc": "2.28",
            "__archspec": "1 x86_64",
            "__cuda": "12.9",
        }
    },
    {
        "linux-64": {"__unix": "0", "__glibc": "2.17"},
        "osx-arm64": {"__osx": "14.0", "__archspec": "1 arm64"},
    },
    {"linux-64": {"__cuda": "13.0", "__glibc": "2.34"}, "noarch": {"__unix": "0"}},
    {"win-64": {"__win": "0", "__cuda": "12.4"}, "linux-aarch64": {"__archspec": "1 aarch64"}},
    {"osx-64": {"__osx": "11.0", "__unix": "0"}},
]


def _vp_text(subdirs: dict) -> str:
    lines = ["# generated", "subdirs:"]
    for subdir, packages in subdirs.items():
        lines += [f"  {subdir}:", "    packages:"]
        lines += [f'      {name}: "{version}"' for name, version in packages.items()]
    return "\n".join(lines) + "\n"


def test_whole_hash_equals_conda_lock_on_generated_inputs(tmp_path: Path) -> None:
    rng = random.Random(20261124)
    cases = 0
    for number in range(150):
        env_text = _random_env(rng)
        vp_text = _vp_text(rng.choice(VP_FILES))
        platform = rng.choice(PLATFORMS)
        env_file, vp_file = tmp_path / f"env{number}.yml", tmp_path / f"vp{number}.yml"
        env_file.write_text(env_text, encoding="utf-8")
        vp_file.write_text(vp_text, encoding="utf-8")
        try:
            expected = inputhash.conda_lock_input_hash(env_file, vp_file, platform)
        except Exception:  # conda-lock rejects it: the fast path must not invent a hash
            with pytest.raises(condalockhash.Unsupported):
                condalockhash.fast_input_hash(env_text, vp_text, platform)
            continue
        assert condalockhash.fast_input_hash(env_text, vp_text, platform) == expected, env_text
        cases += 1
    assert cases > 130


def test_project_files_hash_fast_and_equal() -> None:
    env, vp = ROOT / "environment.yml", ROOT / "virtual-packages.yml"
    fast = condalockhash.fast_input_hash(env.read_text("utf-8"), vp.read_text("utf-8"), "linux-64")
    assert fast == inputhash.conda_lock_input_hash(env, vp, "linux-64")


def test_unsupported_spelling_falls_back_to_conda_lock(tmp_path: Path) -> None:
    env = tmp_path / "environment.yml"
    env.write_text("channels: [conda-forge]\ndependencies:\n  - numpy[version='>=1.0']\n", "utf-8")
    vp = tmp_path / "vp.yml"
    vp.write_text(_vp_text(VP_FILES[0]), encoding="utf-8")
    with pytest.raises(condalockhash.Unsupported):
        condalockhash.fast_input_hash(env.read_text("utf-8"), vp.read_text("utf-8"), "linux-64")
    assert inputhash.input_hash(env, vp, "linux-64") == inputhash.conda_lock_input_hash(
        env, vp, "linux-64"
    )


def test_pip_section_is_refused_without_network(tmp_path: Path) -> None:
    env = tmp_path / "environment.yml"
    env.write_text(
        "channels: [conda-forge]\ndependencies:\n  - pip\n  - pip:\n    - rich\n", "utf-8"
    )
    vp = tmp_path / "vp.yml"
    vp.write_text(_vp_text(VP_FILES[0]), encoding="utf-8")
    with pytest.raises(LockstepError, match="pip:"):
        inputhash.input_hash(env, vp, "linux-64")
