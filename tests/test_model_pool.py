"""The ``model`` strategy's pool: grown around its best-ranked members, and spared front members whose
neighbourhoods are spent."""

import pytest

from archsearch.errors import ConfigError
from archsearch.space import as_space
from archsearch.strategies import ModelBased
from archsearch.strategies.model_based import BARREN_AFTER, REFINED
from archsearch.trial import COMPLETE, EvalResult


def grid(levels: int):
    def space(chooser):
        return {k: chooser.suggest_int(k, 0, levels - 1) for k in ("a", "b", "c")}

    return as_space(space)


def loss(arch) -> float:
    return float((arch["a"] - 3) ** 2 + (arch["b"] - 1) ** 2 + 0.1 * arch["c"])


def run(strategy: ModelBased, n: int) -> None:
    for _ in range(n):
        candidate = strategy.ask()
        strategy.tell(candidate, EvalResult(COMPLETE, {"loss": loss(candidate.architecture)}))


def test_the_pool_grows_by_unevaluated_one_decision_mutations_of_its_best_members():
    strategy = ModelBased(grid(10), {"loss": "minimize"}, seed=0, n_initial=4, refine=8)
    run(strategy, 10)
    pool = strategy._pool()
    order = strategy._best_predicted(pool, strategy._completes(pool))
    best = [pool[int(i)] for i in order[-REFINED:]]
    around = strategy._around(pool, order[-REFINED:])
    assert around, "a 1,000-point grid has unevaluated neighbours"
    drawn = {c.arch_id for c in pool}
    for child in around:
        assert child.arch_id not in strategy._seen and child.arch_id not in drawn
        changed = [sum(child.decisions[k] != parent.decisions[k] for k in "abc") for parent in best]
        assert 1 in changed, f"{child.decisions} is not one decision away from a best-ranked member"


def test_refine_zero_keeps_the_pool_as_drawn():
    strategy = ModelBased(grid(10), {"loss": "minimize"}, seed=0, n_initial=4, refine=0)
    run(strategy, 10)
    pool = strategy._pool()
    order = strategy._best_predicted(pool, strategy._completes(pool))
    assert strategy._around(pool, order[-REFINED:]) == []


def test_refine_must_be_a_count():
    with pytest.raises(ConfigError, match="refine"):
        ModelBased(grid(3), {"loss": "minimize"}, refine=-1).check()


def test_a_front_member_with_every_neighbour_evaluated_is_left_out_of_mutations_and_this_survives_a_resume():
    """3 x 3 x 3 = 27 points: after 26 evaluations the front's neighbours are all evaluated, so every
    mutation drawn from it is a duplicate; after BARREN_AFTER of them in a row the member is skipped."""
    strategy = ModelBased(grid(3), {"loss": "minimize"}, seed=0, n_initial=4, refine=0)
    run(strategy, 26)
    front = strategy._archive.front().tolist()
    for _ in range(3):
        strategy._pool()
    assert all(strategy._barren.get(m, 0) >= BARREN_AFTER for m in front)
    counts = dict(strategy._barren)
    strategy._pool()
    assert strategy._barren == counts, "a spent member is not drawn from again"

    resumed = ModelBased(grid(3), {"loss": "minimize"}, seed=0, n_initial=4, refine=0)
    resumed.load_state_dict(strategy.state_dict())
    assert resumed._barren == strategy._barren


def levels_space(chooser):
    """Four small architectures (one size) and a hundred large ones (another)."""
    if chooser.suggest_categorical("size", ["small", "large"]) == "small":
        return {"size": "small", "x": chooser.suggest_int("x", 0, 3)}
    return {"size": "large", "y": chooser.suggest_int("y", 0, 9), "z": chooser.suggest_int("z", 0, 9)}


def levels_accuracy(arch) -> float:
    """Among the small ones the best is not where a model of the others would look (a noisy table's lucky draw)."""
    if arch["size"] == "small":
        return [0.50, 0.52, 0.51, 0.60][arch["x"]]
    return 0.7 + 0.01 * arch["y"] - 0.002 * arch["z"]


def levels_params(arch) -> dict[str, float]:
    return {"n_params": 10.0 if arch["size"] == "small" else 100.0}


def test_finish_levels_evaluates_every_member_of_a_small_level_on_the_front_and_resumes_its_counts():
    objectives = {"accuracy": "maximize", "n_params": "minimize"}
    strategy = ModelBased(as_space(levels_space), objectives, seed=0, n_initial=4, finish_levels=3)
    strategy.use_measure(levels_params)
    asked = []
    for _ in range(16):
        candidate = strategy.ask()
        asked.append(candidate.architecture)
        strategy.tell(candidate, EvalResult(COMPLETE, {"accuracy": levels_accuracy(candidate.architecture),
                                                       **levels_params(candidate.architecture)}))
    assert sorted(a["x"] for a in asked if a["size"] == "small") == [0, 1, 2, 3]
    resumed = ModelBased(as_space(levels_space), objectives, seed=0, n_initial=4, finish_levels=3)
    resumed.load_state_dict(strategy.state_dict())
    assert resumed._levels == strategy._levels and resumed.state_dict() == strategy.state_dict()


def test_finish_levels_must_be_a_count():
    with pytest.raises(ConfigError, match="finish_levels"):
        ModelBased(grid(3), {"loss": "minimize"}, finish_levels=-1).check()


def two_objectives(arch) -> dict[str, float]:
    """Every (a, b) with c = 0 is on the front: its members differ in two decisions."""
    return {"f1": float(arch["a"] + arch["b"]), "f2": float(18 - arch["a"] - arch["b"] + arch["c"])}


def test_the_pool_holds_crossovers_of_front_members_and_none_when_turned_off():
    """Each decision of a crossover child comes from one of two front members: a move of several decisions at
    once, toward what the front shares."""
    for crossovers in (16, 0):
        strategy = ModelBased(grid(10), {"f1": "minimize", "f2": "minimize"}, seed=0, n_initial=4,
                              pool_crossovers=crossovers)
        for _ in range(12):
            candidate = strategy.ask()
            strategy.tell(candidate, EvalResult(COMPLETE, two_objectives(candidate.architecture)))
        front = [strategy._archive.decisions[m] for m in strategy._archive.front().tolist()]
        assert len(front) > 1
        children = [c for c in strategy._pool() if c.origin == "crossover"]
        if not crossovers:
            assert children == []
            continue
        assert 0 < len(children) <= 16  # fewer where a child is a pool member drawn before, or evaluated
        for child in children:
            assert child.arch_id not in strategy._seen
            assert any(all(child.decisions[k] in (a[k], b[k]) for k in "abc") for a in front for b in front)


def test_pool_crossovers_must_be_a_count():
    with pytest.raises(ConfigError, match="pool_crossovers"):
        ModelBased(grid(3), {"loss": "minimize"}, pool_crossovers=-2).check()
