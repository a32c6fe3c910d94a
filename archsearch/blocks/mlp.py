"""Position-wise feed-forward block: Linear -> activation -> Linear (the transformer FFN).

The expansion ratio sets the hidden width relative to the model width: above 1 gives the usual
inverted bottleneck, below 1 an hourglass.
"""

from __future__ import annotations

import torch
from torch import nn

from archsearch.blocks.activations import create_activation


def hidden_width(dim: int, expansion: float) -> int:
    return max(1, round(dim * expansion))


class MLPBlock(nn.Module):
    def __init__(self, dim: int, expansion: float = 2.0, activation: str = "relu", dropout: float = 0.0):
        super().__init__()
        hidden = hidden_width(dim, expansion)
        self.fc1 = nn.Linear(dim, hidden)
        self.act = create_activation(activation, hidden)
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.drop(self.act(self.fc1(x))))

    @staticmethod
    def param_count(dim: int, expansion: float = 2.0, activation: str = "relu", **_: object) -> int:
        """Closed form, used by tests and by cheap constraint checks before building."""
        hidden = hidden_width(dim, expansion)
        act = hidden if activation == "prelu" else 0
        return dim * hidden + hidden + hidden * dim + dim + act
