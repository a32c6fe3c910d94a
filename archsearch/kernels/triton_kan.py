"""Triton kernels for the fused B-spline KAN contraction on GPU (forward and backward).

Same contract as the CPU kernel (:mod:`archsearch.kernels.basis`): ``y[n, o] = sum_i sum_m B_m(x[n, i])
C[i, m, o]`` on uniform knots read from a tensor, with the basis evaluated in registers and never
written to memory. On a uniform grid the ``k + 1`` nonzero bases of an input are the cardinal B-spline
pieces of ``u = (x - t_s) / h`` (closed forms up to order 3, which the spaces use); float32 only.

- forward: one program per (rows block, outputs block); for each input feature, the ``k + 1`` bases of
  the block's rows gather their coefficient rows and accumulate into the output tile.
- backward: one program per input feature ``i``; for each rows block it forms the (n_basis, rows)
  matrix of basis values (zero off the support) and adds its product with the output-gradient tile to
  the coefficient gradient ``dC[i]`` held in registers (``tl.dot``), and the input gradient from the
  basis derivatives and the gathered coefficient rows.

Tested on CPU through Triton's interpreter (``TRITON_INTERPRET=1``, ``tests/test_triton.py``); not yet
run or timed on a GPU.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

MAX_ORDER = 3


@triton.jit
def _span(x, knots_ptr, n_knots):
    """Span s (t_s <= x < t_{s+1}, corrected against the knots), u = (x - t_s) / h, inside, h."""
    t0 = tl.load(knots_ptr)
    h = tl.load(knots_ptr + 1) - t0
    last = tl.load(knots_ptr + n_knots - 1)
    inside = (x >= t0) & (x < last)
    s = tl.floor((x - t0) / h).to(tl.int32)
    s = tl.minimum(tl.maximum(s, 0), n_knots - 2)
    s = tl.where((s > 0) & (x < tl.load(knots_ptr + s)), s - 1, s)
    s = tl.where((s < n_knots - 2) & (x >= tl.load(knots_ptr + s + 1)), s + 1, s)
    u = (x - tl.load(knots_ptr + s)) / h
    return s, u, inside, h


@triton.jit
def _piece(u, r: tl.constexpr, ORDER: tl.constexpr):
    """Cardinal B-spline piece r of order ORDER at u in [0, 1): basis s - ORDER + r."""
    v = 1.0 - u
    if ORDER == 0:
        out = u * 0.0 + 1.0
    elif ORDER == 1:
        out = v if r == 0 else u
    elif ORDER == 2:
        if r == 0:
            out = 0.5 * v * v
        elif r == 1:
            out = 0.5 + u * v
        else:
            out = 0.5 * u * u
    else:
        if r == 0:
            out = v * v * v / 6.0
        elif r == 1:
            out = (3.0 * u * u * u - 6.0 * u * u + 4.0) / 6.0
        elif r == 2:
            out = (-3.0 * u * u * u + 3.0 * u * u + 3.0 * u + 1.0) / 6.0
        else:
            out = u * u * u / 6.0
    return out


@triton.jit
def _slope(u, r: tl.constexpr, ORDER: tl.constexpr):
    """d piece / du."""
    v = 1.0 - u
    if ORDER == 0:
        out = u * 0.0
    elif ORDER == 1:
        out = u * 0.0 - 1.0 if r == 0 else u * 0.0 + 1.0
    elif ORDER == 2:
        if r == 0:
            out = -v
        elif r == 1:
            out = 1.0 - 2.0 * u
        else:
            out = u
    else:
        if r == 0:
            out = -0.5 * v * v
        elif r == 1:
            out = (3.0 * u * u - 4.0 * u) / 2.0
        elif r == 2:
            out = (-3.0 * u * u + 2.0 * u + 1.0) / 2.0
        else:
            out = 0.5 * u * u
    return out


@triton.jit
def _forward_kernel(x_ptr, c_ptr, knots_ptr, y_ptr, N, IN, OUT, NB, n_knots,
                    ORDER: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_O: tl.constexpr):
    rows = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)
    cols = tl.program_id(1) * BLOCK_O + tl.arange(0, BLOCK_O)
    rmask, cmask = rows < N, cols < OUT
    acc = tl.zeros((BLOCK_N, BLOCK_O), dtype=tl.float32)
    for i in range(IN):
        x = tl.load(x_ptr + rows * IN + i, mask=rmask, other=0.0)
        s, u, inside, h = _span(x, knots_ptr, n_knots)
        for r in tl.static_range(ORDER + 1):
            m = s - ORDER + r
            valid = (m >= 0) & (m < NB) & rmask & inside
            c = tl.load(c_ptr + (i * NB + m)[:, None] * OUT + cols[None, :],
                        mask=valid[:, None] & cmask[None, :], other=0.0)
            acc += tl.where(valid, _piece(u, r, ORDER), 0.0)[:, None] * c
    tl.store(y_ptr + rows[:, None] * OUT + cols[None, :], acc, mask=rmask[:, None] & cmask[None, :])


@triton.jit
def _backward_kernel(x_ptr, c_ptr, knots_ptr, gy_ptr, gx_ptr, gc_ptr, N, IN, OUT, NB, n_knots,
                     ORDER: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_O: tl.constexpr, NB_PAD: tl.constexpr):
    i = tl.program_id(0)
    basis_ids = tl.arange(0, NB_PAD)
    for o0 in range(0, OUT, BLOCK_O):
        cols = o0 + tl.arange(0, BLOCK_O)
        cmask = cols < OUT
        grad_c = tl.zeros((NB_PAD, BLOCK_O), dtype=tl.float32)
        for n0 in range(0, N, BLOCK_N):
            rows = n0 + tl.arange(0, BLOCK_N)
            rmask = rows < N
            x = tl.load(x_ptr + rows * IN + i, mask=rmask, other=0.0)
            s, u, inside, h = _span(x, knots_ptr, n_knots)
            gy = tl.load(gy_ptr + rows[:, None] * OUT + cols[None, :], mask=rmask[:, None] & cmask[None, :], other=0.0)
            values = tl.zeros((NB_PAD, BLOCK_N), dtype=tl.float32)
            grad_x = tl.zeros((BLOCK_N,), dtype=tl.float32)
            for r in tl.static_range(ORDER + 1):
                m = s - ORDER + r
                valid = (m >= 0) & (m < NB) & rmask & inside
                b = tl.where(valid, _piece(u, r, ORDER), 0.0)
                values += tl.where(basis_ids[:, None] == m[None, :], b[None, :], 0.0)
                c = tl.load(c_ptr + (i * NB + m)[:, None] * OUT + cols[None, :],
                            mask=valid[:, None] & cmask[None, :], other=0.0)
                slope = tl.where(valid, _slope(u, r, ORDER) / h, 0.0)
                grad_x += slope * tl.sum(c * gy, axis=1)
            grad_c += tl.dot(values, gy, input_precision="ieee")
            previous = tl.load(gx_ptr + rows * IN + i, mask=rmask, other=0.0)
            tl.store(gx_ptr + rows * IN + i, previous + grad_x, mask=rmask)
        tl.store(gc_ptr + (i * NB + basis_ids)[:, None] * OUT + cols[None, :], grad_c,
                 mask=(basis_ids < NB)[:, None] & cmask[None, :])


def _blocks(out: int) -> tuple[int, int]:
    return 32, max(16, min(64, triton.next_power_of_2(out)))


def bspline_forward(x: torch.Tensor, coef: torch.Tensor, knots: torch.Tensor, order: int) -> torch.Tensor:
    n, inputs = x.shape
    _, n_basis, out = coef.shape
    y = torch.empty(n, out, dtype=x.dtype, device=x.device)
    block_n, block_o = _blocks(out)
    grid = (triton.cdiv(n, block_n), triton.cdiv(out, block_o))
    _forward_kernel[grid](x, coef, knots, y, n, inputs, out, n_basis, len(knots), ORDER=order, BLOCK_N=block_n,
                          BLOCK_O=block_o)
    return y


def bspline_backward(grad: torch.Tensor, x: torch.Tensor, coef: torch.Tensor, knots: torch.Tensor,
                     order: int) -> tuple[torch.Tensor, torch.Tensor]:
    n, inputs = x.shape
    _, n_basis, out = coef.shape
    grad_x = torch.zeros_like(x)
    grad_c = torch.empty_like(coef)
    block_n, block_o = _blocks(out)
    _backward_kernel[(inputs,)](x, coef, knots, grad.contiguous(), grad_x, grad_c, n, inputs, out, n_basis,
                                len(knots), ORDER=order, BLOCK_N=block_n, BLOCK_O=block_o,
                                NB_PAD=max(16, triton.next_power_of_2(n_basis)))
    return grad_x, grad_c


class TritonBSplineContraction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, coef: torch.Tensor, knots: torch.Tensor, order: int) -> torch.Tensor:
        ctx.save_for_backward(x, coef, knots)
        ctx.order = order
        return bspline_forward(x, coef, knots, order)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: torch.Tensor):
        x, coef, knots = ctx.saved_tensors
        grad_x, grad_c = bspline_backward(grad, x, coef, knots, ctx.order)
        return grad_x, grad_c, None, None
