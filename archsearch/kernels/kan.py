"""Fused KAN layers: the eager classes of :mod:`archsearch.blocks.kan` with one fused forward.

Each fused class subclasses its eager block and overrides only ``forward``, so parameters, buffers and
state dicts are the same: a model switches implementation by building the other class, or in place by
swapping ``__class__`` (what :func:`archsearch.kernels.make_hot` does), without copying a weight. The base
branch stays one ``addmm``; the basis evaluation and its contraction run in the fused kernel (C++ on CPU,
Triton on CUDA), and in the eager code where no kernel covers the call.
"""

from __future__ import annotations

from typing import Any

import torch

from archsearch.blocks.kan import RBFKAN, BasisKAN, BSplineKAN, ChebyshevKAN, FourierKAN
from archsearch.kernels.basis import basis_contraction, runs_fused


def kernel_grid(grid: torch.Tensor) -> torch.Tensor:
    """The grid as the kernels take it: (n,) where every input feature has the same, else (in, n), one row
    per feature (``grid_range: data``)."""
    if grid.dim() == 2 and torch.equal(grid, grid[:1].expand_as(grid)):
        return grid[0]
    return grid


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
        return kernel_grid(self.knots), self.spline_order


class FusedRBFKAN(_FusedBasisKAN, RBFKAN):
    family = "rbf"

    def basis_parameters(self) -> tuple[Any, int]:
        return kernel_grid(self.centers), 0


class FusedChebyshevKAN(_FusedBasisKAN, ChebyshevKAN):
    family = "chebyshev"

    def basis_parameters(self) -> tuple[Any, int]:
        return None, self.degree


class FusedFourierKAN(_FusedBasisKAN, FourierKAN):
    family = "fourier"

    def basis_parameters(self) -> tuple[Any, int]:
        return self.frequencies, 0


FUSED_KAN = {BSplineKAN: FusedBSplineKAN, RBFKAN: FusedRBFKAN, ChebyshevKAN: FusedChebyshevKAN,
             FourierKAN: FusedFourierKAN}
