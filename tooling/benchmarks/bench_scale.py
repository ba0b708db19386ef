"""Reproduce at real scale: a benchmark, not a test.

Generates, under a temporary folder, a local conda channel shaped like a real ML env (~150
packages, ~30,000 files, a few files of 100+ MB; content random but seeded; `.conda` archives, as
conda-forge ships them; two packages with a second, newer build) and a local index of ~50 wheels;
locks it through the tasks (`invoke lock`, `poetry-init`, `pin`); then prints tables of medians
over interleaved runs, warm and cold package cache:
  - on the frontend's path (installer = "frontend"): the raw commands a user would
    type (frontend create from the explicit lock, pip with hashes, the env variable), `make
    reproduce`, `invoke reproduce`, each over an env that no longer matches;
  - the frontend's create alone and the hard-link floor (`cp -al` of the unpacked package cache);
  - the PyPI side alone, pip against uv (uv: the wheel's binary in this Python, or
    LOCKSTEP_TEST_UV);
  - the check: `python -m lockstep.precommit` against `python -c pass`, `invoke check` against
    bare `invoke --list` on a one-task tasks.py (bench_check's 300 conda + 150 Poetry packages);
  - the installers: `make reproduce` by py-rattler and by the frontend for a new env, an env
    two packages off the lock (the older builds) and one that matches, update's engine step,
    against py-rattler alone (lockstep.core.rattlerinstall) and `cp -al` of the finished env;
then the target ratios (TARGETS, INSTALLER_TARGETS) and a profile of one warm engine run.

The frontend is the test stand-in (py-rattler behind conda's command line), not conda; with
`--conda PATH` the installer rows list envs with, and the frontend rows install by, that conda
(real conda run from its source, say). "Cold" empties the package caches (conda's pkgs, rattler's,
pip's and uv's caches) before each run; the OS page cache is left alone.

Usage: .venv/bin/python benchmarks/bench_scale.py [--quick] [--runs N] [--cold-runs N]
           [--conda PATH]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the harness is imported from the test tree, not copied
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_check import build_project as build_check_project  # noqa: E402
from bench_reproduce import raw_reproduce, requirements_from_poetry_lock  # noqa: E402
from tests.integration.channel import (  # noqa: E402
    CondaPackage,
    default_packages,
    index_channel,
    write_package,
)
from tests.integration.condastandin.conda_standin import write_executables  # noqa: E402
from tests.integration.distinfo import distribution_files  # noqa: E402
from tests.integration.project import Project, create_project, user_site_python  # noqa: E402
from tests.integration.pyindex import (  # noqa: E402
    WHEEL_TAG,
    ZIP_DATE,
    add_wheels,
    build_index,
    serve_index,
)
from tests.integration.uvtool import SKIP_REASON, uv_binary, uv_package  # noqa: E402

ENV_NAME = "bench-scale"
SEED = 20261125
META = "bench-stack"
MIB = 1024 * 1024
Command = Sequence[str | os.PathLike[str]]


@dataclass(frozen=True)
class Scale:
    packages: int  # generated conda packages (the project's own few come on top)
    files: int  # files in them, in all
    big_files: int  # files of big_mb each (the CUDA libraries of a real env)
    big_mb: int
    wheels: int
    files_per_wheel: int
    runs: int  # warm runs per row
    cold_runs: int
    check_runs: int


FULL = Scale(145, 30_000, 3, 105, 50, 40, 5, 3, 20)
QUICK = Scale(6, 120, 1, 1, 3, 3, 1, 1, 2)

# Rows of the table, by label (the smoke test reads them).
RAW = "raw commands (create + pip + var)"
MAKE = "make reproduce"
INVOKE = "invoke reproduce"
ENGINE = "engine alone (python -m lockstep.core.engine)"
CREATE = "frontend create alone (stand-in)"
FLOOR = "hard-link floor (cp -al of pkgs)"
PIP = "PyPI side, pip --require-hashes"
UV = "PyPI side, uv --require-hashes"
PASS = "python -c pass"
CHECK = "python -m lockstep.precommit"
LIST = "invoke --list (one-task tasks.py)"
INVOKE_CHECK = "invoke check"
# The heading of the target ratios: what the engine, uv and the check must reach.
TARGETS = "targets (ratios of medians of this run)"
INSTALLER_TARGETS = "installer targets (ratios of medians of this run)"

# --------------------------------------------------------------------------- what is generated


def _text(rng: random.Random, size: int) -> bytes:
    """Seeded bytes that compress like code and data do (about 2:1), not like zeros."""
    words = [rng.randbytes(rng.randint(2, 8)).hex() for _ in range(64)]
    out = bytearray()
    while len(out) < size:
        out += rng.choice(words).encode() + b" "
    return bytes(out[:size])


def _file_counts(scale: Scale, rng: random.Random) -> list[int]:
    """Files per package: heavy-tailed like real envs (a few with thousands, most with tens)."""
    weights = [rng.paretovariate(1.1) for _ in range(scale.packages)]
    total = sum(weights)
    counts = [max(2, int(scale.files * w / total)) for w in weights]
    counts[0] += scale.files - sum(counts)  # the rounding goes to the first (heaviest is fine)
    return [max(2, c) for c in counts]


def _package(number: int, files: int, big_mb: int, seed: int) -> CondaPackage:
    rng = random.Random(seed + number)
    payload = {
        f"lib/bench{number:03d}/f{i:05d}.dat": rng.randbytes(rng.randint(64, 2048))
        + _text(rng, rng.randint(256, 6144))
        for i in range(files - (1 if big_mb else 0))
    }
    if big_mb:
        block = _text(rng, 4 * MIB)  # longer than bzip2's 900 kB block: no free ride
        payload[f"lib/libbench{number:03d}.so"] = (block * (big_mb // 4 + 1))[: big_mb * MIB]
    return CondaPackage(
        name=f"libbench{number:03d}",
        version=f"1.{number}.0",
        build="h0_0",
        subdir="linux-64",
        files=payload,
    )


def _write_generated(args: tuple[int, int, int, int, Path, bool]) -> str:
    number, files, big_mb, seed, channel, changed = args
    package = _package(number, files, big_mb, seed)
    _as_conda(write_package(package, channel))
    if changed:
        # A second build the solver prefers: the lock takes it, the "older" lock the first.
        newer = _package(number, files, big_mb, seed + 1)
        _as_conda(write_package(dataclasses.replace(newer, build="h1_1", build_number=1), channel))
    return package.name


def _as_conda(archive: Path) -> Path:
    """The .tar.bz2 that the harness wrote as a .conda (zstd, what conda-forge ships): a zip of
    metadata.json, info-STEM.tar.zst and pkg-STEM.tar.zst; the .tar.bz2 goes."""
    import io
    import tarfile

    import zstandard

    stem = archive.name.removesuffix(".tar.bz2")
    parts = {"info": io.BytesIO(), "pkg": io.BytesIO()}
    with (
        tarfile.open(archive, "r:bz2") as source,
        tarfile.open(fileobj=parts["info"], mode="w") as info,
        tarfile.open(fileobj=parts["pkg"], mode="w") as pkg,
    ):
        for member in source.getmembers():
            data = source.extractfile(member) if member.isfile() else None
            (info if member.name.startswith("info/") else pkg).addfile(member, data)
    out = archive.with_name(stem + ".conda")
    compressor = zstandard.ZstdCompressor(level=3)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("metadata.json", json.dumps({"conda_pkg_format_version": 2}))
        for kind in ("pkg", "info"):
            zf.writestr(f"{kind}-{stem}.tar.zst", compressor.compress(parts[kind].getvalue()))
    archive.unlink()
    return out


def build_scale_channel(channel: Path, scale: Scale, workers: int) -> list[str]:
    """The project's packages, the generated ones and a meta package that needs them all."""
    rng = random.Random(SEED)
    counts = _file_counts(scale, rng)
    changed = {scale.packages // 2, scale.packages // 2 + 1}
    jobs = [
        (n, counts[n], scale.big_mb if n < scale.big_files else 0, SEED, channel, n in changed)
        for n in range(scale.packages)
    ]
    base = [user_site_python(), *(p for p in default_packages() if p.name != "python")]
    uv = uv_binary()
    if uv is not None:  # the starter's environment.yml lists uv: the engine's PyPI installer
        base.append(uv_package(uv))
    for package in base:
        _as_conda(write_package(package, channel))
    with ProcessPoolExecutor(max_workers=workers) as pool:
        names = list(pool.map(_write_generated, jobs))
    meta = CondaPackage(name=META, version="1.0", build="h0_0", depends=tuple(names))
    _as_conda(write_package(meta, channel))
    index_channel(channel)
    return names


def _wheel_name(number: int) -> str:
    return f"benchwheel{number:02d}"


def build_scale_index(root: Path, scale: Scale) -> Path:
    """The harness's index plus ``scale.wheels`` wheels of several modules each."""
    build_index(root)
    rng = random.Random(SEED + 1)
    for number in range(scale.wheels):
        name, version = _wheel_name(number), "1.0"
        modules = {
            f"{name}/m{i:02d}.py": b"# generated\n" + _text(rng, rng.randint(512, 8192))
            for i in range(scale.files_per_wheel)
        }
        modules[f"{name}/__init__.py"] = b'__version__ = "1.0"\n'
        wheel_meta = (
            f"Wheel-Version: 1.0\nGenerator: bench\nRoot-Is-Purelib: true\nTag: {WHEEL_TAG}\n"
        )
        files = distribution_files(
            name, version, modules, extra_dist_info={"WHEEL": wheel_meta.encode()}
        )
        out = root / "packages" / f"{name}-{version}-{WHEEL_TAG}.whl"
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
            for path in sorted(files, key=lambda p: (p.endswith("/RECORD"), p)):
                zf.writestr(zipfile.ZipInfo(path, ZIP_DATE), files[path])
    return add_wheels(root, [])  # rewrites the simple pages


def _scale_spec_files(project: Project, scale: Scale) -> None:
    yml = project.environment_yml.read_text(encoding="utf-8")
    uv = "  - uv\n" if uv_binary() is not None else ""
    project.environment_yml.write_text(yml.replace("  - pip\n", f"  - pip\n{uv}  - {META}\n"))
    wheels = ", ".join(f'"{_wheel_name(n)}"' for n in range(scale.wheels))
    text = project.pyproject.read_text(encoding="utf-8")
    project.pyproject.write_text(text.replace('["tinyapp"]', f'["tinyapp", {wheels}]'))


# --------------------------------------------------------------------------- running and timing


def _run(project: Project, command: Command, env: dict[str, str] | None = None) -> None:
    done = subprocess.run(
        [os.fspath(part) for part in command],
        cwd=project.root,
        env=env or dict(project.env),
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise SystemExit(
            f"bench: `{' '.join(map(os.fspath, command))}` exited {done.returncode}\n"
            f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        )


def _timed(action: Callable[[], None], before: Callable[[], None] | None) -> float:
    if before is not None:
        before()
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def interleaved(
    actions: dict[str, Callable[[], None]], runs: int, before: Callable[[], None] | None = None
) -> dict[str, float]:
    """Median seconds of each action, taking turns every round; ``before`` runs untimed."""
    times: dict[str, list[float]] = {name: [] for name in actions}
    for _ in range(runs):
        for name, action in actions.items():
            times[name].append(_timed(action, before))
    return {name: statistics.median(values) for name, values in times.items()}


def _rm(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


@dataclass(frozen=True)
class Bench:
    project: Project
    work: Path
    requirements: Path
    uv: Path | None

    @property
    def pkgs(self) -> Path:
        return self.project.conda_root / "pkgs"

    @property
    def caches(self) -> list[Path]:
        env = self.project.env
        return [self.pkgs, Path(env["PIP_CACHE_DIR"]), Path(env["XDG_CACHE_HOME"])]

    def empty_caches(self) -> None:
        for cache in self.caches:
            _rm(cache)

    def drift(self) -> None:
        """Unset the env's PYTHONNOUSERSITE: the env no longer matches, reproduce replaces it."""
        state = self.project.prefix / "conda-meta" / "state"
        if state.is_file():
            state.write_text("{}")

    def reproduce_actions(self) -> dict[str, Callable[[], None]]:
        invoke = [sys.executable, "-m", "invoke"]
        return {
            RAW: raw_reproduce(self.project, self.requirements),
            MAKE: lambda: _run(self.project, ["make", f"ENV_NAME={ENV_NAME}", "reproduce"]),
            INVOKE: lambda: _run(self.project, [*invoke, "reproduce"]),
            ENGINE: lambda: _run(self.project, self.engine_command(), self.engine_env()),
        }

    def engine_command(self) -> list[str]:
        """What env-engine.sh runs, without make and the script around it."""
        return [
            sys.executable,
            "-s",
            "-m",
            "lockstep.core.engine",
            "reproduce",
            "--project-dir",
            ".",
        ]

    def engine_env(self) -> dict[str, str]:
        return {**self.project.env, "PYTHONPATH": str(self.project.root / "tooling" / "src")}

    def create_alone(self) -> None:
        scratch = self.work / "scratch-env"
        conda = self.project.env["CONDA_EXE"]
        _run(
            self.project,
            [conda, "create", "--yes", "--prefix", scratch, "--file", self.project.lock],
        )

    def floor(self) -> None:
        dest = self.work / "floor"
        _rm(dest)
        dest.mkdir()
        unpacked = sorted(p for p in self.pkgs.iterdir() if p.is_dir() and p.name != "cache")
        _run(self.project, ["cp", "-al", *unpacked, dest])

    def pypi_actions(self) -> dict[str, Callable[[], None]]:
        """pip and uv, each into a fresh copy of a bare env (the copy is made untimed)."""
        base = self.work / "pypi-base"
        if not base.exists():
            _run(self.project, [sys.executable, "-m", "venv", base])
        target = self.work / "pypi-target"

        def fresh() -> Path:
            _rm(target)
            shutil.copytree(base, target, symlinks=True)
            return target / "bin" / "python"

        env = dict(self.project.env)
        req = str(self.requirements)

        def by_pip(python: Path) -> None:
            flags = ["--no-deps", "--require-hashes", "--disable-pip-version-check"]
            _run(self.project, [python, "-m", "pip", "install", *flags, "-r", req], env)

        def by_uv(python: Path) -> None:
            assert self.uv is not None
            command = [self.uv, "pip", "install", "--python", python, "--no-deps"]
            command += ["--require-hashes", "--default-index", env["PIP_INDEX_URL"], "-r", req]
            _run(self.project, command, env)

        # The copy is part of neither figure: each action times its install only.
        actions: dict[str, Callable[[], None]] = {PIP: lambda: _untimed_fresh(fresh, by_pip)}
        if self.uv is not None:
            actions[UV] = lambda: _untimed_fresh(fresh, by_uv)
        return actions


_LAST_INSTALL: list[float] = []


def _untimed_fresh(fresh: Callable[[], Path], install: Callable[[Path], None]) -> None:
    python = fresh()
    start = time.perf_counter()
    install(python)
    _LAST_INSTALL.append(time.perf_counter() - start)


def pypi_medians(bench: Bench, runs: int, cold: bool) -> dict[str, float]:
    """Like interleaved(), but only the install inside each action is counted."""
    actions = bench.pypi_actions()
    times: dict[str, list[float]] = {name: [] for name in actions}
    for _ in range(runs):
        for name, action in actions.items():
            if cold:
                bench.empty_caches()
            _LAST_INSTALL.clear()
            action()
            times[name].append(_LAST_INSTALL[-1])
    return {name: statistics.median(values) for name, values in times.items()}


@contextmanager
def scale_project(work: Path, scale: Scale) -> Iterator[Project]:
    """Channel, index and project at scale, both locks written through the tasks."""
    workers = max(1, min(4, os.cpu_count() or 1))
    started = time.perf_counter()
    build_scale_channel(work / "channel" / "channel", scale, workers)
    index_root = build_scale_index(work / "index", scale)
    standin_bin = work / "bin"
    write_executables(standin_bin)
    print(f"generated in {time.perf_counter() - started:.0f} s", flush=True)
    with serve_index(index_root) as index:
        project = create_project(
            work / "project",
            work / "state",
            work / "channel" / "channel",
            standin_bin,
            index.url,
            ENV_NAME,
        )
        _scale_spec_files(project, scale)
        # The tests turn bytecode caches off to compare files exactly; a user's clone has them.
        env = {k: v for k, v in project.env.items() if k != "PYTHONDONTWRITEBYTECODE"}
        project = dataclasses.replace(project, env=env)
        started = time.perf_counter()
        for task in ("lock", "poetry-init", "pin"):
            _run(project, [sys.executable, "-m", "invoke", task])
        print(f"locked through the tasks in {time.perf_counter() - started:.0f} s", flush=True)
        yield project


# --------------------------------------------------------------------------- the installers

NEW_RATTLER = "make reproduce, new env (rattler)"
NEW_FRONTEND = "make reproduce, new env (frontend)"
NEW_ALONE = "py-rattler alone, new env"
TWO_RATTLER = "make reproduce, 2 packages off (rattler, in place)"
TWO_FRONTEND = "make reproduce, 2 packages off (frontend: today)"
TWO_ALONE = "py-rattler alone, 2 packages off"
NOOP = "make reproduce, nothing to do"
UPDATE_RATTLER = "update's engine step, 2 packages (rattler)"
COLD_RATTLER = "make reproduce, new env, cold (rattler)"
COLD_FRONTEND = "make reproduce, new env, cold (frontend)"
COLD_ALONE = "py-rattler alone, new env, cold"
ENV_FLOOR = "hard-link floor (cp -al of the finished env)"


@dataclass(frozen=True)
class Installers:
    """The installer rows: make reproduce by each installer against py-rattler alone and the
    floor; the frontend is the stand-in, or real conda where --conda names one."""

    bench: Bench
    frontend: str  # the conda executable every row lists envs with (and the frontend rows use)
    prefix: Path  # where that frontend puts the env
    pkgs: tuple[Path, ...]  # its package caches (emptied for the cold rows)
    older: Path  # the lock with the two changed packages at their other build

    @property
    def project(self) -> Project:
        return self.bench.project

    def use(self, installer: str) -> None:
        """[tool.lockstep] installer = ..., as a user sets it."""
        text = self.project.pyproject.read_text(encoding="utf-8")
        lines = [ln for ln in text.splitlines(keepends=True) if not ln.startswith("installer = ")]
        text = "".join(lines).replace(
            "[tool.lockstep]\n", f'[tool.lockstep]\ninstaller = "{installer}"\n'
        )
        self.project.pyproject.write_text(text, encoding="utf-8")

    def make(self) -> None:
        _run(
            self.project, ["make", f"ENV_NAME={ENV_NAME}", f"FRONTEND={self.frontend}", "reproduce"]
        )

    def engine(self, *options: str) -> None:
        command = ["sh", "tooling/scripts/env-engine.sh", "reproduce", f"--name={ENV_NAME}"]
        _run(self.project, [*command, f"--frontend={self.frontend}", *options])

    def alone(self, prefix: Path, lock: Path) -> None:
        """lockstep.core.rattlerinstall: py-rattler's transaction and conda-meta, no engine."""
        env = {**self.project.env, "PYTHONPATH": str(self.project.root / "tooling" / "src")}
        command = [sys.executable, "-s", "-m", "lockstep.core.rattlerinstall"]
        _run(self.project, [*command, "--prefix", prefix, "--lock", lock], env)

    def remove_env(self) -> None:
        _rm(self.prefix)

    def two_off(self) -> None:
        """The env as the older lock has it (untimed)."""
        self.use("rattler")
        self.engine(f"--conda-lock={self.older}")

    def matching(self) -> None:
        self.use("rattler")
        self.make()

    def empty_caches(self) -> None:
        self.bench.empty_caches()
        for cache in self.pkgs:
            _rm(cache)

    def update_step(self) -> None:
        """What `invoke update` hands the engine: the new locks, committed with the env."""
        scratch = self.bench.work / "new-locks"
        scratch.mkdir(exist_ok=True)
        options = []
        names = {"conda-linux-64.lock": "--conda-lock", "pyproject.toml": "--pyproject"}
        names["poetry.lock"] = "--poetry-lock"
        for name, option in names.items():
            (scratch / name).write_bytes((self.project.root / name).read_bytes())
            options.append(f"{option}={scratch / name}")
        for name in names:
            options.append(f"--commit={self.project.root / name}={scratch / name}")
        self.engine(*options)

    def env_floor(self) -> None:
        dest = self.bench.work / "env-floor"
        _rm(dest)
        _run(self.project, ["cp", "-al", self.prefix, dest])


def _each(
    actions: dict[str, tuple[Callable[[], None], Callable[[], None]]], runs: int
) -> dict[str, float]:
    """Median seconds of each (before, action) pair, taking turns; ``before`` untimed."""
    times: dict[str, list[float]] = {name: [] for name in actions}
    for _ in range(runs):
        for name, (before, action) in actions.items():
            times[name].append(_timed(action, before))
    return {name: statistics.median(values) for name, values in times.items()}


def installer_medians(
    rows: Installers, runs: int, cold_runs: int
) -> tuple[dict[str, float], dict[str, float]]:
    scratch = rows.bench.work / "alone-env"
    lock = rows.project.lock

    def new(installer: str) -> Callable[[], None]:
        def before() -> None:
            rows.use(installer)
            rows.remove_env()

        return before

    def two_off(installer: str) -> Callable[[], None]:
        def before() -> None:
            rows.two_off()
            rows.use(installer)

        return before

    def alone_two_off() -> None:
        _rm(scratch)
        rows.alone(scratch, rows.older)

    rows.matching()  # warms rattler's cache
    warm = _each(
        {
            NEW_RATTLER: (new("rattler"), rows.make),
            NEW_FRONTEND: (new("frontend"), rows.make),
            NEW_ALONE: (lambda: _rm(scratch), lambda: rows.alone(scratch, lock)),
            ENV_FLOOR: (rows.matching, rows.env_floor),
            TWO_RATTLER: (two_off("rattler"), rows.make),
            TWO_FRONTEND: (two_off("frontend"), rows.make),
            TWO_ALONE: (alone_two_off, lambda: rows.alone(scratch, lock)),
            NOOP: (rows.matching, rows.make),
            UPDATE_RATTLER: (two_off("rattler"), rows.update_step),
        },
        runs,
    )

    def cold(installer: str) -> Callable[[], None]:
        def before() -> None:
            new(installer)()
            rows.empty_caches()

        return before

    def cold_alone() -> None:
        _rm(scratch)
        rows.empty_caches()

    cold_medians = _each(
        {
            COLD_RATTLER: (cold("rattler"), rows.make),
            COLD_FRONTEND: (cold("frontend"), rows.make),
            COLD_ALONE: (cold_alone, lambda: rows.alone(scratch, lock)),
        },
        cold_runs,
    )
    rows.use("rattler")
    return warm, cold_medians


def older_lock(project: Project, out: Path) -> Path:
    """The lock with each package that has two builds at its other one (from the repodata)."""
    lines = project.lock.read_text(encoding="utf-8").splitlines()
    changed = 0
    for number, line in enumerate(lines):
        url, _, _md5 = line.partition("#")
        if "/libbench" not in url or "-h1_1." not in url:
            continue
        folder = Path(url.removeprefix("file://")).parent
        repodata = json.loads((folder / "repodata.json").read_text())
        older = url.rsplit("/", 1)[1].replace("-h1_1.", "-h0_0.")
        record = {**repodata.get("packages", {}), **repodata.get("packages.conda", {})}[older]
        lines[number] = f"{url.rsplit('/', 1)[0]}/{older}#{record['md5']}"
        changed += 1
    assert changed == 2, f"the lock has {changed} packages with two builds, not 2"
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return out


def frontend_places(project: Project, conda: str) -> tuple[Path, tuple[Path, ...]]:
    """Where ``conda`` puts the env, and its package caches (its own `info --json`)."""
    done = subprocess.run(
        [conda, "info", "--json"], env=project.env, capture_output=True, text=True, check=True
    )
    info = json.loads(done.stdout)
    return Path(info["envs_dirs"][0]) / ENV_NAME, tuple(Path(p) for p in info["pkgs_dirs"])


def installer_targets(
    warm: dict[str, float], cold: dict[str, float], frontend_rows: dict[str, float]
) -> list[str]:
    both = {**warm, **cold}
    rows = [
        (
            "new env, warm / hard-link floor (cp -al of the env)",
            ratio(both, NEW_RATTLER, ENV_FLOOR),
            1.3,
        ),
        (
            "new env, warm / cp -al of the package cache",
            ratio({**both, **frontend_rows}, NEW_RATTLER, FLOOR),
            1.3,
        ),
        ("2 packages off, in place / py-rattler alone", ratio(both, TWO_RATTLER, TWO_ALONE), 2.0),
        ("nothing to do / today's full recreate", ratio(both, NOOP, TWO_FRONTEND), 0.1),
        (
            "update's engine step, 2 packages / today's recreate",
            ratio(both, UPDATE_RATTLER, TWO_FRONTEND),
            0.2,
        ),
        (
            "cold, .conda archives / py-rattler alone, cold",
            ratio(both, COLD_RATTLER, COLD_ALONE),
            1.2,
        ),
        ("frontend path: make reproduce / raw commands", ratio(frontend_rows, MAKE, RAW), 1.03),
        (
            "frontend / rattler, new env, warm (report)",
            ratio(both, NEW_FRONTEND, NEW_RATTLER),
            None,
        ),
        (
            "frontend / rattler, 2 packages off (report)",
            ratio(both, TWO_FRONTEND, TWO_RATTLER),
            None,
        ),
    ]
    lines = [INSTALLER_TARGETS]
    for label, value, target in rows:
        shown = "     n/a" if value is None else f"{value:8.2f}"
        verdict = (
            "report"
            if target is None
            else ("holds" if value is not None and value <= target else "MISSED")
        )
        goal = "report it" if target is None else f"<= {target:g}"
        lines.append(f"  {label:<52}{shown}  target {goal:<9} {verdict}")
    return lines


# --------------------------------------------------------------------------- the check figures


def check_medians(work: Path, runs: int) -> dict[str, float]:
    project = work / "check-project"
    project.mkdir()
    build_check_project(project)
    one_task = work / "one-task"
    one_task.mkdir()
    (one_task / "tasks.py").write_text(
        'from invoke import task\n\n\n@task\ndef hello(c):\n    """Say hello."""\n'
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPATH"] = str(project / "tooling" / "src")

    def run_in(cwd: Path, *command: str) -> Callable[[], None]:
        def action() -> None:
            subprocess.run(list(command), cwd=cwd, env=env, capture_output=True, check=False)

        return action

    python = sys.executable
    actions = {
        PASS: run_in(project, python, "-c", "pass"),
        CHECK: run_in(project, python, "-m", "lockstep.precommit"),
        LIST: run_in(one_task, python, "-m", "invoke", "--list"),
        INVOKE_CHECK: run_in(project, python, "-m", "invoke", "check"),
    }
    for action in actions.values():  # bytecode caches written once, as on a developer's clone
        action()
    # The figure is of a check that passes: one that stops on a finding measures another path.
    done = subprocess.run(
        [python, "-m", "lockstep.precommit"], cwd=project, env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise SystemExit(f"the benchmark's check project does not pass its check:\n{done.stdout}")
    return interleaved(actions, runs)


# --------------------------------------------------------------------------- the profile


# Engine phases whose wall time is shown: (module, attribute path, label). Timed by wrapping the
# functions in the engine's own process (no profiler: its overhead would swamp rmtree's 30,000
# calls), over several warm runs; a phase called twice (run_step) adds up.
PHASES = (
    ("lockstep.core.plan", "read_poetry_side", "read pyproject.toml and poetry.lock"),
    ("lockstep.core.plan", "planned_from_lock", "plan the PyPI side before touching"),
    ("lockstep.core.engine", "verify_archives", "md5 of every file:// archive (in a thread)"),
    ("lockstep.core.engine", "_find", "env listing (the frontend's info --json)"),
    ("lockstep.core.engine", "_matches", "does the env match both locks (conda-meta, dist-infos)"),
    ("lockstep.core.engine", "recover", "journal check of an earlier run"),
    ("lockstep.core.engine", "Transaction.begin", "journal + move the old env aside"),
    ("lockstep.core.engine", "_warn_if_stale", "input hashes of both locks"),
    ("lockstep.core.engine", "run_step", "subprocesses: frontend create + installer"),
    ("lockstep.core.engine", "install_poetry_side", "PyPI side: plan from conda-meta + installer"),
    ("lockstep.core.envvars", "set_env_vars", "env variables"),
    ("lockstep.core.engine", "Transaction.commit", "commit: drop the old env (rmtree)"),
)
PROFILE_RUNNER = """
import importlib, json, sys, time
from functools import wraps
spent = {}
def timed(key, function):
    @wraps(function)
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            spent[key] = spent.get(key, 0.0) + time.perf_counter() - start
    return wrapper
for module, path, _label in json.loads(sys.argv[1]):
    owner = importlib.import_module(module)
    *parents, name = path.split(".")
    for part in parents:
        owner = getattr(owner, part)
    setattr(owner, name, timed(module + ":" + path, getattr(owner, name)))
engine = sys.modules["lockstep.core.engine"]
started = time.perf_counter()
code = engine.main(sys.argv[3:])
spent["total"] = time.perf_counter() - started
with open(sys.argv[2], "w") as out:
    json.dump(spent, out)
sys.exit(code)
"""


def engine_profile(project: Project, runs: int) -> list[tuple[str, float]]:
    """Median wall time of each engine phase over ``runs`` warm reproduces, in-process."""
    out = project.root.parent / "phases.json"
    env = {**project.env, "PYTHONPATH": str(project.root / "tooling" / "src")}
    phases = json.dumps(PHASES)
    command = [sys.executable, "-s", "-c", PROFILE_RUNNER, phases, str(out), "reproduce"]
    command += ["--project-dir", str(project.root)]
    samples: list[dict[str, float]] = []
    for _ in range(runs):
        started = time.perf_counter()
        _run(project, command, env)
        samples.append({**json.loads(out.read_text()), "wall": time.perf_counter() - started})

    def median(key: str) -> float:
        return statistics.median(sample.get(key, 0.0) for sample in samples)

    rows = [
        ("process, start to exit", median("wall")),
        ("engine.main (after imports)", median("total")),
    ]
    rows += [(label, median(f"{module}:{path}")) for module, path, label in PHASES]
    return rows


def startup_medians(project: Project, runs: int) -> dict[str, float]:
    env = {**project.env, "PYTHONPATH": str(project.root / "tooling" / "src")}

    def run(*command: str) -> Callable[[], None]:
        return lambda: _run(project, list(command), env)

    return interleaved(
        {
            "python -c pass": run(sys.executable, "-s", "-c", "pass"),
            "import lockstep.core.engine": run(
                sys.executable, "-s", "-c", "import lockstep.core.engine"
            ),
        },
        runs,
    )


# --------------------------------------------------------------------------- the report


def machine() -> str:
    cpu = "?"
    with open("/proc/cpuinfo", encoding="utf-8") as handle:
        for line in handle:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    tmp = Path(tempfile.gettempdir())
    usage = shutil.disk_usage(tmp)
    device, fstype = "?", "?"
    best = ""
    with open("/proc/mounts", encoding="utf-8") as handle:
        for line in handle:
            dev, mount, kind = line.split()[:3]
            if str(tmp.resolve()).startswith(mount) and len(mount) > len(best):
                best, device, fstype = mount, dev, kind
    return (
        f"machine: {os.cpu_count()} cores ({cpu}), {memory:.0f} GiB memory, {platform.system()} "
        f"{platform.release()}; disk of {tmp}: {device} ({fstype}), "
        f"{usage.free / 2**30:.0f} of {usage.total / 2**30:.0f} GiB free"
    )


def table(title: str, medians: dict[str, float], runs: int) -> list[str]:
    lines = [f"{title} (median of {runs})"]
    lines += [f"  {label:<44}{seconds:9.3f} s" for label, seconds in medians.items()]
    return lines


def ratio(medians: dict[str, float], top: str, bottom: str) -> float | None:
    if top not in medians or bottom not in medians or medians[bottom] == 0:
        return None
    return medians[top] / medians[bottom]


def targets(warm: dict[str, float], check: dict[str, float]) -> list[str]:
    rows = [
        ("make reproduce / raw commands, warm", ratio(warm, MAKE, RAW), 1.03),
        ("invoke reproduce / raw commands, warm", ratio(warm, INVOKE, RAW), 1.05),
        ("PyPI side, uv / pip, warm", ratio(warm, UV, PIP), 0.33),
        ("frontend create (stand-in) / hard-link floor, warm", ratio(warm, CREATE, FLOOR), None),
        ("check entry point / python -c pass", ratio(check, CHECK, PASS), 5.0),
        ("invoke check / invoke --list (one task)", ratio(check, INVOKE_CHECK, LIST), 1.3),
    ]
    lines = [TARGETS]
    for label, value, target in rows:
        if value is None:
            shown, verdict = "     n/a", "not measured (uv absent)" if "uv" in label else "n/a"
        else:
            shown = f"{value:8.2f}"
            verdict = "report" if target is None else ("holds" if value <= target else "MISSED")
        goal = "report it" if target is None else f"<= {target:g}"
        lines.append(f"  {label:<52}{shown}  target {goal:<9} {verdict}")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one run: a smoke test")
    parser.add_argument("--runs", type=int, help="warm runs per row")
    parser.add_argument("--cold-runs", type=int, help="cold runs per row")
    parser.add_argument(
        "--conda",
        help="a conda executable for the installer rows (real conda, e.g. run from source)",
    )
    args = parser.parse_args(argv)
    scale = QUICK if args.quick else FULL
    runs = args.runs or scale.runs
    cold_runs = args.cold_runs or scale.cold_runs
    uv = uv_binary()
    print(machine())
    with (
        tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp,
        scale_project(Path(tmp), scale) as project,
    ):
        work = Path(tmp)
        requirements = work / "requirements.txt"
        requirements.write_text(requirements_from_poetry_lock(project.poetry_lock), "utf-8")
        bench = Bench(project, work, requirements, uv)
        bench.reproduce_actions()[RAW]()  # warms every cache for everyone
        lock_lines = sum(1 for ln in project.lock.read_text().splitlines() if ln.startswith("file"))
        files = sum(1 for p in bench.pkgs.rglob("*") if p.is_file() and "/info/" not in str(p))
        archives = sum(p.stat().st_size for p in (work / "channel").rglob("*.conda"))
        print(
            f"env: {lock_lines} conda packages ({files} payload files in the package cache, "
            f"archives {archives / MIB:.0f} MiB), {len(requirements.read_text().splitlines())} "
            f"PyPI wheels; frontend: the conda stand-in (py-rattler)"
        )
        # The first rows are the frontend's full replace: its installer, and an env that no
        # longer matches (no PYTHONNOUSERSITE) before each, or reproduce would do nothing.
        frontend = Installers(bench, project.env["CONDA_EXE"], project.prefix, (), project.lock)
        frontend.use("frontend")
        warm = interleaved(bench.reproduce_actions(), runs, before=bench.drift)
        warm.update(interleaved({CREATE: bench.create_alone, FLOOR: bench.floor}, runs))
        warm.update(pypi_medians(bench, runs, cold=False))

        def cold_before() -> None:
            bench.drift()
            bench.empty_caches()

        cold = interleaved(bench.reproduce_actions(), cold_runs, before=cold_before)
        cold.update(pypi_medians(bench, cold_runs, cold=True))
        conda = args.conda or project.env["CONDA_EXE"]
        prefix, pkgs = frontend_places(project, conda)
        rows = Installers(bench, conda, prefix, pkgs, older_lock(project, work / "older.lock"))
        warm20, cold20 = installer_medians(rows, runs, cold_runs)
        check = check_medians(work, scale.check_runs)
        startup = startup_medians(project, scale.check_runs)
        profile = engine_profile(project, min(runs, 3))
    lines = table("warm package cache", warm, runs)
    if uv is None:
        lines.append(f"  {UV:<44}      n/a   ({SKIP_REASON})")
    lines += table("cold package cache (pkgs, pip and uv caches emptied)", cold, cold_runs)
    lines += table("check (300 conda + 150 Poetry packages)", check, scale.check_runs)
    lines += table("engine start-up", startup, scale.check_runs)
    lines += [f"profile of warm engine runs (median of {min(runs, 3)}; wall s per phase)"]
    lines += [f"  {label:<52}{seconds:8.3f} s" for label, seconds in profile]
    lines += targets(warm, check)
    frontend_name = f"real conda ({args.conda})" if args.conda else "the conda stand-in"
    lines += table(f"installers, warm (frontend: {frontend_name})", warm20, runs)
    lines += table(
        f"installers, cold (rattler's cache and {frontend_name}'s emptied)", cold20, cold_runs
    )
    lines += installer_targets(warm20, cold20, warm)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
