"""Fidelity: checkpoints that continue exactly, learning curves, successive halving, epoch budgets."""

import json
import math

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load

import archsearch
from archsearch.cli import main
from archsearch.evaluation.training import TrainingEvaluator, TrainingRecipe
from archsearch.genome import BlockSpec, Genome
from archsearch.scheduling import SuccessiveHalving, rung_levels
from archsearch.testing.faults import numbered_space
from archsearch.testing.fidelity_toys import EpochEvaluate
from archsearch.trial import EvalResult

SMALL = Genome.sequential([BlockSpec("mlp", {"expansion": 1, "dropout": 0.1}, "gelu", residual=True)], {"width": 16})
OBJECTIVES = {"score": "maximize", "cost": "minimize"}


def _max_difference(a: bytes, b: bytes) -> float:
    wa, wb = load(a), load(b)
    assert wa.keys() == wb.keys()
    return max((wa[k] - wb[k]).abs().max().item() for k in wa)


@pytest.mark.parametrize("first", [3, 1.5])  # at an epoch boundary, and in the middle of an epoch
def test_continuing_from_a_checkpoint_equals_training_straight_through(digits, first):
    recipe = TrainingRecipe(epochs=5, schedule="cosine", warmup_steps=7, optimizer="adamw", weight_decay=0.01)
    evaluator = TrainingEvaluator(digits, recipe, seed=2)
    straight = evaluator.evaluate(SMALL, 5)
    part = evaluator.evaluate(SMALL, first)
    assert part.status == "complete" and part.checkpoint is not None
    rest = evaluator.evaluate(SMALL, 5, part.checkpoint)
    assert rest.status == "complete", rest.error
    assert _max_difference(straight.weights, rest.weights) <= 1e-6
    assert rest.metrics["val_accuracy"] == straight.metrics["val_accuracy"]
    assert rest.metrics["n_params"] == straight.metrics["n_params"]  # measured once, carried on
    assert [p["epoch"] for p in part.curve + rest.curve] == [p["epoch"] for p in straight.curve] == [1, 2, 3, 4, 5]
    assert rest.curve[-1] == straight.curve[-1]
    assert straight.checkpoint is None and rest.checkpoint is None  # at the maximum: nothing to continue


def test_checkpoint_is_safetensors_with_the_loop_state_as_json(digits, tmp_path):
    result = TrainingEvaluator(digits, TrainingRecipe(epochs=4), seed=0).evaluate(SMALL, 2)
    path = tmp_path / "trial.ckpt"
    path.write_bytes(result.checkpoint)
    with safe_open(path, "pt") as f:  # no pickle anywhere: any safetensors reader opens it
        state = json.loads(f.metadata()["archsearch.checkpoint"])
        names = set(f.keys())
    assert state["loop"]["step"] == 2 * math.ceil(len(digits.x_train) / 64) and state["loop"]["epoch"] == 2
    assert {"rng.torch", "rng.shuffle"} <= names
    assert any(n.startswith("model.") for n in names) and any(n.startswith("optim.") for n in names)


def test_promotion_follows_a_hand_computed_non_dominated_ranking():
    asha = SuccessiveHalving({"acc": "maximize", "params": "minimize"}, min_epochs=1, max_epochs=9, eta=3)
    assert asha.levels == [1.0, 3.0, 9.0] and rung_levels(1, 10, 3) == [1.0, 3.0, 9.0, 10.0]
    points = {0: (0.50, 100), 1: (0.60, 300), 2: (0.40, 200), 3: (0.70, 500), 4: (0.55, 250), 5: (0.30, 50)}
    decisions = {}
    for trial_id, (acc, params) in points.items():
        decisions[trial_id] = asha.decide(trial_id, 1.0, EvalResult("complete", {"acc": acc, "params": params}))
    # By hand, keeping the best max(1, floor(n/3)) of the n results recorded when each arrives:
    # n=1 {0}: 0 goes on. n=2: 0 and 1 non-dominated, both boundary (infinite distance), id tie -> 1 stops.
    # n=3: 2 is dominated by 0 -> stops. n=4: front {0, 1, 3}; 0 and 3 are the extremes -> 0, 3, 1; keep 1
    # -> 3 stops. n=5: 4 joins the front, interior -> stops. n=6: 5 is the new extreme (fewest params,
    # lowest accuracy); extremes 3 and 5 lead, keep 2 -> 5 goes on.
    assert {t: d.next_fidelity for t, d in decisions.items()} == {0: 3.0, 1: None, 2: None, 3: None, 4: None, 5: 3.0}
    assert all(decisions[t].status == "pruned" and decisions[t].rung == 0 for t in (1, 2, 3, 4))
    # Final ranking: extremes 3, 5; then crowding distance 0 (0.625 + 0.444), 1 (0.375 + 0.556),
    # 4 (0.25 + 0.444); then the second front, {2}.
    assert asha.ranking(0) == [3, 5, 0, 1, 4, 2]
    final = asha.decide(9, 3.0, EvalResult("complete", {"acc": 0.9, "params": 10}))
    assert final.next_fidelity == 9.0  # the first result at rung 1 always goes on
    assert asha.decide(9, 9.0, EvalResult("complete", {"acc": 0.9, "params": 10})).status == "complete"
    assert asha.decide(10, 1.0, EvalResult.failed("boom")).status == "failed"


def test_asha_run_prunes_with_rung_keeps_curves_and_fronts_only_full_trials(tmp_path):
    run = archsearch.search(space=numbered_space, evaluate=EpochEvaluate(), budget=27, seed=1, objectives=OBJECTIVES,
                            executor="inline", run_dir=tmp_path / "run",
                            overrides=["fidelity=asha", "fidelity.max_epochs=9"])
    trials = run.trials.to_pandas()
    assert set(trials.status) == {"complete", "pruned"}
    pruned, complete = trials[trials.status == "pruned"], trials[trials.status == "complete"]
    assert set(pruned.rung) <= {0, 1} and set(pruned.fidelity) <= {1.0, 3.0}
    assert (complete.rung == 2).all() and (complete.fidelity == 9.0).all()
    assert len(complete) < len(trials) / 3
    assert set(run.pareto().column("trial_id").to_pylist()) <= set(complete.trial_id)
    assert run.summary()["status_counts"] == {"complete": len(complete), "pruned": len(pruned)}
    curves = pq.read_table(tmp_path / "run" / "curves.parquet")
    assert curves.schema.field("trial_id").type == "int64" and curves.schema.field("epoch").type == "int64"
    frame = curves.to_pandas()
    per_trial = frame.groupby("trial_id").epoch.max()
    assert (per_trial.loc[trials.trial_id].to_numpy() == trials.fidelity.to_numpy()).all()
    assert not frame.duplicated(["trial_id", "epoch"]).any()
    assert not list((tmp_path / "run" / "checkpoints").glob("*.ckpt"))  # nothing left to continue
    page = run.report().read_text()
    assert "Learning curves" in page and "pruned trials dotted grey" in page


def test_epoch_budget_is_spent_not_exceeded(tmp_path):
    log = tmp_path / "epochs.log"
    run = archsearch.search(space=numbered_space, evaluate=EpochEvaluate(log=log), budget="40 epochs", seed=0,
                            objectives=OBJECTIVES, executor="inline", run_dir=tmp_path / "run",
                            overrides=["fidelity=asha", "fidelity.max_epochs=9"])
    trained = len(log.read_text().splitlines())
    assert 35 <= trained <= 40
    lines = log.read_text().splitlines()
    assert len(set(lines)) == len(lines)  # every epoch of every trial trained once: continued, not redone
    assert run.summary()["budget"] == "40 epochs"


def test_function_without_fidelity_runs_at_full_fidelity_with_a_note(tmp_path, capsys):
    run = archsearch.search(space=numbered_space, evaluate=lambda arch: {"score": 1.0, "cost": 1.0}, budget=3,
                            objectives=OBJECTIVES, executor="inline", run_dir=tmp_path / "run",
                            overrides=["fidelity=asha", "fidelity.max_epochs=9"])
    assert "takes no `fidelity` argument" in capsys.readouterr().err
    assert (run.trials.column("status").to_pylist()) == ["complete"] * 3


@pytest.mark.parametrize(("override", "message"), [
    (["fidelity=asha", "fidelity.eta=1"], "fidelity.eta must be a number > 1"),
    (["fidelity=asha", "fidelity.min_epochs=10", "fidelity.max_epochs=9"], "must not exceed fidelity.max_epochs"),
    (["fidelity=halving"], "unknown fidelity 'halving'; valid fidelity policies: asha, full"),
    (["fidelity=asha", "budget=0epochs"], "budget in epochs must be positive"),
])
def test_bad_fidelity_input_is_one_line_before_the_run_dir_exists(tmp_path, capsys, override, message):
    run_dir = tmp_path / "run"
    code = main(["run", "space=mlp", "task=digits", "executor=inline", f"run_dir={run_dir}", *override])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert not run_dir.exists()


def test_ranking_is_stable_under_scale_of_an_objective():
    """Crowding distance is scale-free: multiplying an objective by 1000 changes no decision."""
    rng = np.random.default_rng(0)
    values = rng.random((12, 2))
    orders = []
    for scale in (1.0, 1000.0):
        asha = SuccessiveHalving({"a": "maximize", "b": "minimize"}, 1, 9, 3)
        for i, (a, b) in enumerate(values):
            asha.record(i, 1.0, EvalResult("complete", {"a": a, "b": b * scale}))
        orders.append(asha.ranking(0))
    assert orders[0] == orders[1]


def test_torch_is_untouched_by_a_checkpointed_evaluation(digits):
    torch.manual_seed(123)
    before = torch.get_rng_state()
    evaluator = TrainingEvaluator(digits, TrainingRecipe(epochs=2), seed=0)
    part = evaluator.evaluate(SMALL, 1)
    evaluator.evaluate(SMALL, 2, part.checkpoint)
    assert torch.equal(before, torch.get_rng_state())


def test_one_architecture_in_flight_in_two_trials_is_told_apart():
    """Trial identity: with duplicates allowed, results of two trials of one architecture reach their own
    Optuna trials, whatever order they come back in."""
    from optuna.trial import TrialState

    from archsearch.space import CallableSpace
    from archsearch.strategies.bayes import Bayes

    space = CallableSpace(lambda c: {"x": c.suggest_categorical("x", [0, 1])}, name="two")
    strategy = Bayes(space, {"score": "maximize"}, seed=0, allow_duplicates=True, sampler="random")
    batch = [strategy.ask() for _ in range(6)]
    assert len({c.arch_id for c in batch}) < len(batch) and [c.proposal for c in batch] == list(range(6))
    for candidate in reversed(batch):
        strategy.tell(candidate, EvalResult("complete", {"score": float(candidate.proposal)}))
    trials = strategy.study().get_trials(deepcopy=False)
    assert all(t.state == TrialState.COMPLETE for t in trials)
    assert sorted(t.values[0] for t in trials) == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    assert all(t.params["x"] == batch[int(t.values[0])].architecture["x"] for t in trials)


@pytest.mark.ray
def test_asha_on_ray_continues_trials_from_checkpoints(tmp_path):
    run = archsearch.search(space=numbered_space, evaluate=EpochEvaluate(0.01), budget=12, seed=3,
                            objectives=OBJECTIVES, executor="ray", run_dir=tmp_path / "run",
                            overrides=["fidelity=asha", "fidelity.max_epochs=9", "executor.workers=2"])
    trials = run.trials.to_pandas()
    assert trials.trial_id.tolist() == list(range(12)) and set(trials.status) <= {"complete", "pruned"}
    assert trials.worker.str.startswith("ray:").all()
    records = [json.loads(line) for line in (tmp_path / "run" / "journal.jsonl").read_text().splitlines()]
    continued = [r for r in records if r["event"] == "trial_continued"]
    assert continued and all(r["from_checkpoint"] for r in continued)
    curves = run.curves.to_pandas()
    assert (curves.groupby("trial_id").epoch.max().loc[trials.trial_id].to_numpy() == trials.fidelity.to_numpy()).all()


def test_a_trial_that_stopped_early_is_not_promoted(digits):
    """Early stopping ends a trial's training: at a rung it has no checkpoint to continue from, and the
    engine records it as it is instead of training it again from scratch."""
    recipe = TrainingRecipe(epochs=40, early_stopping_patience=1, lr=0.05)
    result = TrainingEvaluator(digits, recipe, seed=0).evaluate(SMALL, 30)
    assert result.info["stopped_early"] and result.checkpoint is None
    assert result.metrics["epochs_trained"] < 30
