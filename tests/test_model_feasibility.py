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
        assert failures_in("model", seed) <= 5  # 1-4 measured (the space-filling start meets some)


def test_model_learns_from_pruned_trials_with_the_epochs_they_reached():
    from archsearch.trial import PRUNED

    def told(use_pruned: bool):
        strategy = make_strategy("model", space=as_space(toy_space), objectives=toy_objectives(), seed=0,
                                 use_pruned=use_pruned)
        for i in range(12):
            candidate = strategy.ask()
            metrics = toy_evaluate(candidate.architecture)
            if i % 4:  # three in four stopped at the first rung, their score a partial one
                strategy.tell(candidate, EvalResult(PRUNED, {**metrics, "score": metrics["score"] / 2},
                                                    info={"fidelity": 1.0, "rung": 0}))
            else:
                strategy.tell(candidate, EvalResult(COMPLETE, metrics, info={"fidelity": 9.0, "rung": 2}))
        return strategy

    learning, ignoring = told(True), told(False)
    assert len(learning.state_dict()["pruned"]) == 9 and ignoring.state_dict()["pruned"] == []
    assert learning._model_phase() and not ignoring._model_phase()  # 3 complete + 9 pruned >= n_initial
    x_told, y_told, x_asked = learning._training_rows([learning.ask().decisions], learning._archive.points())
    assert len(x_told) == len(y_told) == 12 and set(x_told[:, -1]) == {1.0, 9.0} and x_asked[0, -1] == 9.0
