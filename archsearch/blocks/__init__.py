"""Building blocks, each mapping (batch, tokens, dim) -> (batch, tokens, dim), looked up by name.

``create_block(name, dim, **params)`` is the one entry point the builder uses; ``BLOCKS``,
``ACTIVATIONS`` and ``NORMS`` are the registries that ``archsearch list`` prints. Importing this package
does not import torch: the registries hold torch-free metadata (:class:`~archsearch.blocks.registry.BlockInfo`:
parameters, activation and token flags, expert eligibility, closed-form size) and load a block's module
when it is first built. See :mod:`archsearch.blocks.catalog` for the built-in entries and
:mod:`archsearch.blocks.registry` for how fused implementations are chosen per device.
"""

from __future__ import annotations

from archsearch._registry import Registry, UnknownNameError
from archsearch.blocks.catalog import (
    ACTIVATIONS,
    BLOCKS,
    NORMS,
    activation_param_count,
    block_param_count,
    create_activation,
    create_block,
    create_norm,
    expert_kinds,
    mixes_tokens,
    needs_tokens,
    norm_param_count,
    uses_activation,
)
from archsearch.blocks.registry import BlockInfo, Implementation

__all__ = [
    "ACTIVATIONS",
    "BLOCKS",
    "NORMS",
    "BlockInfo",
    "Implementation",
    "Registry",
    "UnknownNameError",
    "activation_param_count",
    "block_param_count",
    "create_activation",
    "create_block",
    "create_norm",
    "expert_kinds",
    "mixes_tokens",
    "needs_tokens",
    "norm_param_count",
    "uses_activation",
]
