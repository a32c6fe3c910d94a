"""Journal -> the learning-curves table: one row per trial and epoch.

Each evaluation returns the curve of the epochs it trained (a trial continued from a checkpoint
returns several segments, one per rung); the table joins them. Columns: ``trial_id`` (int64),
``epoch`` (int64, counted from the trial's start), then one float64 column per metric reported per
epoch (``train_loss``, ``val_accuracy`` or ``val_rmse``, or what a user's ``report`` gave), null where
a trial did not report that metric.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

CURVE_KEYS = ("trial_id", "epoch")


def curve_points(trial: dict[str, Any]) -> list[dict[str, float]]:
    """A journaled trial's learning curve, segments in order (rung reports, then its final result)."""
    results = [report["result"] for report in trial.get("reports", [])]
    if trial.get("result") is not None:
        results.append(trial["result"])
    points: dict[int, dict[str, float]] = {}
    for result in results:
        for point in result.get("curve") or []:
            points[int(point["epoch"])] = point  # a segment trained again after a crash replaces its epochs
    return [points[e] for e in sorted(points)]


def curves_table(trials: list[dict[str, Any]]) -> pa.Table:
    rows = [(trial["trial_id"], point) for trial in trials for point in curve_points(trial)]
    metrics = sorted({k for _, point in rows for k in point} - {"epoch"})
    columns: dict[str, list[Any]] = {"trial_id": [], "epoch": [], **{m: [] for m in metrics}}
    for trial_id, point in rows:
        columns["trial_id"].append(trial_id)
        columns["epoch"].append(int(point["epoch"]))
        for m in metrics:
            columns[m].append(point.get(m))
    fields = [pa.field("trial_id", pa.int64()), pa.field("epoch", pa.int64())]
    fields += [pa.field(m, pa.float64()) for m in metrics]
    return pa.Table.from_pydict(columns, schema=pa.schema(fields))
