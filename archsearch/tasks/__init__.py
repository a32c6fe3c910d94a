"""Built-in tasks by name, and tasks from the user's own arrays."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from archsearch._registry import Registry
from archsearch.tasks._base import DataSpec, Task, TaskError
from archsearch.tasks.arrays import infer_problem, task_from_arrays

TASKS: Registry[Callable[..., Task]] = Registry("task")


@TASKS.register("digits", "scikit-learn handwritten digits: 1,797 8x8 images, 10 classes (vector)")
def digits(seed: int = 0, val_fraction: float = 0.2, test_fraction: float = 0.2) -> Task:
    from sklearn.datasets import load_digits

    data = load_digits()
    return task_from_arrays(data.data, data.target, name="digits", problem="classification",
                            val_fraction=val_fraction, test_fraction=test_fraction, seed=seed)


def load_task(name: str, seed: int = 0, **options: Any) -> Task:
    """Build task ``name`` with its seeded split; unknown names list the valid ones."""
    factory = TASKS.get(name)
    try:
        return factory(seed=seed, **options)
    except TypeError as exc:
        raise TaskError(f"task {name!r} does not take options {sorted(options)}: {exc}") from None


__all__ = ["TASKS", "DataSpec", "Task", "TaskError", "infer_problem", "load_task", "task_from_arrays"]
