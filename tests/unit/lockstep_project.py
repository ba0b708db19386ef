"""A small, realistic Lockstep project written into a temp dir, consistent unless told otherwise.

Shared by test_check.py and test_doctor.py: every file is derived from the same package lists,
and both hashes (conda-lock's, Poetry's) are recomputed from what was written, so a test that
changes one thing sees exactly the finding of that thing.
"""

from __future__ import annotations

import hashlib
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tests.lockfiles import explicit_lock_text

from lockstep import inputhash
from lockstep.core import poetryhash
from lockstep.pins import desired_pins
from lockstep.spec import load_env_spec

ENVIRONMENT_YML = """\
name: lockstep
channels:
{channels}
platforms:
  - linux-64
dependencies:
{dependencies}
{variables}"""
DEPENDENCIES = [
    "python=3.11",
    "cuda-version=12.9",
    "pytorch=*=cuda*",
    "torchvision",
    "pip",
    "invoke=3.*",
    "pyyaml",
]
VIRTUAL_PACKAGES = {
    "__unix": "0",
    "__linux": "5.10",
    "__glibc": "2.28",
    "__archspec": "1 x86_64",
    "__cuda": "12.9",
}
# conda package -> (version, build); python distributions among them carry dist-info.
CONDA = {
    "python": ("3.11.9", "hab00c5b_0_cpython"),
    "cuda-version": ("12.9", "h4f385c5_3"),
    "libcublas": ("12.9.1.4", "h9ab20c4_0"),
    "cuda-cudart": ("12.9.79", "h5888daf_0"),
    "pytorch": ("2.7.1", "cuda129_py311_h1"),
    "torchvision": ("0.22.0", "cuda129_py311_h2"),
    "numpy": ("2.2.6", "py311h5d046bc_0"),
    "pip": ("25.1.1", "pyh8b19718_0"),
    "invoke": ("3.0.1", "pyhd8ed1ab_0"),
    "pyyaml": ("6.0.2", "py311h2dc5d0c_2"),
    "libzlib": ("1.3.1", "hb9d3cd8_2"),
}
# poetry.lock packages of the project's own groups: name -> (version, group, dependencies).
PYPI = {
    "rich": ("14.0.0", "main", {"markdown-it-py": ">=2.2.0", "pygments": ">=2.13.0"}),
    "markdown-it-py": ("3.0.0", "main", {"mdurl": ">=0.1,<1.0"}),
    "mdurl": ("0.1.2", "main", {}),
    "pygments": ("2.19.1", "main", {}),
    "pytest": ("8.4.0", "dev", {}),
}
# What PyPI's torch drags in: in poetry.lock through the pin group, never installed.
TORCH_WHEEL_DEPS = {"nvidia-cublas-cu12": "12.6.4.1", "triton": "3.3.1"}


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()  # noqa: S324 - a stand-in package digest


@dataclass
class Project:
    """Knobs of the generated project; ``write`` makes the files."""

    channels: list[str] = field(default_factory=lambda: ["conda-forge", "nodefaults"])
    dependencies: list[str] = field(default_factory=lambda: list(DEPENDENCIES))
    pip: list[str] = field(default_factory=list)
    variables: Mapping[str, str] | None = field(default_factory=lambda: {"PYTHONNOUSERSITE": "1"})
    virtual_packages: Mapping[str, str] = field(default_factory=lambda: dict(VIRTUAL_PACKAGES))
    conda: dict[str, tuple[str, str]] = field(default_factory=lambda: dict(CONDA))
    pypi: dict[str, tuple[str, str, dict[str, str]]] = field(default_factory=lambda: dict(PYPI))
    roots: list[str] = field(default_factory=lambda: ["rich>=14"])
    pins_override: Mapping[str, str | None] = field(default_factory=dict)
    lock_platform: str = "linux-64"
    poetry_version_override: Mapping[str, str] = field(default_factory=dict)

    def pins(self, root: Path) -> dict[str, str]:
        spec = load_env_spec(root / "environment.yml")
        names = [*self.pypi, "torch", *TORCH_WHEEL_DEPS]
        pins = desired_pins([(n, v) for n, (v, _) in self.conda.items()], spec, names)
        for name, version in self.pins_override.items():
            if version is None:
                pins.pop(name, None)
            else:
                pins[name] = version
        return pins

    def write(self, root: Path) -> Path:
        root.mkdir(parents=True, exist_ok=True)
        (root / "environment.yml").write_text(self._environment_yml(), encoding="utf-8")
        (root / "virtual-packages.yml").write_text(self._virtual_packages_yml(), encoding="utf-8")
        pins = self.pins(root)
        pyproject = self._pyproject(pins)
        (root / "pyproject.toml").write_text(pyproject, encoding="utf-8")
        content_hash = poetryhash.content_hash(tomllib.loads(pyproject))
        (root / "poetry.lock").write_text(self._poetry_lock(pins, content_hash), encoding="utf-8")
        (root / "conda-linux-64.lock").write_text(self._conda_lock(root), encoding="utf-8")
        return root

    def _environment_yml(self) -> str:
        deps = [f"  - {d}" for d in self.dependencies]
        if self.pip:
            deps += ["  - pip:"] + [f"    - {p}" for p in self.pip]
        variables = ""
        if self.variables is not None:
            variables = "variables:\n" + "".join(
                f'  {k}: "{v}"\n' for k, v in self.variables.items()
            )
        return ENVIRONMENT_YML.format(
            channels="\n".join(f"  - {c}" for c in self.channels),
            dependencies="\n".join(deps),
            variables=variables,
        )

    def _virtual_packages_yml(self) -> str:
        lines = ["subdirs:", "  linux-64:", "    packages:"]
        lines += [f'      {k}: "{v}"' for k, v in self.virtual_packages.items()]
        return "\n".join(lines) + "\n"

    def _pyproject(self, pins: Mapping[str, str]) -> str:
        roots = ", ".join(f'"{r}"' for r in self.roots)
        lines = [
            "[project]",
            'name = "demo"',
            'version = "0.1.0"',
            'requires-python = ">=3.11,<3.12"',
            f"dependencies = [{roots}]",
            "",
            "[tool.poetry]",
            "package-mode = false",
            "",
            "[tool.poetry.group.dev.dependencies]",
            'pytest = ">=8"',
            "",
            "[tool.poetry.group.conda]",
            "optional = true",
            "",
            "[tool.poetry.group.conda.dependencies]",
        ]
        lines += [f'{name} = "{version}"' for name, version in pins.items()]
        return "\n".join(lines) + "\n"

    def _poetry_lock(self, pins: Mapping[str, str], content_hash: str) -> str:
        packages: dict[str, tuple[str, Sequence[str], dict[str, str]]] = {}
        for name, (version, group, deps) in self.pypi.items():
            packages[name] = (version, [group], deps)
        for name, version in pins.items():
            deps = {d: "*" for d in TORCH_WHEEL_DEPS} if name == "torch" else {}
            packages.setdefault(name, (version, ["conda"], deps))
        for name, version in TORCH_WHEEL_DEPS.items():
            packages.setdefault(name, (version, ["conda"], {}))
        # As Poetry writes lock-version 2.1: a package is in every group of what depends on it.
        changed = True
        while changed:
            changed = False
            for _, needers, deps in list(packages.values()):
                for dep in deps:
                    version, groups, dep_deps = packages[dep]
                    missing = [g for g in needers if g not in groups]
                    if missing:
                        packages[dep] = (version, [*groups, *missing], dep_deps)
                        changed = True
        blocks = []
        for name, (version, groups, deps) in sorted(packages.items()):
            version = self.poetry_version_override.get(name, version)
            block = [
                "[[package]]",
                f'name = "{name}"',
                f'version = "{version}"',
                'description = ""',
                "optional = false",
                'python-versions = ">=3.9"',
                "groups = [" + ", ".join(f'"{g}"' for g in groups) + "]",
                "files = [",
                f'    {{file = "{name}-{version}-py3-none-any.whl", '
                f'hash = "sha256:{hashlib.sha256(name.encode()).hexdigest()}"}},',
                "]",
            ]
            if deps:
                block += ["", "[package.dependencies]"] + [f'{d} = "{v}"' for d, v in deps.items()]
            blocks.append("\n".join(block))
        metadata = [
            "[metadata]",
            'lock-version = "2.1"',
            'python-versions = ">=3.11,<3.12"',
            f'content-hash = "{content_hash}"',
        ]
        return "\n\n".join(blocks + ["\n".join(metadata)]) + "\n"

    def conda_urls(self, root: Path) -> dict[str, str]:
        channel = (root / "channel").as_uri()
        return {
            name: f"{channel}/linux-64/{name}-{version}-{build}.conda"
            for name, (version, build) in self.conda.items()
        }

    def _conda_lock(self, root: Path) -> str:
        if self.pip:
            lock_hash = "0" * 64  # conda-lock's own hash of a pip: section needs the network
        else:
            lock_hash = inputhash.input_hash(
                root / "environment.yml", root / "virtual-packages.yml", "linux-64"
            )
        urls = [f"{url}#{md5(name)}" for name, url in self.conda_urls(root).items()]
        return explicit_lock_text(self.lock_platform, lock_hash, urls)
