"""Real distributions for the user's path end to end (test_user_path.py): the wheels that the
starter's own poetry.lock pins, fetched from PyPI at test time and checked against the lock's
hashes, and conda packages that carry real code where the user's tests need it.

- ``download_locked_wheels``: pip downloads exactly the planned wheels with the lock's hashes
  required (pip checks them; the caller checks again), for the local index.
- ``download_wheel``: one real wheel that no lock pins (poetry-core, the user's build backend,
  which channel.wheel_package repacks as conda-forge's noarch package).
- ``linked_torch_package``: conda-forge's `pytorch` CPU or CUDA build as a stand-in whose
  payload is the real CPU torch of this Python, LINKED (symlinks into its site-packages), never
  copied: 750 MB of torch in a .tar.bz2 would cost minutes per run. Its dist-info says conda
  installed torch, as conda-forge's does. Only torch and its runtime requirements (sympy,
  networkx, jinja2, ...: separate conda packages on conda-forge) are linked, as modules without
  their dist-info, so nothing else of this Python's site-packages (the tooling) becomes visible
  to the env and doctor lists torch alone.

Nothing here is committed as a binary or a URL: the index URL is pip's own constant.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterable
from pathlib import Path

from lockstep.core.plan import requirement_line
from lockstep.core.poetrylock import LockedPackage

from .channel import PYTHON_DEP, CondaPackage
from .distinfo import SITE_PACKAGES, distribution_files
from .helpers import run


def pypi_simple_url() -> str:
    """PyPI's simple index, as pip knows it (never written into a file)."""
    from pip._internal.models.index import PyPI

    return str(PyPI.simple_url)


def pypi_unreachable() -> str | None:
    """Why PyPI cannot be reached from here, or None when it answers."""
    try:
        with urllib.request.urlopen(pypi_simple_url().rstrip("/") + "/pytest/", timeout=15):
            return None
    except OSError as exc:
        return f"PyPI is not reachable ({exc}); the user's path needs the wheels of poetry.lock"


def pip_env(state: Path) -> dict[str, str]:
    """pip with no config of the host's and its cache under ``state``."""
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "PYTHON"))},
        "PIP_CONFIG_FILE": os.devnull,
        "PIP_CACHE_DIR": str(state / "pip-cache"),
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    }


def download_locked_wheels(
    packages: Iterable[LockedPackage], dest: Path, state: Path
) -> list[Path]:
    """The wheels of ``packages`` from PyPI into ``dest``, each checked against its lock hashes
    (by pip under --require-hashes, then here: a file whose hash the lock lacks fails)."""
    packages = list(packages)
    requirements = state / "locked-wheels.txt"
    requirements.write_text("\n".join(requirement_line(p) for p in packages) + "\n")
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--require-hashes"]
    command += ["--only-binary", ":all:", "--index-url", pypi_simple_url(), "--dest", str(dest)]
    run([*command, "-r", str(requirements)], state, pip_env(state), timeout=300)
    wheels = sorted(dest.glob("*.whl"))
    allowed = {h.removeprefix("sha256:") for p in packages for h in p.hashes}
    for wheel in wheels:
        digest = _sha256(wheel)
        assert digest in allowed, f"{wheel.name}: sha256 {digest} is not in poetry.lock"
    assert len(wheels) == len(packages), [w.name for w in wheels]
    return wheels


def download_wheel(requirement: str, dest: Path, state: Path) -> Path:
    """One wheel (no lock pins it: a build backend) from PyPI."""
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:"]
    command += ["--index-url", pypi_simple_url(), "--dest", str(dest), requirement]
    run(command, state, pip_env(state), timeout=300)
    return next(dest.glob("*.whl"))


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# torch's runtime closure in this Python: its requirements (no extras) and theirs, each by the
# top-level entries its RECORD lists in site-packages (no .pth hooks, no scripts).
_TORCH_RUNTIME = """
import json, sysconfig
from importlib.metadata import distribution
from packaging.requirements import Requirement
seen, todo, tops = set(), ["torch"], set()
while todo:
    dist = distribution(todo.pop())
    name = dist.metadata["Name"].lower()
    if name in seen:
        continue
    seen.add(name)
    for file in dist.files or []:
        top = file.parts[0]
        if not top.endswith((".dist-info", ".pth")) and top not in ("..", "__pycache__"):
            tops.add(top)
    for text in dist.requires or []:
        req = Requirement(text)
        if req.marker is None or req.marker.evaluate({"extra": ""}):
            todo.append(req.name)
print(json.dumps({"site": sysconfig.get_paths()["purelib"], "tops": sorted(tops),
                  "version": distribution("torch").version}))
"""


def torch_runtime(python: str) -> tuple[Path, list[str], str]:
    """(site-packages, top-level entries of torch and its runtime requirements, torch's version)."""
    done = subprocess.run(
        [python, "-c", _TORCH_RUNTIME], capture_output=True, text=True, check=True, timeout=300
    )
    answer = json.loads(done.stdout.splitlines()[-1])
    return Path(answer["site"]), answer["tops"], answer["version"]


def linked_torch_package(python: str, cuda: bool) -> CondaPackage:
    """conda-forge's pytorch (CUDA build, or CPU) at the real torch's version, payload linked."""
    site, tops, version = torch_runtime(python)
    version = version.split("+")[0]  # conda's pytorch has a plain version
    links = {f"{SITE_PACKAGES}/{top}": str(site / top) for top in tops}
    files = distribution_files("torch", version, {}, installer="conda")
    depends = (PYTHON_DEP, "__cuda >=12", "cuda-version >=12.6,<13") if cuda else (PYTHON_DEP,)
    return CondaPackage(
        name="pytorch",
        version=version,
        build="cuda126_py311_0" if cuda else "cpu_py311_0",
        subdir="linux-64",
        depends=depends,
        files={f"{SITE_PACKAGES}/{path}": data for path, data in files.items()},
        symlinks=links,
    )


def torchvision_package(pytorch: str) -> CondaPackage:
    """A tiny torchvision that needs the channel's pytorch (the starter's spec lists it)."""
    files = distribution_files(
        "torchvision",
        "0.28.0",
        {"torchvision/__init__.py": b'"""torchvision stand-in (test channel)."""\n'},
        requires=[f"torch=={pytorch}"],
        installer="conda",
    )
    return CondaPackage(
        name="torchvision",
        version="0.28.0",
        build="py311_0",
        subdir="linux-64",
        depends=(PYTHON_DEP, f"pytorch =={pytorch}"),
        files={f"{SITE_PACKAGES}/{path}": data for path, data in files.items()},
    )
