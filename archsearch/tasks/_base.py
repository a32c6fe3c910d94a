"""Tasks: data split into train / validation / test, with what a model needs to know about its shape.

A task holds numpy arrays only, so it pickles cheaply to workers; tensors are made where training runs.
The test split is measured and recorded but never used for selection.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from archsearch.errors import ArchsearchError

PROBLEMS = ("classification", "regression")
INPUT_KINDS = ("vector", "sequence", "tokens")
ARRAY_FIELDS = ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test")


class TaskError(ArchsearchError):
    """Data or task options that cannot make a task."""


@dataclass(frozen=True)
class DataSpec:
    """What the builder needs: input layout and output width."""

    input_kind: str
    n_features: int = 0  # vector inputs
    seq_len: int = 0  # sequence and token inputs
    n_channels: int = 1  # sequence inputs
    vocab_size: int = 0  # token inputs: integer ids in [0, vocab_size)
    n_outputs: int = 1


@dataclass
class Task:
    """A supervised problem with a fixed, seeded split.

    Inputs are float arrays: (n, features) for ``vector``, (n, length[, channels]) for ``sequence``;
    for ``tokens`` they are integer ids (n, length) below ``vocab_size``.

    Regression targets are standardized on the training split for training; ``y_mean`` / ``y_std``
    undo that so metrics are reported in the target's own units.
    """

    name: str
    problem: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    input_kind: str = "vector"
    n_classes: int = 0
    y_mean: float = 0.0
    y_std: float = 1.0
    vocab_size: int = 0
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.problem not in PROBLEMS:
            raise TaskError(f"problem {self.problem!r} is not one of {', '.join(PROBLEMS)}")
        if self.input_kind not in INPUT_KINDS:
            raise TaskError(f"input_kind {self.input_kind!r} is not one of {', '.join(INPUT_KINDS)}")

    @property
    def metric(self) -> str:
        """The validation metric's name; the default objective of a search on this task."""
        return "val_accuracy" if self.problem == "classification" else "val_rmse"

    @property
    def metric_direction(self) -> str:
        return "maximize" if self.problem == "classification" else "minimize"

    @property
    def data_spec(self) -> DataSpec:
        n_outputs = self.n_classes if self.problem == "classification" else 1
        if self.input_kind == "vector":
            return DataSpec("vector", n_features=int(self.x_train.shape[1]), n_outputs=n_outputs)
        if self.input_kind == "tokens":
            return DataSpec("tokens", seq_len=int(self.x_train.shape[1]), vocab_size=self.vocab_size,
                            n_outputs=n_outputs)
        channels = int(self.x_train.shape[2]) if self.x_train.ndim == 3 else 1
        return DataSpec("sequence", seq_len=int(self.x_train.shape[1]), n_channels=channels, n_outputs=n_outputs)

    def writable(self) -> Task:
        """This task, with copies of any read-only arrays (those Ray hands out from its object store),
        so training code may use them like any other array."""
        arrays = {name: getattr(self, name) for name in ARRAY_FIELDS}
        if all(a.flags.writeable for a in arrays.values()):
            return self
        return replace(self, **{name: a if a.flags.writeable else a.copy() for name, a in arrays.items()})

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.x_train), "val": len(self.x_val), "test": len(self.x_test)}
