"""Fused kernels against their eager blocks: outputs and gradients, shapes, dtypes, grid borders.

The fused CPU kernels compile at first use (about 25 s of CPU, then cached); where they cannot be built
(no C++ compiler) these tests skip and say why, and the fallback test checks the eager blocks are used.
"""

import os
import subprocess
import sys

import pytest
import torch

from archsearch.blocks import BLOCKS, create_block
from archsearch.kernels.cpu import unavailable_reason

REASON = unavailable_reason()
needs_kernels = pytest.mark.skipif(REASON is not None, reason=f"fused CPU kernels not built here: {REASON}")

KAN_CASES = [
    ("kan_bspline", {}), ("kan_bspline", {"grid_size": 3, "spline_order": 1}),
    ("kan_bspline", {"grid_size": 8, "spline_order": 5, "grid_range": 1.0}), ("kan_bspline", {"spline_order": 0}),
    ("kan_rbf", {}), ("kan_rbf", {"grid_size": 3, "grid_range": 0.5}),
    ("kan_chebyshev", {}), ("kan_chebyshev", {"degree": 1}), ("kan_chebyshev", {"degree": 7}),
    ("kan_fourier", {}), ("kan_fourier", {"frequencies": 1}),
    ("kan_selectable", {}), ("kan_selectable", {"basis": 3, "families": "bspline+rbf"}),
    ("kan_selectable", {"basis": 6, "families": "chebyshev+fourier"}),
]
TOL = {torch.float32: {"atol": 2e-5, "rtol": 1e-4}, torch.float64: {"atol": 1e-12, "rtol": 1e-10}}


def border_values(block: torch.nn.Module, dtype: torch.dtype) -> torch.Tensor:
    """Knots or centers themselves, just either side of them, far outside, zero."""
    grid = getattr(block, "knots", getattr(block, "centers", torch.linspace(-2, 2, 5))).to(dtype)
    grid = grid[0] if grid.dim() == 2 else grid  # one feature's grid (every feature has the same here)
    eps = torch.finfo(dtype).eps * 4
    return torch.cat([grid, grid - eps, grid + eps, torch.tensor([0.0, -50.0, 50.0, 1e4], dtype=dtype)])


def eager_and_fused(name: str, dim: int, dtype: torch.dtype, **params):
    torch.manual_seed(0)
    eager = create_block(name, dim, **params).to(dtype)
    fused = create_block(name, dim, variant="fused", **params).to(dtype)
    assert type(fused) is not type(eager) and isinstance(fused, type(eager))
    fused.load_state_dict(eager.state_dict())
    return eager, fused


def assert_same_function(eager, fused, x, dtype):
    tol = TOL[dtype]
    xe, xf = x.clone().requires_grad_(), x.clone().requires_grad_()
    ye, yf = eager(xe), fused(xf)
    torch.testing.assert_close(yf, ye, **tol)
    upstream = torch.randn_like(ye)
    (ye * upstream).sum().backward()
    (yf * upstream).sum().backward()
    torch.testing.assert_close(xf.grad, xe.grad, **tol)
    for (pname, pe), (_, pf) in zip(eager.named_parameters(), fused.named_parameters(), strict=True):
        if pe.grad is None:  # an expert no token went to: no gradient, or a zero one
            assert pf.grad is None or not pf.grad.any(), pname
            continue
        torch.testing.assert_close(pf.grad, pe.grad, **tol, msg=lambda m, n=pname: f"{n}: {m}")


@needs_kernels
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("name, params", KAN_CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(KAN_CASES)])
def test_fused_kan_equals_eager(name, params, dtype):
    for shape, dim in [((7, 1, 6), 6), ((3, 5, 16), 16), ((1, 1, 1), 1)]:
        eager, fused = eager_and_fused(name, dim, dtype, **params)
        x = torch.randn(shape, dtype=dtype) * 1.7
        edges = border_values(eager, dtype)
        flat = x.view(-1)
        flat[: min(len(edges), flat.numel())] = edges[: flat.numel()]
        assert_same_function(eager, fused, x, dtype)


@needs_kernels
@pytest.mark.parametrize("name, params", [("kan_rbf", {"grid_size": 12}), ("kan_chebyshev", {"degree": 6}),
                                          ("kan_fourier", {"frequencies": 8}), ("kan_selectable", {"basis": 6})])
def test_fused_kan_equals_eager_over_many_row_blocks(name, params):
    """Dense bases are contracted a block of rows at a time (fewer rows the wider the layer): 300 rows of a
    64-wide layer span several blocks, and the last is partial."""
    eager, fused = eager_and_fused(name, 64, torch.float32, **params)
    assert_same_function(eager, fused, torch.randn(300, 64) * 1.5, torch.float32)


@needs_kernels
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
def test_fused_fourier_takes_any_frequencies(dtype):
    """Frequencies 1..F come by angle addition from cos(x) and sin(x); any others are computed directly."""
    from archsearch.blocks.kan import fourier_basis
    from archsearch.kernels.basis import basis_contraction

    torch.manual_seed(2)
    x = (torch.randn(50, 3, dtype=dtype) * 2).requires_grad_()
    for frequencies in ([1.0, 2.0, 3.0, 4.0], [0.5, 2.0, 3.25]):
        f = torch.tensor(frequencies, dtype=dtype)
        coef = torch.randn(3, 2 * len(frequencies), 4, dtype=dtype, requires_grad=True)
        fused = basis_contraction(x, coef, "fourier", f)
        eager = (fourier_basis(x, f).flatten(-2) @ coef.reshape(-1, 4))
        torch.testing.assert_close(fused, eager, **TOL[dtype])
        upstream = torch.randn_like(eager)
        torch.testing.assert_close(torch.autograd.grad(fused, (x, coef), upstream),
                                   torch.autograd.grad(eager, (x, coef), upstream), **TOL[dtype])


@needs_kernels
@pytest.mark.parametrize("family, params, order", [("bspline", "knots", 3), ("rbf", "centers", 0),
                                                   ("chebyshev", None, 3), ("fourier", "frequencies", 0)])
def test_fused_basis_gradcheck(family, params, order):
    """Against finite differences, in float64, away from the spline's knots (where it is not smooth)."""
    from archsearch.kernels.basis import basis_contraction

    torch.manual_seed(1)
    grid = {"knots": torch.arange(-3, 5, dtype=torch.float64) * 0.8 - 2.0, "centers": torch.linspace(-2, 2, 5,
            dtype=torch.float64), "frequencies": torch.arange(1, 4, dtype=torch.float64), None: None}[params]
    n_basis = {"bspline": len(grid) - 1 - order if grid is not None else 0, "rbf": 5, "chebyshev": order + 1,
               "fourier": 6}[family]
    x = (torch.rand(4, 3, dtype=torch.float64) * 3.2 - 1.6).requires_grad_()
    coef = torch.randn(3, n_basis, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, c: basis_contraction(a, c, family, grid, order), (x, coef))


def test_registry_offers_fused_kan_per_device():
    for name in ("kan_bspline", "kan_rbf", "kan_chebyshev", "kan_fourier", "kan_selectable", "kan_rational"):
        assert BLOCKS.implementations(name)["fused"].devices == ("cpu", "cuda")  # C++ and Triton
    assert BLOCKS.implementations("moe_topk")["fused"].devices == ("cpu", "cuda")  # plain torch


def test_without_a_compiler_fused_blocks_fall_back_to_eager_with_one_notice(tmp_path):
    code = """
import logging
logging.basicConfig(format="%(message)s")
from archsearch.blocks import create_block
print(type(create_block("kan_bspline", 4, variant="fused")).__name__)
print(type(create_block("kan_rbf", 4, variant="fused")).__name__)
"""
    env = {**os.environ, "CXX": str(tmp_path / "no-such-compiler"), "ARCHSEARCH_KERNEL_CACHE": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert done.stdout.split() == ["BSplineKAN", "RBFKAN"]
    notices = [line for line in done.stderr.splitlines() if "fused CPU kernels unavailable" in line]
    assert len(notices) == 1, done.stderr
    assert "no-such-compiler: not found" in notices[0]  # the cause, not the build's command line


RATIONAL_EDGES = [0.0, -0.0, 1e-8, -1e-8, 1.0, -1.0, 4.0, -4.0]  # far out (|x| = 30), float32 loses
# digits to cancellation in P'/D - P Q'/D^2 whichever way it is computed; float64 takes those too.
FAR = [30.0, -30.0]


def rational_edges(dtype):
    return torch.tensor(RATIONAL_EDGES + (FAR if dtype == torch.float64 else []), dtype=dtype)


@needs_kernels
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("params", [{}, {"expansion": 1, "groups": 8}, {"expansion": 0.5, "groups": 1}])
def test_fused_kan_rational_equals_eager(params, dtype):
    for shape in [(4, 1, 16), (2, 7, 16)]:
        eager, fused = eager_and_fused("kan_rational", 16, dtype, **params)
        with torch.no_grad():  # coefficients that make Q change sign, so |Q| and sign(b) are exercised
            for rational in (eager.rational1, eager.rational2):
                rational.denominator.normal_(0.0, 0.3)
                rational.numerator.normal_(0.0, 0.3)
            fused.load_state_dict(eager.state_dict())
        x = torch.randn(shape, dtype=dtype)
        edges = rational_edges(dtype)
        x.view(-1)[: len(edges)] = edges
        assert_same_function(eager, fused, x, dtype)


@needs_kernels
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
def test_fused_pau_equals_eager(dtype):
    from archsearch.blocks import create_activation
    from archsearch.kernels.rational import FusedPAU

    eager = create_activation("pau").to(dtype)
    with torch.no_grad():
        eager.denominator[1] = 0.0  # |b| at zero: the subgradient torch takes is 0
        eager.denominator[2] = -0.7
    fused = FusedPAU().to(dtype)
    fused.load_state_dict(eager.state_dict())
    x = torch.randn(3, 5, 8, dtype=dtype) * 2
    edges = rational_edges(dtype)
    x.view(-1)[: len(edges)] = edges
    assert_same_function(eager, fused, x, dtype)


@needs_kernels
def test_fused_rational_gradcheck():
    from archsearch.kernels.rational import fused_rational

    torch.manual_seed(2)
    x = (torch.randn(3, 2, 4, dtype=torch.float64) + 0.1).requires_grad_()
    a = torch.randn(2, 6, dtype=torch.float64, requires_grad=True)
    b = torch.randn(2, 4, dtype=torch.float64, requires_grad=True)
    for safe_abs in (True, False):
        assert torch.autograd.gradcheck(lambda x_, a_, b_, s=safe_abs: fused_rational(x_, a_, b_, s), (x, a, b))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("params", [{}, {"experts": 3, "k": 1}, {"experts": 6, "k": 3, "expert": "glu"},
                                    {"experts": 2, "k": 2, "activation": "silu", "expansion": 2}])
@pytest.mark.parametrize("dense", [True, False], ids=["every-expert", "routed"])
def test_grouped_moe_equals_the_expert_loop(params, dtype, dense):
    for shape in [(5, 7, 16), (1, 1, 16), (64, 1, 16)]:
        eager, fused = eager_and_fused("moe_topk", 16, dtype, **params)
        fused.dense = dense
        x = torch.randn(shape, dtype=dtype)
        assert_same_function(eager, fused, x, dtype)
        assert torch.equal(eager.last_routing, fused.last_routing)
        torch.testing.assert_close(fused.aux_loss, eager.aux_loss, **TOL[dtype])


@pytest.mark.gpu
@pytest.mark.parametrize("dense", [True, False], ids=["every-expert", "routed"])
def test_grouped_moe_equals_the_expert_loop_on_the_gpu(dense):
    for params in [{}, {"experts": 6, "k": 3, "expert": "glu"}]:
        eager, fused = eager_and_fused("moe_topk", 32, torch.float64, **params)
        eager, fused = eager.cuda(), fused.cuda()
        fused.dense = dense
        assert_same_function(eager, fused, torch.randn(33, 9, 32, dtype=torch.float64, device="cuda"), torch.float64)
        assert torch.equal(eager.last_routing, fused.last_routing)


def test_grouped_moe_runs_the_loop_for_experts_it_cannot_group():
    eager, fused = eager_and_fused("moe_topk", 8, torch.float64, expert="kan_rbf", activation="prelu")
    assert_same_function(eager, fused, torch.randn(3, 4, 8, dtype=torch.float64), torch.float64)


@needs_kernels
@pytest.mark.parametrize("name", ["kan_bspline", "kan_rbf", "kan_rational"])
def test_fused_kernels_give_the_same_bits_on_two_threads(name):
    """Each output element is summed by one thread in a fixed order, so thread count changes nothing."""
    _, fused = eager_and_fused(name, 16, torch.float32)
    x = torch.randn(70, 3, 16, requires_grad=True)
    results = []
    for threads in (1, 2):
        torch.set_num_threads(threads)
        fused.zero_grad()
        x.grad = None
        y = fused(x)
        y.square().sum().backward()
        results.append([y.detach().clone(), x.grad.clone(), *[p.grad.clone() for p in fused.parameters()]])
    torch.set_num_threads(1)
    assert all(torch.equal(a, b) for a, b in zip(*results, strict=True))


def _ran_fused(output: torch.Tensor) -> bool:
    """Whether the fused basis kernel is among the autograd nodes that made ``output``."""
    seen, stack = set(), [output.grad_fn]
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        if "BasisContraction" in type(node).__name__:
            return True
        stack.extend(next_node for next_node, _ in node.next_functions)
    return False


@needs_kernels
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("name, params", [("kan_bspline", {"spline_order": 1}), ("kan_bspline", {"spline_order": 3}),
                                          ("kan_rbf", {"grid_size": 6})])
def test_fused_kan_takes_a_grid_per_feature(name, params, dtype):
    """``grid_range: data`` gives every input feature its own knots or centers; the CPU kernels read them
    per feature."""
    from archsearch.builder import fit_grids

    eager, fused = eager_and_fused(name, 4, dtype, grid_range="data", **params)
    scales = torch.tensor([0.1, 1.0, 5.0, 20.0], dtype=dtype)
    fit_grids(eager, torch.randn(64, 4, dtype=dtype) * scales)
    fused.load_state_dict(eager.state_dict())
    grid = eager.knots if name == "kan_bspline" else eager.centers
    x = torch.randn(70, 4, dtype=dtype) * scales * 1.2  # some points beyond each feature's grid
    x[0] = grid[:, 1]  # grid points themselves
    assert grid.dim() == 2 and _ran_fused(fused(x.clone().requires_grad_()))
    assert_same_function(eager, fused, x, dtype)
