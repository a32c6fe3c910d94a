"""Building blocks, each mapping (batch, tokens, dim) -> (batch, tokens, dim), looked up by name.

``create_block(name, dim, **params)`` is the one entry point the builder uses; ``BLOCKS``,
``ACTIVATIONS`` and ``NORMS`` are the registries that ``archsearch list`` prints.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from archsearch._registry import Registry, UnknownNameError
from archsearch.blocks.activations import ACTIVATIONS, create_activation
from archsearch.blocks.mlp import MLPBlock
from archsearch.blocks.norm import NORMS, create_norm

BLOCKS: Registry = Registry("block")
BLOCKS.register("mlp", "feed-forward Linear-act-Linear with an expansion ratio")(MLPBlock)


def create_block(name: str, dim: int, **params: Any) -> nn.Module:
    """Instantiate block ``name`` at model width ``dim``; unknown parameters are an error."""
    factory = BLOCKS.get(name)
    try:
        return factory(dim, **params)
    except TypeError as exc:
        raise ValueError(f"block {name!r} rejected its parameters {params}: {exc}") from None


__all__ = [
    "ACTIVATIONS",
    "BLOCKS",
    "NORMS",
    "Registry",
    "UnknownNameError",
    "create_activation",
    "create_block",
    "create_norm",
]
