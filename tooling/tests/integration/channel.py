"""A local conda channel of tiny packages, written with the standard library and indexed by rattler.

The packages mimic the shape of the real stack (python, pip, pytorch built for CUDA, its CUDA
runtime and a pure-Python dependency) with payloads of a few bytes, so conda-lock can really
solve against the channel and the conda stand-in can really install from it.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import os
import sys
import tarfile
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from rattler.index import index_fs

from .distinfo import PY_VERSION, SITE_PACKAGES, distribution_files

# Fixed so that rebuilding the channel gives the same archives, hence the same md5 in locks.
TIMESTAMP_MS = 1_767_225_600_000
PYTHON_DEP = f"python >={PY_VERSION},<3.12"
PYTORCH_VERSIONS = ("2.5.1", "2.6.0")
FILELOCK_VERSIONS = ("3.16.1", "3.17.0")
CUDA_VERSIONS = {"12.6": "12.6.77", "12.9": "12.9.79"}  # cuda-version -> libcudart version


@dataclass(frozen=True)
class CondaPackage:
    """One conda package: metadata for info/index.json plus its payload (relative paths)."""

    name: str
    version: str
    build: str
    subdir: str = "noarch"
    depends: tuple[str, ...] = ()
    constrains: tuple[str, ...] = ()
    files: Mapping[str, bytes] = field(default_factory=dict)
    symlinks: Mapping[str, str] = field(default_factory=dict)  # path -> link target
    build_number: int = 0
    # repodata's `timestamp` (ms), what conda's exclude_newer compares with.
    timestamp_ms: int = TIMESTAMP_MS

    @property
    def filename(self) -> str:
        return f"{self.name}-{self.version}-{self.build}.tar.bz2"

    def index_json(self) -> dict[str, object]:
        index: dict[str, object] = {
            "name": self.name,
            "version": self.version,
            "build": self.build,
            "build_number": self.build_number,
            "depends": list(self.depends),
            "constrains": list(self.constrains),
            "subdir": self.subdir,
            "license": "MIT",
            "timestamp": self.timestamp_ms,
        }
        if self.subdir == "noarch":
            # generic, not python: payload paths are final, so no site-packages relocation.
            index["noarch"] = "generic"
        else:
            index["platform"], index["arch"] = "linux", "x86_64"
        return index


def _paths_json(pkg: CondaPackage) -> dict[str, object]:
    entries: list[dict[str, object]] = [
        {
            "_path": path,
            "path_type": "hardlink",
            "sha256": hashlib.sha256(data).hexdigest(),
            "size_in_bytes": len(data),
        }
        for path, data in sorted(pkg.files.items())
    ]
    entries += [{"_path": path, "path_type": "softlink"} for path in sorted(pkg.symlinks)]
    return {"paths": sorted(entries, key=lambda e: str(e["_path"])), "paths_version": 1}


def _add_bytes(tar: tarfile.TarFile, path: str, data: bytes, mode: int = 0o644) -> None:
    info = tarfile.TarInfo(path)
    info.size, info.mode, info.mtime = len(data), mode, TIMESTAMP_MS // 1000
    tar.addfile(info, io.BytesIO(data))


def write_package(pkg: CondaPackage, channel: Path) -> Path:
    """Write `pkg` as a .tar.bz2 into channel/<subdir>/ and return the archive's path."""
    out = channel / pkg.subdir / pkg.filename
    out.parent.mkdir(parents=True, exist_ok=True)
    info = {
        "info/index.json": json.dumps(pkg.index_json(), indent=2).encode(),
        "info/paths.json": json.dumps(_paths_json(pkg), indent=2).encode(),
        "info/files": "".join(f"{p}\n" for p in sorted({*pkg.files, *pkg.symlinks})).encode(),
    }
    with tarfile.open(out, "w:bz2", compresslevel=1) as tar:
        for path, data in sorted({**info, **pkg.files}.items()):
            executable = path.startswith("bin/")
            _add_bytes(tar, path, data, 0o755 if executable else 0o644)
        for path, target in sorted(pkg.symlinks.items()):
            link = tarfile.TarInfo(path)
            link.type, link.linkname, link.mtime = tarfile.SYMTYPE, target, TIMESTAMP_MS // 1000
            tar.addfile(link)
    return out


def index_channel(channel: Path) -> None:
    """(Re)write repodata.json of every subdir; noarch must exist even when empty."""
    (channel / "noarch").mkdir(parents=True, exist_ok=True)
    asyncio.run(index_fs(channel, write_zst=False, write_shards=False, force=True))
    # rattler stamps every record with indexed_timestamp = now, which conda's exclude_newer
    # reads before `timestamp`: a package is indexed when it is built, as on a real channel.
    for repodata in channel.glob("*/repodata.json"):
        data = json.loads(repodata.read_text())
        for key in ("packages", "packages.conda"):
            for record in data.get(key, {}).values():
                if "timestamp" in record:
                    record["indexed_timestamp"] = record["timestamp"]
        repodata.write_text(json.dumps(data, indent=2, sort_keys=True))


# --- the packages -------------------------------------------------------------------------


def host_python() -> Path:
    """The real interpreter binary behind this (possibly virtual) environment."""
    return Path(os.path.realpath(sys.executable))


def python_package(exe: Path | None = None, version: str | None = None) -> CondaPackage:
    """`python` whose payload is a venv-style pyvenv.cfg pointing at the host interpreter (or
    at ``exe`` of ``version``: an image's own 3.11, for tests/integration/test_image.py).

    Python finds pyvenv.cfg next to bin/, so sys.prefix is the conda env and its site-packages
    is <prefix>/lib/python3.11/site-packages, as with a real conda python.
    """
    if sys.version_info[:2] != (3, 11):
        # The payload's paths (lib/python3.11) and the specs in the tests assume 3.11.
        raise RuntimeError(f"the test channel needs a Python 3.11 host, not {sys.version}")
    exe = exe or host_python()
    version = version or ".".join(map(str, sys.version_info[:3]))
    cfg = f"home = {exe.parent}\ninclude-system-site-packages = false\nversion = {version}\n"
    return CondaPackage(
        name="python",
        version=version,
        build="h0standin_0_cpython",
        subdir="linux-64",
        files={
            "pyvenv.cfg": cfg.encode(),
            f"{SITE_PACKAGES}/README.txt": b"Site-packages of the conda stand-in python.\n",
        },
        symlinks={
            "bin/python": str(exe),
            "bin/python3": "python",
            f"bin/python{PY_VERSION}": "python",
        },
    )


def _bundled_pip_wheel() -> Path:
    import ensurepip

    bundled = Path(ensurepip.__file__).parent / "_bundled"
    return next(bundled.glob("pip-*.whl"))


def wheel_package(name: str, wheel: Path) -> CondaPackage:
    """A wheel repacked as conda packages ship one (conda-forge's noarch python shape): its
    files in site-packages, INSTALLER=conda."""
    version = wheel.name.split("-")[1]
    with zipfile.ZipFile(wheel) as zf:
        members = {n: zf.read(n) for n in zf.namelist() if not n.endswith("/")}
    info = next(n.split("/")[0] for n in members if n.endswith(".dist-info/METADATA"))
    members[f"{info}/INSTALLER"] = b"conda\n"
    record = members[f"{info}/RECORD"].decode().rstrip("\n") + f"\n{info}/INSTALLER,,\n"
    members[f"{info}/RECORD"] = record.encode()
    files = {f"{SITE_PACKAGES}/{path}": data for path, data in members.items()}
    return CondaPackage(
        name=name, version=version, build="pyh0_0", depends=(PYTHON_DEP,), files=files
    )


def pip_package() -> CondaPackage:
    """The host's bundled pip wheel repacked as conda packages ship it (INSTALLER=conda)."""
    return wheel_package("pip", _bundled_pip_wheel())


def _python_dist(
    name: str, version: str, module: str, requires: Iterable[str] = (), source: str | None = None
) -> dict[str, bytes]:
    source = (
        source or f'"""Tiny stand-in for {name} (test channel)."""\n__version__ = "{version}"\n'
    )
    files = distribution_files(
        name,
        version,
        {f"{module}/__init__.py": source.encode()},
        requires=requires,
        installer="conda",
    )
    return {f"{SITE_PACKAGES}/{path}": data for path, data in files.items()}


def filelock_package(version: str) -> CondaPackage:
    return CondaPackage(
        name="filelock",
        version=version,
        build="pyh0_0",
        depends=(PYTHON_DEP,),
        files=_python_dist("filelock", version, "filelock"),
    )


def cuda_version_package(version: str) -> CondaPackage:
    """Like conda-forge's cuda-version: no payload, constrains the driver (__cuda)."""
    return CondaPackage(
        name="cuda-version",
        version=version,
        build="h0_0",
        constrains=(f"__cuda >={version}",),
    )


def libcudart_package(cuda: str) -> CondaPackage:
    major, minor = cuda.split(".")
    return CondaPackage(
        name="libcudart",
        version=CUDA_VERSIONS[cuda],
        build="h0_0",
        subdir="linux-64",
        depends=(f"cuda-version >={cuda},<{major}.{int(minor) + 1}",),
        files={f"lib/libcudart.so.{major}": b"not really a shared library\n"},
    )


# A torch-like module: the API that lockstep.gpu reads, answering as a CUDA build of torch answers
# on a machine without a GPU driver (the image test runs the GPU check with it). Not torch.
TORCH_LIKE = '''"""Torch-like stand-in (test channel): a CUDA build of torch without a driver."""

import os as _os
from types import SimpleNamespace as _Namespace

__version__ = "{version}"
version = _Namespace(cuda="12.6", hip=None)
cuda = _Namespace(
    is_available=lambda: False, device_count=lambda: 0, get_arch_list=lambda: ["sm_80", "sm_90"]
)
backends = _Namespace(cudnn=_Namespace(is_available=lambda: False, version=lambda: None))
distributed = _Namespace(is_available=lambda: False, is_nccl_available=lambda: False)


def get_num_threads():
    return _os.cpu_count() or 1
'''


def pytorch_package(version: str, torch_like: bool = False) -> CondaPackage:
    """conda-forge-style `pytorch` CUDA build: installs the Python distribution `torch` (with
    ``torch_like``, a module that answers lockstep.gpu's questions: TORCH_LIKE)."""
    return CondaPackage(
        name="pytorch",
        version=version,
        build="cuda126_py311_0",
        subdir="linux-64",
        depends=(
            PYTHON_DEP,
            "__cuda >=12",
            "cuda-version >=12.6,<13",
            "libcudart >=12.6,<13",
            "filelock",
        ),
        files=_python_dist(
            "torch",
            version,
            "torch",
            requires=["filelock"],
            source=TORCH_LIKE.format(version=version) if torch_like else None,
        ),
    )


def pytorch_cpu_package(version: str) -> CondaPackage:
    """conda-forge-style `pytorch` CPU build: no __cuda, no CUDA runtime."""
    return CondaPackage(
        name="pytorch",
        version=version,
        build="cpu_py311_0",
        subdir="linux-64",
        depends=(PYTHON_DEP, "filelock"),
        files=_python_dist("torch", version, "torch", requires=["filelock"]),
    )


def default_packages() -> list[CondaPackage]:
    return [
        python_package(),
        pip_package(),
        *(filelock_package(v) for v in FILELOCK_VERSIONS),
        *(cuda_version_package(v) for v in CUDA_VERSIONS),
        *(libcudart_package(v) for v in CUDA_VERSIONS),
        *(pytorch_package(v) for v in PYTORCH_VERSIONS),
    ]


def build_channel(root: Path, packages: Iterable[CondaPackage] | None = None) -> Path:
    """Write and index a channel under root/channel; returns the channel directory.

    Its URL for environment.yml is `channel.as_uri()` (file://...).
    """
    channel = root / "channel"
    return add_packages(channel, default_packages() if packages is None else packages)


def add_packages(channel: Path, packages: Iterable[CondaPackage]) -> Path:
    """Add packages (e.g. a newer version for an update test) and re-index the channel."""
    for pkg in packages:
        write_package(pkg, channel)
    index_channel(channel)
    return channel
