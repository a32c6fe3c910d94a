"""Safe rational functions P(x) / Q(x) shared by the Padé activation unit and the rational KAN.

Two "safe" denominators keep Q >= 1 so there are no poles: the PAU paper's ``1 + sum_k |b_k| |x|^k``
(:func:`rational_safe_sum`) and the Kolmogorov-Arnold Transformer's ``1 + |sum_k b_k x^k|``
(:func:`rational_safe_abs`). Numerators have degree 5 and denominators degree 4 in both papers.

The initial coefficients below were fitted by nonlinear least squares on 801 uniform points of
[-4, 4] (``scipy.optimize.least_squares``, best of 6 random starts); ``tests/test_blocks.py`` checks
that they still approximate their targets.
"""

from __future__ import annotations

import torch

# a0..a5, then b1..b4.
PAU_LEAKY_RELU = (0.03974, 0.618422, 1.740936, 1.713304, 0.624694, 0.079083,
                  0.855857, 2.466142, -0.366527, 0.109378)
KAT_IDENTITY = (0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
KAT_GELU = (-1.358940e-03, 5.000000e-01, 4.083851e-01, 1.013804e-01, 4.338382e-03, -8.337732e-04,
            -2.509982e-06, 2.027629e-01, -5.925391e-07, -1.667491e-03)


def _horner(x: torch.Tensor, coefficients: list[torch.Tensor]) -> torch.Tensor:
    """sum_i c_i x^i by Horner's rule: no stacked powers, so little memory for autograd to keep."""
    result = coefficients[-1] * torch.ones_like(x)
    for c in reversed(coefficients[:-1]):
        result = result * x + c
    return result


def rational_safe_sum(x: torch.Tensor, numerator: torch.Tensor, denominator: torch.Tensor) -> torch.Tensor:
    """PAU form P(x) / (1 + sum_k |b_k| |x|^k) with shared coefficients (numerator: m+1, denominator: n)."""
    p = _horner(x, list(numerator))
    q = _horner(x.abs(), [torch.zeros_like(denominator[0]), *denominator.abs()])
    return p / (1 + q)


def _grouped_horner(x: torch.Tensor, coefficients: torch.Tensor) -> torch.Tensor:
    """sum_i c[g, i] x^i for x of shape (..., groups, group_size) and c of shape (groups, degree + 1)."""
    c = coefficients.unsqueeze(-1)  # (groups, degree + 1, 1) broadcasts over (..., groups, group_size)
    result = c[:, -1] * torch.ones_like(x)
    for i in range(coefficients.shape[1] - 2, -1, -1):
        result = result * x + c[:, i]
    return result


class _GroupRational(torch.autograd.Function):
    """F = P(x) / (1 + |Q(x)|), Q(x) = sum_{j>=1} b_j x^j, with a hand-written backward.

    Autograd would keep every Horner step for the backward pass; this keeps x, P and Q, and forms the
    derivative in closed form: dF/dx = P'/D - sign(Q) P Q' / D^2 with D = 1 + |Q| (what KAT's CUDA
    kernel computes in one pass).
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, numerator: torch.Tensor, denominator: torch.Tensor) -> torch.Tensor:
        q_coef = torch.cat([torch.zeros_like(denominator[:, :1]), denominator], dim=1)
        p, q = _grouped_horner(x, numerator), _grouped_horner(x, q_coef)
        ctx.save_for_backward(x, numerator, q_coef, p, q)
        return p / (1 + q.abs())

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x, numerator, q_coef, p, q = ctx.saved_tensors
        degrees_p = torch.arange(1, numerator.shape[1], dtype=x.dtype)
        degrees_q = torch.arange(1, q_coef.shape[1], dtype=x.dtype)
        dp = _grouped_horner(x, numerator[:, 1:] * degrees_p)
        dq = _grouped_horner(x, q_coef[:, 1:] * degrees_q)
        denominator = 1 + q.abs()
        u = grad / denominator  # dL/dP
        v = -grad * p * torch.sign(q) / denominator.square()  # dL/dQ
        grad_x = u * dp + v * dq
        # Coefficient gradients: sum over every axis but the group axis of the upstream term times x^i.
        u, v = u.reshape(-1, *x.shape[-2:]), v.reshape(-1, *x.shape[-2:])
        power = torch.ones_like(u)
        flat_x = x.reshape(u.shape)
        grad_p = torch.empty_like(numerator)
        grad_q = torch.empty_like(q_coef[:, 1:])
        for i in range(max(numerator.shape[1], q_coef.shape[1])):
            if i < numerator.shape[1]:
                grad_p[:, i] = (u * power).sum(dim=(0, 2))
            if 1 <= i < q_coef.shape[1]:
                grad_q[:, i - 1] = (v * power).sum(dim=(0, 2))
            power = power * flat_x
        return grad_x, grad_p, grad_q


def rational_safe_abs(x: torch.Tensor, numerator: torch.Tensor, denominator: torch.Tensor) -> torch.Tensor:
    """KAT form P(x) / (1 + |sum_k b_k x^k|), coefficients per group.

    ``x`` is (..., groups, group_size); ``numerator`` (groups, m+1) and ``denominator`` (groups, n).
    """
    return _GroupRational.apply(x, numerator, denominator)
