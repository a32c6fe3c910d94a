"""The built-in blocks, activations and norms, declared torch-free.

Each entry names its implementation by import path (loaded on first build) and carries what spaces and
checks need without building it: the parameter names and defaults, the activation and token flags,
whether it may be an expert, and its parameter count in closed form. ``tests/test_blocks.py`` checks
every formula and every parameter list against the built module, so an entry cannot drift from its
class. Python cannot read a class's metadata without importing its module, and block modules import
torch; that is why these facts sit here rather than on the classes.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

from archsearch._registry import Registry
from archsearch.blocks.registry import BlockInfo, BlockRegistry, Implementation

# ---------------------------------------------------------------------------------------------- sizes


def hidden_width(dim: int, expansion: float) -> int:
    """Hidden width of a feed-forward block: ``dim * expansion`` rounded, at least 1."""
    return max(1, round(dim * expansion))


def _per_feature(dim: int | None) -> int:
    return dim or 1


def _fixed(dim: int | None) -> int:
    return 0


PAU_SIZE = 10  # numerator degree 5 (6 coefficients) + denominator degree 4
RATIONAL_NUMERATOR, RATIONAL_DENOMINATOR = 6, 4

ACTIVATIONS: Registry = Registry("activation")
# name, import path, description, learnable parameter count as a function of the width (None: fixed)
for _name, _target, _doc, _count in [
    ("identity", "torch.nn:Identity", "no nonlinearity (a GLU with it is the bilinear layer)", None),
    ("relu", "torch.nn:ReLU", "max(0, x)", None),
    ("leaky_relu", "torch.nn:LeakyReLU", "max(0.01x, x)", None),
    ("elu", "torch.nn:ELU", "exponential linear unit", None),
    ("selu", "torch.nn:SELU", "scaled ELU (self-normalizing networks)", None),
    ("gelu", "torch.nn:GELU", "Gaussian error linear unit", None),
    ("silu", "torch.nn:SiLU", "x * sigmoid(x), a.k.a. swish", None),
    ("mish", "torch.nn:Mish", "x * tanh(softplus(x))", None),
    ("softplus", "torch.nn:Softplus", "log(1 + exp(x))", None),
    ("tanh", "torch.nn:Tanh", "hyperbolic tangent", None),
    ("sigmoid", "torch.nn:Sigmoid", "logistic sigmoid (in a glu block: the original GLU)", None),
    ("hardswish", "torch.nn:Hardswish", "piecewise-linear swish (MobileNetV3)", None),
    ("prelu", "archsearch.blocks.activations:ChannelPReLU", "leaky ReLU with a learnable slope per feature",
     _per_feature),
    ("swish_beta", "archsearch.blocks.activations:SwishBeta",
     "x * sigmoid(beta x), learnable beta per feature (Swish)", _per_feature),
    ("snake", "archsearch.blocks.activations:Snake", "x + sin^2(a x) / a, learnable frequency a per feature",
     _per_feature),
    ("golu", "archsearch.blocks.activations:GoLU", "x * exp(-exp(-x)), Gompertz linear unit", None),
    ("xsilu", "archsearch.blocks.activations:XSiLU", "x * ((1 + 2 alpha) sigmoid(x) - alpha), learnable gating range",
     lambda dim: 1),
    ("pau", "archsearch.blocks.activations:PAU",
     "Pade activation unit: learnable rational P5(x) / (1 + sum |b_k x^k|)", lambda dim: PAU_SIZE),
    ("relu2", "archsearch.blocks.activations:SquaredReLU", "squared ReLU (Primer)", None),
]:
    ACTIVATIONS.declare(_name, _target, _doc, _count or _fixed)


def activation_param_count(name: str, dim: int | None = None) -> int:
    """Learnable parameters of activation ``name`` acting on ``dim`` features (0 for fixed ones)."""
    count = ACTIVATIONS.meta(name)
    if count is None:  # a user activation registered on its class may carry its own formula
        count = getattr(ACTIVATIONS.get(name), "param_count", _fixed)
    return int(count(dim))


NORMS: Registry = Registry("norm")
for _name, _target, _doc, _norm_params in [  # learnable parameters per feature: the registry's meta
    ("layernorm", "archsearch.blocks.norm:layernorm", "LayerNorm over features (Ba et al. 2016)", 2),
    ("rmsnorm", "archsearch.blocks.norm:rmsnorm", "RMSNorm: scale by the root mean square, no centering (Zhang & Sennrich 2019)", 1),
    ("batchnorm", "archsearch.blocks.norm:TokenBatchNorm", "BatchNorm over batch and tokens (Ioffe & Szegedy 2015)", 2),
    ("none", "archsearch.blocks.norm:no_norm", "no normalization", 0),
]:
    NORMS.declare(_name, _target, _doc, _norm_params)


def norm_param_count(name: str, dim: int) -> int:
    """Learnable parameters of norm ``name`` on ``dim`` features; ``ValueError`` for a norm registered
    without that count (it is known only by building it)."""
    per_feature = NORMS.meta(name)
    if not isinstance(per_feature, int):
        raise ValueError(f"norm {name!r} declares no parameter count")
    return per_feature * dim

# --------------------------------------------------------------------------------- block formulas


def _mlp_count(dim: int, expansion: float = 2.0, activation: str = "relu", **_: object) -> int:
    hidden = hidden_width(dim, expansion)
    return dim * hidden + hidden + hidden * dim + dim + activation_param_count(activation, hidden)


def _glu_count(dim: int, expansion: float = 2.0, activation: str = "silu", **_: object) -> int:
    hidden = hidden_width(dim, expansion)
    return dim * 2 * hidden + 2 * hidden + hidden * dim + dim + activation_param_count(activation, hidden)


def kan_count(dim: int, n_basis: int, activation: str, out_dim: int | None = None) -> int:
    """A :class:`~archsearch.blocks.kan.BasisKAN` ``dim -> out_dim``: base weights, coefficients, bias, base
    activation."""
    out = dim if out_dim is None else out_dim
    return dim * out + dim * n_basis * out + out + activation_param_count(activation, dim)


def _bspline_count(dim: int, grid_size: int = 5, spline_order: int = 3, activation: str = "silu",
                   out_dim: int | None = None, **_: object) -> int:
    out = dim if out_dim is None else out_dim
    return kan_count(dim, grid_size + spline_order, activation, out) + dim * out  # + per-edge spline scales


def _rbf_count(dim: int, grid_size: int = 8, activation: str = "silu", out_dim: int | None = None,
               **_: object) -> int:
    return kan_count(dim, grid_size, activation, out_dim)


def _fourier_count(dim: int, frequencies: int = 4, activation: str = "silu", out_dim: int | None = None,
                   **_: object) -> int:
    return kan_count(dim, 2 * frequencies, activation, out_dim)


def _chebyshev_count(dim: int, degree: int = 4, activation: str = "silu", out_dim: int | None = None,
                     **_: object) -> int:
    return kan_count(dim, degree + 1, activation, out_dim)


def _rational_count(dim: int, expansion: float = 2.0, groups: int = 4, **_: object) -> int:
    hidden = hidden_width(dim, expansion)
    return dim * hidden + hidden + hidden * dim + dim + 2 * groups * (RATIONAL_NUMERATOR + RATIONAL_DENOMINATOR)


def _rational_admissible(dim: int, params: Mapping[str, Any]) -> bool:
    """``groups`` divides both widths of the block (its rationals are shared by groups of channels)."""
    groups, expansion = params.get("groups", 4), params.get("expansion", 2.0)
    if not isinstance(groups, int) or not isinstance(expansion, int | float):
        return True  # the constructor reports wrong types
    return groups >= 1 and dim % groups == 0 and hidden_width(dim, expansion) % groups == 0


SKAN_FAMILIES = ("bspline", "chebyshev", "fourier", "rbf")
SKAN_SPLINE_ORDER = 3


def family_size(family: str, basis: int) -> int:
    """Number of basis functions an S-KAN family contributes for the ``basis`` gene."""
    return {"bspline": basis + SKAN_SPLINE_ORDER, "chebyshev": basis, "fourier": 2 * max(1, basis // 2),
            "rbf": basis}[family]


def parse_families(families: str) -> list[str]:
    """``"bspline+rbf"`` -> ``["bspline", "rbf"]``; a string keeps the gene a primitive (Optuna-friendly)."""
    names = [f for f in families.split("+") if f]
    unknown = [f for f in names if f not in SKAN_FAMILIES]
    if unknown or not names:
        raise ValueError(f"families {families!r}: use '+'-joined names from {', '.join(SKAN_FAMILIES)}")
    return names


def _selectable_count(dim: int, basis: int = 4, families: str = "+".join(SKAN_FAMILIES), activation: str = "silu",
                      out_dim: int | None = None, **_: object) -> int:
    names = parse_families(families)
    return kan_count(dim, sum(family_size(f, basis) for f in names), activation, out_dim) + dim * len(names)


ATTENTION_POSITIONS = ("none", "relative")


def check_attention_position(position: str, n_tokens: int | None) -> None:
    """The one check of ``attention``'s ``position``, for its constructor and its size formula alike."""
    if position not in ATTENTION_POSITIONS:
        raise ValueError(f"position {position!r} is not one of {', '.join(ATTENTION_POSITIONS)}")
    if position == "relative" and not n_tokens:
        raise ValueError("position='relative' needs n_tokens, the sequence length the block will see")


def _attention_count(dim: int, n_tokens: int | None = None, heads: int = 4, position: str = "none",
                     **_: object) -> int:
    check_attention_position(position, n_tokens)
    bias = heads * (2 * n_tokens - 1) if position == "relative" and n_tokens else 0
    return 4 * dim * dim + 4 * dim + bias


def _token_mixer_count(dim: int, n_tokens: int = 1, expansion: float = 2.0, activation: str = "gelu",
                       **_: object) -> int:
    hidden = hidden_width(n_tokens, expansion)
    return 2 * n_tokens * hidden + hidden + n_tokens + activation_param_count(activation, hidden)


def expert_params(expert: str, expansion: float) -> dict[str, Any]:
    """The ``expansion`` gene goes to experts that have one (mlp, glu, kan_rational)."""
    experts = expert_kinds()
    if expert not in experts:
        raise ValueError(f"expert kind {expert!r} is not one of {', '.join(experts)}")
    return {"expansion": expansion} if "expansion" in BLOCKS.info(expert).params else {}


def expert_kinds() -> list[str]:
    """Blocks that ``moe_topk`` may use as experts (``can_be_expert`` in their registry entry)."""
    return [n for n in BLOCKS.names() if BLOCKS.info(n).can_be_expert]


def _topk_count(dim: int, experts: int = 4, expert: str = "mlp", expansion: float = 1.0, activation: str = "gelu",
                **_: object) -> int:
    one = block_param_count(expert, dim, activation=activation, **expert_params(expert, expansion))
    return dim * experts + experts * one


def _soft_count(dim: int, experts: int = 4, expansion: float = 1.0, activation: str = "gelu", **_: object) -> int:
    hidden = hidden_width(dim, expansion)
    expert = dim * hidden + hidden + hidden * dim + dim
    return dim * experts + experts + experts * expert + activation_param_count(activation, hidden)


# ------------------------------------------------------------------------------------------ blocks

BLOCKS = BlockRegistry()
_KAN = "archsearch.blocks.kan"
for _info, _target, _doc in [
    (BlockInfo("identity", {}, uses_activation=False, param_count=lambda dim, **_: 0),
     "archsearch.blocks.identity:IdentityBlock", "no-op; the merge point of parallel branches"),
    (BlockInfo("mlp", {"expansion": 2.0, "dropout": 0.0}, can_be_expert=True, param_count=_mlp_count),
     "archsearch.blocks.mlp:MLPBlock", "feed-forward Linear-act-Linear with an expansion ratio"),
    (BlockInfo("glu", {"expansion": 2.0, "dropout": 0.0}, can_be_expert=True, param_count=_glu_count),
     "archsearch.blocks.mlp:GLUBlock", "gated feed-forward (SwiGLU / GEGLU / bilinear by activation)"),
    (BlockInfo("kan_bspline", {"grid_size": 5, "spline_order": 3, "grid_range": 2.0, "out_dim": None},
               can_be_expert=True, rectangular=True,
               param_count=_bspline_count),
     f"{_KAN}:BSplineKAN", "KAN layer: B-splines of grid G and order k plus a base branch (Liu et al.)"),
    (BlockInfo("kan_rbf", {"grid_size": 8, "grid_range": 2.0, "out_dim": None}, can_be_expert=True,
               rectangular=True, param_count=_rbf_count),
     f"{_KAN}:RBFKAN", "KAN layer on Gaussian radial basis functions (FastKAN)"),
    (BlockInfo("kan_fourier", {"frequencies": 4, "out_dim": None}, can_be_expert=True, rectangular=True,
               param_count=_fourier_count),
     f"{_KAN}:FourierKAN", "KAN layer on a truncated Fourier series"),
    (BlockInfo("kan_chebyshev", {"degree": 4, "out_dim": None}, can_be_expert=True, rectangular=True,
               param_count=_chebyshev_count),
     f"{_KAN}:ChebyshevKAN", "KAN layer on Chebyshev polynomials of tanh(x)"),
    (BlockInfo("kan_rational", {"expansion": 2.0, "groups": 4}, uses_activation=False, can_be_expert=True,
               param_count=_rational_count, admissible=_rational_admissible, adjusts=("groups",)),
     "archsearch.blocks.kan_rational:GroupRationalKAN",
     "group-rational KAN feed-forward (Kolmogorov-Arnold Transformer)"),
    (BlockInfo("kan_selectable", {"basis": 4, "families": "+".join(SKAN_FAMILIES), "out_dim": None},
               can_be_expert=True, rectangular=True,
               param_count=_selectable_count),
     "archsearch.blocks.kan_selectable:SelectableKAN", "KAN layer mixing several basis families per node (S-KAN)"),
    (BlockInfo("attention", {"heads": 4, "dropout": 0.0, "position": "none"}, uses_activation=False,
               mixes_tokens=True, param_count=_attention_count),
     "archsearch.blocks.attention:AttentionBlock", "multi-head softmax self-attention"),
    (BlockInfo("linear_attention", {"heads": 4, "dropout": 0.0}, uses_activation=False, mixes_tokens=True,
               param_count=_attention_count),
     "archsearch.blocks.attention:LinearAttentionBlock", "linear attention with the elu+1 feature map"),
    (BlockInfo("token_mixer", {"expansion": 2.0}, needs_tokens=True, mixes_tokens=True,
               param_count=_token_mixer_count),
     "archsearch.blocks.attention:TokenMixerBlock", "MLP across tokens (MLP-Mixer token mixing)"),
    (BlockInfo("moe_topk", {"experts": 4, "k": 2, "expert": "mlp", "expansion": 1.0, "aux_weight": 0.01},
               param_count=_topk_count),
     "archsearch.blocks.moe:TopKMoE", "top-k routed mixture of experts with a load-balancing loss"),
    (BlockInfo("moe_soft", {"experts": 4, "expansion": 1.0}, param_count=_soft_count),
     "archsearch.blocks.moe:SoftMergedMoE", "soft merging of expert parameters (SMEAR)"),
]:
    BLOCKS.declare_block(_info, _target, _doc)

# Fused implementations (archsearch.kernels): same parameters and function as the eager block. On CPU a
# C++ kernel compiled at first use; on CUDA, Triton for the KAN bases.
_KERNELS = "archsearch.kernels.basis:unavailable_reason"
for _name, _target, _devices in [
    ("kan_bspline", "archsearch.kernels.kan:FusedBSplineKAN", ("cpu", "cuda")),
    ("kan_rbf", "archsearch.kernels.kan:FusedRBFKAN", ("cpu", "cuda")),
    ("kan_chebyshev", "archsearch.kernels.kan:FusedChebyshevKAN", ("cpu", "cuda")),
    ("kan_fourier", "archsearch.kernels.kan:FusedFourierKAN", ("cpu", "cuda")),
    ("kan_selectable", "archsearch.kernels.kan:FusedSelectableKAN", ("cpu", "cuda")),
    ("kan_rational", "archsearch.kernels.rational:FusedGroupRationalKAN", ("cpu", "cuda")),
]:
    BLOCKS.add_implementation(_name, Implementation("fused", _target, devices=_devices, available=_KERNELS))
BLOCKS.add_implementation("moe_topk", Implementation("fused", "archsearch.kernels.moe:FusedTopKMoE"))  # plain torch


def needs_tokens(name: str) -> bool:
    return BLOCKS.info(name).needs_tokens


def uses_activation(name: str) -> bool:
    return BLOCKS.info(name).uses_activation


def mixes_tokens(name: str) -> bool:
    return BLOCKS.info(name).mixes_tokens


def block_param_count(name: str, dim: int, n_tokens: int | None = None, **params: object) -> int:
    """Parameters of ``create_block(name, dim, n_tokens, **params)`` in closed form, without building it."""
    info = BLOCKS.info(name)
    if info.param_count is None:
        raise ValueError(f"block {name!r} declares no param_count formula")
    if info.needs_tokens or n_tokens is not None:
        params["n_tokens"] = n_tokens
    return int(info.param_count(dim, **params))


def create_activation(name: str, dim: int | None = None):  # noqa: ANN201 - an nn.Module; torch stays unimported here
    """An activation module by name; ``dim`` sizes learnable per-feature parameters where there are any."""
    factory, count = ACTIVATIONS.get(name), ACTIVATIONS.meta(name)
    learnable = count is not _fixed if count is not None else hasattr(factory, "param_count")
    return factory(dim) if learnable else factory()


def create_norm(name: str, dim: int):  # noqa: ANN201
    """A normalization module by name, acting on the last axis."""
    return NORMS.get(name)(dim)


def create_block(name: str, dim: int, n_tokens: int | None = None, *, variant: str = "eager",
                 device: str = "cpu", **params: Any):  # noqa: ANN201
    """Instantiate block ``name`` at model width ``dim``; unknown parameters are an error.

    ``n_tokens`` (the sequence length the block will see) is passed to blocks whose constructor takes it;
    those whose registry entry says ``needs_tokens`` cannot be built without it.
    ``variant="eager"`` builds the reference module; ``"fused"`` builds the fused implementation for
    ``device`` where one exists and can run here, and the eager one otherwise.
    """
    info = BLOCKS.info(name)
    impl = BLOCKS.resolve(name, device, prefer=(variant, "eager"))
    factory = impl.load() if impl.variant != "eager" else BLOCKS.get(name)
    if info.needs_tokens and n_tokens is None:
        raise ValueError(f"block {name!r} mixes tokens and needs n_tokens")
    if n_tokens is not None and "n_tokens" in inspect.signature(factory).parameters:
        params["n_tokens"] = n_tokens
    try:
        return factory(dim, **params)
    except TypeError as exc:
        raise ValueError(f"block {name!r} rejected its parameters {params}: {exc}") from None
