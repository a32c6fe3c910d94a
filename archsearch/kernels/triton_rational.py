"""Triton kernels for the safe rational functions on GPU: ``kan_rational``'s group rationals and PAU.

Same contract as the CPU kernel (:func:`archsearch.kernels.rational.fused_rational`), float32: ``F = P(x)
/ D`` with ``P = sum_j a_j x^j`` and ``D = 1 + R``, ``R = |sum_k b_k x^k|`` (KAT, ``safe_abs``) or ``R =
sum_k |b_k| |x|^k`` (PAU). Inputs are (rows, groups, group_size); one program per (rows block, group), so
its coefficients are scalars held in registers.

- forward: P and R by Horner's rule, one read of x and one write of F.
- backward: P', R' and the powers of x in the same pass; the input gradient in closed form,
  ``(P' - F R') / D`` times the output gradient, and the coefficient gradients ``x^j / D`` and ``-F / D
  dR/db_k`` reduced over the program's tile into one partial row per program, summed after in a fixed
  order (no atomics: the same inputs give the same bits). Only x and the coefficients are kept for the
  backward pass.

Tested on CPU through Triton's interpreter (``tests/test_triton.py``) and compiled by the ``gpu`` tests.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl


@triton.jit
def _parts(x, num_ptr, den_ptr, g, M1: tl.constexpr, N: tl.constexpr, SAFE_ABS: tl.constexpr):
    """P, P', R, dR/dx and the sign of Q (KAT) or of x (PAU), the group's coefficients read as scalars."""
    p = x * 0.0 + tl.load(num_ptr + g * M1 + M1 - 1)
    dp = x * 0.0
    for t in tl.static_range(1, M1):
        dp = dp * x + p
        p = p * x + tl.load(num_ptr + g * M1 + M1 - 1 - t)
    if SAFE_ABS:  # Q = sum_k b_k x^k, R = |Q|
        q = x * 0.0 + tl.load(den_ptr + g * N + N - 1)
        dq = x * 0.0
        for t in tl.static_range(1, N):
            dq = dq * x + q
            q = q * x + tl.load(den_ptr + g * N + N - 1 - t)
        dq = dq * x + q  # Q = x (b_1 + b_2 x + ...): one more Horner step with a zero constant term
        q = q * x
        sign = tl.where(q > 0, 1.0, tl.where(q < 0, -1.0, 0.0))
        r, dr = tl.abs(q), sign * dq
    else:  # R = sum_k |b_k| |x|^k
        a = tl.abs(x)
        r = x * 0.0 + tl.abs(tl.load(den_ptr + g * N + N - 1))
        dr = x * 0.0
        for t in tl.static_range(1, N):
            dr = dr * a + r
            r = r * a + tl.abs(tl.load(den_ptr + g * N + N - 1 - t))
        dr = dr * a + r
        r = r * a
        sign = tl.where(x > 0, 1.0, tl.where(x < 0, -1.0, 0.0))
        dr = dr * sign
    return p, dp, r, dr, sign


@triton.jit
def _tile(x_ptr, ROWS, G, S, BLOCK_R: tl.constexpr, S_PAD: tl.constexpr):
    """The program's group, the offsets and mask of its (rows block, group) tile, and x there."""
    g = tl.program_id(1)
    rows = tl.program_id(0) * BLOCK_R + tl.arange(0, BLOCK_R)
    cols = tl.arange(0, S_PAD)
    mask = (rows < ROWS)[:, None] & (cols < S)[None, :]
    offsets = rows[:, None] * G * S + g * S + cols[None, :]
    return g, offsets, mask, tl.load(x_ptr + offsets, mask=mask, other=0.0)


@triton.jit
def _forward_kernel(x_ptr, num_ptr, den_ptr, y_ptr, ROWS, G, S, M1: tl.constexpr, N: tl.constexpr,
                    SAFE_ABS: tl.constexpr, BLOCK_R: tl.constexpr, S_PAD: tl.constexpr):
    g, offsets, mask, x = _tile(x_ptr, ROWS, G, S, BLOCK_R, S_PAD)
    p, _, r, _, _ = _parts(x, num_ptr, den_ptr, g, M1, N, SAFE_ABS)
    tl.store(y_ptr + offsets, p / (1.0 + r), mask=mask)


@triton.jit
def _backward_kernel(x_ptr, gy_ptr, num_ptr, den_ptr, gx_ptr, part_ptr, ROWS, G, S, M1: tl.constexpr,
                     N: tl.constexpr, SAFE_ABS: tl.constexpr, BLOCK_R: tl.constexpr, S_PAD: tl.constexpr):
    g, offsets, mask, x = _tile(x_ptr, ROWS, G, S, BLOCK_R, S_PAD)
    gy = tl.load(gy_ptr + offsets, mask=mask, other=0.0)
    p, dp, r, dr, sign = _parts(x, num_ptr, den_ptr, g, M1, N, SAFE_ABS)
    w = gy / (1.0 + r)  # dF/da_j = x^j / D
    f = p / (1.0 + r)
    tl.store(gx_ptr + offsets, w * (dp - f * dr), mask=mask)
    v = -w * f  # dF/dR
    part = part_ptr + (tl.program_id(0) * G + g) * (M1 + N)
    power = x * 0.0 + 1.0
    for j in tl.static_range(M1):
        tl.store(part + j, tl.sum(tl.sum(w * power, axis=1), axis=0))
        power = power * x
    if SAFE_ABS:  # dR/db_k = sign(Q) x^k
        power = v * sign * x
        for k in tl.static_range(N):
            tl.store(part + M1 + k, tl.sum(tl.sum(power, axis=1), axis=0))
            power = power * x
    else:  # dR/db_k = sign(b_k) |x|^k
        a = tl.abs(x)
        power = v * a
        for k in tl.static_range(N):
            b = tl.load(den_ptr + g * N + k)
            b_sign = tl.where(b > 0, 1.0, tl.where(b < 0, -1.0, 0.0))
            tl.store(part + M1 + k, b_sign * tl.sum(tl.sum(power, axis=1), axis=0))
            power = power * a


def _launch(x: torch.Tensor) -> tuple[tuple[int, int], int, int]:
    rows, groups, size = x.shape
    s_pad = triton.next_power_of_2(size)
    block_r = max(1, min(128, 2048 // s_pad))
    return (triton.cdiv(rows, block_r), groups), block_r, s_pad


class TritonRational(torch.autograd.Function):
    """``x`` (rows, groups, group_size); ``numerator`` (groups, m + 1); ``denominator`` (groups, n)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, numerator: torch.Tensor, denominator: torch.Tensor,
                safe_abs: bool) -> torch.Tensor:
        numerator, denominator = numerator.contiguous(), denominator.contiguous()
        ctx.save_for_backward(x, numerator, denominator)
        ctx.safe_abs = safe_abs
        y = torch.empty_like(x)
        if not x.numel():
            return y
        grid, block_r, s_pad = _launch(x)
        _forward_kernel[grid](x, numerator, denominator, y, *x.shape, M1=numerator.shape[1],
                              N=denominator.shape[1], SAFE_ABS=safe_abs, BLOCK_R=block_r, S_PAD=s_pad)
        return y

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: torch.Tensor):
        x, numerator, denominator = ctx.saved_tensors
        m1, n = numerator.shape[1], denominator.shape[1]
        if not x.numel():
            return torch.zeros_like(x), torch.zeros_like(numerator), torch.zeros_like(denominator), None
        grid, block_r, s_pad = _launch(x)
        grad_x = torch.empty_like(x)
        parts = torch.empty((grid[0], grid[1], m1 + n), dtype=x.dtype, device=x.device)
        _backward_kernel[grid](x, grad.contiguous(), numerator, denominator, grad_x, parts, *x.shape, M1=m1, N=n,
                               SAFE_ABS=ctx.safe_abs, BLOCK_R=block_r, S_PAD=s_pad)
        total = parts.sum(0)
        return grad_x, total[:, :m1], total[:, m1:], None
