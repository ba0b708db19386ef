"""Python distribution metadata (dist-info) shared by the test channel and the test index.

Both the conda packages and the wheels carry real dist-info folders so that pip, Poetry and
importlib.metadata see installed distributions exactly as they would see real ones.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Mapping

PY_VERSION = "3.11"
SITE_PACKAGES = f"lib/python{PY_VERSION}/site-packages"


def record_hash(data: bytes) -> str:
    """The `sha256=...` field of a RECORD line (urlsafe base64 without padding, PEP 376)."""
    digest = hashlib.sha256(data).digest()
    return "sha256=" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def metadata_text(name: str, version: str, requires: Iterable[str] = ()) -> str:
    """A minimal core-metadata 2.1 METADATA file."""
    lines = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    lines += ["Requires-Python: >=3.11"]
    lines += [f"Requires-Dist: {req}" for req in requires]
    return "\n".join(lines) + "\n"


def dist_info_dir(name: str, version: str) -> str:
    return f"{name.replace('-', '_')}-{version}.dist-info"


def with_record(files: Mapping[str, bytes], record_path: str) -> dict[str, bytes]:
    """Return `files` plus a RECORD listing every file with its hash (RECORD itself unhashed)."""
    lines = [f"{path},{record_hash(data)},{len(data)}" for path, data in sorted(files.items())]
    lines.append(f"{record_path},,")
    return {**files, record_path: ("\n".join(lines) + "\n").encode()}


def distribution_files(
    name: str,
    version: str,
    modules: Mapping[str, bytes],
    *,
    requires: Iterable[str] = (),
    installer: str | None = None,
    extra_dist_info: Mapping[str, bytes] | None = None,
) -> dict[str, bytes]:
    """Files of an installed (or wheel) distribution, paths relative to site-packages.

    `installer` writes dist-info/INSTALLER (`conda` for conda packages, None inside a wheel,
    where the installer writes it).
    """
    info = dist_info_dir(name, version)
    files = dict(modules)
    files[f"{info}/METADATA"] = metadata_text(name, version, requires).encode()
    if installer is not None:
        files[f"{info}/INSTALLER"] = f"{installer}\n".encode()
    for rel, data in (extra_dist_info or {}).items():
        files[f"{info}/{rel}"] = data
    return with_record(files, f"{info}/RECORD")
