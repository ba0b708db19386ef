"""Shared fixtures (src/ and the repository root are on sys.path through pytest's pythonpath)."""

from __future__ import annotations

import pytest
from tests.testdata import generated_lock_text, realistic_packages


@pytest.fixture
def big_lock_text() -> str:
    """A 240-package explicit lock."""
    return generated_lock_text(realistic_packages())


def _no_cuda_reason() -> str | None:
    """Why the gpu tests cannot run here, or None where torch sees a CUDA device."""
    try:
        import torch
    except ImportError:
        return "torch is not installed"
    return None if torch.cuda.is_available() else "no CUDA device visible to torch"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The gpu marker carries its skip: a gpu test skips with the reason where there is no CUDA
    device (torch is imported only when such a test was collected)."""
    gpu_tests = [item for item in items if item.get_closest_marker("gpu")]
    reason = _no_cuda_reason() if gpu_tests else None
    if reason:
        for item in gpu_tests:
            item.add_marker(pytest.mark.skip(reason=reason))
