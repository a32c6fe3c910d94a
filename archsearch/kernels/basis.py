"""Fused KAN basis contraction: ``y[n, o] = sum_i sum_m B_m(x[n, i]) C[i, m, o]`` without the basis tensor.

The eager layer evaluates every basis function of every input into a (batch, in, n_basis) tensor and
multiplies it by the coefficients; the fused kernel evaluates each input's basis in registers and
accumulates straight into the output (forward), and into the coefficient gradients and input gradients
(backward, closed-form derivatives). A B-spline of order k visits only its k + 1 nonzero bases.
"""

from __future__ import annotations

import importlib.util

import torch

from archsearch.kernels.cpu import extension
from archsearch.kernels.cpu import unavailable_reason as cpu_unavailable_reason

FAMILIES = {"bspline": 0, "rbf": 1, "chebyshev": 2, "fourier": 3}


class _BasisContraction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, coef: torch.Tensor, family: int, params: torch.Tensor,
                order: int) -> torch.Tensor:
        ext = extension()
        assert ext is not None, "fused kernels were chosen where they cannot run"
        ctx.save_for_backward(x, coef, params)
        ctx.family, ctx.order = family, order
        return ext.basis_forward(x, coef, family, params, order)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: torch.Tensor):
        x, coef, params = ctx.saved_tensors
        ext = extension()
        assert ext is not None
        grad_x, grad_coef = ext.basis_backward(grad, x, coef, ctx.family, params, ctx.order)
        return grad_x, grad_coef, None, None, None


def unavailable_reason(device_kind: str = "cpu") -> str | None:
    """Why the fused basis kernels cannot run on ``device_kind`` here (``None``: they can)."""
    if device_kind == "cuda":
        return None if importlib.util.find_spec("triton") else "Triton is not installed (pip install triton)"
    return cpu_unavailable_reason()


def runs_fused(x: torch.Tensor, family: str, order: int) -> bool:
    """Whether a fused kernel computes this call: CPU (every family), CUDA (float32; B-splines up to order 3)."""
    if x.device.type == "cpu":
        return cpu_unavailable_reason() is None
    if x.device.type == "cuda":
        if x.dtype != torch.float32 or unavailable_reason("cuda") is not None:
            return False
        from archsearch.kernels.triton_kan import FAMILIES as TRITON_FAMILIES
        from archsearch.kernels.triton_kan import MAX_ORDER

        return family in TRITON_FAMILIES and (family != "bspline" or order <= MAX_ORDER)
    return False


def basis_contraction(x: torch.Tensor, coef: torch.Tensor, family: str, params: torch.Tensor | None = None,
                      order: int = 0) -> torch.Tensor:
    """``sum_i sum_m B_m(x[..., i]) coef[i, m, :]`` for basis ``family`` (see :data:`FAMILIES`).

    Args:
        x: (..., in) inputs.
        coef: (in, n_basis, out) coefficients.
        family: ``bspline`` (``params`` = knots, ``order`` = spline order), ``rbf`` (``params`` = uniform
            centers), ``chebyshev`` of tanh(x) (``order`` = degree), ``fourier`` (``params`` = frequencies;
            bases are all cosines then all sines). Knots and centers are (n,), shared by every input, or
            (in, n): a grid per input feature.
    """
    flat = x.reshape(-1, x.shape[-1]).contiguous()
    cuda = x.device.type == "cuda"
    if params is None:  # Chebyshev's absent params: Triton takes no empty tensor
        params = torch.zeros(1 if cuda else 0)
    p = params if params.dtype == x.dtype and params.device == x.device else params.to(x.device, x.dtype)
    p = p.contiguous()
    if cuda:
        from archsearch.kernels.triton_kan import TritonBasisContraction

        y = TritonBasisContraction.apply(flat, coef.contiguous(), family, p, order)
    else:
        y = _BasisContraction.apply(flat, coef.contiguous(), FAMILIES[family], p, order)
    return y.reshape(*x.shape[:-1], coef.shape[-1])
