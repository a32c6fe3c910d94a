"""Built-in tasks by name, and tasks from the user's own arrays, Dataset or table file.

Every task module imports its heavy dependencies (scikit-learn, scipy, mnist1d, pyarrow) inside its
factory, so importing this package and listing the tasks stay cheap.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from archsearch._registry import Registry
from archsearch.tasks import feynman as _feynman
from archsearch.tasks import function_fitting as _functions
from archsearch.tasks import mnist1d as _mnist1d
from archsearch.tasks import sklearn_tasks as _sk
from archsearch.tasks import synthetic as _synthetic
from archsearch.tasks._base import DataSpec, Task, TaskError
from archsearch.tasks.arrays import infer_problem, split_sizes, task_from_arrays, task_from_dataset
from archsearch.tasks.table import table as _table


class TaskRegistry(Registry[Callable[..., Task]]):
    """Task factories with the train / val / test sizes their default options give.

    Sizes are worked out from the defaults, never by building the task, so ``archsearch list tasks``
    neither generates data nor reads files.
    """

    def __init__(self) -> None:
        super().__init__("task")
        self._sizes: dict[str, tuple[int, int, int] | None] = {}

    def register(self, name: str, description: str = "", sizes: tuple[int, int, int] | None = None,
                 ) -> Callable[[Callable[..., Task]], Callable[..., Task]]:
        self._sizes[name] = sizes
        return super().register(name, description)

    def sizes(self, name: str) -> tuple[int, int, int] | None:
        """(train, val, test) with default options, or None when they depend on the user's data."""
        self.get(name)
        return self._sizes.get(name)

    def describe(self) -> dict[str, str]:
        described = {}
        for name, text in super().describe().items():
            sizes = self._sizes.get(name)
            where = "train/val/test " + "/".join(f"{n:,}" for n in sizes) if sizes else "sizes from the data"
            described[name] = f"{text} ({where})"  # no [brackets]: rich reads them as markup
        return described


TASKS = TaskRegistry()


def _defaults(factory: Callable[..., Any], *names: str) -> list[Any]:
    params = inspect.signature(factory).parameters
    return [params[n].default for n in names]


def _sampled_sizes(factory: Callable[..., Task]) -> tuple[int, int, int]:
    return split_sizes(*_defaults(factory, "n_samples", "val_fraction", "test_fraction"))


for _name, (_, _, _rows) in _sk.DATASETS.items():
    _factory = getattr(_sk, _name)
    _split = split_sizes(_rows, *_defaults(_factory, "val_fraction", "test_fraction"))
    TASKS.register(_name, f"scikit-learn: {_factory.__doc__.strip().rstrip('.')}", _split)(_factory)
TASKS.register(
    "mnist1d", "MNIST-1D: length-40 signals, 10 classes (sequence); paper: logistic 32%, MLP 68%, "
    "CNN 94%, GRU 91%", _mnist1d.sizes(*_defaults(_mnist1d.mnist1d, "num_samples", "val_fraction")),
)(_mnist1d.mnist1d)
TASKS.register(
    "kan_toy", f"KAN paper toy function, RMSE: task.function={', '.join(_functions.FUNCTIONS)}",
    _sampled_sizes(_functions.kan_toy),
)(_functions.kan_toy)
TASKS.register(
    "feynman", f"Feynman benchmark equation, RMSE: task.equation=I.6.2 or one of {len(_feynman.EQUATIONS) - 1} "
    "others", _sampled_sizes(_feynman.feynman),
)(_feynman.feynman)
TASKS.register(
    "modular_addition", "(a + b) mod 97 from tokens 'a b =', 30% of pairs to train: grokking (tokens)",
    _synthetic.modular_addition_sizes(*_defaults(_synthetic.modular_addition, "p", "train_fraction")),
)(_synthetic.modular_addition)
TASKS.register(
    "associative_recall", "key-value token pairs, then a query key: predict its value (tokens, length 17)",
    _sampled_sizes(_synthetic.associative_recall),
)(_synthetic.associative_recall)
TASKS.register(
    "table", "your Parquet/CSV file: task.path=FILE task.target=COLUMN, optional task.problem=regression",
)(_table)


def load_task(name: str, seed: int = 0, **options: Any) -> Task:
    """Build task ``name`` with its seeded split; unknown names and options list the valid ones."""
    factory = TASKS.get(name)
    accepted = [p for p in inspect.signature(factory).parameters if p != "seed"]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise TaskError(f"task {name!r} has no option(s) {', '.join(unknown)}; its options: {', '.join(accepted)}")
    return factory(seed=seed, **options)


__all__ = ["TASKS", "DataSpec", "Task", "TaskError", "infer_problem", "load_task", "task_from_arrays",
           "task_from_dataset"]
