"""The model: a small multilayer perceptron, to be replaced by yours."""

from __future__ import annotations

import torch
from torch import nn


class TinyNet(nn.Module):
    """Two linear layers with a ReLU between them: inputs -> hidden -> outputs."""

    def __init__(self, inputs: int = 8, hidden: int = 32, outputs: int = 1) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.Linear(inputs, hidden),
            nn.ReLU(),
            nn.Linear(hidden, outputs),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)
