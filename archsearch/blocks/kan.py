"""Kolmogorov-Arnold layers with a fixed basis: B-spline (KAN), Gaussian RBF, Fourier, Chebyshev.

A KAN layer puts a learnable univariate function on every edge: ``y_j = sum_i phi_ij(x_i)`` with
``phi_ij(x) = w_ij b(x) + sum_m c_ijm B_m(x)``, a base branch ``b`` (the block's activation gene; SiLU in
the KAN paper) plus a combination of basis functions ``B_m``. Papers:

- ``kan_bspline``: Liu et al. 2024, "KAN: Kolmogorov-Arnold Networks" (B-splines of order k on a grid of
  G intervals extended by k knots on each side, per-edge scales ``w_b`` and ``w_s``).
- ``kan_rbf``: Li 2024, "Kolmogorov-Arnold Networks are Radial Basis Function Networks" (FastKAN).
- ``kan_fourier``: Xu et al. 2024, "FourierKAN-GCF" (cos/sin of integer frequencies).
- ``kan_chebyshev``: SS 2024, "Chebyshev Polynomial-Based Kolmogorov-Arnold Networks" (on tanh(x)).

Efficiency: the basis is evaluated once per input feature, (..., in, n_basis), and the base branch is
appended as one more "basis function", so the whole layer is one matmul of (N, in * (n_basis + 1)) by
(in * (n_basis + 1), out), instead of a loop over edges. Unlike pykan there is no grid update: the grid
spans [-grid_bound, grid_bound] (default 2, wide enough for normalized inputs) and the base branch
carries inputs beyond it.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from archsearch.blocks.activations import create_activation


def uniform_knots(grid_size: int, order: int, bound: float) -> torch.Tensor:
    """G + 2k + 1 knots: G uniform intervals on [-bound, bound] extended by ``order`` on each side."""
    h = 2 * bound / grid_size
    return torch.arange(-order, grid_size + order + 1, dtype=torch.float32) * h - bound


def _cox_de_boor(x: torch.Tensor, knots: torch.Tensor, order: int) -> list[torch.Tensor]:
    """Bases of orders 0..order on uniform ``knots``; on a uniform grid every denominator is ``p * h``."""
    distance = x.unsqueeze(-1) - knots  # x - t_j, computed once for every level
    h = knots[1] - knots[0]
    levels = [((distance[..., :-1] >= 0) & (distance[..., 1:] < 0)).to(x.dtype)]
    for p in range(1, order + 1):
        lower = levels[-1]
        left = distance[..., : -(p + 1)] * lower[..., :-1]
        right = distance[..., p + 1:] * lower[..., 1:]  # (x - t_{j+p+1}) B_{j+1}, subtracted below
        levels.append((left - right) / (p * h))
    return levels


class _BSplineBasis(torch.autograd.Function):
    """B-spline bases with the closed-form derivative ``dB^k_j/dx = (B^{k-1}_j - B^{k-1}_{j+1}) / h``.

    Autograd through the recursion would keep every level and reduce each broadcast separately; this
    keeps one level and costs one elementwise product and one reduction backward.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, knots: torch.Tensor, order: int) -> torch.Tensor:  # type: ignore[override]
        levels = _cox_de_boor(x, knots, order)
        ctx.save_for_backward(levels[-2] if order > 0 else levels[-1], knots)
        ctx.order = order
        return levels[-1]

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor | None, None, None]:  # type: ignore[override]
        lower, knots = ctx.saved_tensors
        if ctx.order == 0:  # piecewise constant: zero derivative almost everywhere
            return torch.zeros(grad.shape[:-1], dtype=grad.dtype), None, None
        slope = (lower[..., :-1] - lower[..., 1:]) / (knots[1] - knots[0])
        return (grad * slope).sum(-1), None, None


def bspline_basis(x: torch.Tensor, knots: torch.Tensor, order: int) -> torch.Tensor:
    """B-spline bases of ``order`` on uniform ``knots`` (Cox-de Boor): (..., len(knots) - 1 - order)."""
    return _BSplineBasis.apply(x, knots, order)


def rbf_basis(x: torch.Tensor, centers: torch.Tensor) -> torch.Tensor:
    """Gaussian bumps ``exp(-((x - c) / h)^2)`` on uniform centers ``c`` spaced ``h`` apart."""
    h = centers[1] - centers[0] if len(centers) > 1 else torch.ones((), dtype=centers.dtype)
    return torch.exp(-((x.unsqueeze(-1) - centers) / h).square())


def fourier_basis(x: torch.Tensor, frequencies: torch.Tensor) -> torch.Tensor:
    """cos(k x) and sin(k x) for the given integer frequencies, concatenated."""
    angles = x.unsqueeze(-1) * frequencies
    return torch.cat([torch.cos(angles), torch.sin(angles)], dim=-1)


def chebyshev_basis(x: torch.Tensor, degree: int) -> torch.Tensor:
    """T_0 .. T_degree of tanh(x) by the three-term recurrence (tanh maps inputs into [-1, 1])."""
    t = torch.tanh(x)
    terms = [torch.ones_like(t), t]
    for _ in range(degree - 1):
        terms.append(2 * t * terms[-1] - terms[-2])
    return torch.stack(terms[: degree + 1], dim=-1)


class BasisKAN(nn.Module):
    """A KAN layer ``dim -> dim`` over a fixed basis; subclasses define :meth:`basis` and its size.

    Parameters: base weights (in, out), basis coefficients (in, n_basis, out), an output bias, and the
    base activation's own parameters if it has any.
    """

    def __init__(self, dim: int, n_basis: int, activation: str = "silu", coef_std: float | None = None) -> None:
        super().__init__()
        self.dim = dim
        self.n_basis = n_basis
        self.base_act = create_activation(activation, dim)
        bound = 1 / math.sqrt(dim)
        self.base_weight = nn.Parameter(torch.empty(dim, dim).uniform_(-bound, bound))
        std = coef_std if coef_std is not None else 1 / math.sqrt(dim * n_basis)
        self.coef = nn.Parameter(torch.randn(dim, n_basis, dim) * std)
        self.bias = nn.Parameter(torch.zeros(dim))

    def basis(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def edge_weights(self) -> torch.Tensor:
        """(in, n_basis, out) coefficients of the basis functions, per-edge scales folded in."""
        return self.coef

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = torch.cat([self.base_act(x).unsqueeze(-1), self.basis(x)], dim=-1)
        weight = torch.cat([self.base_weight.unsqueeze(1), self.edge_weights()], dim=1)
        return features.flatten(-2) @ weight.reshape(-1, self.dim) + self.bias


class BSplineKAN(BasisKAN):
    """The KAN paper's layer: B-splines of order ``spline_order`` on ``grid_size`` intervals.

    ``phi_ij(x) = w_b[i, j] b(x) + w_s[i, j] sum_m c[i, m, j] B_m(x)``, initialized as pykan does:
    coefficients small noise, ``w_s = 1/sqrt(in)``, ``w_b`` uniform in +-1/sqrt(in).
    """

    def __init__(self, dim: int, grid_size: int = 5, spline_order: int = 3, grid_bound: float = 2.0,
                 activation: str = "silu") -> None:
        n_basis = grid_size + spline_order
        super().__init__(dim, n_basis, activation, coef_std=0.1 / math.sqrt(n_basis))
        self.spline_order = spline_order
        self.register_buffer("knots", uniform_knots(grid_size, spline_order, grid_bound), persistent=False)
        self.spline_scale = nn.Parameter(torch.full((dim, dim), 1 / math.sqrt(dim)))

    def basis(self, x: torch.Tensor) -> torch.Tensor:
        return bspline_basis(x, self.knots, self.spline_order)

    def edge_weights(self) -> torch.Tensor:
        return self.coef * self.spline_scale.unsqueeze(1)


class RBFKAN(BasisKAN):
    """FastKAN: ``grid_size`` Gaussian bumps on [-grid_bound, grid_bound] approximate the B-spline basis."""

    def __init__(self, dim: int, grid_size: int = 8, grid_bound: float = 2.0, activation: str = "silu") -> None:
        super().__init__(dim, grid_size, activation)
        self.register_buffer("centers", torch.linspace(-grid_bound, grid_bound, grid_size), persistent=False)

    def basis(self, x: torch.Tensor) -> torch.Tensor:
        return rbf_basis(x, self.centers)


class FourierKAN(BasisKAN):
    """Truncated Fourier series ``sum_k a_k cos(k x) + b_k sin(k x)`` on each edge, k = 1..frequencies."""

    def __init__(self, dim: int, frequencies: int = 4, activation: str = "silu") -> None:
        super().__init__(dim, 2 * frequencies, activation)
        self.register_buffer("frequencies", torch.arange(1, frequencies + 1, dtype=torch.float32),
                             persistent=False)

    def basis(self, x: torch.Tensor) -> torch.Tensor:
        return fourier_basis(x, self.frequencies)


class ChebyshevKAN(BasisKAN):
    """Chebyshev polynomials T_0..T_degree of tanh(x) on each edge."""

    def __init__(self, dim: int, degree: int = 4, activation: str = "silu") -> None:
        super().__init__(dim, degree + 1, activation)
        self.degree = degree

    def basis(self, x: torch.Tensor) -> torch.Tensor:
        return chebyshev_basis(x, self.degree)
