"""A local PEP 503 package index of tiny wheels, served over HTTP on 127.0.0.1.

Written with the standard library only. `torch` here needs `nvidia-fake-cu12` as the PyPI torch
wheel needs its nvidia-*-cu12 wheels, so a second (pip/Poetry) copy of torch next to conda's is
visible on disk by that extra distribution.
"""

from __future__ import annotations

import hashlib
import html
import re
import threading
import zipfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from .channel import FILELOCK_VERSIONS, PYTORCH_VERSIONS
from .distinfo import dist_info_dir, distribution_files

WHEEL_TAG = "py3-none-any"
# Fixed zip timestamps so the same wheel always has the same sha256.
ZIP_DATE = (2026, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class Wheel:
    name: str
    version: str
    requires: tuple[str, ...] = ()

    @property
    def module(self) -> str:
        return self.name.replace("-", "_")

    @property
    def filename(self) -> str:
        return f"{self.module}-{self.version}-{WHEEL_TAG}.whl"


@dataclass(frozen=True)
class PackageIndex:
    """A served index: `url` is the PEP 503 root (…/simple/), `root` the folder behind it."""

    url: str
    root: Path

    def wheel_path(self, filename: str) -> Path:
        return self.root / "packages" / filename

    def sha256(self, filename: str) -> str:
        return hashlib.sha256(self.wheel_path(filename).read_bytes()).hexdigest()


def normalize(name: str) -> str:
    """PEP 503 project name normalization."""
    return re.sub(r"[-_.]+", "-", name).lower()


def default_wheels() -> list[Wheel]:
    return [
        Wheel("tinyapp", "1.0", ("tinyhelper>=1.0",)),
        Wheel("tinyhelper", "1.0"),
        Wheel("tinyhelper", "1.1"),
        Wheel("nvidia-fake-cu12", "12.6.77"),
        *(Wheel("filelock", v) for v in FILELOCK_VERSIONS),
        *(Wheel("torch", v, ("filelock", "nvidia-fake-cu12==12.6.77")) for v in PYTORCH_VERSIONS),
    ]


def _wheel_metadata(wheel: Wheel) -> bytes:
    return (
        f"Wheel-Version: 1.0\nGenerator: lockstep-tests\nRoot-Is-Purelib: true\nTag: {WHEEL_TAG}\n"
    ).encode()


def write_wheel(wheel: Wheel, out_dir: Path) -> Path:
    source = f'"""Tiny test wheel {wheel.name}."""\n__version__ = "{wheel.version}"\n'
    info = dist_info_dir(wheel.name, wheel.version)
    files = distribution_files(
        wheel.name,
        wheel.version,
        {f"{wheel.module}/__init__.py": source.encode()},
        requires=wheel.requires,
        extra_dist_info={"WHEEL": _wheel_metadata(wheel)},
    )
    # RECORD goes last by convention; the rest in sorted order for stable hashes.
    order = sorted(files, key=lambda p: (p == f"{info}/RECORD", p))
    out = out_dir / wheel.filename
    out_dir.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in order:
            zf.writestr(zipfile.ZipInfo(path, ZIP_DATE), files[path])
    return out


def _write_simple_pages(root: Path) -> None:
    """Regenerate simple/ from the wheels in packages/ (links carry #sha256= as PyPI's do)."""
    by_project: dict[str, list[Path]] = {}
    for whl in sorted((root / "packages").glob("*.whl")):
        by_project.setdefault(normalize(whl.name.split("-")[0]), []).append(whl)
    simple = root / "simple"
    for project, wheels in by_project.items():
        links = "".join(
            f'<a href="../../packages/{html.escape(w.name)}#sha256='
            f'{hashlib.sha256(w.read_bytes()).hexdigest()}" data-requires-python="&gt;=3.11">'
            f"{html.escape(w.name)}</a><br/>\n"
            for w in wheels
        )
        (simple / project).mkdir(parents=True, exist_ok=True)
        (simple / project / "index.html").write_text(_page(project, links))
    projects = "".join(f'<a href="{p}/">{p}</a><br/>\n' for p in sorted(by_project))
    (simple / "index.html").write_text(_page("Simple index", projects))


def _page(title: str, body: str) -> str:
    head = f"<!DOCTYPE html>\n<html><head><title>{title}</title></head><body>\n"
    return f"{head}{body}</body></html>\n"


def build_index(root: Path, wheels: Iterable[Wheel] | None = None) -> Path:
    """Write wheels into root/packages and a PEP 503 index into root/simple; returns root."""
    return add_wheels(root, default_wheels() if wheels is None else wheels)


def add_wheels(root: Path, wheels: Iterable[Wheel]) -> Path:
    """Add wheels (a served index picks them up at once) and rewrite the simple pages."""
    for wheel in wheels:
        write_wheel(wheel, root / "packages")
    _write_simple_pages(root)
    return root


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (stdlib name)
        pass  # keep pytest output free of access logs


@contextmanager
def serve_index(root: Path) -> Iterator[PackageIndex]:
    """Serve root on 127.0.0.1 at a free port for the duration of the block."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield PackageIndex(url=f"http://127.0.0.1:{server.server_port}/simple/", root=root)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
