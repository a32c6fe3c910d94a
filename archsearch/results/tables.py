"""Journal -> Arrow tables: the trials table, its Pareto front and the front's hypervolume."""

from __future__ import annotations

import json
import math
import os
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from archsearch.pareto import Normalization, front_hypervolume, non_dominated_mask, to_minimization
from archsearch.versions import RUN_SCHEMA_VERSION

FIXED_COLUMNS = [
    ("trial_id", pa.int64()),
    ("arch_id", pa.string()),
    ("status", pa.string()),
    ("error", pa.string()),
    ("fidelity", pa.float64()),
    ("rung", pa.int64()),
    ("origin", pa.string()),
    ("genome_json", pa.string()),
    ("decisions_json", pa.string()),
    ("recipe_json", pa.string()),
    ("started_at", pa.timestamp("us", tz="UTC")),
    ("finished_at", pa.timestamp("us", tz="UTC")),
    ("duration_s", pa.float64()),
    ("worker", pa.string()),
    ("node", pa.string()),
    ("attempts", pa.int64()),
    ("device", pa.string()),
    ("device_kind", pa.string()),
    ("hot", pa.string()),
    ("seeds_json", pa.string()),
    ("stacked", pa.string()),
]
_FIXED_NAMES = {name for name, _ in FIXED_COLUMNS}


# Fixed bounds (lower, upper, log10 scale) for the built-in metrics, so that hypervolumes of different
# runs are on one scale without re-normalizing; other metrics are scaled to the run's own range.
STANDARD_BOUNDS: dict[str, tuple[float, float, bool]] = {
    "accuracy": (0.0, 1.0, False),
    "n_params": (1e2, 1e8, True),
    "flops": (1e2, 1e11, True),
    "latency_ms": (1e-3, 1e3, True),
    "train_time_s": (1e-2, 1e4, True),
}


def standard_bounds(name: str) -> tuple[float, float, bool] | None:
    if name.endswith("_accuracy"):
        return STANDARD_BOUNDS["accuracy"]
    return STANDARD_BOUNDS.get(name)


def run_normalization(values: np.ndarray, objectives: dict[str, str]) -> Normalization:
    """Fixed bounds for built-in metrics, the observed range for the rest."""
    fitted = Normalization.from_data(list(objectives), list(objectives.values()), values)
    lower, upper, logs = list(fitted.lower), list(fitted.upper), list(fitted.log_scale)
    for k, name in enumerate(objectives):
        bounds = standard_bounds(name)
        if bounds is not None:
            low, high, log = bounds
            lower[k], upper[k], logs[k] = (np.log10(low), np.log10(high), True) if log else (low, high, False)
    return Normalization(fitted.names, fitted.directions, tuple(float(v) for v in lower),
                         tuple(float(v) for v in upper), tuple(logs))


GENE_PREFIX = "gene."


def is_integer_metric(name: str) -> bool:
    """Counts: ``n_params``, ``flops`` and any ``n_*`` metric; stored as int64 when every value is whole."""
    return name in ("n_params", "flops") or name.startswith("n_")


def _metric_array(name: str, values: list[Any]) -> pa.Array:
    present = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if is_integer_metric(name) and all(float(v).is_integer() for v in present):
        return pa.array([None if v is None or (isinstance(v, float) and math.isnan(v)) else int(v) for v in values],
                        pa.int64())
    return pa.array(values, pa.float64())


def gene_array(values: list[Any]) -> pa.Array:
    """One decision across trials, typed: bool, int64, float64 or string (mixed kinds as JSON text)."""
    present = [v for v in values if v is not None]
    if present and all(isinstance(v, bool) for v in present):
        return pa.array(values, pa.bool_())
    if present and all(isinstance(v, int) and not isinstance(v, bool) for v in present):
        return pa.array(values, pa.int64())
    if present and all(isinstance(v, int | float) and not isinstance(v, bool) for v in present):
        return pa.array([None if v is None else float(v) for v in values], pa.float64())
    return pa.array([None if v is None else v if isinstance(v, str) else json.dumps(v) for v in values], pa.string())


def _fidelity(candidate: dict[str, Any], result: dict[str, Any]) -> float | None:
    """What the trial was trained to: the candidate's fidelity, else the evaluator's, else its epochs trained."""
    for value in (candidate.get("fidelity"), (result.get("info") or {}).get("fidelity"),
                  (result.get("metrics") or {}).get("epochs_trained")):
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    return None


def _timestamp(seconds: float | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, tz=timezone.utc)


def metric_column(name: str) -> str:
    """Metric names become column names, except where they would shadow a fixed column."""
    return f"metric_{name}" if name in _FIXED_NAMES else name


def _reached(trial: dict[str, Any], key: str, default: Any) -> Any:
    """The fidelity or rung a trial reached: its final result's, else its last rung report's."""
    info = (trial["result"] or {}).get("info") or {}
    if info.get(key) is not None:
        return info[key]
    reports = trial.get("reports") or []
    if reports and reports[-1].get(key) is not None:
        return reports[-1][key]
    return default if default is not None else trial.get(key)


def trials_table(trials: list[dict[str, Any]], objectives: dict[str, str]) -> pa.Table:
    """One row per trial; trials still in flight have status ``running`` and no metrics."""
    metric_names: set[str] = set(objectives)
    for trial in trials:
        if trial["result"]:
            metric_names.update(trial["result"]["metrics"])
    ordered_metrics = list(objectives) + sorted(metric_names - set(objectives))
    columns: dict[str, list[Any]] = {name: [] for name, _ in FIXED_COLUMNS}
    columns.update({metric_column(m): [] for m in ordered_metrics})
    genes = sorted({label for trial in trials for label in trial["candidate"].get("decisions", {})})
    gene_values: dict[str, list[Any]] = {label: [] for label in genes}
    for trial in trials:
        candidate, result = trial["candidate"], trial["result"] or {}
        metrics = result.get("metrics", {})
        finished = trial["finished_at"]
        row = {
            "trial_id": trial["trial_id"],
            "arch_id": candidate["arch_id"],
            "status": result.get("status", "running"),
            "error": result.get("error"),
            "fidelity": _reached(trial, "fidelity", _fidelity(candidate, result)),
            "rung": _reached(trial, "rung", None),
            "origin": candidate.get("origin", ""),
            "genome_json": json.dumps(candidate["architecture"], sort_keys=True),
            "decisions_json": json.dumps(candidate["decisions"], sort_keys=True),
            "recipe_json": _recipe_json(result),
            "started_at": _timestamp(trial["started_at"]),
            "finished_at": _timestamp(finished),
            "duration_s": None if finished is None else finished - trial["started_at"],
            "worker": (result.get("info") or {}).get("worker"),
            "node": (result.get("info") or {}).get("node"),
            "attempts": (result.get("info") or {}).get("attempts"),
            "device": (result.get("info") or {}).get("device"),
            "device_kind": (result.get("info") or {}).get("device_kind"),
            "hot": (result.get("info") or {}).get("hot"),
            **_seed_columns(result.get("info") or {}),
        }
        for name, _ in FIXED_COLUMNS:
            columns[name].append(row[name])
        for m in ordered_metrics:
            columns[metric_column(m)].append(metrics.get(m))
        decisions = candidate.get("decisions", {})
        for label in genes:
            gene_values[label].append(decisions.get(label))
    arrays = [pa.array(columns[n], t) for n, t in FIXED_COLUMNS]
    arrays += [_metric_array(m, columns[metric_column(m)]) for m in ordered_metrics]
    arrays += [gene_array(gene_values[label]) for label in genes]
    names = [n for n, _ in FIXED_COLUMNS] + [metric_column(m) for m in ordered_metrics]
    names += [GENE_PREFIX + label for label in genes]
    metadata = {
        "archsearch.schema_version": str(RUN_SCHEMA_VERSION),
        "archsearch.objectives": json.dumps(objectives),
    }
    return pa.Table.from_arrays(arrays, names=names).replace_schema_metadata(metadata)


def _seed_columns(info: dict[str, Any]) -> dict[str, str | None]:
    """With ``training.seeds`` above 1: every seed's scores as JSON, and whether they trained stacked (or why
    not); a trial that trained in a stacked group of trials says so."""
    if "per_seed" not in info:
        group, refused = info.get("stacked_group"), info.get("group_not_stacked")
        stacked = f"group of {group}" if group else f"no: {refused}" if refused else None
        return {"seeds_json": None, "stacked": stacked}
    stacked = "yes" if info.get("stacked") else f"no: {info.get('not_stacked')}"
    return {"seeds_json": json.dumps(info["per_seed"], sort_keys=True), "stacked": stacked}


def _recipe_json(result: dict[str, Any]) -> str | None:
    """The training recipe the evaluator resolved for the trial (None for a user's evaluate function)."""
    recipe = (result.get("info") or {}).get("recipe")
    return None if recipe is None else json.dumps(recipe, sort_keys=True)


def objective_matrix(table: pa.Table, objectives: dict[str, str]) -> tuple[np.ndarray, np.ndarray]:
    """Raw objective values of complete trials with all objectives finite, and their row indices."""
    if table.num_rows == 0:
        return np.empty((0, len(objectives))), np.empty(0, dtype=int)
    status = np.array(table.column("status").to_pylist())
    values = np.column_stack([
        np.array(table.column(metric_column(m)).to_pylist(), dtype=float) for m in objectives
    ])
    ok = (status == "complete") & np.isfinite(values).all(axis=1)
    rows = np.flatnonzero(ok)
    return values[rows], rows


def pareto_rows(table: pa.Table, objectives: dict[str, str]) -> np.ndarray:
    """Row indices of the non-dominated complete trials, best first in the first objective."""
    values, rows = objective_matrix(table, objectives)
    if len(rows) == 0:
        return rows
    points = to_minimization(values, list(objectives.values()))
    mask = non_dominated_mask(points)
    front, front_points = rows[mask], points[mask]
    return front[np.lexsort(front_points.T[::-1])]


def pareto_table(table: pa.Table, objectives: dict[str, str]) -> pa.Table:
    return table.take(pa.array(pareto_rows(table, objectives), type=pa.int64()))


def pareto_summary(table: pa.Table, objectives: dict[str, str]) -> dict[str, Any]:
    """Counts, the front's trial ids and its hypervolume with normalization and reference point."""
    values, _ = objective_matrix(table, objectives)
    counts = Counter(table.column("status").to_pylist()) if table.num_rows else Counter()
    summary: dict[str, Any] = {
        "schema_version": RUN_SCHEMA_VERSION,
        "objectives": objectives,
        "n_trials": table.num_rows,
        "status_counts": dict(sorted(counts.items())),
        "pareto_trial_ids": [int(table.column("trial_id")[int(i)].as_py()) for i in pareto_rows(table, objectives)],
    }
    if len(values):
        summary.update(front_hypervolume(values, list(objectives.values()), list(objectives),
                                         run_normalization(values, objectives)))
    else:
        summary.update({"hypervolume": math.nan, "reference_point": None, "normalization": None, "n_points": 0})
    return summary


def write_parquet(table: pa.Table, path: Path) -> None:
    """Write atomically: a reader sees the old file or the new one, never a partial one."""
    tmp = path.with_name(f".{path.name}.tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, path)
