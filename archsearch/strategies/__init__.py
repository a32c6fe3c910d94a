"""Search strategies behind the ask/tell :class:`Strategy` interface, by name."""

from __future__ import annotations

from typing import Any

from archsearch._registry import Registry
from archsearch.space import SearchSpace
from archsearch.strategies._base import Strategy
from archsearch.strategies.bayes import Bayes
from archsearch.strategies.evolution import Evolution
from archsearch.strategies.local_search import LocalSearch
from archsearch.strategies.mcts import MCTS
from archsearch.strategies.model_based import ModelBased
from archsearch.strategies.random_search import RandomSearch

STRATEGIES: Registry[type[Strategy]] = Registry("strategy")
STRATEGIES.register("random", "independent uniform samples; the baseline")(RandomSearch)
STRATEGIES.register("evolution", "regularized (aging) evolution, NSGA-II selection with several objectives")(Evolution)
STRATEGIES.register("mcts", "Monte Carlo tree search over the decision sequence (UCT, progressive widening)")(MCTS)
STRATEGIES.register("bayes", "Optuna (TPE, GP or NSGA-II) through ask/tell, its study rebuilt from the saved state")(Bayes)
STRATEGIES.register("local", "Pareto local search: mutate members of the current front")(LocalSearch)
STRATEGIES.register("model", "a forest of past results picks the proposal with the largest predicted hypervolume gain")(ModelBased)


def make_strategy(name: str, space: SearchSpace, objectives: dict[str, str], seed: int, **options: Any) -> Strategy:
    cls = STRATEGIES.get(name)
    try:
        return cls(space, objectives, seed=seed, **options)
    except TypeError as exc:
        raise ValueError(f"strategy {name!r} does not take options {sorted(options)}: {exc}") from None


__all__ = ["MCTS", "STRATEGIES", "ModelBased", "Bayes", "Evolution", "LocalSearch", "RandomSearch", "Strategy", "make_strategy"]
