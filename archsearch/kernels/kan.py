"""Fused KAN layers: the eager classes of :mod:`archsearch.blocks.kan` (and S-KAN) with one fused forward.

Each fused class subclasses its eager block and overrides only ``forward``, so parameters, buffers and
state dicts are the same: a model switches implementation by building the other class, or in place by
swapping ``__class__`` (what :func:`archsearch.kernels.make_hot` does), without copying a weight. The base
branch stays one ``addmm``; the basis evaluation and its contraction run in the fused kernel (C++ on CPU,
Triton on CUDA), and in the eager code where no kernel covers the call.
"""

from __future__ import annotations

from typing import Any

import torch

from archsearch.blocks.catalog import SKAN_SPLINE_ORDER
from archsearch.blocks.kan import RBFKAN, BasisKAN, BSplineKAN, ChebyshevKAN, FourierKAN
from archsearch.blocks.kan_selectable import SelectableKAN
from archsearch.kernels.basis import basis_contraction, runs_fused


class _FusedBasisKAN(BasisKAN):
    family = ""

    def basis_parameters(self) -> tuple[Any, int]:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        params, order = self.basis_parameters()
        if not runs_fused(x, self.family, order):
            return super().forward(x)  # no kernel for this device, dtype or order: eager
        flat = x.reshape(-1, x.shape[-1])
        coef = self.edge_weights()
        out = torch.addmm(self.bias, self.base_act(flat), self.base_weight)
        out = out + basis_contraction(flat, coef, self.family, params, order)
        return out.reshape(*x.shape[:-1], coef.shape[-1])


class FusedBSplineKAN(_FusedBasisKAN, BSplineKAN):
    family = "bspline"

    def basis_parameters(self) -> tuple[Any, int]:
        return self.knots, self.spline_order


class FusedRBFKAN(_FusedBasisKAN, RBFKAN):
    family = "rbf"

    def basis_parameters(self) -> tuple[Any, int]:
        return self.centers, 0


class FusedChebyshevKAN(_FusedBasisKAN, ChebyshevKAN):
    family = "chebyshev"

    def basis_parameters(self) -> tuple[Any, int]:
        return None, self.degree


class FusedFourierKAN(_FusedBasisKAN, FourierKAN):
    family = "fourier"

    def basis_parameters(self) -> tuple[Any, int]:
        return self.frequencies, 0


class FusedSelectableKAN(SelectableKAN):
    """S-KAN with each family's bases contracted by the fused kernel of that family: the mixture scales the
    coefficients (as the eager layer does), so each family's slice of them goes to its own kernel call."""

    def family_parameters(self, family: str) -> tuple[Any, int]:
        return {"bspline": (self.knots, SKAN_SPLINE_ORDER), "rbf": (self.centers, 0),
                "chebyshev": (None, self.chebyshev_degree), "fourier": (self.frequencies, 0)}[family]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not all(runs_fused(x, family, self.family_parameters(family)[1]) for family in self.families):
            return super().forward(x)
        flat = x.reshape(-1, x.shape[-1])
        weights = self.edge_weights()
        out = torch.addmm(self.bias, self.base_act(flat), self.base_weight)
        start = 0
        for family, size in zip(self.families, self.sizes, strict=True):
            params, order = self.family_parameters(family)
            out = out + basis_contraction(flat, weights[:, start:start + size], family, params, order)
            start += size
        return out.reshape(*x.shape[:-1], weights.shape[-1])


FUSED_KAN = {BSplineKAN: FusedBSplineKAN, RBFKAN: FusedRBFKAN, ChebyshevKAN: FusedChebyshevKAN,
             FourierKAN: FusedFourierKAN, SelectableKAN: FusedSelectableKAN}
