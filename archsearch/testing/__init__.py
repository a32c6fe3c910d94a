"""Contract suites and toy fixtures for people who write strategies, spaces or stores.

Names are imported on first use: ``archsearch.testing.faults`` runs inside Ray workers, which should
not import pytest and the strategies with it.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "StrategyContract": "archsearch.testing.strategy_contract",
    "drive": "archsearch.testing.strategy_contract",
    "tiny_block_space": "archsearch.testing.toys",
    "toy_evaluate": "archsearch.testing.toys",
    "toy_objectives": "archsearch.testing.toys",
    "toy_space": "archsearch.testing.toys",
    "zdt1_evaluate": "archsearch.testing.toys",
    "zdt1_space": "archsearch.testing.toys",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'archsearch.testing' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
