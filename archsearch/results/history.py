"""How a run's Pareto front grew: hypervolume after each finished trial, and normalizations shared by runs."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from archsearch.pareto import REFERENCE_POINT_OFFSET, Normalization, hypervolume, non_dominated_mask
from archsearch.results.tables import objective_matrix, run_normalization
from archsearch.trial import COMPLETE

HISTORY_SCHEMA = pa.schema([
    ("trial_id", pa.int64()),
    ("n_evaluated", pa.int64()),
    ("elapsed_s", pa.float64()),
    ("active_s", pa.float64()),
    ("hypervolume", pa.float64()),
])


def sessions(records: Iterable[dict[str, Any]]) -> list[tuple[float, float]]:
    """``(start, end)`` of each stretch the run was running: from ``run_created`` or ``run_resumed`` to the
    last journal record before the next one. The gaps between them (a run stopped, resumed a day later)
    are not time the search spent."""
    spans: list[list[float]] = []
    for record in records:
        time = float(record.get("time", 0.0))
        if record.get("event") in ("run_created", "run_resumed") or not spans:
            spans.append([time, time])
        else:
            spans[-1][1] = max(spans[-1][1], time)
    return [(a, b) for a, b in spans]


def active_seconds(moment: float, spans: Sequence[tuple[float, float]]) -> float:
    """Seconds the run had been running at ``moment``, the gaps between sessions left out."""
    total = 0.0
    for start, end in spans:
        if moment < start:
            break
        total += min(moment, end) - start
    return total


def common_normalization(tables: Sequence[pa.Table], objectives: dict[str, str]) -> Normalization:
    """One normalization for several runs, so their hypervolumes are on one scale.

    Built-in metrics keep their fixed bounds (as in each run's own ``pareto.json``); the others are fitted
    to the union of the runs' complete trials.
    """
    values = [objective_matrix(table, objectives)[0] for table in tables]
    union = np.vstack(values) if values else np.empty((0, len(objectives)))
    return run_normalization(union, objectives)


def finish_order(records: Iterable[dict[str, Any]]) -> dict[int, int]:
    """Position of each trial's last ``trial_finished`` record in the journal.

    The last one counts because the trials table keeps the last result of a trial evaluated twice.
    """
    order: dict[int, int] = {}
    for position, record in enumerate(records):
        if record.get("event") == "trial_finished":
            order[record["trial_id"]] = position
    return order


def hypervolume_history(trials: list[dict[str, Any]], order: dict[int, int], objectives: dict[str, str],
                        normalization: Normalization, start_time: float,
                        spans: Sequence[tuple[float, float]] | None = None) -> pa.Table:
    """Hypervolume of the running front after each finished trial, in journal order.

    One fixed ``normalization`` (the run's final one, or one shared by runs being compared) makes the curve
    monotone: a point only ever adds volume. Failed and pruned trials count as evaluations (they spent
    budget) and leave the hypervolume unchanged.

    Args:
        trials: merged trials, as :meth:`RunStore.trials` returns them.
        order: journal position of each trial's finish, from :func:`finish_order`.
        objectives: ``{metric: direction}``.
        normalization: maps raw values to minimization space in [0, 1].
        start_time: when the run was created (seconds since the epoch); ``elapsed_s`` counts from it.
        spans: the run's sessions (:func:`sessions`); ``active_s`` counts their time only. Default: one
            session from ``start_time``.
    """
    spans = spans or [(start_time, float("inf"))]
    finished = [t for t in trials if t["result"] is not None and t["trial_id"] in order]
    finished.sort(key=lambda t: order[t["trial_id"]])
    reference = np.full(len(objectives), 1.0 + REFERENCE_POINT_OFFSET)
    front = np.empty((0, len(objectives)))
    volume = 0.0
    columns: dict[str, list[Any]] = {name: [] for name in HISTORY_SCHEMA.names}
    for n, trial in enumerate(finished, 1):
        point = _normalized_point(trial["result"], objectives, normalization)
        if point is not None and not _dominated_or_equal(point, front):
            front = np.vstack([front, point])
            front = front[non_dominated_mask(front)]
            volume = hypervolume(front, reference)
        columns["trial_id"].append(trial["trial_id"])
        columns["n_evaluated"].append(n)
        columns["elapsed_s"].append(trial["finished_at"] - start_time)
        columns["active_s"].append(active_seconds(trial["finished_at"], spans))
        columns["hypervolume"].append(volume)
    return pa.Table.from_pydict(columns, schema=HISTORY_SCHEMA)


def _normalized_point(result: dict[str, Any], objectives: dict[str, str],
                      normalization: Normalization) -> np.ndarray | None:
    if result.get("status") != COMPLETE:
        return None
    metrics = result.get("metrics", {})
    try:
        raw = np.array([[float(metrics[name]) for name in objectives]])
    except (KeyError, TypeError, ValueError):
        return None
    if not np.isfinite(raw).all():
        return None
    point = normalization.apply(raw)[0]
    return point if np.isfinite(point).all() else None


def _dominated_or_equal(point: np.ndarray, front: np.ndarray) -> bool:
    """Whether ``point`` adds no volume: some front member is at least as good in every objective."""
    return bool(len(front)) and bool(np.any(np.all(front <= point, axis=1)))
