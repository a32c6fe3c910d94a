"""The Triton B-spline KAN kernels against the eager basis, on CPU through Triton's interpreter.

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
from archsearch.blocks.kan import bspline_basis, uniform_knots
from archsearch.kernels.triton_kan import TritonBSplineContraction
torch.manual_seed(0)
errors = []
for order, grid, bound, n, i, o in [(3, 5, 2.0, 37, 6, 20), (1, 3, 1.0, 8, 3, 70), (2, 4, 2.0, 40, 4, 16),
                                    (0, 5, 2.0, 9, 2, 5), (3, 8, 0.5, 33, 2, 65)]:
    knots = uniform_knots(grid, order, bound)
    x = torch.randn(n, i) * 1.7
    edges = torch.cat([knots, knots + 1e-6, knots - 1e-6, torch.tensor([0.0, 40.0, -40.0])])
    x.view(-1)[: min(len(edges), x.numel())] = edges[: x.numel()]
    c = torch.randn(i, grid + order, o)
    x1, c1 = x.clone().requires_grad_(), c.clone().requires_grad_()
    reference = torch.einsum("nim,imo->no", bspline_basis(x1, knots, order), c1)
    x2, c2 = x.clone().requires_grad_(), c.clone().requires_grad_()
    y = TritonBSplineContraction.apply(x2, c2, knots, order)
    upstream = torch.randn_like(reference)
    (reference * upstream).sum().backward()
    (y * upstream).sum().backward()
    scale = lambda t: max(1.0, t.abs().max().item())
    errors.append([(y - reference).abs().max().item() / scale(reference),
                   (x2.grad - x1.grad).abs().max().item() / scale(x1.grad),
                   (c2.grad - c1.grad).abs().max().item() / scale(c1.grad)])
print(json.dumps(errors))
"""


@needs_triton
def test_triton_bspline_kernels_equal_the_eager_basis_in_the_interpreter():
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    done = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    errors = json.loads(done.stdout.strip().splitlines()[-1])
    assert max(max(e) for e in errors) < 2e-5, errors


@pytest.mark.gpu
@needs_triton
def test_fused_bspline_on_the_gpu_equals_eager():
    from archsearch.blocks import create_block

    torch.manual_seed(0)
    eager = create_block("kan_bspline", 64).cuda()
    fused = create_block("kan_bspline", 64, variant="fused", device="cuda").cuda()
    fused.load_state_dict(eager.state_dict())
    x = torch.randn(1024, 1, 64, device="cuda") * 1.5
    xe, xf = x.clone().requires_grad_(), x.clone().requires_grad_()
    ye, yf = eager(xe), fused(xf)
    torch.testing.assert_close(yf, ye, atol=1e-4, rtol=1e-4)
    ye.square().sum().backward()
    yf.square().sum().backward()
    torch.testing.assert_close(xf.grad, xe.grad, atol=1e-3, rtol=1e-3)
    torch.testing.assert_close(fused.coef.grad, eager.coef.grad, atol=1e-3, rtol=1e-3)
