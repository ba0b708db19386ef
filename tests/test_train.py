"""The example's own tests: they run in the project's env (`make test`), on a CPU in seconds."""

from __future__ import annotations

import pytest
import torch

from ml_project.model import TinyNet
from ml_project.train import Config, main, synthetic_data, train


def test_the_model_maps_a_batch_to_one_output_each() -> None:
    assert TinyNet()(torch.zeros(5, 8)).shape == (5, 1)


def test_training_lowers_the_loss_tenfold() -> None:
    losses = train(Config(steps=200, device="cpu"))
    assert len(losses) == 200
    assert losses[-1] < losses[0] / 10


def test_the_same_seed_gives_the_same_losses() -> None:
    assert train(Config(steps=20, seed=3)) == train(Config(steps=20, seed=3))
    assert train(Config(steps=20, seed=3)) != train(Config(steps=20, seed=4))


def test_the_data_does_not_depend_on_the_global_seed() -> None:
    torch.manual_seed(123)
    first = synthetic_data(16, 8, seed=0)
    torch.manual_seed(456)
    second = synthetic_data(16, 8, seed=0)
    assert all(torch.equal(a, b) for a, b in zip(first, second, strict=True))


def test_the_command_line_prints_the_losses(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--steps", "5", "--device", "cpu"]) == 0
    assert capsys.readouterr().out.startswith("5 steps on cpu: loss ")


@pytest.mark.gpu
def test_cuda_trains_like_the_cpu() -> None:
    """The CUDA sanity check of your code: the same seeded run on the GPU lands where the CPU's
    does (TF32 and kernel order differ, so close, not equal)."""
    cpu = train(Config(steps=50, device="cpu"))
    cuda = train(Config(steps=50, device="cuda"))
    assert cuda[-1] < cuda[0] / 10
    assert cuda[-1] == pytest.approx(cpu[-1], rel=0.2, abs=1e-3)
