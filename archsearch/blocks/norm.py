"""Normalization layers by registry name; all act on the last (feature) axis of (batch, tokens, dim)."""

from __future__ import annotations

import torch
from torch import nn

from archsearch._registry import Registry

NORMS: Registry = Registry("norm")


@NORMS.register("layernorm", "LayerNorm over features (Ba et al. 2016)")
def _layernorm(dim: int) -> nn.Module:
    return nn.LayerNorm(dim)


@NORMS.register("rmsnorm", "RMSNorm: scale by the root mean square, no centering (Zhang & Sennrich 2019)")
def _rmsnorm(dim: int) -> nn.Module:
    return nn.RMSNorm(dim)


class TokenBatchNorm(nn.Module):
    """BatchNorm1d over features, statistics pooled across batch and tokens."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.norm = nn.BatchNorm1d(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x.transpose(1, 2)).transpose(1, 2)


NORMS.register("batchnorm", "BatchNorm over batch and tokens (Ioffe & Szegedy 2015)")(TokenBatchNorm)


@NORMS.register("none", "no normalization")
def _identity(dim: int) -> nn.Module:
    return nn.Identity()


def create_norm(name: str, dim: int) -> nn.Module:
    return NORMS.get(name)(dim)
