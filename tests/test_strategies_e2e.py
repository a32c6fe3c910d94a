"""Each strategy from ``archsearch.search`` with a user's callable space, and statistical checks that
the model-free strategies beat random search on a toy problem (torch-free, milliseconds per run)."""

import json
import math

import numpy as np
import pytest

import archsearch
from archsearch.pareto import hypervolume
from archsearch.space import as_space
from archsearch.strategies import STRATEGIES, make_strategy
from archsearch.strategies.bayes import Bayes
from archsearch.testing import drive, toy_evaluate, toy_objectives, toy_space, zdt1_evaluate, zdt1_space
from archsearch.trial import COMPLETE, EvalResult


@pytest.mark.parametrize("name", ["model", "random", "evolution", "local", "mcts", "bayes"])
def test_each_strategy_runs_from_search_with_a_callable_space(tmp_path, name):
    assert name in STRATEGIES.names()
    overrides = ["strategy.population_size=4"] if name == "evolution" else []
    run = archsearch.search(space=toy_space, evaluate=toy_evaluate, objectives=toy_objectives(), strategy=name,
                            budget=12, seed=0, run_dir=tmp_path / "run", overrides=overrides,
                            executor="inline")
    trials = run.trials.to_pandas()
    assert len(trials) == 12 and set(trials.status) == {"complete"} and trials.arch_id.is_unique
    json.loads((tmp_path / "run" / "strategy_state.json").read_text())


def test_bayes_keeps_no_files_and_its_study_comes_back_from_the_saved_state(tmp_path):
    archsearch.search(space=toy_space, evaluate=toy_evaluate, objectives=toy_objectives(), strategy="bayes",
                      budget=6, seed=0, run_dir=tmp_path / "run", overrides=["strategy.sampler=nsga2"],
                      executor="inline")
    saved = json.loads((tmp_path / "run" / "strategy_state.json").read_text())
    assert not [p.name for p in (tmp_path / "run").iterdir() if "optuna" in p.name]
    again = Bayes(as_space(toy_space), toy_objectives(), seed=0, sampler="nsga2")
    again.load_state_dict(saved["strategy"])
    trials = again.study().trials
    assert len(trials) >= 6 and sum(t.state.name == "COMPLETE" for t in trials) == 6


@pytest.mark.parametrize("sampler", ["gp", "nsga2", "random"])
def test_bayes_samplers(sampler):
    strategy = Bayes(as_space(toy_space), toy_objectives(), seed=0, sampler=sampler, n_startup_trials=3)
    proposed = drive(strategy, 6, in_flight=2, fail_every=3)
    assert len({c.arch_id for c in proposed}) == 6
    json.dumps(strategy.state_dict())


def test_bayes_rejects_an_unknown_sampler():
    with pytest.raises(ValueError, match="valid: tpe"):
        Bayes(as_space(toy_space), toy_objectives(), sampler="cmaes").ask()


class GraphOps:
    """A space offering the graph-operator protocol, to check evolution uses it where offered."""

    def __init__(self):
        self.inner = as_space(toy_space)
        self.calls = {"mutate": 0, "crossover": 0}
        self.name = "ops"

    def build(self, chooser):
        return self.inner.build(chooser)

    def replay(self, decisions):
        return self.inner.replay(decisions)

    def mutate(self, genome, rng):
        self.calls["mutate"] += 1
        return genome

    def crossover(self, a, b, rng):
        self.calls["crossover"] += 1
        return a


def test_evolution_uses_the_space_graph_operators_when_offered():
    from archsearch.strategies import evolution

    class Tagged(dict):  # what space.mutate returns needs .decisions, like a Genome
        decisions = property(lambda self: {})

    space = GraphOps()
    space.build = lambda chooser: Tagged(space.inner.build(chooser))
    space.replay = lambda decisions: Tagged(space.inner.replay(decisions))
    strategy = evolution.Evolution(space, toy_objectives(), seed=0, population_size=4, crossover_prob=0.3,
                                   graph_mutation_prob=0.3, allow_duplicates=True)
    drive(strategy, 30)
    assert space.calls["mutate"] > 0 and space.calls["crossover"] > 0


# -- better than random, statistically ---------------------------------------------------------------

def zdt1_hypervolume(strategy, budget):
    """Hypervolume of what ``strategy`` found in ``budget`` ZDT1 evaluations (reference point (1.1, 11))."""
    values = []
    for _ in range(budget):
        candidate = strategy.ask()
        metrics = zdt1_evaluate(candidate.architecture)
        strategy.tell(candidate, EvalResult(COMPLETE, metrics))
        values.append([metrics["f1"], metrics["f2"]])
    return hypervolume(values, [1.1, 11.0])


@pytest.mark.parametrize("name", ["model", "evolution", "local", "mcts", "bayes"])
def test_beats_random_search_at_equal_budget(name):
    """Mean hypervolume over 8 seeds on ZDT1 beats random search's by more than twice its standard error."""
    budget, seeds = (120 if name == "mcts" else 60), range(8)  # a tree needs visits before it knows much

    def hv(strategy_name, seed):
        space = as_space(zdt1_space)
        return zdt1_hypervolume(make_strategy(strategy_name, space, {"f1": "minimize", "f2": "minimize"}, seed), budget)

    ours = np.array([hv(name, s) for s in seeds])
    baseline = np.array([hv("random", s) for s in seeds])
    diff = ours - baseline
    assert diff.mean() > 2 * diff.std(ddof=1) / math.sqrt(len(diff)), (ours.mean(), baseline.mean())


def test_mcts_reward_prefers_the_front():
    from archsearch.strategies._common import domination_quantile

    points = np.array([[0.0, 1.0], [1.0, 0.0], [2.0, 2.0]])
    assert domination_quantile([0.5, 0.5], points) == 1.0
    assert domination_quantile([3.0, 3.0], points) == 0.0
    assert 0 < domination_quantile([1.5, 1.5], points) < 1


def test_failed_results_get_no_reward_and_do_not_enter_populations():
    strategy = make_strategy("evolution", as_space(toy_space), toy_objectives(), 0, population_size=2)
    first, second = strategy.ask(), strategy.ask()
    strategy.tell(first, EvalResult.failed("boom"))
    strategy.tell(second, EvalResult(COMPLETE, toy_evaluate(second.architecture)))
    assert strategy.state_dict()["population"]["ids"] == [second.arch_id]
