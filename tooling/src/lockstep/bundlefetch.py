"""Make an offline bundle (lockstep.core.bundle) where the channels and the index are reachable.

Every conda archive of the lock is fetched over its URL (mirror settings apply, as for an
install) and checked against the lock's hash; every file of the Poetry-side plan comes from
``pip download --no-deps --require-hashes`` with pip's own index settings. An sdist is built into
a wheel once, here, so the machine without a network never builds anything. The bundle is
assembled in a hidden folder beside its target and renamed into place when complete.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tarfile
import tempfile
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from lockstep.core import bundle, installer, mirrors
from lockstep.core.errors import LockstepError
from lockstep.core.explicit import ExplicitLock, LockEntry
from lockstep.core.fsutil import file_digest
from lockstep.core.names import normalize
from lockstep.core.plan import Plan, PoetrySide, planned_from_lock, python_version_of
from lockstep.core.poetrylock import LockedPackage
from lockstep.progress import Progress

Runner = Callable[[list[str]], object]
_WHEEL = ".whl"
_FETCH_TIMEOUT = 120


@dataclass(frozen=True)
class Made:
    """What ``make_bundle`` wrote."""

    folder: Path
    archives: int
    wheels: int
    built: list[str]
    size: int
    tar: Path | None


def fetch_archive(url: str, entry: LockEntry, dest: Path, progress: Progress | None = None) -> None:
    """One archive, streamed to ``dest`` and checked against the lock on the way (its bytes
    counted by ``progress`` as they come)."""
    if not entry.md5:
        raise LockstepError(f"{entry.filename}: the lock has no hash for it; run `invoke lock`")
    algorithm, expected = entry.digest
    digest = hashlib.new(algorithm)
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        with (
            urllib.request.urlopen(url, timeout=_FETCH_TIMEOUT) as response,
            open(dest, "wb") as out,
        ):
            while chunk := response.read(1 << 20):
                digest.update(chunk)
                out.write(chunk)
                if progress is not None:
                    progress.step(len(chunk), files=0)
    except OSError as exc:
        raise LockstepError(
            f"cannot fetch {mirrors.redact(url)}: {exc}; check the network or the mirror "
            "settings; no bundle was written"
        ) from None
    if digest.hexdigest() != expected:
        raise LockstepError(
            f"{entry.filename}: {algorithm} {digest.hexdigest()} differs from the lock's "
            f"{expected}; the channel or mirror serves another file; no bundle was written"
        )


def _fetch_conda(
    lock_text: str, lock: ExplicitLock, staging: Path, manifest: bundle.Manifest
) -> None:
    config = mirrors.config_from_env(os.environ)
    rewritten, _ = mirrors.rewrite_lock(lock_text, config, lock.path)
    urls = [
        line.strip().partition("#")[0]
        for line in rewritten.splitlines()
        if line.strip() and not line.strip().startswith(("#", "@"))
    ]

    # An explicit lock has no sizes: the time left is told from the files done.
    with Progress("bundle: conda archives", len(lock.entries)) as progress:

        def fetch(job: tuple[str, LockEntry]) -> None:
            url, entry = job
            fetch_archive(url, entry, bundle.archive_path(staging, manifest, entry), progress)
            progress.step(0)

        with ThreadPoolExecutor(max_workers=4) as pool:
            list(pool.map(fetch, zip(urls, lock.entries, strict=True)))


def _owner(filename: str, plan: Plan) -> LockedPackage:
    """The planned package a downloaded file belongs to (by its normalised name)."""
    stem = normalize(filename.removesuffix(_WHEEL))
    for package in plan.install:
        if stem.startswith(f"{normalize(package.name)}-{normalize(package.version)}"):
            return package
    raise LockstepError(f"pip downloaded {filename}, which no planned package names")


def _fetch_wheels(
    side: PoetrySide, plan: Plan, python_version: str, staging: Path, run: Runner
) -> tuple[list[str], list[bundle.BuiltWheel]]:
    wheels = staging / bundle.WHEELS_DIR
    wheels.mkdir(parents=True)
    if not plan.install:
        return [], []
    major_minor = ".".join(python_version.split(".")[:2])
    indexes = sorted({p.source_url for p in plan.install if p.source_url})
    built: list[bundle.BuiltWheel] = []
    with tempfile.TemporaryDirectory(prefix="lockstep-bundle-") as tmp:
        requirements = Path(tmp, "requirements.txt")
        requirements.write_text("\n".join(side.requirement_lines(plan)) + "\n", encoding="utf-8")
        downloads = Path(tmp, "downloads")
        run(
            installer.pip_download_command(
                sys.executable, str(requirements), str(downloads), indexes, major_minor
            )
        )
        for file in sorted(downloads.iterdir()):
            if file.name.endswith(_WHEEL):
                shutil.move(file, wheels / file.name)
                continue
            package = _owner(file.name, plan)
            out = Path(tmp, "built", file.name)
            run(installer.pip_wheel_command(sys.executable, str(file), str(out)))
            (wheel,) = out.glob(f"*{_WHEEL}")
            shutil.move(wheel, wheels / wheel.name)
            built.append(
                bundle.BuiltWheel(
                    package.name,
                    package.version,
                    file.name,
                    file_digest(file),
                    wheel.name,
                    file_digest(wheels / wheel.name),
                )
            )
    return sorted(p.name for p in wheels.iterdir()), built


def make_bundle(
    output: Path,
    platform: str,
    lock_path: Path,
    lock: ExplicitLock,
    side: PoetrySide,
    overrides: Mapping[str, str],
    run: Runner,
    tar: bool = False,
) -> Made:
    """The bundle of both locks at ``output`` (which must not exist yet), for ``platform``:
    the machine's own, since pip fetches the wheels this machine would install."""
    if output.exists():
        raise LockstepError(f"{output} exists; remove it or give another --output")
    if lock.pip:
        raise LockstepError(f"{lock_path.name} has `# pip` lines; move them to poetry.lock")
    plan = planned_from_lock(side, lock, overrides)
    python_version = python_version_of(lock)
    if python_version is None:
        raise LockstepError(f"{lock_path.name} installs no python; add it to environment.yml")
    locks = [lock_path, side.poetry_lock_path, side.pyproject_path]
    manifest = bundle.Manifest(
        platform=platform,
        locks={p.name: file_digest(p) for p in locks},
        channels=bundle.channel_folders(lock.entries),
        conda=[{"filename": e.filename, "url": e.url, "hash": e.md5} for e in lock.entries],
    )
    output.parent.mkdir(parents=True, exist_ok=True)
    staging = output.with_name(f".{output.name}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        (staging / bundle.LOCKS_DIR).mkdir(parents=True)
        for path in locks:
            shutil.copyfile(path, staging / bundle.LOCKS_DIR / path.name)
        _fetch_conda(lock_path.read_text(encoding="utf-8"), lock, staging, manifest)
        wheels, built = _fetch_wheels(side, plan, python_version, staging, run)
        final = bundle.Manifest(
            platform=manifest.platform,
            locks=manifest.locks,
            channels=manifest.channels,
            conda=manifest.conda,
            wheels=wheels,
            built=built,
        )
        (staging / bundle.MANIFEST).write_text(final.to_json(), encoding="utf-8")
        os.replace(staging, output)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    size = sum(p.stat().st_size for p in output.rglob("*") if p.is_file())
    archive = _tar(output) if tar else None
    return Made(output, len(lock.entries), len(wheels), [b.name for b in built], size, archive)


def _tar(folder: Path) -> Path:
    """One uncompressed tar beside the folder (archives and wheels are compressed already)."""
    target = folder.with_name(folder.name + ".tar")
    partial = target.with_name(f".{target.name}.partial")
    with tarfile.open(partial, "w") as out:
        out.add(folder, arcname=folder.name)
    os.replace(partial, target)
    return target


def describe(made: Made, seconds: float) -> Sequence[str]:
    lines = [
        f"lockstep: bundle {made.folder}: {made.archives} conda archives, {made.wheels} wheels, "
        f"{made.size / 1e6:.1f} MB in {seconds:.1f} s"
    ]
    if made.built:
        lines.append(
            f"lockstep: built from sdists (recorded in the manifest): {', '.join(made.built)}"
        )
    if made.tar:
        lines.append(f"lockstep: tar {made.tar}")
    return lines
