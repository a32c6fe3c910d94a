"""Whole one-decision neighbourhoods (``_common.neighbourhood``) and the ``model`` strategy's ``sweep``,
which hill-climbs its ranking over them."""

import numpy as np
import pytest

from archsearch.errors import ConfigError
from archsearch.space import as_space
from archsearch.strategies import ModelBased
from archsearch.strategies._common import neighbourhood
from archsearch.trial import COMPLETE, EvalResult


def grid(chooser):
    return {"a": chooser.suggest_int("a", 0, 9), "b": chooser.suggest_categorical("b", ["x", "y", "z"])}


def conditional(chooser):
    kind = chooser.suggest_categorical("kind", ["plain", "wide"])
    width = chooser.suggest_int("width", 1, 4) if kind == "wide" else 1
    return {"kind": kind, "width": width, "rate": chooser.suggest_float("rate", 0.0, 1.0)}


def differing(a, b):
    return {k for k in {*a, *b} if a.get(k) != b.get(k)}


def test_every_architecture_one_decision_away_and_nothing_else():
    space = as_space(grid)
    near = neighbourhood(space, {"a": 3, "b": "y"}, np.random.default_rng(0))
    assert len(near) == 9 + 2
    assert {(c.decisions["a"], c.decisions["b"]) for c in near} == (
        {(a, "y") for a in range(10) if a != 3} | {(3, "x"), (3, "z")})


def test_a_large_domain_contributes_evenly_spread_values_and_a_continuous_one_none():
    space = as_space(lambda c: {"n": c.suggest_int("n", 0, 1000), "f": c.suggest_float("f", 0.0, 1.0)})
    near = neighbourhood(space, {"n": 500, "f": 0.3}, np.random.default_rng(0), max_values=5)
    assert sorted(c.decisions["n"] for c in near) == [0, 250, 750, 1000]
    assert all(c.decisions["f"] == 0.3 for c in near)


def test_a_changed_decision_that_brings_in_new_ones_samples_them():
    space = as_space(conditional)
    near = neighbourhood(space, {"kind": "plain", "rate": 0.5}, np.random.default_rng(0))
    assert len(near) == 1
    assert near[0].decisions["kind"] == "wide" and 1 <= near[0].decisions["width"] <= 4
    assert differing(near[0].decisions, {"kind": "plain", "rate": 0.5}) == {"kind", "width"}


def loss(arch) -> float:
    return float((arch["a"] - 7) ** 2 + (arch["b"] != "z"))


def test_sweep_proposes_only_unevaluated_architectures_and_finds_the_minimum():
    space = as_space(grid)
    strategy = ModelBased(space, {"loss": "minimize"}, seed=0, n_initial=4, sweep=2)
    seen, best = set(), []
    for _ in range(20):
        candidate = strategy.ask()
        assert candidate.arch_id not in seen
        seen.add(candidate.arch_id)
        best.append(loss(candidate.architecture))
        strategy.tell(candidate, EvalResult(COMPLETE, {"loss": best[-1]}))
    assert min(best) == 0.0


def test_sweep_must_be_a_count():
    with pytest.raises(ConfigError, match="sweep"):
        ModelBased(as_space(grid), {"loss": "minimize"}, sweep=-1).check()
