"""Search strategies behind the ask/tell :class:`Strategy` interface, by name."""

from __future__ import annotations

from typing import Any

from archsearch._registry import Registry
from archsearch.space import SearchSpace
from archsearch.strategies._base import Strategy
from archsearch.strategies.random_search import RandomSearch

STRATEGIES: Registry[type[Strategy]] = Registry("strategy")
STRATEGIES.register("random", "independent uniform samples; the baseline")(RandomSearch)


def make_strategy(name: str, space: SearchSpace, objectives: dict[str, str], seed: int, **options: Any) -> Strategy:
    cls = STRATEGIES.get(name)
    try:
        return cls(space, objectives, seed=seed, **options)
    except TypeError as exc:
        raise ValueError(f"strategy {name!r} does not take options {sorted(options)}: {exc}") from None


__all__ = ["STRATEGIES", "RandomSearch", "Strategy", "make_strategy"]
