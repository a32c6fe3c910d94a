"""Building blocks, each mapping (batch, tokens, dim) -> (batch, tokens, dim), looked up by name.

``create_block(name, dim, **params)`` is the one entry point the builder uses; ``BLOCKS``,
``ACTIVATIONS`` and ``NORMS`` are the registries that ``archsearch list`` prints.

Two class attributes tell builders and spaces what a block needs:

- ``needs_tokens = True``: the block's weights depend on the token count (MLP-Mixer's token mixing);
  ``create_block`` then passes ``n_tokens``.
- ``uses_activation = False``: the block has no activation gene (attention, identity); spaces skip
  that decision. ``create_block`` passes ``activation`` to every block regardless.

Every block class has a static ``param_count(dim, **params)``: its size in closed form, without
building it (tests check it against the real count).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from archsearch._registry import Registry, UnknownNameError
from archsearch.blocks.activations import ACTIVATIONS, activation_param_count, create_activation
from archsearch.blocks.attention import AttentionBlock, LinearAttentionBlock, TokenMixerBlock
from archsearch.blocks.kan import RBFKAN, BSplineKAN, ChebyshevKAN, FourierKAN
from archsearch.blocks.kan_rational import GroupRationalKAN
from archsearch.blocks.kan_selectable import SelectableKAN
from archsearch.blocks.mlp import GLUBlock, MLPBlock
from archsearch.blocks.moe import SoftMergedMoE, TopKMoE
from archsearch.blocks.norm import NORMS, create_norm


class IdentityBlock(nn.Module):
    """Passes its input through: the merge point of parallel branches, or a "skip" choice in a space."""

    uses_activation = False

    def __init__(self, dim: int, activation: str | None = None) -> None:
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x

    @staticmethod
    def param_count(dim: int, **_: object) -> int:
        return 0


BLOCKS: Registry = Registry("block")
for _name, _cls, _doc in [
    ("identity", IdentityBlock, "no-op; the merge point of parallel branches"),
    ("mlp", MLPBlock, "feed-forward Linear-act-Linear with an expansion ratio"),
    ("glu", GLUBlock, "gated feed-forward (SwiGLU / GEGLU / bilinear by activation)"),
    ("kan_bspline", BSplineKAN, "KAN layer: B-splines of grid G and order k plus a base branch (Liu et al.)"),
    ("kan_rbf", RBFKAN, "KAN layer on Gaussian radial basis functions (FastKAN)"),
    ("kan_fourier", FourierKAN, "KAN layer on a truncated Fourier series"),
    ("kan_chebyshev", ChebyshevKAN, "KAN layer on Chebyshev polynomials of tanh(x)"),
    ("kan_rational", GroupRationalKAN, "group-rational KAN feed-forward (Kolmogorov-Arnold Transformer)"),
    ("kan_selectable", SelectableKAN, "KAN layer mixing several basis families per node (S-KAN)"),
    ("attention", AttentionBlock, "multi-head softmax self-attention"),
    ("linear_attention", LinearAttentionBlock, "linear attention with the elu+1 feature map"),
    ("token_mixer", TokenMixerBlock, "MLP across tokens (MLP-Mixer token mixing)"),
    ("moe_topk", TopKMoE, "top-k routed mixture of experts with a load-balancing loss"),
    ("moe_soft", SoftMergedMoE, "soft merging of expert parameters (SMEAR)"),
]:
    BLOCKS.register(_name, _doc)(_cls)


def needs_tokens(name: str) -> bool:
    return bool(getattr(BLOCKS.get(name), "needs_tokens", False))


def uses_activation(name: str) -> bool:
    return bool(getattr(BLOCKS.get(name), "uses_activation", True))


def create_block(name: str, dim: int, n_tokens: int | None = None, **params: Any) -> nn.Module:
    """Instantiate block ``name`` at model width ``dim``; unknown parameters are an error.

    ``n_tokens`` (the sequence length the block will see) is passed only to blocks that need it.
    """
    factory = BLOCKS.get(name)
    if needs_tokens(name):
        if n_tokens is None:
            raise ValueError(f"block {name!r} mixes tokens and needs n_tokens")
        params["n_tokens"] = n_tokens
    try:
        return factory(dim, **params)
    except TypeError as exc:
        raise ValueError(f"block {name!r} rejected its parameters {params}: {exc}") from None


def block_param_count(name: str, dim: int, n_tokens: int | None = None, **params: Any) -> int:
    """Parameters of ``create_block(name, dim, n_tokens, **params)`` in closed form, without building it."""
    factory = BLOCKS.get(name)
    if needs_tokens(name):
        params["n_tokens"] = n_tokens
    return int(factory.param_count(dim, **params))


__all__ = [
    "ACTIVATIONS",
    "BLOCKS",
    "NORMS",
    "Registry",
    "UnknownNameError",
    "activation_param_count",
    "block_param_count",
    "create_activation",
    "create_block",
    "create_norm",
    "needs_tokens",
    "uses_activation",
]
