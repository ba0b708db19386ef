"""Shared fixtures: the repository root, importable tasks.py, generated real-shaped inputs."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

from tests.lockfiles import generated_lock_text  # noqa: E402


def realistic_packages(count: int = 240) -> list[tuple[str, str, str]]:
    """Names, versions and builds shaped like a CUDA PyTorch env of conda-forge."""
    head = [
        ("_libgcc_mutex", "0.1", "conda_forge"),
        ("python", "3.11.10", "hc5c86c4_3_cpython"),
        ("cuda-version", "12.9", "h4f385c5_3"),
        ("pytorch", "2.7.1", "cuda129_generic_py311_h1234567_200"),
        ("torchvision", "0.22.0", "cuda129_py311_h7654321_1"),
        ("torchaudio", "2.7.1", "cuda129_py311_habcdef0_0"),
        ("filelock", "3.16.1", "pyhd8ed1ab_1"),
        ("numpy", "2.1.3", "py311h71ddf71_0"),
        ("sympy", "1.13.3", "pyh2585a3b_104"),
        ("typing_extensions", "4.12.2", "pyha770c72_1"),
        ("pip", "24.3.1", "pyh8b19718_2"),
        ("poetry", "2.1.1", "pyh29332c3_0"),
        ("libcublas", "12.9.1.4", "h9ab20c4_0"),
        ("libcudnn", "9.10.1.4", "h7646684_0"),
        ("nccl", "2.26.6.1", "h03a54cd_0"),
    ]
    rest = [(f"lib-extra-{i:03d}", f"1.{i}.0", f"h{i:07x}_0") for i in range(count - len(head))]
    return head + rest


@pytest.fixture
def big_lock_text() -> str:
    """A 240-package explicit lock."""
    return generated_lock_text(realistic_packages())
