"""Fused and compiled implementations of blocks, chosen per block and device.

- :mod:`archsearch.kernels.basis`, :mod:`archsearch.kernels.kan`: fused KAN bases (B-spline, RBF,
  Chebyshev, Fourier) on CPU, a C++ kernel compiled at first use (:mod:`archsearch.kernels.cpu`).
- :mod:`archsearch.kernels.rational`: the safe rational functions of ``kan_rational`` and PAU, fused.
- :mod:`archsearch.kernels.moe`: ``moe_topk`` with batched expert matmuls instead of a loop.
- :mod:`archsearch.kernels.stacking`: several same-shaped candidates trained as one batched model.
- :func:`make_hot`: the fastest module computing the same function as a given one.

Fused implementations are registered in the block registry (:mod:`archsearch.blocks.catalog`) and every
one has an equivalence test against its eager block.
"""

from __future__ import annotations

from typing import Any

_LAZY = {"make_hot": ("archsearch.kernels.hot", "make_hot"),
         "HotReport": ("archsearch.kernels.hot", "HotReport"),
         "train_stacked": ("archsearch.kernels.stacking", "train_stacked")}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'archsearch.kernels' has no attribute {name!r}")
