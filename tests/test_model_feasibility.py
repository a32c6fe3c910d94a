"""The model strategy and results that do not complete: constraints it can check, failures it learns."""

import archsearch
from archsearch.space import as_space
from archsearch.strategies import make_strategy
from archsearch.testing import toy_evaluate, toy_objectives, toy_space
from archsearch.trial import COMPLETE, EvalResult


def test_model_proposes_nothing_the_constraints_reject_when_measure_knows_the_metric(tmp_path):
    run = archsearch.search(space="mlp", budget=4, seed=0, executor="inline", run_dir=tmp_path / "run",
                            strategy="model", overrides=["training.epochs=0.5", "constraints.max_params=8000"])
    trials = run.trials.to_pandas()
    assert list(trials.status) == ["complete"] * 4  # most of this space is over 8,000 parameters
    assert (trials.n_params <= 8000).all()


def failures_in(strategy_name: str, seed: int, proposals: int = 40) -> int:
    """Proposals the evaluator fails on (every KAN: say it runs out of memory) in an ask/tell loop."""
    strategy = make_strategy(strategy_name, space=as_space(toy_space), objectives=toy_objectives(), seed=seed)
    failures = 0
    for _ in range(proposals):
        candidate = strategy.ask()
        if candidate.architecture["kind"] == "kan":
            failures += 1
            strategy.tell(candidate, EvalResult.failed("out of memory"))
        else:
            strategy.tell(candidate, EvalResult(COMPLETE, toy_evaluate(candidate.architecture)))
    return failures


def test_model_learns_which_proposals_fail_and_steers_away():
    for seed in (0, 1):
        assert failures_in("random", seed) >= 15  # half the space fails
        assert failures_in("model", seed) <= 3
