"""training.seeds: several trainings per candidate, stacked where they can be, equal to one after another."""

import dataclasses
import json

import pytest
import torch
from safetensors.torch import load

import archsearch
from archsearch.errors import ConfigError
from archsearch.evaluation.checkpoint import pack, unpack
from archsearch.evaluation.training import TrainingEvaluator, TrainingRecipe
from archsearch.genome import BlockSpec, Genome

MLP = Genome.sequential([BlockSpec("mlp", {"expansion": 2}, "gelu", residual=True),
                         BlockSpec("glu", {}, "silu", norm_placement="pre")], {"width": 16})
ATTENTION = Genome.sequential([BlockSpec("attention", {"heads": 2}, "gelu", residual=True, norm_placement="pre")],
                              {"width": 16})
KAN = Genome.sequential([BlockSpec("kan_bspline", {}, "identity")], {"width": 8})
RECIPE = dict(epochs=3, batch_size=64, optimizer="adamw", weight_decay=0.01, schedule="cosine", warmup_steps=5)


def _close(a: list[float], b: list[float]) -> None:
    assert a == pytest.approx(b, abs=3e-3)  # accuracies on 360 rows: at most one row may flip


def _weights_close(a: bytes, b: bytes, atol: float) -> None:
    wa, wb = load(a), load(b)
    assert wa.keys() == wb.keys()
    for key in wa:
        torch.testing.assert_close(wa[key], wb[key], atol=atol, rtol=1e-4, msg=key)


@pytest.fixture(scope="module")
def short_mnist1d():
    from archsearch.tasks import load_task

    task = load_task("mnist1d", seed=0)
    return dataclasses.replace(task, x_train=task.x_train[:256], y_train=task.y_train[:256])


@pytest.mark.parametrize("genome, task", [(MLP, "digits"), (ATTENTION, "short_mnist1d")], ids=["mlp", "attention"])
def test_stacked_seeds_equal_seeds_trained_one_after_another(genome, task, request):
    """Attention runs on sequences (its stem's position embedding is stacked too); on one token its query and
    key would get no gradient, only rounding noise that Adam amplifies differently stacked and alone."""
    task = request.getfixturevalue(task)
    recipe = TrainingRecipe(**RECIPE, seeds=3)
    stacked = TrainingEvaluator(task, recipe, seed=1).evaluate(genome)
    alone = TrainingEvaluator(task, dataclasses.replace(recipe, stack=False), seed=1).evaluate(genome)
    assert stacked.status == alone.status == "complete", (stacked.error, alone.error)
    assert stacked.info["stacked"] is True and alone.info["stacked"] is False
    for key in ("val_accuracy", "test_accuracy"):
        _close(stacked.info["per_seed"][key], alone.info["per_seed"][key])
    _weights_close(stacked.weights, alone.weights, atol=2e-3)
    assert [p["epoch"] for p in stacked.curve] == [1, 2, 3]
    assert stacked.curve[-1]["train_loss"] == pytest.approx(alone.curve[-1]["train_loss"], rel=1e-4)


def test_seeds_report_mean_and_spread_and_the_first_seed_is_the_single_seed_run(digits):
    one = TrainingEvaluator(digits, TrainingRecipe(**RECIPE), seed=1).evaluate(MLP)
    three = TrainingEvaluator(digits, TrainingRecipe(**RECIPE, seeds=3, stack=False), seed=1).evaluate(MLP)
    values = three.info["per_seed"]["val_accuracy"]
    assert values[0] == one.metrics["val_accuracy"]  # one after another: exactly the single-seed training
    assert len(set(values)) > 1  # other seeds train otherwise
    assert three.metrics["val_accuracy"] == pytest.approx(sum(values) / 3)
    assert three.metrics["val_accuracy_std"] == pytest.approx(torch.tensor(values).std().item())
    assert "val_accuracy_std" not in one.metrics and "per_seed" not in one.info
    assert three.metrics["n_params"] == one.metrics["n_params"]  # the architecture is measured once
    assert three.weights == one.weights  # the first seed's weights are kept


@pytest.mark.parametrize("first", [1, 1.5])  # at an epoch boundary, and in the middle of an epoch
def test_stacked_seeds_continue_from_a_checkpoint_as_if_straight_through(digits, first):
    recipe = TrainingRecipe(**RECIPE, seeds=2)
    evaluator = TrainingEvaluator(digits, recipe, seed=1)
    straight = evaluator.evaluate(MLP, 3)
    part = evaluator.evaluate(MLP, first)
    assert part.checkpoint is not None and len(unpack(part.checkpoint, 2)) == 2
    rest = evaluator.evaluate(MLP, 3, part.checkpoint)
    assert rest.status == "complete", rest.error
    assert rest.info["per_seed"] == straight.info["per_seed"]
    _weights_close(rest.weights, straight.weights, atol=1e-6)
    # a stacked checkpoint is continued one seed after another (and the reverse) to the same weights
    one_by_one = TrainingEvaluator(digits, dataclasses.replace(recipe, stack=False), seed=1).evaluate(MLP, 3, part.checkpoint)
    _weights_close(one_by_one.weights, straight.weights, atol=1e-4)
    _close(one_by_one.info["per_seed"]["val_accuracy"], straight.info["per_seed"]["val_accuracy"])


@pytest.mark.parametrize("genome, recipe, reason", [
    (KAN, {}, "linear layers"),
    (MLP, {"optimizer": "lbfgs"}, "lbfgs"),
    (MLP, {"early_stopping_patience": 2}, "early stopping"),
    (MLP, {"dropout": 0.1}, "dropout"),
    (Genome.sequential([BlockSpec("mlp", {"expansion": 4}, "relu")], {"width": 256}), {"batch_size": 1024},
     "MFLOPs per batch"),  # compute-bound on a CPU: stacking would save nothing
])
def test_what_cannot_stack_trains_one_after_another_and_says_why(digits, genome, recipe, reason):
    result = TrainingEvaluator(digits, TrainingRecipe(epochs=1, seeds=2, **recipe)).evaluate(genome)
    assert result.status == "complete", result.error
    assert result.info["stacked"] is False and reason in result.info["not_stacked"]
    assert len(result.info["per_seed"]["val_accuracy"]) == 2


def test_moe_is_not_stacked(digits):
    moe = Genome.sequential([BlockSpec("moe_topk", {"experts": 4}, "gelu", residual=True)], {"width": 16})
    result = TrainingEvaluator(digits, TrainingRecipe(epochs=1, seeds=2)).evaluate(moe)
    assert result.status == "complete", result.error
    assert "MoE" in result.info["not_stacked"]


def test_a_diverging_seed_fails_the_trial_with_its_reason(digits):
    recipe = TrainingRecipe(epochs=2, lr=1e9, optimizer="sgd", seeds=2)
    for stack in (True, False):
        result = TrainingEvaluator(digits, dataclasses.replace(recipe, stack=stack)).evaluate(MLP)
        assert result.status == "failed" and "diverged" in result.error


def test_checkpoints_of_another_seed_count_are_refused(digits):
    part = TrainingEvaluator(digits, TrainingRecipe(epochs=3, seeds=2)).evaluate(MLP, 1)
    with pytest.raises(ValueError, match="holds 2 seed"):
        unpack(part.checkpoint, 3)
    assert pack([part.checkpoint]) == part.checkpoint
    result = TrainingEvaluator(digits, TrainingRecipe(epochs=3, seeds=3)).evaluate(MLP, 3, part.checkpoint)
    assert result.status == "failed" and "holds 2 seed(s) but training.seeds is 3" in result.error


def test_seeds_are_a_run_setting_checked_before_anything_runs(tmp_path):
    with pytest.raises(ConfigError, match="seeds must be at least 1"):
        TrainingRecipe(seeds=0)
    with pytest.raises(ConfigError, match="cannot change seeds"):
        TrainingRecipe().with_overrides({"seeds": 3})
    with pytest.raises(ConfigError, match="seeds"):
        archsearch.search("mlp", "digits", budget=1, executor="inline", run_dir=tmp_path / "bad",
                          overrides=["training.seeds=zero"], quiet=True)
    assert not (tmp_path / "bad").exists()


def test_a_search_can_minimize_the_spread_over_seeds(tmp_path):
    run = archsearch.search("mlp", "digits", strategy="random", budget=3, executor="inline", run_dir=tmp_path / "run",
                            objectives={"val_accuracy": "maximize", "val_accuracy_std": "minimize"},
                            overrides=["training.seeds=2", "training.epochs=1"], quiet=True)
    table = run.trials.to_pandas()
    assert {"val_accuracy_std", "test_accuracy_std"} <= set(table.columns)
    complete = table[table["status"] == "complete"]
    assert len(complete) == 3 and (complete["val_accuracy_std"] >= 0).all()
    assert (complete["stacked"] == "yes").all()
    assert all(len(json.loads(text)["val_accuracy"]) == 2 for text in complete["seeds_json"])
