"""Hypervolume improvement of many candidate points against one front, exactly.

A model-based strategy scores a pool of candidates times a few dozen samples of their objectives:
thousands of points against the same front. Two objectives (a quality metric against size or latency,
the common case) are vectorized over the front's staircase; three or more go point by point through
moocore, skipping the points the front already dominates (most of them, once a search has a front).
"""

from __future__ import annotations

from typing import Any

import moocore
import numpy as np

from archsearch.pareto._checks import as_points, check_reference
from archsearch.pareto.hypervolume import hypervolume


def hypervolume_improvement(points: Any, front: Any, reference: Any) -> np.ndarray:
    """``HV(front + [p]) - HV(front)`` for each row ``p`` of ``points`` (minimization space).

    Args:
        points: ``(n, m)`` candidate points; NaN rows improve nothing.
        front: ``(k, m)`` the current points (dominated rows are harmless; may be empty).
        reference: ``(m,)`` the reference point.
    """
    pts = as_points(points)
    m = pts.shape[1]
    ref = check_reference(reference, m)
    base = as_points(front).reshape(-1, m) if np.size(front) else np.zeros((0, m))
    base = base[np.all(base < ref, axis=1) & ~np.isnan(base).any(axis=1)]
    gains = np.zeros(len(pts))
    valid = ~np.isnan(pts).any(axis=1)
    if m == 2:
        gains[valid] = _improvement_2d(np.minimum(pts[valid], ref), base, ref)
        return gains
    dominated = np.zeros(len(pts), dtype=bool)
    for f in base:  # a point weakly dominated by the front adds nothing
        dominated |= np.all(pts >= f, axis=1)
    todo = np.flatnonzero(valid & ~dominated & np.all(pts < ref, axis=1))
    if m == 1:
        best = base[:, 0].min() if len(base) else ref[0]
        gains[todo] = best - pts[todo, 0]
        return gains
    before = hypervolume(base, ref) if len(base) else 0.0
    for i in todo:
        gains[i] = float(moocore.hypervolume(np.vstack([base, pts[i]]), ref=ref)) - before
    return np.clip(gains, 0.0, None)


def _improvement_2d(points: np.ndarray, front: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """The area between each point and the front's staircase inside the reference box.

    With the front sorted by the first objective, the staircase height over ``[x_k, x_{k+1})`` is the
    best second objective among the first k points (the reference before the first); a point at
    ``(a, b)`` adds ``|[x_k, x_{k+1}) ∩ [a, ref)| * max(0, height_k - b)`` summed over the steps.
    """
    order = np.argsort(front[:, 0], kind="stable")
    xs, ys = front[order, 0], front[order, 1]
    starts = np.concatenate([[-np.inf], xs])
    ends = np.concatenate([xs, [ref[0]]])
    heights = np.concatenate([[ref[1]], np.minimum.accumulate(ys)])
    lengths = np.clip(ends[None, :] - np.maximum(starts[None, :], points[:, :1]), 0.0, None)
    return (lengths * np.clip(heights[None, :] - points[:, 1:2], 0.0, None)).sum(axis=1)
