"""Learnable and custom activation functions; genomes store names (timm's ``create_act`` idea).

The names, descriptions and learnable-parameter counts of every activation, these and torch's, are in
:mod:`archsearch.blocks.catalog`. Learnable activations size their parameters by the feature width
``dim`` they act on (the last axis of ``(batch, tokens, dim)``).
"""

from __future__ import annotations

import torch
from torch import nn

from archsearch.blocks.catalog import ACTIVATIONS, activation_param_count, create_activation
from archsearch.blocks.rational import PAU_LEAKY_RELU, rational_safe_sum


class _PerChannel(nn.Module):
    """Base of activations with one learnable value per feature, initialized to ``init``."""

    def __init__(self, dim: int | None = None, init: float = 1.0) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.full((dim or 1,), float(init)))



class ChannelPReLU(_PerChannel):
    """Leaky ReLU with a learnable negative slope per feature (He et al. 2015), on the last axis.

    ``nn.PReLU`` puts channels on axis 1, which is the token axis here.
    """

    def __init__(self, dim: int | None = None, init: float = 0.25) -> None:
        super().__init__(dim, init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.where(x >= 0, x, self.weight * x)


class SwishBeta(_PerChannel):
    """Swish with a trainable ``beta`` per feature (Ramachandran et al. 2017); beta=1 starts as SiLU."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(self.weight * x)


class Snake(_PerChannel):
    """Snake (Ziyin et al. 2020, "Neural networks fail to learn periodic functions and how to fix it").

    A monotone trend plus a periodic term, so networks can extrapolate periodic signals. ``a`` is kept
    away from zero in the division, where the term tends to ``a x^2`` anyway.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.weight
        safe = torch.where(a.abs() < 1e-6, torch.full_like(a, 1e-6), a)
        return x + torch.sin(a * x).square() / safe


class GoLU(nn.Module):
    """GoLU (Das et al. 2025): self-gating by the Gompertz function, an asymmetric sigmoid."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Below -20 the gate is 0 in float32 already; clamping keeps exp(-x) finite so the gradient is too.
        return x * torch.exp(-torch.exp(-x.clamp(min=-20.0)))


class XSiLU(nn.Module):
    """Expanded SiLU (Huang 2024, "Expanded Gating Ranges Improve Activation Functions").

    The gate ``sigmoid(x)`` spans (0, 1); ``(1 + 2 alpha) sigmoid(x) - alpha`` spans (-alpha, 1 + alpha),
    which lets negative inputs pass gradient. The paper trains one ``alpha`` per MLP block, hence one
    scalar per instance here; alpha starts at 0, i.e. as plain SiLU.
    """

    def __init__(self, dim: int | None = None) -> None:
        super().__init__()
        self.alpha = nn.Parameter(torch.zeros(1))


    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * ((1 + 2 * self.alpha) * torch.sigmoid(x) - self.alpha)


class PAU(nn.Module):
    """Padé Activation Unit (Molina et al. 2020), the "safe" form with a denominator of at least 1.

    Numerator degree 5, denominator degree 4, coefficients shared by the whole layer and initialized
    to approximate leaky ReLU as in the paper.
    """

    def __init__(self, dim: int | None = None) -> None:
        super().__init__()
        self.numerator = nn.Parameter(torch.tensor(PAU_LEAKY_RELU[:6]))
        self.denominator = nn.Parameter(torch.tensor(PAU_LEAKY_RELU[6:]))


    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return rational_safe_sum(x, self.numerator, self.denominator)


class SquaredReLU(nn.Module):
    """relu(x)^2 (Primer, So et al. 2021)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x).square()


__all__ = ["ACTIVATIONS", "activation_param_count", "create_activation"]
