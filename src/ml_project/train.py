"""A seeded training run on synthetic data: the shape a real training script takes.

    python -m ml_project.train --steps 200 --device auto

Runs on a CPU in about a second; `--device cuda` (or auto, where a GPU is visible) runs the same
steps on the GPU. Replace `synthetic_data` with your data loading and `TinyNet` with your model.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from ml_project.model import TinyNet


@dataclass(frozen=True)
class Config:
    steps: int = 200
    batch_size: int = 64
    learning_rate: float = 1e-2
    seed: int = 0
    device: str = "cpu"


def pick_device(name: str) -> torch.device:
    """``auto`` is CUDA where torch sees a device, else the CPU; any other name is taken as is."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def synthetic_data(n: int, inputs: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A noisy linear target y = x @ w + 0.01 * noise, the same for the same seed on every machine
    (generated on the CPU, moved later)."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n, inputs, generator=generator)
    w = torch.randn(inputs, 1, generator=generator)
    y = x @ w + 0.01 * torch.randn(n, 1, generator=generator)
    return x, y


def train(config: Config) -> list[float]:
    """Train a TinyNet for ``config.steps`` steps; the loss of every step, in order."""
    torch.manual_seed(config.seed)
    device = pick_device(config.device)
    x, y = synthetic_data(config.steps * config.batch_size, 8, config.seed)
    model = TinyNet().to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    loss_fn = nn.MSELoss()
    losses = []
    for step in range(config.steps):
        start = step * config.batch_size
        xb = x[start : start + config.batch_size].to(device)
        yb = y[start : start + config.batch_size].to(device)
        optimizer.zero_grad()
        loss = loss_fn(model(xb), yb)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ml_project.train", description=__doc__)
    parser.add_argument("--steps", type=int, default=Config.steps)
    parser.add_argument("--seed", type=int, default=Config.seed)
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:1 or auto")
    args = parser.parse_args(argv)
    losses = train(Config(steps=args.steps, seed=args.seed, device=args.device))
    device = pick_device(args.device)
    print(f"{len(losses)} steps on {device}: loss {losses[0]:.4f} -> {losses[-1]:.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
