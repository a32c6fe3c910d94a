"""The block catalogue, parametrized over the registries, plus oracle checks against references."""

import importlib.util
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from archsearch.blocks import ACTIVATIONS, BLOCKS, block_param_count, create_activation, create_block
from archsearch.blocks.activations import activation_param_count
from archsearch.blocks.kan import bspline_basis, uniform_knots
from archsearch.blocks.rational import KAT_GELU, PAU_LEAKY_RELU, rational_safe_abs, rational_safe_sum
from archsearch.builder import build_model, count_parameters
from archsearch.genome import NORM_PLACEMENTS, BlockSpec, Genome
from archsearch.tasks import DataSpec

DIM = 16
# Every registered block with its default parameters and at least one other setting.
BLOCK_CASES = {
    "identity": [{}],
    "mlp": [{}, {"expansion": 0.5}, {"expansion": 4, "activation": "prelu"}],
    "glu": [{}, {"expansion": 2.667, "activation": "identity"}, {"activation": "swish_beta"}],
    "kan_bspline": [{}, {"grid_size": 3, "spline_order": 1}, {"grid_size": 8, "activation": "prelu"}],
    "kan_rbf": [{}, {"grid_size": 4}],
    "kan_fourier": [{}, {"frequencies": 2, "activation": "snake"}],
    "kan_chebyshev": [{}, {"degree": 2}, {"degree": 6}],
    "kan_rational": [{}, {"expansion": 1, "groups": 8}],
    "kan_selectable": [{}, {"basis": 3, "families": "bspline+rbf"}, {"families": "chebyshev"}],
    "attention": [{}, {"heads": 1}, {"heads": 8}, {"heads": 2, "position": "relative"}],
    "linear_attention": [{}, {"heads": 2}],
    "token_mixer": [{}, {"expansion": 0.5, "activation": "prelu"}],
    "moe_topk": [{}, {"experts": 3, "k": 1}, {"expert": "kan_rbf", "experts": 2}, {"expert": "glu", "activation": "prelu"}],
    "moe_soft": [{}, {"experts": 2, "expansion": 2, "activation": "pau"}],
}
CASES = [(name, params) for name, settings in BLOCK_CASES.items() for params in settings]


def test_every_registered_block_has_cases():
    shipped = {n for n in BLOCKS.names() if BLOCKS.get(n).__module__.startswith("archsearch.")}  # not test doubles
    assert set(BLOCK_CASES) == shipped


@pytest.mark.parametrize("tokens", [1, 7], ids=["vector", "sequence"])
@pytest.mark.parametrize("name, params", CASES, ids=[f"{n}-{i}" for n, s in BLOCK_CASES.items() for i in range(len(s))])
def test_block_shape_finite_gradients_and_closed_form_size(name, params, tokens):
    torch.manual_seed(0)
    block = create_block(name, DIM, n_tokens=tokens, **params)
    x = torch.randn(5, tokens, DIM, requires_grad=True)
    y = block(x)
    assert y.shape == x.shape and torch.isfinite(y).all()
    (y.square().mean() + sum(getattr(m, "aux_loss", None) or 0 for m in block.modules())).backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    for pname, p in block.named_parameters():
        if p.grad is None:  # only experts that no token was routed to may go without a gradient
            assert name == "moe_topk" and pname.startswith("experts."), pname
        else:
            assert torch.isfinite(p.grad).all(), pname
    assert count_parameters(block) == block_param_count(name, DIM, n_tokens=tokens, **params)


@pytest.mark.parametrize("data", [DataSpec("vector", n_features=6, n_outputs=3),
                                  DataSpec("sequence", seq_len=5, n_channels=2, n_outputs=3)], ids=["vector", "sequence"])
@pytest.mark.parametrize("activation", ACTIVATIONS.names())
def test_every_activation_in_a_network(activation, data):
    torch.manual_seed(0)
    specs = [BlockSpec("mlp", {"expansion": 2}, activation, residual=True), BlockSpec("glu", {}, activation)]
    model = build_model(Genome.sequential(specs, {"width": 8}), data)
    x = torch.randn(4, data.n_features) if data.input_kind == "vector" else torch.randn(4, 5, 2)
    out = model(x)
    assert out.shape == (4, 3) and torch.isfinite(out).all()
    out.square().mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    act = create_activation(activation, 8)
    assert count_parameters(act) == activation_param_count(activation, 8)
    extreme = torch.tensor([-1e4, -30.0, 0.0, 30.0, 1e4]).unsqueeze(-1).expand(5, 8)
    assert torch.isfinite(act(extreme)).all()


def test_activation_formulas():
    x = torch.linspace(-5, 5, 101)
    assert torch.allclose(create_activation("golu")(x), x * torch.exp(-torch.exp(-x)))
    assert torch.allclose(create_activation("snake", 1)(x), x + torch.sin(x).square())  # a starts at 1
    assert torch.allclose(create_activation("swish_beta", 1)(x), F.silu(x))  # beta starts at 1
    xsilu = create_activation("xsilu")
    assert torch.allclose(xsilu(x), F.silu(x))  # alpha starts at 0
    with torch.no_grad():
        xsilu.alpha.fill_(0.5)
    assert torch.allclose(xsilu(x), x * (2 * torch.sigmoid(x) - 0.5))  # gate spans (-0.5, 1.5)
    assert torch.allclose(create_activation("relu2")(x), F.relu(x).square())


def test_rational_initializations_fit_their_targets():
    x = torch.linspace(-3, 3, 601)
    coef = torch.tensor(PAU_LEAKY_RELU)
    assert (rational_safe_sum(x, coef[:6], coef[6:]) - F.leaky_relu(x, 0.01)).abs().max() < 0.05
    kat = torch.tensor(KAT_GELU)
    fitted = rational_safe_abs(x.view(1, 1, -1), kat[None, :6], kat[None, 6:]).view(-1)
    assert (fitted - F.gelu(x)).abs().max() < 0.01
    assert torch.allclose(create_activation("pau")(x), rational_safe_sum(x, coef[:6], coef[6:]))


def test_group_rational_backward_matches_finite_differences():
    torch.manual_seed(0)
    x = torch.randn(3, 2, 4, 5, dtype=torch.float64, requires_grad=True)
    coef = torch.tensor(KAT_GELU, dtype=torch.float64).repeat(4, 1) + 0.1 * torch.randn(4, 10, dtype=torch.float64)
    numerator, denominator = coef[:, :6].clone().requires_grad_(), coef[:, 6:].clone().requires_grad_()
    assert torch.autograd.gradcheck(rational_safe_abs, (x, numerator, denominator))


def test_kan_rational_preserves_variance_at_init():
    torch.manual_seed(0)
    block = create_block("kan_rational", 64, expansion=2, groups=8)
    y = block(torch.randn(256, 4, 64))
    assert 0.5 < y.var().item() < 2.0


# ---- oracle: the B-spline basis against pykan's ------------------------------------------------------------------

def _pykan_spline():
    """pykan's ``kan/spline.py`` (imports only torch), loaded without ``kan/__init__``, which pulls in
    matplotlib, sympy and the rest of pykan's plotting and symbolic stack."""
    spec = importlib.util.find_spec("kan")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("pykan is not installed (pip install pykan, a test dependency)")
    path = Path(next(iter(spec.submodule_search_locations))) / "spline.py"
    module_spec = importlib.util.spec_from_file_location("pykan_spline", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("grid_size, order", [(5, 3), (3, 1), (8, 2), (10, 3)])
def test_bspline_basis_matches_pykan(grid_size, order):
    pykan = _pykan_spline()
    bound = 2.0
    grid = pykan.extend_grid(torch.linspace(-bound, bound, grid_size + 1)[None, :].expand(3, -1), k_extend=order)
    assert torch.allclose(grid[0], uniform_knots(grid_size, order, bound), atol=1e-6)
    x = torch.rand(200, 3) * 6 - 3  # inside and outside the grid
    expected = pykan.B_batch(x, grid, k=order)
    assert torch.allclose(bspline_basis(x, uniform_knots(grid_size, order, bound), order), expected, atol=1e-5)


@pytest.mark.parametrize("order", [0, 1, 2, 3])
def test_bspline_closed_form_derivative_matches_autograd_through_the_recursion(order):
    from archsearch.blocks.kan import _cox_de_boor

    x = (torch.rand(300, 4, dtype=torch.float64) * 6 - 3).requires_grad_()
    knots = uniform_knots(5, order, 2.0).double()
    weights = torch.randn(300, 4, 5 + order, dtype=torch.float64)
    (fast,) = torch.autograd.grad((bspline_basis(x, knots, order) * weights).sum(), x)
    reference = _cox_de_boor(x, knots, order)[-1]
    if order == 0:  # piecewise constant
        assert not reference.requires_grad and fast.abs().max() == 0
        return
    (expected,) = torch.autograd.grad((reference * weights).sum(), x)
    assert torch.allclose(fast, expected, atol=1e-5)


@pytest.mark.parametrize("dim, out_dim, grid_range", [(4, None, 2.0), (2, 5, 2.0), (5, 1, "data"), (3, 7, "data")])
def test_kan_bspline_layer_matches_pykan_edge_by_edge(dim, out_dim, grid_range):
    """Square and rectangular layers, on a shared grid and on per-feature grids fitted to the data."""
    from archsearch.builder import fit_grids

    pykan = _pykan_spline()
    torch.manual_seed(0)
    layer = create_block("kan_bspline", dim, grid_size=5, spline_order=3, activation="silu", out_dim=out_dim,
                         grid_range=grid_range)
    out = dim if out_dim is None else out_dim
    with torch.no_grad():
        layer.bias.normal_()
        layer.spline_scale.normal_()
    x = torch.randn(2, 7, dim) * torch.linspace(0.5, 3, dim) + torch.linspace(-1, 2, dim)
    if grid_range == "data":
        fit_grids(layer, x)
    flat = x.reshape(-1, dim)
    if grid_range == "data":  # pykan's own grid over each feature's range, then extended by k knots
        lows, highs = flat.min(0).values, flat.max(0).values
        grid = pykan.extend_grid(torch.stack([torch.linspace(lo, hi, 6) for lo, hi in zip(lows, highs, strict=True)]),
                                 k_extend=3)
        assert torch.allclose(layer.knots, grid, atol=1e-5)
    else:
        grid = layer.knots
    curves = pykan.coef2curve(flat, grid, layer.coef.permute(0, 2, 1), k=3)  # (n, in, out): sum_m c B_m per edge
    edges = layer.base_weight * F.silu(flat)[:, :, None] + layer.spline_scale * curves
    expected = edges.sum(1) + layer.bias
    assert layer(x).shape == (2, 7, out)
    assert torch.allclose(layer(x).reshape(-1, out), expected, atol=1e-5)


# ---- oracle: attention against a straightforward softmax implementation ----------------------------------------

@pytest.mark.parametrize("heads", [1, 2, 4])
def test_attention_matches_explicit_softmax(heads):
    torch.manual_seed(0)
    block = create_block("attention", DIM, heads=heads)
    x = torch.randn(3, 6, DIM)
    qkv = x @ block.qkv.weight.T + block.qkv.bias
    q, k, v = (t.reshape(3, 6, heads, DIM // heads).transpose(1, 2) for t in qkv.split(DIM, dim=-1))
    weights = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(DIM // heads), dim=-1)
    expected = (weights @ v).transpose(1, 2).reshape(3, 6, DIM) @ block.out.weight.T + block.out.bias
    assert torch.allclose(block(x), expected, atol=1e-5)


def test_relative_position_bias_adds_a_learned_logit_per_head_and_offset():
    torch.manual_seed(0)
    heads, n = 2, 5
    block = create_block("attention", DIM, n_tokens=n, heads=heads, position="relative")
    with torch.no_grad():
        block.relative_bias.normal_()
    bias = block.position_bias(n)
    for i in range(n):
        for j in range(n):
            assert torch.equal(bias[:, i, j], block.relative_bias[:, j - i + n - 1])
    x = torch.randn(3, n, DIM)
    q, k, v = block.split_heads(x)
    weights = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(DIM // heads) + bias, dim=-1)
    expected = block.out((weights @ v).transpose(1, 2).flatten(-2))
    assert torch.allclose(block(x), expected, atol=1e-5)
    assert torch.allclose(block(x[:, :3]), block.out(  # shorter inputs use the central offsets
        (torch.softmax(q[..., :3, :] @ k[..., :3, :].transpose(-1, -2) / math.sqrt(DIM // heads) + bias[:, :3, :3],
                       dim=-1) @ v[..., :3, :]).transpose(1, 2).flatten(-2)), atol=1e-5)
    with pytest.raises(ValueError, match="built for 5 tokens"):
        block(torch.randn(1, 6, DIM))
    for make in (create_block, block_param_count):
        with pytest.raises(ValueError, match="needs n_tokens"):
            make("attention", DIM, heads=2, position="relative")
    with pytest.raises(ValueError, match="is not one of none, relative"):
        create_block("attention", DIM, n_tokens=n, position="rotary")


def test_linear_attention_matches_quadratic_form():
    torch.manual_seed(0)
    block = create_block("linear_attention", DIM, heads=2)
    x = torch.randn(2, 5, DIM)
    q, k, v = block.split_heads(x)
    q, k = F.elu(q) + 1, F.elu(k) + 1
    similarity = q @ k.transpose(-1, -2)  # (b, h, n, n), positive
    y = (similarity / similarity.sum(-1, keepdim=True)) @ v
    expected = block.out(y.transpose(1, 2).flatten(-2))
    assert torch.allclose(block(x), expected, atol=1e-5)


def test_token_mixer_mixes_tokens_and_attention_sees_other_tokens():
    torch.manual_seed(0)
    for name in ("token_mixer", "attention", "linear_attention"):
        block = create_block(name, DIM, n_tokens=4)
        x = torch.randn(1, 4, DIM)
        changed = x.clone()
        changed[0, 3] += 1.0
        assert not torch.allclose(block(x)[0, 0], block(changed)[0, 0]), name


# ---- oracle: top-k routing and its auxiliary loss ----------------------------------------------------------------

@pytest.mark.parametrize("k", [1, 2, 3])
def test_moe_topk_routes_each_token_to_exactly_k_experts(k):
    torch.manual_seed(0)
    block = create_block("moe_topk", DIM, experts=4, k=k)
    x = torch.randn(3, 5, DIM)
    y = block(x)
    routing = block.last_routing
    assert routing.shape == (15, k)
    assert all(len(set(row.tolist())) == k for row in routing)
    tokens = x.reshape(-1, DIM)
    probs = torch.softmax(block.router(tokens), dim=-1)
    expected = torch.zeros_like(tokens)
    for t in range(len(tokens)):
        chosen = probs[t].topk(k).indices
        gates = probs[t, chosen] / (probs[t, chosen].sum() if k > 1 else 1)
        for gate, e in zip(gates, chosen, strict=True):
            expected[t] += gate * block.experts[int(e)](tokens[t].view(1, 1, -1)).view(-1)
    assert torch.allclose(y.reshape(-1, DIM), expected, atol=1e-5)
    unused = set(range(4)) - set(routing.flatten().tolist())
    if unused:  # an expert no token chose cannot change the output
        with torch.no_grad():
            for p in block.experts[unused.pop()].parameters():
                p.add_(1.0)
        assert torch.allclose(block(x), y)


def _moe_genome(aux_weight):
    spec = BlockSpec("moe_topk", {"experts": 4, "k": 1, "aux_weight": aux_weight}, "gelu", residual=True)
    return Genome.sequential([spec], {"width": 8, "tokenize": "features"})


def test_moe_auxiliary_loss_is_collected_by_the_network():
    data = DataSpec("vector", n_features=6, n_outputs=3)
    torch.manual_seed(0)
    model = build_model(_moe_genome(1.0), data)
    model(torch.randn(16, 6))
    moe = model.blocks["b0"].block
    aux = model.auxiliary_loss()
    assert aux is not None and aux.item() == pytest.approx(moe.aux_loss.item()) and aux.item() > 0
    aux.backward()  # the balancing loss trains the router (and only the router)
    assert moe.router.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in moe.experts.parameters())
    model.eval()
    model(torch.randn(4, 6))
    assert model.auxiliary_loss() is None  # nothing to add outside training


def test_moe_auxiliary_loss_reaches_the_training_step():
    """Same init, same batch, one training step: only the aux weight differs, and with it the router,
    while the experts (which the aux loss does not touch) take identical steps."""
    import numpy as np

    from archsearch.evaluation.loop import TrainingRun
    from archsearch.evaluation.training import TrainingEvaluator, TrainingRecipe
    from archsearch.tasks import Task

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(32, 6)).astype(np.float32), rng.integers(0, 3, 32)
    task = Task("toy", "classification", x, y, x, y, x, y, n_classes=3)
    evaluator = TrainingEvaluator(task, TrainingRecipe(epochs=1, batch_size=32))
    models = []
    for aux_weight in (0.0, 10.0):
        torch.manual_seed(0)
        model = build_model(_moe_genome(aux_weight), task.data_spec)
        TrainingRun(evaluator.recipe, model, task, torch.Generator().manual_seed(0), None).train_to(
            1, evaluator._epoch_end)
        models.append(model.blocks["b0"].block)
    without, with_aux = models
    assert not torch.allclose(without.router.weight, with_aux.router.weight)
    for a, b in zip(without.experts.parameters(), with_aux.experts.parameters(), strict=True):
        assert torch.equal(a, b)


# ---- wiring and normalization in the builder ---------------------------------------------------------------------

def test_mix_placement_is_post_in_the_first_quarter_then_pre():
    specs = [BlockSpec("mlp", norm_placement="mix", residual=True) for _ in range(8)]
    model = build_model(Genome.sequential(specs, {"width": 8}), DataSpec("vector", n_features=4, n_outputs=2))
    assert [model.blocks[f"b{i}"].placement for i in range(8)] == ["post"] * 2 + ["pre"] * 6
    short = build_model(Genome.sequential(specs[:3], {"width": 8}), DataSpec("vector", n_features=4, n_outputs=2))
    assert [short.blocks[f"b{i}"].placement for i in range(3)] == ["pre"] * 3


@pytest.mark.parametrize("placement", NORM_PLACEMENTS)
def test_norm_placement_parameter_counts(placement):
    spec = BlockSpec("mlp", {"expansion": 1}, "relu", "layernorm", placement, residual=True)
    model = build_model(Genome.sequential([spec], {"width": 8}), DataSpec("vector", n_features=4, n_outputs=2))
    norms = {"none": 0, "pre": 1, "post": 1, "mix": 1, "peri": 2}[placement]
    assert count_parameters(model.blocks["b0"]) == block_param_count("mlp", 8, expansion=1) + norms * 2 * 8


def test_peri_normalizes_the_block_output_before_the_residual_sum():
    torch.manual_seed(0)
    spec = BlockSpec("mlp", {"expansion": 1}, "relu", "layernorm", "peri", residual=True)
    wrapped = build_model(Genome.sequential([spec], {"width": 8}), DataSpec("vector", n_features=4, n_outputs=2)).blocks["b0"]
    x = torch.randn(3, 2, 8) * 5
    delta = wrapped(x) - x
    assert torch.allclose(delta.mean(-1), torch.zeros(3, 2), atol=1e-5)  # a LayerNorm output at init


def test_feature_tokenization_makes_one_token_per_feature():
    data = DataSpec("vector", n_features=7, n_outputs=2)
    genome = Genome.sequential([BlockSpec("token_mixer", {"expansion": 1}, "gelu", residual=True)],
                               {"width": 8, "tokenize": "features"})
    model = build_model(genome, data)
    assert model.stem(torch.randn(3, 7)).shape == (3, 7, 8)
    assert model.blocks["b0"].block.fc1.in_features == 7
    assert model(torch.randn(3, 7)).shape == (3, 2)
    with pytest.raises(Exception, match="tokenize 'pixels'"):
        build_model(Genome.sequential([BlockSpec("mlp")], {"width": 8, "tokenize": "pixels"}), data)
