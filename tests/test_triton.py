"""The Triton KAN basis kernels against the eager bases, on CPU through Triton's interpreter.

The interpreter runs the same kernel source with numpy, so this checks the kernels' logic (indexing,
masks, the span search, the closed-form pieces, both passes) where no GPU is present; the ``gpu`` test
runs them compiled on a device.
"""

import importlib.util
import json
import os
import subprocess
import sys

import pytest
import torch

needs_triton = pytest.mark.skipif(importlib.util.find_spec("triton") is None,
                                  reason="Triton is not installed (pip install triton)")

CHECK = """
import json
import torch
from archsearch.blocks.kan import bspline_basis, chebyshev_basis, fourier_basis, rbf_basis, uniform_knots
from archsearch.kernels.triton_kan import TritonBasisContraction
torch.manual_seed(0)


def case(family, order, grid, bound, n, i, o, per_feature):
    if family == "bspline":
        params = uniform_knots(grid, order, bound)
        basis = lambda x: bspline_basis(x, params, order)
    elif family == "rbf":
        params = torch.linspace(-bound, bound, grid)
        basis = lambda x: rbf_basis(x, params)
    elif family == "chebyshev":
        params, basis = torch.zeros(1), lambda x: chebyshev_basis(x, order)
    else:
        params = torch.arange(1.0, grid + 1)
        basis = lambda x: fourier_basis(x, params)
    if per_feature:  # a grid per input feature: shifted and stretched copies
        params = torch.stack([params * (1 + 0.3 * k) + 0.2 * k for k in range(i)])
    x = torch.randn(n, i) * 1.7
    edges = torch.cat([params.flatten(), params.flatten() + 1e-6, params.flatten() - 1e-6,
                       torch.tensor([0.0, 40.0, -40.0])])
    x.view(-1)[: min(len(edges), x.numel())] = edges[: x.numel()]
    n_basis = basis(x[:1]).shape[-1]
    c = torch.randn(i, n_basis, o)
    x1, c1 = x.clone().requires_grad_(), c.clone().requires_grad_()
    reference = torch.einsum("nim,imo->no", basis(x1), c1)
    x2, c2 = x.clone().requires_grad_(), c.clone().requires_grad_()
    y = TritonBasisContraction.apply(x2, c2, family, params.contiguous(), order)
    upstream = torch.randn_like(reference)
    (reference * upstream).sum().backward()
    (y * upstream).sum().backward()
    scale = lambda t: max(1.0, t.abs().max().item())
    return [(y - reference).abs().max().item() / scale(reference),
            (x2.grad - x1.grad).abs().max().item() / scale(x1.grad),
            (c2.grad - c1.grad).abs().max().item() / scale(c1.grad)]


errors = {}
for family, order, grid, bound, n, i, o, per_feature in [
        ("bspline", 3, 5, 2.0, 37, 6, 20, False), ("bspline", 1, 3, 1.0, 8, 3, 70, False),
        ("bspline", 2, 4, 2.0, 40, 4, 16, False), ("bspline", 0, 5, 2.0, 9, 2, 5, False),
        ("bspline", 3, 8, 0.5, 33, 2, 65, False), ("bspline", 3, 5, 2.0, 200, 2, 20, True),
        ("rbf", 0, 8, 2.0, 37, 6, 20, False), ("rbf", 0, 1, 2.0, 9, 2, 5, False), ("rbf", 0, 20, 1.0, 200, 2, 70, True),
        ("chebyshev", 4, 0, 0, 37, 6, 20, False), ("chebyshev", 1, 0, 0, 9, 2, 5, False),
        ("chebyshev", 6, 0, 0, 200, 3, 70, False),
        ("fourier", 0, 4, 0, 37, 6, 20, False), ("fourier", 0, 1, 0, 200, 2, 70, False)]:
    errors[f"{family}-{order}-{grid}-{n}x{i}x{o}{'-per-feature' if per_feature else ''}"] = case(
        family, order, grid, bound, n, i, o, per_feature)
print(json.dumps(errors))
"""


@needs_triton
def test_triton_basis_kernels_equal_the_eager_bases_in_the_interpreter():
    """Every family, outputs past one block, rows past one slice, grids per feature, inputs on the knots."""
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    done = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    errors = json.loads(done.stdout.strip().splitlines()[-1])
    assert max(max(e) for e in errors.values()) < 2e-5, errors


RATIONAL_CHECK = """
import json
import torch
from archsearch.blocks.rational import rational_safe_abs, rational_safe_sum
from archsearch.kernels.triton_rational import TritonRational
torch.manual_seed(0)
errors = {}
for safe_abs, rows, groups, size, m, n in [(True, 37, 4, 16, 5, 4), (True, 300, 1, 24, 3, 2), (False, 50, 1, 7, 5, 4),
                                           (False, 9, 1, 64, 2, 1)]:
    x = torch.randn(rows, groups, size) * 2
    x.view(-1)[:3] = torch.tensor([0.0, 30.0, -30.0])
    num, den = torch.randn(groups, m + 1), torch.randn(groups, n)
    den[0, 0] = 0.0  # a zero coefficient: the sign of b_k and of Q at their kinks
    leaves = [t.clone().requires_grad_() for t in (x, num, den)]
    if safe_abs:
        reference = rational_safe_abs(*leaves)
    else:
        reference = rational_safe_sum(leaves[0], leaves[1][0], leaves[2][0])
    fused_leaves = [t.clone().requires_grad_() for t in (x, num, den)]
    y = TritonRational.apply(*fused_leaves, safe_abs)
    upstream = torch.randn_like(reference)
    (reference * upstream).sum().backward()
    (y * upstream).sum().backward()
    scale = lambda t: max(1.0, t.abs().max().item())
    errors[f"{'kat' if safe_abs else 'pau'}-{rows}x{groups}x{size}-{m}/{n}"] = [
        (y - reference).abs().max().item() / scale(reference),
        *[(f.grad - r.grad).abs().max().item() / scale(r.grad) for f, r in zip(fused_leaves, leaves)]]
print(json.dumps(errors))
"""


@needs_triton
def test_triton_rational_kernels_equal_the_eager_rationals_in_the_interpreter():
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    done = subprocess.run([sys.executable, "-c", RATIONAL_CHECK], capture_output=True, text=True, env=env,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    errors = json.loads(done.stdout.strip().splitlines()[-1])
    assert max(max(e) for e in errors.values()) < 2e-5, errors


F32 = "*fp32"
COMPILED = [  # kernel, its pointer arguments, constexprs (a size of 1 as Triton specializes it at launch)
    ("triton_kan", "_forward_kernel", "x_ptr c_ptr knots_ptr y_ptr", {"ORDER": 3, "BLOCK_N": 32, "BLOCK_O": 64}),
    ("triton_kan", "_forward_kernel", "x_ptr c_ptr knots_ptr y_ptr",
     {"N": 1, "IN": 1, "OUT": 1, "ORDER": 0, "BLOCK_N": 32, "BLOCK_O": 16}),
    ("triton_kan", "_backward_kernel", "x_ptr c_ptr knots_ptr gy_ptr gx_ptr gc_ptr",
     {"ORDER": 3, "BLOCK_N": 32, "BLOCK_O": 64, "NB_PAD": 16}),
    ("triton_kan", "_backward_kernel", "x_ptr c_ptr knots_ptr gy_ptr gx_ptr gc_ptr",
     {"N": 1, "IN": 1, "OUT": 1, "rows_per_slice": 1, "ORDER": 1, "BLOCK_N": 32, "BLOCK_O": 16, "NB_PAD": 16}),
    *[(module, kernel, pointers, {"NB": nb, "FAMILY": family, "DEGREE": degree, "BLOCK_N": 32, "BLOCK_O": 64,
                                  "NB_PAD": 16, **ones})
      for family, degree, nb, ones in [(1, 0, 8, {}), (1, 0, 1, {"IN": 1, "OUT": 1}), (2, 4, 5, {}),
                                       (3, 0, 8, {"N": 1, "p_stride": 1})]
      for module, kernel, pointers in [("triton_kan", "_dense_forward_kernel", "x_ptr c_ptr p_ptr y_ptr"),
                                       ("triton_kan", "_dense_grad_coef_kernel", "x_ptr p_ptr gy_ptr gc_ptr"),
                                       ("triton_kan", "_dense_grad_input_kernel", "x_ptr c_ptr p_ptr gy_ptr gx_ptr")]],
    *[("triton_rational", kernel, pointers, {"M1": 6, "N": 4, "SAFE_ABS": safe, "BLOCK_R": 128, "S_PAD": 16, **ones})
      for safe, ones in [(True, {}), (False, {"G": 1, "S": 1})]
      for kernel, pointers in [("_forward_kernel", "x_ptr num_ptr den_ptr y_ptr"),
                               ("_backward_kernel", "x_ptr gy_ptr num_ptr den_ptr gx_ptr part_ptr")]],
]


@needs_triton
def test_triton_kernels_compile_for_gpus_without_one():
    """Triton compiles for a target without the device (its own ptxas): what the interpreter cannot
    check (types, layouts, dots, sizes specialized to 1) is checked here, for Hopper (the lent GPUs'
    architecture; Ampere compiled too when this was written, at twice the test's time)."""
    import importlib
    import inspect

    try:
        from triton import compile as triton_compile
        from triton.backends.compiler import GPUTarget
        from triton.compiler import ASTSource
    except ImportError as exc:  # another Triton's layout
        pytest.skip(f"this Triton compiles ahead of time differently: {exc}")
    for module, kernel, pointers, constants in COMPILED:
        fn = getattr(importlib.import_module(f"archsearch.kernels.{module}"), kernel)
        names = list(inspect.signature(fn.fn).parameters)
        signature = {n: "constexpr" if n in constants else F32 if n in pointers.split() else "i32" for n in names}
        source = ASTSource(fn=fn, signature=signature, constexprs={(names.index(k),): v for k, v in constants.items()})
        triton_compile(source, target=GPUTarget("cuda", 90, 32))


GPU_CASES = [("kan_bspline", {}, 1024, 64), ("kan_bspline", {"spline_order": 2, "grid_size": 8}, 300, 48),
             ("kan_bspline", {"grid_range": "data"}, 4096, 64), ("kan_rbf", {"grid_size": 8}, 1024, 64),
             ("kan_rbf", {"grid_range": "data"}, 777, 32), ("kan_chebyshev", {"degree": 4}, 1024, 64),
             ("kan_chebyshev", {"degree": 7}, 5000, 128), ("kan_fourier", {"frequencies": 4}, 1024, 64),
             ("kan_selectable", {"basis": 4}, 1024, 64),
             ("kan_rational", {"expansion": 2, "groups": 4}, 1024, 64), ("kan_rational", {"groups": 1}, 3000, 48)]


@pytest.mark.gpu
@needs_triton
@pytest.mark.parametrize("name, params, batch, dim", GPU_CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(GPU_CASES)])
def test_fused_kan_on_the_gpu_equals_eager(name, params, batch, dim):
    from archsearch.blocks import create_block

    torch.manual_seed(0)
    eager = create_block(name, dim, **params).cuda()
    x = torch.randn(batch, 1, dim, device="cuda") * 1.5
    if params.get("grid_range") == "data":
        eager.fit_grid(x)
    fused = create_block(name, dim, variant="fused", device="cuda", **params).cuda()
    fused.load_state_dict(eager.state_dict())
    xe, xf = x.clone().requires_grad_(), x.clone().requires_grad_()
    ye, yf = eager(xe), fused(xf)
    torch.testing.assert_close(yf, ye, atol=1e-4, rtol=1e-4)
    upstream = torch.randn_like(ye)
    (ye * upstream).sum().backward()
    (yf * upstream).sum().backward()
    torch.testing.assert_close(xf.grad, xe.grad, atol=1e-3, rtol=1e-3)
    for (name_, p_eager), p_fused in zip(eager.named_parameters(), fused.parameters(), strict=True):
        torch.testing.assert_close(p_fused.grad, p_eager.grad, atol=1e-3, rtol=1e-3, msg=name_)
    again = fused(xf.detach())  # no atomics: the same inputs give the same bits
    assert torch.equal(again, yf.detach())
