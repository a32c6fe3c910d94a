"""The identity block: the merge point of parallel branches, or a "skip" choice in a space."""

from __future__ import annotations

import torch
from torch import nn


class IdentityBlock(nn.Module):
    """Passes its input through."""

    def __init__(self, dim: int, activation: str | None = None) -> None:
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x
