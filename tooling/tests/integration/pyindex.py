"""A local PEP 503 package index of tiny wheels, served over HTTP on 127.0.0.1.

Written with the standard library only. A served index can be gated (`serve_index(...,
gate_dir=...)`): a request for a wheel FILE writes `gate_dir/pip.reached` and waits until
`gate_dir/pip.release` exists before answering, so a test can hold pip in the middle of the
PyPI step and deliver a signal there; the index pages answer at once.

`torch` here needs `nvidia-fake-cu12` as the PyPI torch wheel needs its nvidia-*-cu12 wheels,
so a second (pip/Poetry) copy of torch next to conda's is visible on disk by that extra
distribution.
"""

from __future__ import annotations

import gzip
import hashlib
import html
import io
import json
import re
import sys
import tarfile
import threading
import time
import zipfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

from .channel import FILELOCK_VERSIONS, PYTORCH_VERSIONS
from .distinfo import dist_info_dir, distribution_files

WHEEL_TAG = "py3-none-any"
# Fixed zip timestamps so the same wheel always has the same sha256.
ZIP_DATE = (2026, 1, 1, 0, 0, 0)
GATE_POLL_S = 0.02
REACHED, RELEASE = "pip.reached", "pip.release"


@dataclass(frozen=True)
class Wheel:
    name: str
    version: str
    requires: tuple[str, ...] = ()
    # PEP 700 upload-time (ISO 8601), served on the JSON pages; None: not said, as on old files.
    uploaded: str | None = None

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
    gate_dir: Path | None = None

    def wait_reached(self, timeout_s: float) -> None:
        """Wait until a wheel request is held at the gate; fail the test after timeout_s."""
        assert self.gate_dir is not None, "this index is not gated"
        deadline = time.monotonic() + timeout_s
        while not (self.gate_dir / REACHED).exists():
            if time.monotonic() > deadline:
                raise TimeoutError(f"no wheel was requested within {timeout_s} s")
            time.sleep(GATE_POLL_S)

    def release(self) -> None:
        assert self.gate_dir is not None, "this index is not gated"
        (self.gate_dir / RELEASE).touch()

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


# An sdist's own PEP 517 backend (backend-path): pip builds it with no build requirement to
# fetch, so the index stays the only source and nothing outside 127.0.0.1 is asked.
_SDIST_BACKEND = """\
import base64, hashlib, os, zipfile

NAME, VERSION, REQUIRES = {name!r}, {version!r}, {requires!r}
INFO = f"{{NAME}}-{{VERSION}}.dist-info"
DATE = (2026, 1, 1, 0, 0, 0)


def get_requires_for_build_wheel(config_settings=None):
    return []


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    meta = "".join(
        [f"Metadata-Version: 2.1\\nName: {{NAME}}\\nVersion: {{VERSION}}\\n"]
        + [f"Requires-Dist: {{r}}\\n" for r in REQUIRES]
    )
    files = {{
        f"{{NAME}}/__init__.py": open(os.path.join(NAME, "__init__.py"), "rb").read(),
        f"{{INFO}}/METADATA": meta.encode(),
        f"{{INFO}}/WHEEL": b"Wheel-Version: 1.0\\nGenerator: sdist-backend\\n"
        b"Root-Is-Purelib: true\\nTag: py3-none-any\\n",
    }}
    record = []
    for path, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{{path}},sha256={{digest}},{{len(data)}}")
    files[f"{{INFO}}/RECORD"] = ("\\n".join(record + [f"{{INFO}}/RECORD,,"]) + "\\n").encode()
    name = f"{{NAME}}-{{VERSION}}-py3-none-any.whl"
    with zipfile.ZipFile(os.path.join(wheel_directory, name), "w") as zf:
        for path, data in files.items():
            zf.writestr(zipfile.ZipInfo(path, DATE), data)
    return name
"""


def write_sdist(wheel: Wheel, out_dir: Path) -> Path:
    """An sdist only (no wheel on the index), as many older PyPI projects are published."""
    top = f"{wheel.module}-{wheel.version}"
    requires = "".join(f"Requires-Dist: {r}\n" for r in wheel.requires)
    members = {
        "PKG-INFO": f"Metadata-Version: 2.1\nName: {wheel.name}\nVersion: {wheel.version}\n"
        + requires,
        "pyproject.toml": '[build-system]\nrequires = []\nbuild-backend = "backend"\n'
        'backend-path = ["."]\n',
        "backend.py": _SDIST_BACKEND.format(
            name=wheel.module, version=wheel.version, requires=list(wheel.requires)
        ),
        f"{wheel.module}/__init__.py": f'__version__ = "{wheel.version}"\n',
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / f"{top}.tar.gz"
    with (
        open(out, "wb") as raw,
        gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz,
        tarfile.open(fileobj=gz, mode="w") as tar,
    ):
        for path, text in members.items():
            data = text.encode()
            info = tarfile.TarInfo(f"{top}/{path}")
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            tar.addfile(info, io.BytesIO(data))
    return out


def add_sdists(root: Path, sdists: Iterable[Wheel]) -> Path:
    """Add sdist-only projects and rewrite the simple pages."""
    for sdist in sdists:
        write_sdist(sdist, root / "packages")
    _write_simple_pages(root)
    return root


UPLOADS = "uploads.json"  # filename -> upload-time, for the JSON pages
JSON_TYPE = "application/vnd.pypi.simple.v1+json"


def set_upload_times(root: Path, wheels: Iterable[Wheel]) -> None:
    """Record the upload-time of the wheels that say one (read by _write_simple_pages)."""
    known = json.loads((root / UPLOADS).read_text()) if (root / UPLOADS).is_file() else {}
    known.update({w.filename: w.uploaded for w in wheels if w.uploaded})
    root.mkdir(parents=True, exist_ok=True)
    (root / UPLOADS).write_text(json.dumps(known, indent=1, sort_keys=True))


def _json_page(project: str, files: list[Path], uploads: dict[str, str]) -> str:
    """PEP 691's JSON form of a project page, with PEP 700's upload-time where known."""
    entries = []
    for path in files:
        entry: dict[str, object] = {
            "filename": path.name,
            "url": f"../../packages/{path.name}",
            "hashes": {"sha256": hashlib.sha256(path.read_bytes()).hexdigest()},
            "requires-python": ">=3.11",
        }
        if path.name in uploads:
            entry["upload-time"] = uploads[path.name]
        entries.append(entry)
    page = {"meta": {"api-version": "1.1"}, "name": project, "files": entries}
    return json.dumps(page, indent=1)


def _write_simple_pages(root: Path) -> None:
    """Regenerate simple/ from the files in packages/ (links carry #sha256= as PyPI's do); a
    project with an upload time also gets its JSON page (index.json), served to clients that
    ask for PEP 691's JSON (Poetry reads upload-time only there)."""
    uploads = json.loads((root / UPLOADS).read_text()) if (root / UPLOADS).is_file() else {}
    by_project: dict[str, list[Path]] = {}
    files = [*(root / "packages").glob("*.whl"), *(root / "packages").glob("*.tar.gz")]
    for whl in sorted(files):
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
        if any(w.name in uploads for w in wheels):
            (simple / project / "index.json").write_text(_json_page(project, wheels, uploads))
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
    wheels = list(wheels)
    for wheel in wheels:
        write_wheel(wheel, root / "packages")
    set_upload_times(root, wheels)
    _write_simple_pages(root)
    return root


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # the stdlib names it format
        pass  # keep pytest output free of access logs

    def send_head(self):  # type: ignore[no-untyped-def]  # the stdlib's own, untyped
        # PEP 691 content negotiation: a project page asked for as JSON is index.json.
        path = urlsplit(self.path).path
        page = Path(self.translate_path(path)) / "index.json"
        if path.endswith("/") and JSON_TYPE in self.headers.get("Accept", "") and page.is_file():
            data = page.read_bytes()
            self.send_response(200)
            self.send_header("Content-Type", JSON_TYPE)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            return io.BytesIO(data)
        return super().send_head()


class _GatedHandler(_QuietHandler):
    """Holds every wheel download at the gate; pages and other files answer at once."""

    def __init__(self, *args: object, gate_dir: Path, closing: threading.Event, **kw: object):
        self.gate_dir, self.closing = gate_dir, closing
        super().__init__(*args, **kw)  # type: ignore[arg-type]  # handles the request

    def do_GET(self) -> None:
        if urlsplit(self.path).path.endswith(".whl"):
            (self.gate_dir / REACHED).write_text(f"{self.path}\n")
            # Also stop waiting when the server closes, so no thread outlives the test.
            while not (self.gate_dir / RELEASE).exists() and not self.closing.is_set():
                time.sleep(GATE_POLL_S)
        super().do_GET()


class _Server(ThreadingHTTPServer):
    # uv opens dozens of connections at once: the default listen backlog of 5 drops them, and the
    # client's SYN retries (1 s, 3 s, ...) then cost seconds that no real index costs.
    request_queue_size = 128

    def handle_error(self, request: object, client_address: object) -> None:
        # A client that stops reading (uv drops a response it no longer needs) is not an error.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)  # type: ignore[arg-type]


@contextmanager
def serve_index(root: Path, gate_dir: Path | None = None) -> Iterator[PackageIndex]:
    """Serve root on 127.0.0.1 at a free port for the duration of the block (gated if asked)."""
    closing = threading.Event()
    handler = partial(_QuietHandler, directory=str(root))
    if gate_dir is not None:
        gate_dir.mkdir(parents=True, exist_ok=True)
        handler = partial(_GatedHandler, directory=str(root), gate_dir=gate_dir, closing=closing)
    server = _Server(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_port}/simple/"
    try:
        yield PackageIndex(url=url, root=root, gate_dir=gate_dir)
    finally:
        closing.set()
        server.shutdown()
        server.server_close()
        thread.join()
