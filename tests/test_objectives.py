"""Objectives, constraints, the training recipe and the cheap metrics measured before training."""

import math

import pytest

import archsearch
from archsearch.errors import ArchsearchError
from archsearch.evaluation.constraints import Constraints
from archsearch.evaluation.recipe import TrainingRecipe, lr_factor
from archsearch.evaluation.training import TrainingEvaluator
from archsearch.genome import BlockSpec, Genome

SMALL = Genome.sequential([BlockSpec("mlp", {"expansion": 1}, "relu")], {"width": 16})


def test_cheap_metrics_are_recorded(digits):
    result = TrainingEvaluator(digits, TrainingRecipe(epochs=1)).evaluate(SMALL)
    m = result.metrics
    # 64 inputs -> 16 -> MLP(16, 16) -> 10 outputs: matmul FLOPs 2 * (64*16 + 16*16*2 + 16*10)
    assert m["flops"] == 2 * (64 * 16 + 16 * 16 * 2 + 16 * 10)
    assert m["memory_mb"] > 4 * m["n_params"] * 4 / 2**20  # weights, grads, moments plus activations
    assert m["latency_b64_ms"] > 0 and m["latency_ms"] > 0
    assert 0 <= m["latency_b64_iqr_ms"] < 10 * m["latency_b64_ms"] and m["latency_iqr_ms"] >= 0
    assert m["epochs_trained"] == pytest.approx(1.0)


def test_constraints_reject_before_training_without_using_budget(tmp_path):
    run = archsearch.search(space="mlp", budget=4, seed=0, executor="inline", run_dir=tmp_path / "run",
                            strategy="random", overrides=["training.epochs=0.5", "constraints.max_params=8000"])
    trials = run.trials.to_pandas()
    rejected = trials[trials.status == "rejected"]
    trained = trials[trials.status != "rejected"]
    assert len(trained) == 4 and len(rejected) >= 1
    assert (trained.n_params <= 8000).all() and (rejected.n_params > 8000).all()
    assert rejected.error.str.match(r"violates n_params [\d,]+ > max 8,000").all()
    assert rejected.train_time_s.isna().all() and rejected.val_accuracy.isna().all()
    assert set(run.pareto().column("status").to_pylist()) == {"complete"}


def test_constraint_nothing_satisfies_ends_the_run(tmp_path):
    run = archsearch.search(space="mlp", budget=2, seed=0, executor="inline", run_dir=tmp_path / "run",
                            overrides=["constraints.max_params=10"])
    statuses = set(run.trials.column("status").to_pylist())
    assert statuses == {"rejected"}
    assert '"reason": "constraints"' in (tmp_path / "run" / "journal.jsonl").read_text()


@pytest.mark.parametrize(
    "options, message",
    [
        ({"max_val_accuracy": 0.5}, "only known after training"),
        ({"most_params": 3}, "max_<metric> or min_<metric>"),
        ({"max_params": "lots"}, "must be a number"),
    ],
)
def test_bad_constraints(options, message):
    with pytest.raises(ArchsearchError, match=message):
        Constraints.parse(options)


def test_constraints_both_sides():
    constraints = Constraints.parse({"max_params": 100, "min_params": 10, "max_latency_ms": None})
    assert constraints.violations({"n_params": 50}) == []
    assert constraints.violations({"n_params": 5}) == ["n_params 5 < min 10"]
    assert constraints.violations({"n_params": 500}) == ["n_params 500 > max 100"]


@pytest.mark.parametrize("optimizer", ["adam", "adamw", "sgd"])
@pytest.mark.parametrize("schedule", ["constant", "cosine"])
def test_recipes_train(digits, optimizer, schedule):
    lr = 0.05 if optimizer == "sgd" else 3e-3
    recipe = TrainingRecipe(epochs=2, optimizer=optimizer, schedule=schedule, lr=lr, warmup_steps=5)
    result = TrainingEvaluator(digits, recipe).evaluate(SMALL)
    assert result.status == "complete" and result.metrics["val_accuracy"] > 0.5


def test_lr_schedule_shape():
    recipe = TrainingRecipe(schedule="cosine", warmup_steps=10)
    factors = [lr_factor(s, 110, recipe) for s in range(110)]
    assert factors[0] == pytest.approx(0.1) and factors[9] == pytest.approx(1.0)
    assert factors[10] == pytest.approx(1.0) and factors[-1] < 0.01
    assert all(a >= b for a, b in zip(factors[10:], factors[11:], strict=False))


def test_steps_fidelity(digits):
    result = TrainingEvaluator(digits, TrainingRecipe(steps=5, batch_size=32)).evaluate(SMALL)
    assert result.metrics["epochs_trained"] == pytest.approx(5 / math.ceil(len(digits.x_train) / 32))


def test_early_stopping_keeps_the_best_epoch(digits):
    recipe = TrainingRecipe(epochs=60, early_stopping_patience=2, lr=0.03)
    result = TrainingEvaluator(digits, recipe).evaluate(SMALL)
    assert result.status == "complete"
    assert result.metrics["epochs_trained"] < 60
    assert result.info["stopped_early"] and result.info["best_epoch"] >= 1


def test_training_time_limit_fails_the_candidate(digits):
    big = Genome.sequential([BlockSpec("mlp", {"expansion": 4}, "gelu")] * 4, {"width": 256})
    result = TrainingEvaluator(digits, TrainingRecipe(epochs=50, time_limit_s=0.5)).evaluate(big)
    assert result.status == "failed" and "training time limit of 0.5 s exceeded" in result.error
    assert result.metrics["n_params"] > 0


@pytest.mark.parametrize(
    "override, message",
    [
        ("training.optimizer=lion", "training.optimizer must be one of adam, adamw, sgd, lbfgs or null, got .lion."),
        ("training.epochs=-1", "training.epochs must be a number > 0 or null, got -1"),
        ("constraints.max_accuracy=3", "unknown option 'constraints.max_accuracy'"),
    ],
)
def test_bad_recipe_or_constraint_overrides(tmp_path, override, message):
    with pytest.raises(ArchsearchError, match=message):
        archsearch.search(executor="inline", run_dir=tmp_path / "r", overrides=[override])


def test_recipe_precedence_and_record(tmp_path):
    from archsearch import config
    from archsearch._plan import resolve_recipe

    cfg = config.compose(["training.lr=0.01"])
    recipe = resolve_recipe(cfg, {"epochs": 30, "lr": 0.5})
    assert recipe.epochs == 30 and recipe.lr == 0.01 and recipe.batch_size == 64
    assert cfg.training.epochs == 30  # the resolved recipe is what the run's config.yaml records


def test_same_seed_same_metrics_with_dropout_free_recipe(digits):
    a = TrainingEvaluator(digits, TrainingRecipe(epochs=1), seed=3).evaluate(SMALL)
    b = TrainingEvaluator(digits, TrainingRecipe(epochs=1), seed=3).evaluate(SMALL)
    for key in ("val_accuracy", "test_accuracy", "flops", "memory_mb", "n_params"):
        assert a.metrics[key] == b.metrics[key]


def test_objectives_from_python_and_cli_forms(tmp_path):
    run = archsearch.search(budget=2, executor="inline", run_dir=tmp_path / "r",
                            objectives={"val_accuracy": "max", "flops": "min"}, overrides=["training.epochs=0.3"])
    assert run.objectives == {"val_accuracy": "maximize", "flops": "minimize"}
    assert run.pareto().num_rows >= 1
