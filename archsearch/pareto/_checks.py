"""Input validation shared by the Pareto routines: one message per kind of mistake."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

DIRECTIONS: tuple[str, ...] = ("minimize", "maximize")


def as_points(values: Any, what: str = "points") -> np.ndarray:
    """Return ``values`` as a float (n, m) array, m >= 1, or raise ValueError."""
    try:
        arr = np.array(values, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what} must be a numeric array-like of shape (n, m): {exc}") from None
    if arr.ndim != 2:
        raise ValueError(f"{what} must be 2-D with shape (n, m); got shape {arr.shape}")
    if arr.shape[1] < 1:
        raise ValueError(f"{what} must have at least one objective column; got shape {arr.shape}")
    return arr


def as_raw_points(values: Any, m: int) -> np.ndarray:
    """Raw objective values (n, m); an empty list is read as zero rows of ``m`` columns."""
    raw = np.array(values, dtype=float)
    if raw.ndim == 2 and raw.shape[0] == 0:
        raw = raw.reshape(0, m)
    raw = as_points(raw, "values")
    if raw.shape[1] != m:
        raise ValueError(f"values have {raw.shape[1]} columns but {m} names were given")
    return raw


def check_names(names: Any) -> int:
    """The number of objective names, after checking they are a non-empty sequence of strings."""
    if isinstance(names, str) or not isinstance(names, Sequence):
        raise ValueError(f"names must be a sequence of strings; got {names!r}")
    if len(names) < 1:
        raise ValueError("names must contain at least one objective")
    return len(names)


def check_directions(directions: Any, m: int) -> tuple[str, ...]:
    """Validate a sequence of ``m`` Optuna-style direction names."""
    if isinstance(directions, str) or not isinstance(directions, Sequence):
        raise ValueError(f"directions must be a sequence of {m} strings from {DIRECTIONS}; got {directions!r}")
    if len(directions) != m:
        raise ValueError(f"expected {m} directions (one per objective), got {len(directions)}")
    for d in directions:
        if d not in DIRECTIONS:
            raise ValueError(f"unknown direction {d!r}; valid directions are 'minimize' and 'maximize'")
    return tuple(directions)


def check_reference(reference: Any, m: int) -> np.ndarray:
    """Validate a finite reference point of shape (m,)."""
    try:
        ref = np.array(reference, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"reference must be a numeric array-like of shape ({m},): {exc}") from None
    if ref.shape != (m,):
        raise ValueError(f"reference must have shape ({m},) to match the points; got shape {ref.shape}")
    if not np.all(np.isfinite(ref)):
        raise ValueError(f"reference must be finite; got {ref.tolist()}")
    return ref
