"""A task from the user's own arrays: problem inference, seeded split, standardization."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.model_selection import train_test_split

from archsearch.tasks._base import INPUT_KINDS, PROBLEMS, Task, TaskError

MAX_CLASSES_FOR_INTEGER_TARGET = 50


def infer_problem(y: np.ndarray) -> str:
    """Classification for bool, string and small-cardinality integer targets; regression otherwise."""
    if y.dtype.kind in "bUSO":
        return "classification"
    if y.dtype.kind in "iu":
        return "classification" if len(np.unique(y)) <= MAX_CLASSES_FOR_INTEGER_TARGET else "regression"
    return "regression"


def task_from_arrays(
    x: Any,
    y: Any,
    *,
    name: str = "arrays",
    problem: str | None = None,
    input_kind: str | None = None,
    val_fraction: float = 0.2,
    test_fraction: float = 0.2,
    seed: int = 0,
    standardize: bool = True,
) -> Task:
    """Split ``x``, ``y`` into train / validation / test (stratified for classification) with ``seed``.

    Args:
        x: (n, features) for vector inputs, (n, length) or (n, length, channels) for sequences.
        y: (n,) targets: class labels of any type, or real values.
        problem: ``"classification"`` or ``"regression"``; inferred from ``y`` when omitted.
        input_kind: ``"vector"`` or ``"sequence"``; 2-D ``x`` defaults to vector, 3-D to sequence.
        standardize: scale inputs (and regression targets) with training-split statistics.
    """
    x = np.asarray(x, dtype=np.float32)
    y = np.asarray(y)
    if x.ndim not in (2, 3):
        raise TaskError(f"x must be 2-D (n, features) or 3-D (n, length, channels), got shape {x.shape}")
    if y.ndim != 1 or len(y) != len(x):
        raise TaskError(f"y must be 1-D with one target per row of x ({len(x)}), got shape {y.shape}")
    if not np.isfinite(x).all():
        raise TaskError("x contains NaN or infinite values; impute or drop them first")
    if not (0 < val_fraction < 1 and 0 < test_fraction < 1 and val_fraction + test_fraction < 1):
        raise TaskError(f"val_fraction={val_fraction} and test_fraction={test_fraction} must be in (0, 1) "
                        "and leave room for training data")
    problem = problem or infer_problem(y)
    if problem not in PROBLEMS:
        raise TaskError(f"problem {problem!r} is not one of {', '.join(PROBLEMS)}")
    input_kind = input_kind or ("vector" if x.ndim == 2 else "sequence")
    if input_kind not in INPUT_KINDS:
        raise TaskError(f"input_kind {input_kind!r} is not one of {', '.join(INPUT_KINDS)}")

    classes: np.ndarray | None = None
    if problem == "classification":
        classes, y = np.unique(y, return_inverse=True)
        if len(classes) < 2:
            raise TaskError("a classification target needs at least two classes")
        y = y.astype(np.int64)
    else:
        y = y.astype(np.float32)
        if not np.isfinite(y).all():
            raise TaskError("regression target contains NaN or infinite values")

    stratify = y if problem == "classification" else None
    idx = np.arange(len(x))
    try:
        rest, test_idx = train_test_split(idx, test_size=test_fraction, random_state=seed, stratify=stratify)
        train_idx, val_idx = train_test_split(
            rest, test_size=val_fraction / (1 - test_fraction), random_state=seed,
            stratify=None if stratify is None else y[rest],
        )
    except ValueError as exc:
        raise TaskError(f"cannot split {len(x)} rows into train/val/test: {exc}") from None

    if standardize:
        axes = (0,) if x.ndim == 2 else (0, 1)
        mean = x[train_idx].mean(axis=axes, keepdims=True)
        std = x[train_idx].std(axis=axes, keepdims=True)
        x = (x - mean) / np.where(std > 1e-8, std, 1.0)
    y_mean, y_std = 0.0, 1.0
    if problem == "regression" and standardize:
        y_mean = float(y[train_idx].mean())
        y_std = float(y[train_idx].std()) or 1.0
    info = {"classes": classes.tolist()} if classes is not None else {}
    return Task(
        name=name, problem=problem, input_kind=input_kind,
        x_train=x[train_idx], y_train=y[train_idx], x_val=x[val_idx], y_val=y[val_idx],
        x_test=x[test_idx], y_test=y[test_idx],
        n_classes=len(classes) if classes is not None else 0, y_mean=y_mean, y_std=y_std, info=info,
    )
