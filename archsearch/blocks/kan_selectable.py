"""Activation-space selectable KAN (Chen et al. 2024, "Activation Space Selectable Kolmogorov-Arnold
Networks", S-KAN).

Each input node carries several activation families at once (here any of B-spline, Chebyshev, Fourier,
Gaussian RBF) and learns a softmax mixture over them, so the layer picks the function space that suits
the data instead of the designer fixing one. The mixture weights scale each family's coefficients
(the same function as scaling its basis) before the single contraction that
:class:`archsearch.blocks.kan.BasisKAN` performs, so the cost is one KAN layer whose basis is the
concatenation of the families' bases.
"""

from __future__ import annotations

import torch
from torch import nn

from archsearch.blocks.catalog import SKAN_FAMILIES, SKAN_SPLINE_ORDER, family_size, parse_families
from archsearch.blocks.kan import (
    BasisKAN,
    bspline_basis,
    chebyshev_basis,
    fourier_basis,
    rbf_basis,
    uniform_knots,
)

FAMILIES = SKAN_FAMILIES
_SPLINE_ORDER = SKAN_SPLINE_ORDER
_BOUND = 2.0


class SelectableKAN(BasisKAN):
    """KAN layer ``dim -> out_dim`` (default ``dim``) whose edge functions mix several families with learned per-node weights.

    Args:
        basis: size knob per family: B-spline grid intervals (order 3), Chebyshev degree + 1, number of
            Fourier terms (cos and sin), RBF centers.
        families: ``+``-joined family names.
    """

    knots: torch.Tensor
    centers: torch.Tensor
    frequencies: torch.Tensor
    family_of_basis: torch.Tensor

    def __init__(self, dim: int, basis: int = 4, families: str = "+".join(FAMILIES),
                 activation: str = "silu", out_dim: int | None = None) -> None:
        self.families = parse_families(families)
        sizes = [family_size(f, basis) for f in self.families]
        super().__init__(dim, sum(sizes), activation, out_dim=out_dim)
        self.sizes = sizes
        self.register_buffer("knots", uniform_knots(basis, _SPLINE_ORDER, _BOUND), persistent=False)
        self.register_buffer("centers", torch.linspace(-_BOUND, _BOUND, basis), persistent=False)
        self.register_buffer("frequencies", torch.arange(1, max(1, basis // 2) + 1, dtype=torch.float32),
                             persistent=False)
        self.chebyshev_degree = basis - 1
        self.mixture_logits = nn.Parameter(torch.zeros(dim, len(self.families)))
        self.register_buffer("family_of_basis", torch.repeat_interleave(torch.arange(len(sizes)), torch.tensor(sizes)),
                             persistent=False)

    def _family_basis(self, family: str, x: torch.Tensor) -> torch.Tensor:
        if family == "bspline":
            return bspline_basis(x, self.knots, _SPLINE_ORDER)
        if family == "chebyshev":
            return chebyshev_basis(x, self.chebyshev_degree)
        if family == "fourier":
            return fourier_basis(x, self.frequencies)
        return rbf_basis(x, self.centers)

    def basis(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self._family_basis(f, x) for f in self.families], dim=-1)

    def edge_weights(self) -> torch.Tensor:
        """The coefficients scaled by each input node's family mixture: the same function as scaling
        each family's basis, on a (in, n_basis, out) tensor instead of a batch-sized one."""
        mixture = torch.softmax(self.mixture_logits, dim=-1)  # (in, families)
        return self.coef * mixture[:, self.family_of_basis].unsqueeze(-1)
