"""Fused safe rational functions: ``kan_rational``'s group rationals and the PAU activation (C++ on CPU,
Triton on CUDA: :mod:`archsearch.kernels.triton_rational`).

One pass per element computes P, Q and their derivatives by Horner's rule; the backward returns the
input gradient and the coefficient gradients (reduced per group inside the kernel) in closed form, so
neither the powers of x nor the intermediate Horner steps are ever stored.
"""

from __future__ import annotations

import torch

from archsearch.blocks.activations import PAU
from archsearch.blocks.kan_rational import GroupRational, GroupRationalKAN
from archsearch.blocks.rational import rational_safe_abs, rational_safe_sum
from archsearch.kernels.cpu import extension


class _Rational(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, numerator: torch.Tensor, denominator: torch.Tensor,
                safe_abs: bool) -> torch.Tensor:
        ext = extension()
        assert ext is not None, "fused kernels were chosen where they cannot run"
        ctx.save_for_backward(x, numerator, denominator)
        ctx.safe_abs = safe_abs
        return ext.rational_forward(x, numerator, denominator, safe_abs)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: torch.Tensor):
        x, numerator, denominator = ctx.saved_tensors
        ext = extension()
        assert ext is not None
        grad_x, grad_num, grad_den = ext.rational_backward(grad, x, numerator, denominator, ctx.safe_abs)
        return grad_x, grad_num, grad_den, None


def fused_rational(x: torch.Tensor, numerator: torch.Tensor, denominator: torch.Tensor,
                   safe_abs: bool = True) -> torch.Tensor:
    """``P(x) / (1 + |Q(x)|)`` (``safe_abs``, KAT) or ``P(x) / (1 + sum |b_k| |x|^k)`` (PAU).

    ``x`` is (..., groups, group_size); ``numerator`` (groups, m + 1), ``denominator`` (groups, n) with
    b_1..b_n. PAU's shared coefficients are one group. On CUDA, Triton's kernel (float32; other dtypes
    run the eager functions).
    """
    if x.device.type == "cuda" and x.dtype != torch.float32:
        return (rational_safe_abs(x, numerator, denominator) if safe_abs
                else rational_safe_sum(x, numerator[0], denominator[0]))
    shape = x.shape
    grouped = x.reshape(-1, numerator.shape[0], shape[-1]).contiguous()
    if x.device.type == "cuda":
        from archsearch.kernels.triton_rational import TritonRational

        return TritonRational.apply(grouped, numerator, denominator, safe_abs).reshape(shape)
    return _Rational.apply(grouped, numerator, denominator, safe_abs).reshape(shape)


class FusedGroupRational(GroupRational):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        grouped = x.unflatten(-1, (self.groups, -1))
        return fused_rational(grouped, self.numerator, self.denominator).flatten(-2)


class FusedPAU(PAU):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return fused_rational(x.unsqueeze(-2), self.numerator[None], self.denominator[None],
                              safe_abs=False).squeeze(-2)


class FusedGroupRationalKAN(GroupRationalKAN):
    """GR-KAN feed-forward with both group rationals fused (the linear layers stay GEMMs)."""

    def __init__(self, *args, **kwargs) -> None:  # noqa: ANN002, ANN003 - the eager block's signature
        super().__init__(*args, **kwargs)
        self.rational1.__class__ = FusedGroupRational
        self.rational2.__class__ = FusedGroupRational


FUSED_RATIONAL = {GroupRational: FusedGroupRational, PAU: FusedPAU, GroupRationalKAN: FusedGroupRationalKAN}
