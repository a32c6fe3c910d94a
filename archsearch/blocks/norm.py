"""Normalization layers (registered in :mod:`archsearch.blocks.catalog`); all act on the last axis."""

from __future__ import annotations

import torch
from torch import nn


def layernorm(dim: int) -> nn.Module:
    return nn.LayerNorm(dim)


def rmsnorm(dim: int) -> nn.Module:
    return nn.RMSNorm(dim)


def no_norm(dim: int) -> nn.Module:
    return nn.Identity()


class TokenBatchNorm(nn.Module):
    """BatchNorm1d over features, statistics pooled across batch and tokens."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.norm = nn.BatchNorm1d(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x.transpose(1, 2)).transpose(1, 2)
