"""``bayes`` in a small space: the sampler's duplicates are told their known outcome, never trained again,
and replaced by unseen architectures until the space is exhausted (real Optuna, toy spaces)."""

import json

import pytest
from optuna.trial import TrialState

from archsearch.space import CallableSpace
from archsearch.strategies.bayes import TWIN_OF, Bayes
from archsearch.testing import drive
from archsearch.trial import Candidate, EvalResult


def thirty(chooser):
    """30 architectures, one decision conditional on another: 6 with n=1, 6 x 4 with n=2."""
    arch = {"n": chooser.suggest_categorical("n", [1, 2]), "x": chooser.suggest_int("x", 0, 5)}
    if arch["n"] == 2:
        arch["y"] = chooser.suggest_categorical("y", ["a", "b", "c", "d"])
    return arch


def three(chooser):
    return {"x": chooser.suggest_categorical("x", [0, 1, 2])}


def score(candidate):
    return EvalResult("complete", {"score": float(candidate.architecture["x"]) + 0.5})


@pytest.mark.parametrize(("sampler", "seed"), [("tpe", 0), ("tpe", 1), ("nsga2", 0), ("random", 2)])
def test_each_architecture_is_proposed_once_until_the_space_is_exhausted(sampler, seed):
    strategy = Bayes(CallableSpace(thirty, name="thirty"), {"score": "maximize", "cost": "minimize"},
                     seed=seed, sampler=sampler, n_startup_trials=3, population_size=4)
    proposed = drive(strategy, 100, in_flight=2)
    assert len(proposed) == 30 and len({c.arch_id for c in proposed}) == 30
    assert strategy.ask() is None
    trials = strategy.study().get_trials(deepcopy=False)
    assert len(trials) > 30, "a sampler in a 30-point space proposes duplicates"
    assert all(t.state == TrialState.COMPLETE for t in trials), "duplicates are told values, never failed"


def test_a_duplicate_is_told_the_known_values_of_its_architecture():
    strategy = Bayes(CallableSpace(three, name="three"), {"score": "maximize"}, seed=0, sampler="tpe")
    assert len(drive(strategy, 10)) == 3  # drive's toy result: score = x
    assert strategy.ask() is None  # every ask from here proposes a duplicate
    trials = strategy.study().get_trials(deepcopy=False)
    assert len(trials) > 3
    assert all(t.state == TrialState.COMPLETE and t.values == [t.params["x"]] for t in trials)


def test_a_duplicate_of_a_running_trial_waits_for_it_and_survives_a_restore():
    space = CallableSpace(three, name="three")
    strategy = Bayes(space, {"score": "maximize"}, seed=0, sampler="random")
    batch = [strategy.ask() for _ in range(3)]
    assert all(c is not None for c in batch) and len({c.arch_id for c in batch}) == 3
    assert strategy.ask() is None  # its duplicate is in flight, not told
    twins = [t for t in strategy.study().get_trials(deepcopy=False) if TWIN_OF in t.user_attrs]
    assert twins and all(t.state == TrialState.RUNNING for t in twins)

    restored = Bayes(space, {"score": "maximize"}, seed=0, sampler="random")
    restored.load_state_dict(json.loads(json.dumps(strategy.state_dict())))
    for candidate in batch:
        restored.tell(Candidate.from_dict(json.loads(json.dumps(candidate.to_dict()))), score(candidate))
    trials = restored.study().get_trials(deepcopy=False)
    assert len(trials) == 3 + len(twins) and all(t.state == TrialState.COMPLETE for t in trials)
    for twin in (trials[t.number] for t in twins):
        original = trials[twin.user_attrs[TWIN_OF]]
        assert twin.params == original.params and twin.values == original.values == [twin.params["x"] + 0.5]


def test_with_duplicates_allowed_the_sampler_is_followed():
    strategy = Bayes(CallableSpace(three, name="three"), {"score": "maximize"}, seed=0, sampler="random",
                     allow_duplicates=True)
    proposed = drive(strategy, 12)
    assert len(proposed) == 12 and len({c.arch_id for c in proposed}) == 3
    assert len(strategy.study().get_trials(deepcopy=False)) == 12


def test_the_walk_to_an_unseen_architecture_steps_over_combinations_the_space_refuses():
    def picky(chooser):
        arch = {"x": chooser.suggest_int("x", 0, 3), "y": chooser.suggest_int("y", 0, 3)}
        if arch["x"] + arch["y"] == 3:
            raise ValueError("x + y must not be 3")
        return arch

    strategy = Bayes(CallableSpace(picky, name="picky"), {"score": "maximize"}, seed=0, sampler="random")
    proposed, ended = [], False
    for _ in range(100):
        try:
            candidate = strategy.ask()
        except ValueError:  # the sampler's own proposal refused: the engine records it and asks again
            continue
        if candidate is None:
            ended = True
            break
        proposed.append(candidate)
        strategy.tell(candidate, score(candidate))
    assert ended and len({c.arch_id for c in proposed}) == len(proposed) == 12  # 16 pairs, 4 with x + y = 3
