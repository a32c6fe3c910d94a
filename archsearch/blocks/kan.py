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
(in * (n_basis + 1), out), instead of a loop over edges. Layers are rectangular (``dim -> out_dim``), so
a network of KAN layers can have the paper's shapes, ``[n_in, w1, ..., n_out]``.

Grids: ``grid_range`` is a bound ``b`` (a uniform grid on [-b, b], the base branch carrying inputs beyond
it) or ``"data"``: each input feature gets its own uniform grid over the range that feature takes on a
batch of training data, set once before training by :func:`archsearch.builder.fit_grids` (pykan starts
from [-1, 1] and refits its grids to samples during the first steps; fitting once at initialization,
when the coefficients are still noise, costs one forward pass and no refit). The knots are a buffer of
shape (in, G + 2k + 1) saved with the weights; :func:`bspline_basis` is the one eager implementation of
the basis, and takes the knots as an input.
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


def knot_spacing(knots: torch.Tensor) -> torch.Tensor:
    """h of uniform knots, shaped to broadcast against (..., [in,] n): (1,) for (n,) knots, (in, 1) for (in, n)."""
    return knots[..., 1:2] - knots[..., :1]


def data_knots(x: torch.Tensor, grid_size: int, order: int) -> torch.Tensor:
    """(in, G + 2k + 1) knots: per input feature, G uniform intervals over the range ``x`` (..., in) takes."""
    flat = x.detach().reshape(-1, x.shape[-1]).float()
    low, high = flat.min(0).values, flat.max(0).values
    centre, half = (low + high) / 2, ((high - low) / 2).clamp_min(1e-3)  # a constant feature gets a small grid
    unit = uniform_knots(grid_size, order, 1.0).to(flat.device)
    return centre[:, None] + half[:, None] * unit[None, :]


def _cox_de_boor(x: torch.Tensor, knots: torch.Tensor, order: int) -> list[torch.Tensor]:
    """Bases of orders 0..order on uniform ``knots`` ((n,) shared or (in, n) per feature); on a uniform
    grid every denominator is ``p * h``."""
    distance = x.unsqueeze(-1) - knots  # x - t_j, computed once for every level
    h = knot_spacing(knots)
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
    def forward(ctx, x: torch.Tensor, knots: torch.Tensor, order: int) -> torch.Tensor:
        levels = _cox_de_boor(x, knots, order)
        ctx.save_for_backward(levels[-2] if order > 0 else levels[-1], knots)
        ctx.order = order
        return levels[-1]

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor | None, None, None]:
        lower, knots = ctx.saved_tensors
        if ctx.order == 0:  # piecewise constant: zero derivative almost everywhere
            return torch.zeros(grad.shape[:-1], dtype=grad.dtype), None, None
        slope = (lower[..., :-1] - lower[..., 1:]) / knot_spacing(knots)
        return (grad * slope).sum(-1), None, None


def bspline_basis(x: torch.Tensor, knots: torch.Tensor, order: int) -> torch.Tensor:
    """B-spline bases of ``order`` on uniform ``knots`` (Cox-de Boor): (..., in, n_knots - 1 - order).

    ``knots`` is (n_knots,), shared by every feature, or (in, n_knots), one grid per input feature.
    """
    return _BSplineBasis.apply(x, knots, order)


def rbf_basis(x: torch.Tensor, centers: torch.Tensor) -> torch.Tensor:
    """Gaussian bumps ``exp(-((x - c) / h)^2)`` on uniform centers ``c`` spaced ``h`` apart
    ((n,) shared or (in, n) per feature)."""
    h = knot_spacing(centers) if centers.shape[-1] > 1 else torch.ones((), dtype=centers.dtype)
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
    """A KAN layer ``dim -> out_dim`` (default ``dim``) over a fixed basis; subclasses define
    :meth:`basis` and its size.

    Parameters: base weights (in, out), basis coefficients (in, n_basis, out), an output bias, and the
    base activation's own parameters if it has any.
    """


    def __init__(self, dim: int, n_basis: int, activation: str = "silu", coef_std: float | None = None,
                 out_dim: int | None = None) -> None:
        super().__init__()
        out = dim if out_dim is None else out_dim
        self.dim = dim
        self.out_dim = out
        self.n_basis = n_basis
        self.base_act = create_activation(activation, dim)
        bound = 1 / math.sqrt(dim)
        self.base_weight = nn.Parameter(torch.empty(dim, out).uniform_(-bound, bound))
        std = coef_std if coef_std is not None else 1 / math.sqrt(dim * n_basis)
        self.coef = nn.Parameter(torch.randn(dim, n_basis, out) * std)
        self.bias = nn.Parameter(torch.zeros(out))

    def basis(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def edge_weights(self) -> torch.Tensor:
        """(in, n_basis, out) coefficients of the basis functions, per-edge scales folded in."""
        return self.coef

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Two matmuls rather than one over concatenated features and weights: the concatenations copied
        # the (batch, in, n_basis + 1) features and the weights on every call (1.0-1.2x faster without).
        flat = x.reshape(-1, self.dim)
        out = torch.addmm(self.bias, self.base_act(flat), self.base_weight)
        out = out + self.basis(flat).flatten(-2) @ self.edge_weights().reshape(-1, self.out_dim)
        return out.reshape(*x.shape[:-1], self.out_dim)


class _GridBuffer:
    """Mixin for layers whose basis sits on a grid buffer (``knots`` / ``centers``) that may follow the data.

    The grid is saved with the weights (a data-fitted grid is part of the trained model); a state dict
    written before grids were saved loads with the layer's own grid.
    """

    grid_name = "knots"
    fits_grid: bool = False

    def _grid_range(self, grid_range: float | str) -> float:
        if grid_range == "data":
            self.fits_grid = True
            return 1.0  # placeholder until fit_grid sees data
        if isinstance(grid_range, str) or not grid_range > 0:
            raise ValueError(f"grid_range must be a positive bound or 'data', got {grid_range!r}")
        return float(grid_range)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        key = prefix + self.grid_name
        if key not in state_dict:
            state_dict[key] = getattr(self, self.grid_name)
        elif state_dict[key].shape != getattr(self, self.grid_name).shape:  # an older shared (n,) grid
            state_dict[key] = state_dict[key].expand_as(getattr(self, self.grid_name)).clone()
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


class BSplineKAN(_GridBuffer, BasisKAN):
    """The KAN paper's layer: B-splines of order ``spline_order`` on ``grid_size`` intervals.

    ``phi_ij(x) = w_b[i, j] b(x) + w_s[i, j] sum_m c[i, m, j] B_m(x)``, initialized as pykan does:
    coefficients small noise, ``w_s = 1/sqrt(in)``, ``w_b`` uniform in +-1/sqrt(in). ``grid_range``: a
    bound b for the grid [-b, b], or ``"data"`` (see the module docstring).
    """

    knots: torch.Tensor

    def __init__(self, dim: int, grid_size: int = 5, spline_order: int = 3, grid_range: float | str = 2.0,
                 activation: str = "silu", out_dim: int | None = None) -> None:
        n_basis = grid_size + spline_order
        super().__init__(dim, n_basis, activation, coef_std=0.1 / math.sqrt(n_basis), out_dim=out_dim)
        self.grid_size = grid_size
        self.spline_order = spline_order
        bound = self._grid_range(grid_range)
        self.register_buffer("knots", uniform_knots(grid_size, spline_order, bound).expand(dim, -1).clone())
        self.spline_scale = nn.Parameter(torch.full((dim, self.out_dim), 1 / math.sqrt(dim)))

    def basis(self, x: torch.Tensor) -> torch.Tensor:
        return bspline_basis(x, self.knots, self.spline_order)

    @torch.no_grad()
    def fit_grid(self, x: torch.Tensor) -> None:
        """Put each input feature's grid over the range it takes in ``x`` (..., dim)."""
        self.knots.copy_(data_knots(x, self.grid_size, self.spline_order))

    def edge_weights(self) -> torch.Tensor:
        return self.coef * self.spline_scale.unsqueeze(1)


class RBFKAN(_GridBuffer, BasisKAN):
    """FastKAN: ``grid_size`` Gaussian bumps on [-b, b] (``grid_range``, or ``"data"``: each feature's
    range) approximate the B-spline basis."""

    centers: torch.Tensor

    grid_name = "centers"

    def __init__(self, dim: int, grid_size: int = 8, grid_range: float | str = 2.0, activation: str = "silu",
                 out_dim: int | None = None) -> None:
        super().__init__(dim, grid_size, activation, out_dim=out_dim)
        bound = self._grid_range(grid_range)
        self.register_buffer("centers", torch.linspace(-bound, bound, grid_size).expand(dim, -1).clone())

    def basis(self, x: torch.Tensor) -> torch.Tensor:
        return rbf_basis(x, self.centers)

    @torch.no_grad()
    def fit_grid(self, x: torch.Tensor) -> None:
        """Spread each input feature's centers over the range it takes in ``x`` (..., dim)."""
        self.centers.copy_(data_knots(x, self.centers.shape[-1] - 1, 0))

class FourierKAN(BasisKAN):
    """Truncated Fourier series ``sum_k a_k cos(k x) + b_k sin(k x)`` on each edge, k = 1..frequencies."""

    frequencies: torch.Tensor

    def __init__(self, dim: int, frequencies: int = 4, activation: str = "silu", out_dim: int | None = None) -> None:
        super().__init__(dim, 2 * frequencies, activation, out_dim=out_dim)
        self.register_buffer("frequencies", torch.arange(1, frequencies + 1, dtype=torch.float32),
                             persistent=False)

    def basis(self, x: torch.Tensor) -> torch.Tensor:
        return fourier_basis(x, self.frequencies)


class ChebyshevKAN(BasisKAN):
    """Chebyshev polynomials T_0..T_degree of tanh(x) on each edge."""

    def __init__(self, dim: int, degree: int = 4, activation: str = "silu", out_dim: int | None = None) -> None:
        super().__init__(dim, degree + 1, activation, out_dim=out_dim)
        self.degree = degree

    def basis(self, x: torch.Tensor) -> torch.Tensor:
        return chebyshev_basis(x, self.degree)
