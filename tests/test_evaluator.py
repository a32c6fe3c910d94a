import math

import numpy as np
import pytest

from archsearch.blocks import BLOCKS
from archsearch.evaluation.function import FunctionEvaluator
from archsearch.evaluation.training import TaskRef, TrainingEvaluator, TrainingRecipe
from archsearch.genome import BlockSpec, Genome
from archsearch.tasks import task_from_arrays

GOOD = Genome.sequential([BlockSpec("mlp", {"expansion": 2}, "gelu", residual=True)], {"width": 64})


class Exploding:
    """A block whose output turns to NaN: stands in for a diverging candidate."""

    def __new__(cls, dim, activation="relu"):
        import torch

        class _Nan(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.lin = torch.nn.Linear(dim, dim)

            def forward(self, x):
                return self.lin(x) * float("nan")

        return _Nan()


if "test_nan" not in BLOCKS:
    BLOCKS.register("test_nan", "test-only: outputs NaN")(Exploding)


def test_trains_digits_well_above_chance(digits):
    evaluator = TrainingEvaluator(digits, TrainingRecipe(epochs=8), seed=0)
    result = evaluator.evaluate(GOOD)
    assert result.status == "complete", result.error
    m = result.metrics
    assert m["val_accuracy"] > 0.85  # chance is 0.1
    assert 0.0 <= m["test_accuracy"] <= 1.0
    assert m["n_params"] == 64 * 64 + 64 + 2 * (64 * 128) + 128 + 64 + 2 * 64 + 2 * 64 + 64 * 10 + 10
    assert m["latency_ms"] > 0 and m["latency_iqr_ms"] >= 0 and m["train_time_s"] > 0


def test_same_seed_same_metrics_except_timings(digits):
    runs = [TrainingEvaluator(digits, TrainingRecipe(epochs=1), seed=4).evaluate(GOOD) for _ in range(2)]
    for key in ("val_accuracy", "test_accuracy", "n_params"):
        assert runs[0].metrics[key] == runs[1].metrics[key]


def test_fractional_fidelity_trains_fewer_steps(digits):
    evaluator = TrainingEvaluator(digits, TrainingRecipe(epochs=5), seed=0)
    short = evaluator.evaluate(GOOD, fidelity=0.1)
    long = evaluator.evaluate(GOOD, fidelity=5)
    assert short.status == long.status == "complete"
    assert short.metrics["train_time_s"] < long.metrics["train_time_s"]
    assert short.metrics["val_accuracy"] < long.metrics["val_accuracy"]


def test_nan_candidate_is_failed_with_reason(digits):
    bad = Genome.sequential([BlockSpec("test_nan")], {"width": 8})
    result = TrainingEvaluator(digits, TrainingRecipe(epochs=1)).evaluate(bad)
    assert result.status == "failed"
    assert result.error.startswith("diverged: loss became nan")
    assert result.metrics["n_params"] > 0  # what was measured before the failure is kept


def test_crashing_candidate_is_failed_with_reason(digits):
    bad = Genome.sequential([BlockSpec("mlp", {"colour": "red"})], {"width": 8})
    result = TrainingEvaluator(digits).evaluate(bad)
    assert result.status == "failed"
    assert "colour" in result.error


def test_regression_reports_rmse_in_target_units():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(600, 3))
    y = 100 + 50 * (x[:, 0] - 0.5 * x[:, 1] ** 2)
    task = task_from_arrays(x, y, seed=0)
    assert task.problem == "regression"
    evaluator = TrainingEvaluator(task, TrainingRecipe(epochs=30, lr=1e-2))
    result = evaluator.evaluate(Genome.sequential([BlockSpec("mlp", {"expansion": 4}, "silu")], {"width": 32}))
    assert result.status == "complete"
    assert result.metrics["val_rmse"] < 0.3 * y.std()  # much better than predicting the mean
    assert evaluator.objectives_default() == {"val_rmse": "minimize", "n_params": "minimize", "latency_ms": "minimize"}


def test_evaluator_pickles_without_data(digits):
    import pickle

    evaluator = TrainingEvaluator(TaskRef("digits"), TrainingRecipe(epochs=1))
    evaluator.load_task()
    blob = pickle.dumps(evaluator)
    assert len(blob) < 2000
    assert pickle.loads(blob).evaluate(GOOD).status == "complete"


def test_evaluator_for_workers_carries_the_loaded_data(digits):
    import pickle

    evaluator = TrainingEvaluator(TaskRef("no_such_task"), TrainingRecipe(epochs=1))
    evaluator.use_loaded(digits)  # as the driver does; workers must never look the name up again
    shipped = pickle.loads(pickle.dumps(evaluator.for_workers()))
    assert shipped.load_task().x_train.shape == digits.x_train.shape
    assert shipped.evaluate(GOOD).status == "complete"
    assert len(pickle.dumps(evaluator)) < 2000  # the original still ships only the reference


def test_task_arrays_from_ray_object_store_are_made_writable(digits):
    import dataclasses

    frozen = dataclasses.replace(digits, x_train=digits.x_train.copy())
    frozen.x_train.flags.writeable = False  # as Ray hands out arrays from its object store
    thawed = frozen.writable()
    assert thawed.x_train.flags.writeable and np.array_equal(thawed.x_train, digits.x_train)
    assert digits.writable() is digits  # nothing copied when nothing is read-only


def test_function_evaluator_records_failures():
    def evaluate(arch):
        if arch == "boom":
            raise RuntimeError("broken\nsecond line")
        if arch == "nan":
            return {"score": math.nan}
        if arch == "text":
            return {"score": "high"}
        return {"score": 1.0}

    evaluator = FunctionEvaluator(evaluate)
    assert evaluator.evaluate("ok").metrics["score"] == 1.0
    assert evaluator.evaluate("boom").error == "RuntimeError: broken"
    assert "non-finite" in evaluator.evaluate("nan").error
    assert "non-numeric" in evaluator.evaluate("text").error
    assert FunctionEvaluator(lambda a, f: {"f": f}).evaluate("x", 3.0).metrics["f"] == 3.0


@pytest.mark.parametrize(
    "x, y, message",
    [
        (np.zeros((10,)), np.zeros(10), "2-D"),
        (np.zeros((10, 2)), np.zeros(9), "one target per row"),
        (np.full((10, 2), np.nan), np.zeros(10), "NaN"),
        (np.zeros((10, 2)), np.zeros(10, dtype=int), "two classes"),
    ],
)
def test_bad_arrays_get_clear_errors(x, y, message):
    from archsearch.tasks import TaskError

    with pytest.raises(TaskError, match=message):
        task_from_arrays(x, y)
