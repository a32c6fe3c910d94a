"""Triton kernels for the fused KAN basis contractions on GPU (forward and backward), float32.

Same contract as the CPU kernel (:mod:`archsearch.kernels.basis`): ``y[n, o] = sum_i sum_m B_m(x[n, i])
C[i, m, o]``, with the basis evaluated in registers and never written to memory; knots and centers are
shared by every input feature or given per feature (``grid_range: data``).

B-splines (order <= 3, which the spaces use): on a uniform grid the ``k + 1`` nonzero bases of an input
are the cardinal B-spline pieces of ``u = (x - t_s) / h``, in closed form.

- forward: one program per (rows block, outputs block); for each input feature, the ``k + 1`` bases of
  the block's rows gather their coefficient rows and accumulate into the output tile.
- backward: one program per (input feature, slice of the rows); for each rows block it forms the
  (n_basis, rows) matrix of basis values (zero off the support) and adds its product with the
  output-gradient tile to that slice's coefficient gradient (``tl.dot``), and the input gradient from the
  basis derivatives and the gathered coefficient rows. The slices' coefficient gradients are summed
  after, in a fixed order (no atomics: the same inputs give the same bits).

Dense bases (RBF, Chebyshev of tanh, Fourier: every basis function is nonzero) make the contraction a
matrix product whose left operand is generated in registers: for each input feature, the (rows, n_basis)
basis tile times that feature's (n_basis, outputs) coefficients, on the matrix units (``tl.dot``, IEEE
float32). The backward pass is two such products: the coefficient gradient per (feature, outputs block,
slice of the rows), and the input gradient per rows block from the basis derivatives.

Tested on CPU through Triton's interpreter (``TRITON_INTERPRET=1``, ``tests/test_triton.py``) and compiled
on a GPU by the ``gpu`` tests.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

MAX_ORDER = 3
DENSE_FAMILIES = {"rbf": 1, "chebyshev": 2, "fourier": 3}
FAMILIES = ("bspline", *DENSE_FAMILIES)
PROGRAMS = 512  # backward programs to aim for: enough to fill a large GPU; fixed, so results never depend on it


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
def _forward_kernel(x_ptr, c_ptr, knots_ptr, y_ptr, N, IN, OUT, NB, n_knots, k_stride,
                    ORDER: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_O: tl.constexpr):
    rows = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)
    cols = tl.program_id(1) * BLOCK_O + tl.arange(0, BLOCK_O)
    rmask, cmask = rows < N, cols < OUT
    acc = tl.zeros((BLOCK_N, BLOCK_O), dtype=tl.float32)
    for i in range(IN):
        x = tl.load(x_ptr + rows * IN + i, mask=rmask, other=0.0)
        s, u, inside, h = _span(x, knots_ptr + i * k_stride, n_knots)
        for r in tl.static_range(ORDER + 1):
            m = s - ORDER + r
            valid = (m >= 0) & (m < NB) & rmask & inside
            c = tl.load(c_ptr + (i * NB + m)[:, None] * OUT + cols[None, :],
                        mask=valid[:, None] & cmask[None, :], other=0.0)
            acc += tl.where(valid, _piece(u, r, ORDER), 0.0)[:, None] * c
    tl.store(y_ptr + rows[:, None] * OUT + cols[None, :], acc, mask=rmask[:, None] & cmask[None, :])


@triton.jit
def _slice_block(x_ptr, gy_ptr, n0, stop, i, IN, OUT, cols, cmask, BLOCK_N: tl.constexpr):
    """A block of the rows before ``stop``: their indices, mask, input feature ``i`` and output-gradient tile."""
    rows = n0 + tl.arange(0, BLOCK_N)
    rmask = rows < stop
    x = tl.load(x_ptr + rows * IN + i, mask=rmask, other=0.0)
    gy = tl.load(gy_ptr + rows[:, None] * OUT + cols[None, :], mask=rmask[:, None] & cmask[None, :], other=0.0)
    return rows, rmask, x, gy


@triton.jit
def _backward_kernel(x_ptr, c_ptr, knots_ptr, gy_ptr, gx_ptr, gc_ptr, N, IN, OUT, NB, n_knots, k_stride, rows_per_slice,
                     ORDER: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_O: tl.constexpr, NB_PAD: tl.constexpr):
    i = tl.program_id(0)
    start = tl.program_id(1) * rows_per_slice
    stop = tl.minimum(N, start + rows_per_slice)
    knots_i = knots_ptr + i * k_stride
    gc_slice = gc_ptr + tl.program_id(1) * IN * NB * OUT
    basis_ids = tl.arange(0, NB_PAD)
    for o0 in range(0, OUT, BLOCK_O):
        cols = o0 + tl.arange(0, BLOCK_O)
        cmask = cols < OUT
        grad_c = tl.zeros((NB_PAD, BLOCK_O), dtype=tl.float32)
        for n0 in range(start, stop, BLOCK_N):
            rows, rmask, x, gy = _slice_block(x_ptr, gy_ptr, n0, stop, i, IN, OUT, cols, cmask, BLOCK_N)
            s, u, inside, h = _span(x, knots_i, n_knots)
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
        tl.store(gc_slice + (i * NB + basis_ids)[:, None] * OUT + cols[None, :], grad_c,
                 mask=(basis_ids < NB)[:, None] & cmask[None, :])


@triton.jit
def _dense_basis(x, ids, p_ptr, NB: tl.constexpr, FAMILY: tl.constexpr, DEGREE: tl.constexpr):
    """(values, slopes): the (rows, NB_PAD) tile of basis values of ``x`` and their d/dx, zero past NB."""
    xb = x[:, None]
    inside = (ids < NB)[None, :]
    if FAMILY == 1:  # RBF: exp(-((x - c_m) / h)^2) on the stored centers, h = c_1 - c_0 (1 for one center)
        centers = tl.load(p_ptr + ids, mask=ids < NB, other=0.0)
        h = tl.load(p_ptr + 1) - tl.load(p_ptr) if NB > 1 else 1.0
        d = (xb - centers[None, :]) / h
        values = tl.exp(-d * d)
        slopes = values * (-2.0 * d / h)
    elif FAMILY == 2:  # Chebyshev T_0..T_DEGREE of t = tanh(x) by the three-term recurrence, and dT/dt
        e = tl.exp(-2.0 * tl.abs(x))
        t = (1.0 - e) / (1.0 + e)
        t = tl.where(x < 0, -t, t)[:, None]
        previous, current = t * 0.0 + 1.0, t
        d_previous, d_current = t * 0.0, t * 0.0 + 1.0
        values = tl.where(ids[None, :] == 0, previous, 0.0) + tl.where(ids[None, :] == 1, current, 0.0)
        slopes = tl.where(ids[None, :] == 1, d_current, 0.0)
        for k in tl.static_range(2, DEGREE + 1):
            following = 2.0 * t * current - previous
            d_following = 2.0 * current + 2.0 * t * d_current - d_previous
            values += tl.where(ids[None, :] == k, following, 0.0)
            slopes += tl.where(ids[None, :] == k, d_following, 0.0)
            previous, current = current, following
            d_previous, d_current = d_current, d_following
        slopes = slopes * (1.0 - t * t)
    else:  # Fourier: cos(f_m x) for m < F, then sin(f_(m-F) x)
        half = NB // 2
        f = tl.load(p_ptr + ids % half, mask=ids < NB, other=0.0)[None, :]
        angle = xb * f
        cosine, sine = tl.cos(angle), tl.sin(angle)
        first = ids[None, :] < half
        values = tl.where(first, cosine, sine)
        slopes = tl.where(first, -f * sine, f * cosine)
    return tl.where(inside, values, 0.0), tl.where(inside, slopes, 0.0)


@triton.jit
def _dense_forward_kernel(x_ptr, c_ptr, p_ptr, y_ptr, N, IN, OUT, NB: tl.constexpr, p_stride,
                          FAMILY: tl.constexpr, DEGREE: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_O: tl.constexpr,
                          NB_PAD: tl.constexpr):
    rows = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)
    cols = tl.program_id(1) * BLOCK_O + tl.arange(0, BLOCK_O)
    ids = tl.arange(0, NB_PAD)
    rmask, cmask = rows < N, cols < OUT
    acc = tl.zeros((BLOCK_N, BLOCK_O), dtype=tl.float32)
    for i in range(IN):
        x = tl.load(x_ptr + rows * IN + i, mask=rmask, other=0.0)
        values, _ = _dense_basis(x, ids, p_ptr + i * p_stride, NB, FAMILY, DEGREE)
        c = tl.load(c_ptr + (i * NB + ids)[:, None] * OUT + cols[None, :], mask=(ids < NB)[:, None] & cmask[None, :],
                    other=0.0)
        acc += tl.dot(values, c, input_precision="ieee")
    tl.store(y_ptr + rows[:, None] * OUT + cols[None, :], acc, mask=rmask[:, None] & cmask[None, :])


@triton.jit
def _dense_grad_coef_kernel(x_ptr, p_ptr, gy_ptr, gc_ptr, N, IN, OUT, NB: tl.constexpr, p_stride, rows_per_slice,
                            FAMILY: tl.constexpr, DEGREE: tl.constexpr, BLOCK_N: tl.constexpr,
                            BLOCK_O: tl.constexpr, NB_PAD: tl.constexpr):
    i = tl.program_id(0)
    cols = tl.program_id(1) * BLOCK_O + tl.arange(0, BLOCK_O)
    start = tl.program_id(2) * rows_per_slice
    stop = tl.minimum(N, start + rows_per_slice)
    ids = tl.arange(0, NB_PAD)
    cmask = cols < OUT
    acc = tl.zeros((NB_PAD, BLOCK_O), dtype=tl.float32)
    for n0 in range(start, stop, BLOCK_N):
        _, rmask, x, gy = _slice_block(x_ptr, gy_ptr, n0, stop, i, IN, OUT, cols, cmask, BLOCK_N)
        values, _ = _dense_basis(x, ids, p_ptr + i * p_stride, NB, FAMILY, DEGREE)
        values = tl.where(rmask[:, None], values, 0.0)
        acc += tl.dot(tl.trans(values), gy, input_precision="ieee")
    gc_slice = gc_ptr + tl.program_id(2) * IN * NB * OUT
    tl.store(gc_slice + (i * NB + ids)[:, None] * OUT + cols[None, :], acc, mask=(ids < NB)[:, None] & cmask[None, :])


@triton.jit
def _dense_grad_input_kernel(x_ptr, c_ptr, p_ptr, gy_ptr, gx_ptr, N, IN, OUT, NB: tl.constexpr, p_stride,
                             FAMILY: tl.constexpr, DEGREE: tl.constexpr, BLOCK_N: tl.constexpr,
                             BLOCK_O: tl.constexpr, NB_PAD: tl.constexpr):
    rows = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)
    ids = tl.arange(0, NB_PAD)
    rmask = rows < N
    for i in range(IN):
        x = tl.load(x_ptr + rows * IN + i, mask=rmask, other=0.0)
        _, slopes = _dense_basis(x, ids, p_ptr + i * p_stride, NB, FAMILY, DEGREE)
        upstream = tl.zeros((BLOCK_N, NB_PAD), dtype=tl.float32)  # sum_o gy[n, o] C[i, m, o]
        for o0 in range(0, OUT, BLOCK_O):
            cols = o0 + tl.arange(0, BLOCK_O)
            cmask = cols < OUT
            gy = tl.load(gy_ptr + rows[:, None] * OUT + cols[None, :], mask=rmask[:, None] & cmask[None, :],
                         other=0.0)
            c = tl.load(c_ptr + (i * NB + ids)[None, :] * OUT + cols[:, None], mask=cmask[:, None] & (ids < NB)[None, :],
                        other=0.0)
            upstream += tl.dot(gy, c, input_precision="ieee")
        tl.store(gx_ptr + rows * IN + i, tl.sum(slopes * upstream, axis=1), mask=rmask)


def _blocks(out: int) -> tuple[int, int]:
    return 32, max(16, min(64, triton.next_power_of_2(out)))


def _basis_pad(n_basis: int) -> int:
    """Basis functions padded to a power of two of at least 16: ``tl.dot``'s smallest operand side."""
    return max(16, triton.next_power_of_2(n_basis))


def _slices(n: int, programs_per_slice: int, block_n: int) -> tuple[int, int]:
    """(slices, rows per slice) splitting ``n`` rows so the backward launch has about PROGRAMS programs."""
    row_blocks = triton.cdiv(n, block_n)
    slices = max(1, min(row_blocks, triton.cdiv(PROGRAMS, programs_per_slice)))
    rows_per_slice = triton.cdiv(row_blocks, slices) * block_n
    return triton.cdiv(n, rows_per_slice), rows_per_slice


def _param_stride(params: torch.Tensor) -> int:
    """0 for (n,) knots or centers shared by every feature, n for (in, n): a row per feature."""
    return params.shape[-1] if params.dim() == 2 else 0


def bspline_forward(x: torch.Tensor, coef: torch.Tensor, knots: torch.Tensor, order: int) -> torch.Tensor:
    n, inputs = x.shape
    _, n_basis, out = coef.shape
    y = torch.empty(n, out, dtype=x.dtype, device=x.device)
    block_n, block_o = _blocks(out)
    grid = (triton.cdiv(n, block_n), triton.cdiv(out, block_o))
    _forward_kernel[grid](x, coef, knots, y, n, inputs, out, n_basis, knots.shape[-1], _param_stride(knots),
                          ORDER=order, BLOCK_N=block_n, BLOCK_O=block_o)
    return y


def bspline_backward(grad: torch.Tensor, x: torch.Tensor, coef: torch.Tensor, knots: torch.Tensor,
                     order: int) -> tuple[torch.Tensor, torch.Tensor]:
    n, inputs = x.shape
    _, n_basis, out = coef.shape
    block_n, block_o = _blocks(out)
    slices, rows_per_slice = _slices(n, inputs, block_n)
    grad_x = torch.zeros_like(x)
    grad_c = torch.empty((slices, *coef.shape), dtype=coef.dtype, device=coef.device)
    _backward_kernel[(inputs, slices)](x, coef, knots, grad.contiguous(), grad_x, grad_c, n, inputs, out, n_basis,
                                       knots.shape[-1], _param_stride(knots), rows_per_slice, ORDER=order,
                                       BLOCK_N=block_n, BLOCK_O=block_o,
                                       NB_PAD=_basis_pad(n_basis))
    return grad_x, grad_c.sum(0)


def _dense_launch(family: str, coef: torch.Tensor, order: int, block_o: int) -> dict:
    n_basis = coef.shape[1]
    return {"FAMILY": DENSE_FAMILIES[family], "DEGREE": order, "BLOCK_O": block_o,
            "NB_PAD": _basis_pad(n_basis)}


def dense_forward(x: torch.Tensor, coef: torch.Tensor, family: str, params: torch.Tensor, order: int) -> torch.Tensor:
    n, inputs = x.shape
    _, n_basis, out = coef.shape
    y = torch.empty(n, out, dtype=x.dtype, device=x.device)
    block_n, block_o = _blocks(out)
    grid = (triton.cdiv(n, block_n), triton.cdiv(out, block_o))
    _dense_forward_kernel[grid](x, coef, params, y, n, inputs, out, n_basis, _param_stride(params), BLOCK_N=block_n,
                                **_dense_launch(family, coef, order, block_o))
    return y


def dense_backward(grad: torch.Tensor, x: torch.Tensor, coef: torch.Tensor, family: str, params: torch.Tensor,
                   order: int) -> tuple[torch.Tensor, torch.Tensor]:
    n, inputs = x.shape
    _, n_basis, out = coef.shape
    grad = grad.contiguous()
    block_n, block_o = _blocks(out)
    launch = _dense_launch(family, coef, order, block_o)
    out_blocks = triton.cdiv(out, block_o)
    slices, rows_per_slice = _slices(n, inputs * out_blocks, block_n)
    grad_c = torch.empty((slices, *coef.shape), dtype=coef.dtype, device=coef.device)
    _dense_grad_coef_kernel[(inputs, out_blocks, slices)](x, params, grad, grad_c, n, inputs, out, n_basis,
                                                          _param_stride(params), rows_per_slice, BLOCK_N=block_n,
                                                          **launch)
    grad_x = torch.empty_like(x)
    _dense_grad_input_kernel[(triton.cdiv(n, block_n),)](x, coef, params, grad, grad_x, n, inputs, out, n_basis,
                                                          _param_stride(params), BLOCK_N=block_n, **launch)
    return grad_x, grad_c.sum(0)


class TritonBasisContraction(torch.autograd.Function):
    """``sum_i sum_m B_m(x[:, i]) coef[i, m, :]`` for a family of :data:`FAMILIES` (``params``: knots,
    centers or frequencies, never empty; ``order``: spline order or Chebyshev degree)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, coef: torch.Tensor, family: str, params: torch.Tensor,
                order: int) -> torch.Tensor:
        ctx.save_for_backward(x, coef, params)
        ctx.family, ctx.order = family, order
        if not x.shape[0] or not x.shape[1]:  # no rows or no inputs: no program to launch
            return x.new_zeros(x.shape[0], coef.shape[-1])
        if family == "bspline":
            return bspline_forward(x, coef, params, order)
        return dense_forward(x, coef, family, params, order)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: torch.Tensor):
        x, coef, params = ctx.saved_tensors
        if not x.shape[0] or not x.shape[1]:
            return torch.zeros_like(x), torch.zeros_like(coef), None, None, None
        if ctx.family == "bspline":
            grad_x, grad_c = bspline_backward(grad, x, coef, params, ctx.order)
        else:
            grad_x, grad_c = dense_backward(grad, x, coef, ctx.family, params, ctx.order)
        return grad_x, grad_c, None, None, None
