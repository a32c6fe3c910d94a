"""Group-rational KAN feed-forward block (Yang & Wang 2024, "Kolmogorov-Arnold Transformer", GR-KAN).

KAT replaces the transformer MLP by two GR-KAN layers. A GR-KAN layer splits the input channels into
``groups``; all channels of a group share one safe rational function ``F(x) = P(x) / (1 + |Q(x)|)``
(degrees 5 and 4), and the per-edge scales of a KAN become an ordinary weight matrix:
``GR-KAN(x) = W F(x) + bias``. This costs about what an MLP costs, with learnable activations.

Initialization (the paper's variance-preserving scheme): the first layer's rational starts as the
identity, the second's as GELU (our fit, see :mod:`archsearch.blocks.rational`), and each weight matrix
is drawn with variance ``1 / (fan_in * E[F(x)^2])`` for ``x ~ N(0, 1)``, so activations keep unit
variance through the block at initialization.
"""

from __future__ import annotations

import functools
import math

import torch
from torch import nn

from archsearch.blocks.catalog import hidden_width
from archsearch.blocks.rational import KAT_GELU, KAT_IDENTITY, rational_safe_abs

_N_NUMERATOR = 6  # degree 5
_N_DENOMINATOR = 4


@functools.cache
def _second_moment(coefficients: tuple[float, ...]) -> float:
    """E[F(x)^2] for x ~ N(0, 1), by quadrature on a fine grid (once per coefficient set)."""
    x = torch.linspace(-8, 8, 4001, dtype=torch.float64)
    density = torch.exp(-x.square() / 2) / math.sqrt(2 * math.pi)
    coef = torch.tensor(coefficients, dtype=torch.float64)
    f = rational_safe_abs(x.view(1, 1, -1), coef[None, :_N_NUMERATOR], coef[None, _N_NUMERATOR:])
    return float((f.view(-1).square() * density).sum() * (x[1] - x[0]))


class GroupRational(nn.Module):
    """A rational function per channel group, applied elementwise on the last axis."""

    def __init__(self, dim: int, groups: int, init: tuple[float, ...]) -> None:
        super().__init__()
        if dim % groups:
            raise ValueError(f"width {dim} is not divisible into {groups} groups")
        self.groups = groups
        coef = torch.tensor(init, dtype=torch.float32)
        self.numerator = nn.Parameter(coef[:_N_NUMERATOR].repeat(groups, 1))
        self.denominator = nn.Parameter(coef[_N_NUMERATOR:].repeat(groups, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        grouped = x.unflatten(-1, (self.groups, -1))
        return rational_safe_abs(grouped, self.numerator, self.denominator).flatten(-2)


class GroupRationalKAN(nn.Module):
    """Two GR-KAN layers ``dim -> hidden -> dim`` (KAT's replacement of the transformer MLP)."""


    def __init__(self, dim: int, expansion: float = 2.0, groups: int = 4, activation: str | None = None) -> None:
        super().__init__()
        hidden = hidden_width(dim, expansion)
        if hidden % groups:
            raise ValueError(f"hidden width {hidden} is not divisible into {groups} groups")
        self.rational1 = GroupRational(dim, groups, KAT_IDENTITY)
        self.fc1 = nn.Linear(dim, hidden)
        self.rational2 = GroupRational(hidden, groups, KAT_GELU)
        self.fc2 = nn.Linear(hidden, dim)
        for fc, init in ((self.fc1, KAT_IDENTITY), (self.fc2, KAT_GELU)):
            nn.init.normal_(fc.weight, std=1 / math.sqrt(fc.in_features * _second_moment(init)))
            nn.init.zeros_(fc.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.rational2(self.fc1(self.rational1(x))))

