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


def rational_safe_abs(x: torch.Tensor, numerator: torch.Tensor, denominator: torch.Tensor) -> torch.Tensor:
    """KAT form P(x) / (1 + |sum_k b_k x^k|), coefficients per group.

    ``x`` is (..., groups, group_size); ``numerator`` (groups, m+1) and ``denominator`` (groups, n).
    """
    p = _horner(x, list(numerator.unsqueeze(-1).unbind(1)))
    q = _horner(x, [torch.zeros_like(denominator[:, :1]), *denominator.unsqueeze(-1).unbind(1)])
    return p / (1 + q.abs())
