"""``measure=``: metrics known before training reach the model-based strategy and the results."""

import json

import numpy as np
import pytest

import archsearch
from archsearch.errors import ConfigError
from archsearch.pareto import hypervolume, hypervolume_improvement, non_dominated_mask
from archsearch.space import as_space
from archsearch.strategies import make_strategy
from archsearch.testing import toy_evaluate, toy_space
from archsearch.trial import COMPLETE, EvalResult


def score_only(arch):
    return {"score": toy_evaluate(arch)["score"]}


def cost_of(arch):
    return {"cost": toy_evaluate(arch)["cost"]}


def test_measured_metrics_fill_in_what_evaluate_leaves_out(tmp_path):
    run = archsearch.search(space=toy_space, evaluate=score_only, measure=cost_of, strategy="model",
                            objectives={"score": "maximize", "cost": "minimize"}, budget=12, seed=0,
                            run_dir=tmp_path / "run", executor="inline", quiet=True)
    trials = run.trials.to_pandas()
    assert run.info["strategy"] == "model"
    assert len(trials) == 12 and set(trials.status) == {"complete"}
    for arch, cost in zip(trials.genome_json, trials.cost, strict=True):
        assert cost == cost_of(json.loads(arch))["cost"]


def test_resume_asks_for_the_measure_again(tmp_path):
    archsearch.search(space=toy_space, evaluate=score_only, measure=cost_of,
                      objectives={"score": "maximize", "cost": "minimize"}, budget=4, seed=0,
                      run_dir=tmp_path / "run", executor="inline", quiet=True)
    with pytest.raises(ConfigError, match="measure="):
        archsearch.resume(tmp_path / "run", budget=6, space=toy_space, evaluate=score_only, quiet=True)


def test_a_measure_that_is_not_a_function_is_refused_before_the_run_exists(tmp_path):
    with pytest.raises(ConfigError, match="measure must be a function"):
        archsearch.search(space=toy_space, evaluate=score_only, measure={"cost": 1},
                          objectives={"score": "maximize"}, budget=2, run_dir=tmp_path / "run",
                          executor="inline", quiet=True)
    assert not (tmp_path / "run").exists()


def test_the_training_evaluator_measures_what_training_reports():
    from archsearch._plan import plan_run

    plan = plan_run(["space=mlp", "task=digits", "budget=1", "executor=inline", "training.epochs=1"])
    genome = plan.space.sample(0)
    measured = plan.evaluator.measure(genome)
    trained = plan.evaluator.evaluate(genome)
    assert measured == {"n_params": trained.metrics["n_params"], "flops": trained.metrics["flops"]}
    assert plan.strategy.measure(genome) == {"n_params": trained.metrics["n_params"]}  # FLOPs unused: not counted


@pytest.mark.parametrize("override", ["objectives=[val_accuracy:max,flops:min]", "constraints.max_flops=1e9"])
def test_the_strategy_is_given_flops_when_an_objective_or_constraint_needs_them(override):
    from archsearch._plan import plan_run

    plan = plan_run(["space=mlp", "task=digits", "budget=1", "executor=inline", override])
    genome = plan.space.sample(0)
    assert plan.strategy.measure(genome) == plan.evaluator.measure(genome)
    assert set(plan.strategy.measure(genome)) == {"n_params", "flops"}


def test_a_failing_measure_leaves_the_strategy_predicting():
    def flaky(arch):
        if arch["width"] == 64:
            raise RuntimeError("cannot measure")
        return cost_of(arch)

    strategy = make_strategy("model", as_space(toy_space), {"score": "maximize", "cost": "minimize"}, 0,
                             n_initial=3, pool_random=8, pool_mutations=8, n_trees=4)
    strategy.use_measure(flaky)
    seen = set()
    for _ in range(15):
        candidate = strategy.ask()
        strategy.tell(candidate, EvalResult(COMPLETE, toy_evaluate(candidate.architecture)))
        seen.add(candidate.arch_id)
    assert len(seen) == 15


def test_measure_steers_proposals_to_the_front():
    """With the cost known exactly, the model-based strategy's front beats the same strategy blind."""
    objectives = {"score": "maximize", "cost": "minimize"}

    def final_hv(use_measure, seed):
        strategy = make_strategy("model", as_space(toy_space), objectives, seed, n_initial=4)
        if use_measure:
            strategy.use_measure(cost_of)
        points = []
        for _ in range(20):
            candidate = strategy.ask()
            metrics = toy_evaluate(candidate.architecture)
            strategy.tell(candidate, EvalResult(COMPLETE, metrics))
            points.append([-metrics["score"], np.log10(metrics["cost"])])
        return hypervolume(points, [0.0, 3.0])

    assert np.mean([final_hv(True, s) for s in range(4)]) >= np.mean([final_hv(False, s) for s in range(4)])


@pytest.mark.parametrize("m", [1, 2, 3, 4])
def test_hypervolume_improvement_equals_the_difference_of_hypervolumes(m):
    rng = np.random.default_rng(m)
    points = rng.uniform(0, 1, (30, m))
    front = points[non_dominated_mask(points)]
    candidates = np.vstack([front[:5] - 0.05 * rng.uniform(0, 1, (min(5, len(front)), m)),
                            rng.uniform(-0.2, 1.3, (20, m)), np.full((1, m), np.nan)])
    reference = np.full(m, 1.1)
    expected = [0.0 if np.isnan(c).any() else hypervolume(np.vstack([front, c]), reference) - hypervolume(front, reference)
                for c in candidates]
    np.testing.assert_allclose(hypervolume_improvement(candidates, front, reference), expected, atol=1e-12)
    np.testing.assert_allclose(hypervolume_improvement(candidates, np.zeros((0, m)), reference),
                               [0.0 if np.isnan(c).any() else hypervolume([c], reference) for c in candidates],
                               atol=1e-12)
