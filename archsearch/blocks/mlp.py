"""Position-wise feed-forward blocks: the transformer FFN and its gated (GLU) variants.

``mlp`` is Linear -> activation -> Linear; the expansion ratio sets the hidden width relative to the
model width: above 1 gives the usual inverted bottleneck, below 1 an hourglass.

``glu`` is the gated linear unit family of Shazeer 2020 ("GLU Variants Improve Transformer"):
``W2 (act(W1 x) * (V x))``; the activation gene picks the variant: ``silu`` gives SwiGLU, ``gelu``
GEGLU, ``identity`` the bilinear layer, ``sigmoid`` the original GLU (Dauphin et al. 2017).
"""

from __future__ import annotations

import torch
from torch import nn

from archsearch.blocks.activations import create_activation
from archsearch.blocks.catalog import hidden_width


class MLPBlock(nn.Module):
    """Linear -> activation -> Linear with an expansion ratio (Vaswani et al. 2017's FFN)."""

    def __init__(self, dim: int, expansion: float = 2.0, activation: str = "relu", dropout: float = 0.0):
        super().__init__()
        hidden = hidden_width(dim, expansion)
        self.fc1 = nn.Linear(dim, hidden)
        self.act = create_activation(activation, hidden)
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.drop(self.act(self.fc1(x))))


class GLUBlock(nn.Module):
    """Gated feed-forward ``W2 (act(W1 x) * (V x))``; gate and value share one matmul of width 2h."""

    def __init__(self, dim: int, expansion: float = 2.0, activation: str = "silu", dropout: float = 0.0):
        super().__init__()
        hidden = hidden_width(dim, expansion)
        self.fc1 = nn.Linear(dim, 2 * hidden)
        self.act = create_activation(activation, hidden)
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, value = self.fc1(x).chunk(2, dim=-1)
        return self.fc2(self.drop(self.act(gate) * value))
