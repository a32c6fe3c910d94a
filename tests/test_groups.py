"""Trials of one network at other learning rates, trained as one stacked group, equal training them alone;
a strategy offers them (``lr_siblings``), the engine and both executors run them as one job."""

import json
import math

import numpy as np
import pytest
import torch
from safetensors.torch import load

import archsearch
from archsearch.errors import ConfigError
from archsearch.evaluation.constraints import Constraints
from archsearch.evaluation.training import TaskRef, TrainingEvaluator, TrainingRecipe
from archsearch.genome import BlockSpec, Genome
from archsearch.space import as_space
from archsearch.strategies import make_strategy
from archsearch.strategies._siblings import SIBLING, sibling_decisions
from archsearch.testing.faults import InterruptAt
from archsearch.testing.toys import toy_evaluate, toy_objectives
from archsearch.trial import COMPLETE, EvalResult

LRS = (1e-3, 3e-3, 1e-2, 3e-2)


def genome(lr, width=16, **recipe):
    return Genome.sequential([BlockSpec("mlp", {}, "relu"), BlockSpec("mlp", {}, "gelu", residual=True)],
                             {"width": width, "recipe": {"lr": lr, **recipe}})


@pytest.fixture(scope="module")
def evaluator():
    return TrainingEvaluator(TaskRef("digits"), TrainingRecipe(epochs=2, batch_size=64))


def assert_same(grouped, alone):
    assert grouped.status == alone.status == "complete"
    for key in ("val_accuracy", "test_accuracy", "n_params", "flops", "epochs_trained"):
        assert grouped.metrics[key] == pytest.approx(alone.metrics[key], abs=1e-6), key
    assert len(grouped.curve) == len(alone.curve)
    for a, b in zip(grouped.curve, alone.curve, strict=True):
        assert a["epoch"] == b["epoch"]
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-5)
        assert a["val_accuracy"] == pytest.approx(b["val_accuracy"], abs=1e-6)
    weights_a, weights_b = load(grouped.weights), load(alone.weights)
    for name in weights_b:
        torch.testing.assert_close(weights_a[name], weights_b[name], atol=1e-5, rtol=1e-4)
    assert grouped.info["recipe"] == alone.info["recipe"]


def test_a_group_equals_its_trials_alone_and_continues_like_them(evaluator):
    genomes = [genome(lr) for lr in LRS]
    assert len({evaluator.group_key(g) for g in genomes}) == 1
    first = evaluator.evaluate_group(genomes, 1.0, [None] * 4)
    for grouped, g in zip(first, genomes, strict=True):
        assert grouped.info["stacked_group"] == 4
        assert_same(grouped, evaluator.evaluate(g, 1.0))
    # rung 2 continues every trial from its own checkpoint, together, as a straight run alone would
    second = evaluator.evaluate_group(genomes, 2.0, [r.checkpoint for r in first])
    for grouped, g in zip(second, genomes, strict=True):
        straight = evaluator.evaluate(g, 2.0)
        assert grouped.metrics["val_accuracy"] == pytest.approx(straight.metrics["val_accuracy"], abs=1e-6)
        assert grouped.curve[-1]["train_loss"] == pytest.approx(straight.curve[-1]["train_loss"], rel=1e-5)
        assert grouped.metrics["latency_ms"] == first[0].metrics["latency_ms"]  # measured once, kept


def test_a_trial_trained_alone_continues_in_a_group(evaluator):
    genomes = [genome(lr) for lr in LRS[:2]]
    alone = [evaluator.evaluate(g, 1.0) for g in genomes]
    grouped = evaluator.evaluate_group(genomes, 2.0, [r.checkpoint for r in alone])
    for result, g in zip(grouped, genomes, strict=True):
        assert result.info["stacked_group"] == 2
        assert result.metrics["val_accuracy"] == pytest.approx(evaluator.evaluate(g, 2.0).metrics["val_accuracy"],
                                                               abs=1e-6)


def test_a_diverging_member_costs_the_group_its_stacking_not_its_results(evaluator):
    genomes = [genome(1e-3), genome(1e9)]  # the second overflows
    grouped = evaluator.evaluate_group(genomes, 1.0, [None, None])
    alone = [evaluator.evaluate(g, 1.0) for g in genomes]
    assert [r.status for r in grouped] == [r.status for r in alone] == ["complete", "failed"]
    assert "stacked_group" not in grouped[0].info
    assert grouped[0].info["group_not_stacked"].startswith("Diverged in the group")
    assert grouped[0].metrics["val_accuracy"] == alone[0].metrics["val_accuracy"]


def test_a_group_that_breaks_a_constraint_is_rejected_whole():
    evaluator = TrainingEvaluator(TaskRef("digits"), TrainingRecipe(epochs=1),
                                  constraints=Constraints.parse({"max_params": 10}))
    results = evaluator.evaluate_group([genome(lr) for lr in LRS[:3]], None, [None] * 3)
    assert [r.status for r in results] == ["rejected"] * 3
    assert all("n_params" in r.error for r in results)


@pytest.mark.parametrize("recipe, other", [
    ({"seeds": 2}, None),  # its seeds stack within the trial
    ({"dropout": 0.1}, None),
    ({"optimizer": "lbfgs"}, None),
])
def test_what_never_groups(recipe, other):
    evaluator = TrainingEvaluator(TaskRef("digits"), TrainingRecipe(epochs=1, **recipe))
    assert evaluator.group_key(genome(1e-3)) is None


def test_hot_training_still_groups_what_has_nothing_to_fuse():
    """Stacking takes linear layers and norms alone, so ``training.hot`` (the default) leaves groups be."""
    evaluator = TrainingEvaluator(TaskRef("digits"), TrainingRecipe(epochs=1))
    assert evaluator.recipe.hot and evaluator.group_key(genome(1e-3)) is not None
    results = evaluator.evaluate_group([genome(lr) for lr in LRS[:2]], None, [None] * 2)
    assert [r.info.get("hot") for r in results] == ["nothing to fuse; trained stacked"] * 2


def test_only_the_learning_rate_may_differ_within_a_group(evaluator):
    key = evaluator.group_key(genome(1e-3))
    assert evaluator.group_key(genome(1e-2)) == key
    assert evaluator.group_key(genome(1e-3, width=32)) != key
    assert evaluator.group_key(genome(1e-3, batch_size=32)) != key
    assert TrainingEvaluator(TaskRef("digits"), TrainingRecipe(epochs=1, stack=False)).group_key(genome(1e-3)) is None


def lr_space(chooser):
    """``toy_space`` deciding its learning rate as a recipe decision, the label siblings vary."""
    arch = {"width": chooser.suggest_categorical("width", [8, 16, 32, 64]), "depth": chooser.suggest_int("depth", 1, 4),
            "kind": "mlp", "lr": chooser.suggest_float("recipe.lr", 1e-4, 1e-1, log=True)}
    return arch


def test_siblings_keep_every_decision_but_the_rate_and_lie_around_it():
    strategy = make_strategy("random", as_space(lr_space), toy_objectives(), seed=1)
    strategy.use_siblings(4)
    leader = strategy.next_proposal()
    assert strategy.queued() == 3
    siblings = [strategy.next_proposal() for _ in range(3)]
    assert strategy.queued() == 0
    for sibling in siblings:
        assert sibling.origin == SIBLING
        assert {k: v for k, v in sibling.decisions.items() if k != "recipe.lr"} == {
            k: v for k, v in leader.decisions.items() if k != "recipe.lr"}
    step = math.log(1e3) / 8  # a 2k-th of the log range
    offsets = [(math.log(c.decisions["recipe.lr"]) - math.log(leader.decisions["recipe.lr"])) / step for c in siblings]
    assert all(o == pytest.approx(round(o), abs=1e-6) and round(o) != 0 for o in offsets)
    assert len({round(o) for o in offsets}) == 3
    assert all(1e-4 <= c.decisions["recipe.lr"] <= 1e-1 for c in siblings)


def test_siblings_near_an_end_of_the_range_all_step_the_other_way():
    out = sibling_decisions(as_space(lr_space), {"width": 8, "depth": 1, "recipe.lr": 1e-4}, 4,
                            np.random.default_rng(0))
    step = math.log(1e3) / 8
    assert [round(math.log(d["recipe.lr"] / 1e-4) / step, 6) for d in out] == [1, 2, 3]


def test_bayes_asks_its_study_for_the_siblings_so_that_their_results_reach_the_sampler():
    strategy = make_strategy("bayes", as_space(lr_space), toy_objectives(), seed=0)
    strategy.use_siblings(3)
    proposals = [strategy.next_proposal() for _ in range(9)]
    for candidate in proposals:
        strategy.tell(candidate, EvalResult(COMPLETE, toy_evaluate(candidate.architecture)))
    trials = strategy.study().get_trials(deepcopy=False)
    assert len(trials) == 9 and all(t.state.name == "COMPLETE" for t in trials)
    assert sum(c.origin == SIBLING for c in proposals) == 6


def test_siblings_from_a_list_of_rates_take_the_other_choices():
    def listed(chooser):
        return {"lr": chooser.suggest_categorical("recipe.adam.lr", [1e-3, 3e-3, 1e-2])}

    out = sibling_decisions(as_space(listed), {"recipe.adam.lr": 3e-3}, 4, np.random.default_rng(0))
    assert sorted(d["recipe.adam.lr"] for d in out) == [1e-3, 1e-2]


def test_queued_siblings_survive_a_saved_state():
    strategy = make_strategy("evolution", as_space(lr_space), toy_objectives(), seed=2)
    strategy.use_siblings(3)
    strategy.next_proposal()
    saved = json.loads(json.dumps(strategy.state_dict()))
    following = [strategy.next_proposal().arch_id for _ in range(4)]
    restored = make_strategy("evolution", as_space(lr_space), toy_objectives(), seed=2)
    restored.use_siblings(3)
    restored.load_state_dict(saved)
    assert [restored.next_proposal().arch_id for _ in range(4)] == following


def test_siblings_need_a_space_that_decides_the_rate(tmp_path):
    with pytest.raises(ConfigError, match="lr_siblings=4 needs a space that searches the learning rate"):
        archsearch.search(space="mlp", budget=2, executor="inline", run_dir=tmp_path / "r",
                          overrides=["strategy.lr_siblings=4"], quiet=True)
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("strategy", ["model", "bayes", "evolution", "local", "mcts", "random"])
def test_a_run_cut_among_siblings_resumes_to_the_same_proposals(tmp_path, strategy):
    def run(run_dir, evaluate):
        return archsearch.search(space=lr_space, evaluate=evaluate, objectives=toy_objectives(), budget=14, seed=3,
                                 strategy=strategy, executor="inline", run_dir=run_dir, quiet=True,
                                 overrides=["strategy.lr_siblings=3"])

    whole = run(tmp_path / "whole", toy_evaluate).trials.to_pandas()
    assert (whole.origin == SIBLING).sum() >= 8
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "cut", InterruptAt(5, toy_evaluate))
    archsearch.resume(tmp_path / "cut", space=lr_space, evaluate=toy_evaluate, quiet=True)
    cut = archsearch.load_run(tmp_path / "cut").trials.to_pandas()
    assert cut.arch_id.tolist() == whole.arch_id.tolist()


@pytest.mark.parametrize("executor", ["inline", "ray"])
def test_a_search_with_siblings_trains_them_as_groups_with_the_results_of_trials_alone(tmp_path, executor):
    run = archsearch.search(space="mlp", task="digits", strategy="random", budget=6, seed=5, executor=executor,
                            run_dir=tmp_path / executor, quiet=True,
                            overrides=["strategy.lr_siblings=3", "+space.recipe={lr:{low:1.0e-3,high:1.0e-2,log:true}}",
                                       "training.epochs=1", "executor.workers=1", "space.depth.high=2"]
                            if executor == "ray" else
                            ["strategy.lr_siblings=3", "+space.recipe={lr:{low:1.0e-3,high:1.0e-2,log:true}}",
                             "training.epochs=1", "space.depth.high=2"])
    trials = run.trials.to_pandas()
    assert trials.stacked.tolist() == ["group of 3"] * 6
    evaluator = TrainingEvaluator(TaskRef("digits", seed=5), TrainingRecipe(epochs=1), seed=5)
    for row in trials.itertuples():
        alone = evaluator.evaluate(Genome.from_dict(json.loads(row.genome_json)))
        assert row.val_accuracy == pytest.approx(alone.metrics["val_accuracy"], abs=1e-6)


def test_siblings_that_successive_halving_promotes_continue_together_as_they_would_alone(tmp_path):
    run = archsearch.search(space="mlp", task="digits", strategy="random", budget=8, seed=2, executor="inline",
                            run_dir=tmp_path / "asha", quiet=True,
                            overrides=["strategy.lr_siblings=4", "+space.recipe={lr:{low:1.0e-3,high:1.0e-2,log:true}}",
                                       "fidelity=asha", "fidelity.eta=2", "training.epochs=2", "space.depth.high=2"])
    trials = run.trials.to_pandas()
    journal = [json.loads(line) for line in (tmp_path / "asha" / "journal.jsonl").read_text().splitlines()]
    continued = [e["trial_id"] for e in journal if e.get("event") == "trial_continued"]
    assert len(continued) >= 2
    finals = {t["trial_id"]: t for t in journal if t.get("event") == "trial_finished"}
    assert any(finals[i]["result"]["info"].get("stacked_group", 0) >= 2 for i in continued)
    evaluator = TrainingEvaluator(TaskRef("digits", seed=2), TrainingRecipe(epochs=2), seed=2)
    for row in trials.itertuples():
        straight = evaluator.evaluate(Genome.from_dict(json.loads(row.genome_json)), row.fidelity)
        assert row.val_accuracy == pytest.approx(straight.metrics["val_accuracy"], abs=1e-6)


@pytest.mark.gpu
def test_a_group_on_cuda_equals_its_trials_alone():
    evaluator = TrainingEvaluator(TaskRef("digits"), TrainingRecipe(epochs=1, batch_size=64, device="cuda"))
    genomes = [genome(lr) for lr in LRS]
    for grouped, g in zip(evaluator.evaluate_group(genomes, None, [None] * 4), genomes, strict=True):
        assert grouped.info["stacked_group"] == 4 and grouped.info["device_kind"] == "cuda"
        alone = evaluator.evaluate(g)
        assert grouped.metrics["val_accuracy"] == pytest.approx(alone.metrics["val_accuracy"], abs=3e-3)
