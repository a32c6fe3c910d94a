"""A task from the user's own arrays or torch Dataset: problem inference, seeded split, standardization."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from archsearch.tasks._base import INPUT_KINDS, PROBLEMS, Task, TaskError

MAX_CLASSES_FOR_INTEGER_TARGET = 50


def infer_problem(y: np.ndarray) -> str:
    """Classification for bool, string and small-cardinality integer targets; regression otherwise."""
    if y.dtype.kind in "bUSO":
        return "classification"
    if y.dtype.kind in "iu":
        return "classification" if len(np.unique(y)) <= MAX_CLASSES_FOR_INTEGER_TARGET else "regression"
    return "regression"


def split_sizes(n: int, val_fraction: float, test_fraction: float) -> tuple[int, int, int]:
    """(train, val, test) sizes that :func:`split_indices` gives for ``n`` rows, without any data.

    ``archsearch list tasks`` shows these, so it need not generate or download anything.
    """
    n_test = math.ceil(test_fraction * n)
    n_val = math.ceil(val_fraction / (1 - test_fraction) * (n - n_test))
    return n - n_test - n_val, n_val, n_test


def split_indices(
    n: int, val_fraction: float, test_fraction: float, seed: int, stratify: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Seeded train / validation / test row indices, stratified by ``stratify`` labels when given."""
    from sklearn.model_selection import train_test_split

    if not (0 < val_fraction < 1 and 0 < test_fraction < 1 and val_fraction + test_fraction < 1):
        raise TaskError(f"val_fraction={val_fraction} and test_fraction={test_fraction} must be in (0, 1) "
                        "and leave room for training data")
    idx = np.arange(n)
    try:
        rest, test_idx = train_test_split(idx, test_size=test_fraction, random_state=seed, stratify=stratify)
        train_idx, val_idx = train_test_split(
            rest, test_size=val_fraction / (1 - test_fraction), random_state=seed,
            stratify=None if stratify is None else stratify[rest],
        )
    except ValueError as exc:
        raise TaskError(f"cannot split {n} rows into train/val/test: {exc}") from None
    return train_idx, val_idx, test_idx


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
    stratify: bool = True,
    n_classes: int | None = None,
    vocab_size: int | None = None,
    info: dict[str, Any] | None = None,
) -> Task:
    """Split ``x``, ``y`` into train / validation / test (stratified for classification) with ``seed``.

    Args:
        x: (n, features) for vector inputs, (n, length) or (n, length, channels) for sequences,
            (n, length) integer ids for tokens.
        y: (n,) targets: class labels of any type, or real values.
        problem: ``"classification"`` or ``"regression"``; inferred from ``y`` when omitted.
        input_kind: ``"vector"``, ``"sequence"`` or ``"tokens"``; 2-D ``x`` defaults to vector, 3-D to
            sequence.
        standardize: scale inputs (and regression targets) with training-split statistics; token ids
            are never scaled.
        stratify: keep class proportions equal across splits (classification only).
        n_classes: labels are already ``0 .. n_classes - 1`` and are kept as they are, even when some
            class never occurs (synthetic tasks with a fixed output width); otherwise labels of any
            type are mapped to ``0 .. k - 1`` in sorted order.
        vocab_size: for token inputs, ids must lie in ``[0, vocab_size)``; default ``max id + 1``.
        info: extra facts recorded on the task (formula, reference accuracies, encodings).
    """
    y = np.asarray(y)
    x = np.asarray(x)
    if x.ndim not in (2, 3):
        raise TaskError(f"x must be 2-D (n, features) or 3-D (n, length, channels), got shape {x.shape}")
    if y.ndim != 1 or len(y) != len(x):
        raise TaskError(f"y must be 1-D with one target per row of x ({len(x)}), got shape {y.shape}")
    input_kind = input_kind or ("vector" if x.ndim == 2 else "sequence")
    if input_kind not in INPUT_KINDS:
        raise TaskError(f"input_kind {input_kind!r} is not one of {', '.join(INPUT_KINDS)}")
    if input_kind == "tokens":
        x, vocab_size = _token_ids(x, vocab_size)
    else:
        x = x.astype(np.float32, copy=False)
        if not np.isfinite(x).all():
            raise TaskError("x contains NaN or infinite values; impute or drop them first")
    problem = problem or ("classification" if n_classes else infer_problem(y))
    if problem not in PROBLEMS:
        raise TaskError(f"problem {problem!r} is not one of {', '.join(PROBLEMS)}")

    classes: np.ndarray | None = None
    if problem == "classification":
        y, classes = _labels(y, n_classes)
    else:
        if y.dtype.kind not in "biuf":
            raise TaskError(f"a regression target must be numeric, got {y.dtype} values such as {y[0]!r}")
        y = y.astype(np.float32)
        if not np.isfinite(y).all():
            raise TaskError("regression target contains NaN or infinite values")

    labels = y if problem == "classification" and stratify else None
    train_idx, val_idx, test_idx = split_indices(len(x), val_fraction, test_fraction, seed, labels)

    info = dict(info or {})
    if standardize and input_kind != "tokens":
        axes = (0,) if x.ndim == 2 else (0, 1)
        mean = x[train_idx].mean(axis=axes, keepdims=True)
        std = np.where((std := x[train_idx].std(axis=axes, keepdims=True)) > 1e-8, std, 1.0)
        x = (x - mean) / std
        # What an exported model needs to take raw inputs: per feature (vector) or per channel (sequence).
        info["x_mean"], info["x_std"] = mean.ravel().tolist(), std.ravel().tolist()
    y_mean, y_std = 0.0, 1.0
    if problem == "regression" and standardize:
        y_mean = float(y[train_idx].mean())
        y_std = float(y[train_idx].std()) or 1.0
    if classes is not None and n_classes is None:
        info["classes"] = classes.tolist()
    return Task(
        name=name, problem=problem, input_kind=input_kind,
        x_train=x[train_idx], y_train=y[train_idx], x_val=x[val_idx], y_val=y[val_idx],
        x_test=x[test_idx], y_test=y[test_idx],
        n_classes=len(classes) if classes is not None else 0, y_mean=y_mean, y_std=y_std,
        vocab_size=vocab_size or 0, info=info,
    )


def _token_ids(x: np.ndarray, vocab_size: int | None) -> tuple[np.ndarray, int]:
    if x.ndim != 2:
        raise TaskError(f"token inputs must be 2-D (n, length) integer ids, got shape {x.shape}")
    if x.dtype.kind not in "iu":
        raise TaskError(f"token inputs must be integer ids, got {x.dtype}")
    x = x.astype(np.int64, copy=False)
    vocab_size = int(vocab_size if vocab_size is not None else x.max() + 1)
    if x.size and (x.min() < 0 or x.max() >= vocab_size):
        raise TaskError(f"token ids must lie in [0, {vocab_size}), found {x.min()} .. {x.max()}")
    return x, vocab_size


def _labels(y: np.ndarray, n_classes: int | None) -> tuple[np.ndarray, np.ndarray]:
    if n_classes is None:
        classes, codes = np.unique(y, return_inverse=True)
        if len(classes) < 2:
            raise TaskError(f"a classification target needs at least two classes, found only {classes.tolist()}")
        return codes.astype(np.int64), classes
    if y.dtype.kind not in "iu" or (y.size and (y.min() < 0 or y.max() >= n_classes)):
        raise TaskError(f"with n_classes={n_classes} the labels must be integers in [0, {n_classes})")
    return y.astype(np.int64), np.arange(n_classes)


def task_from_dataset(dataset: Any, *, max_items: int | None = None, **options: Any) -> Task:
    """A task from a torch ``Dataset`` of ``(x, y)`` items, materialized to arrays.

    Map-style datasets are read by index, iterable ones by iteration; each ``x`` is a tensor, array or
    number, each ``y`` a scalar. The data is held as numpy arrays so the task pickles to workers like
    any other; a dataset too large for memory should be subsampled with ``max_items``.

    Args:
        dataset: a ``torch.utils.data.Dataset`` or ``IterableDataset`` (anything indexable with
            ``len``, or iterable, yielding ``(x, y)`` pairs).
        max_items: read at most this many items.
        **options: passed on to :func:`task_from_arrays` (``name``, ``problem``, ``input_kind``, ...).
    """
    if hasattr(dataset, "__len__") and hasattr(dataset, "__getitem__"):
        n = len(dataset) if max_items is None else min(len(dataset), max_items)
        items: Any = (dataset[i] for i in range(n))
    elif hasattr(dataset, "__iter__"):
        items = iter(dataset)
    else:
        raise TaskError(f"expected a torch Dataset of (x, y) items, got {type(dataset).__name__}")
    xs: list[Any] = []
    ys: list[Any] = []
    for item in items:
        if max_items is not None and len(xs) >= max_items:
            break
        if not isinstance(item, tuple | list) or len(item) != 2:
            raise TaskError(f"dataset items must be (x, y) pairs, got {type(item).__name__}")
        xs.append(_to_numpy(item[0]))
        ys.append(_to_numpy(item[1]).reshape(-1))
    if not xs:
        raise TaskError("the dataset is empty")
    if any(y.size != 1 for y in ys):
        raise TaskError("each item's y must be a single value (a class label or a real number)")
    x = np.stack([v.reshape(1) if v.ndim == 0 else v for v in xs])
    options.setdefault("name", type(dataset).__name__)
    return task_from_arrays(x, np.concatenate(ys), **options)


def _to_numpy(value: Any) -> np.ndarray:
    if hasattr(value, "detach"):  # a torch tensor, without importing torch here
        return value.detach().cpu().numpy()
    return np.asarray(value)
