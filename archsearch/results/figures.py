"""Plotly figures of saved runs: Pareto fronts, hypervolume curves, gene importance, learning curves and
the few genes that matter against the objectives.

Figures are built from :class:`RunPoints`, not from a :class:`Run`, so the report and the comparison page
share them. This module (like ``page.py``) imports plotly, and is itself imported only when a page is
written: ``import archsearch`` and ``archsearch --help`` do not pay for plotly.

Figures get plain lists, never numpy arrays: plotly >= 6 would base64-encode arrays, and the page's data
should stay readable (and checkable) as JSON.
"""

from __future__ import annotations

import html
import itertools
import json
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import plotly.graph_objects as go
import pyarrow as pa
from plotly.subplots import make_subplots

from archsearch.console import describe_architecture, format_value
from archsearch.pareto import Normalization, non_dominated_mask, to_minimization
from archsearch.results.tables import metric_column, objective_matrix, pareto_rows

TEMPLATE = "plotly_white"
FADED = "rgba(140, 140, 160, 0.35)"
PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#e377c2", "#8c564b")
MAX_PAIRS = 15  # 6 objectives; beyond that the page would be a wall of scatter plots


@dataclass
class RunPoints:
    """The complete trials of one run with finite objectives: what every figure plots.

    Attributes:
        label: how the run is named in legends.
        objectives: ``{metric: direction}``.
        trial_ids: one per point.
        values: raw objective values, shape (n, m).
        on_front: whether each point is on the run's Pareto front.
        hover: hover text of each point (trial id, architecture sketch, objective values), HTML-escaped.
        decisions: each point's decisions (the genes).
    """

    label: str
    objectives: dict[str, str]
    trial_ids: list[int]
    values: np.ndarray
    on_front: np.ndarray
    hover: list[str]
    decisions: list[dict[str, Any]]

    @classmethod
    def from_table(cls, table: pa.Table, objectives: dict[str, str], label: str = "") -> RunPoints:
        values, rows = objective_matrix(table, objectives)
        front = set(pareto_rows(table, objectives).tolist())
        taken = table.take(pa.array(rows, type=pa.int64())).to_pylist() if len(rows) else []
        hover = [_hover(row, objectives, label) for row in taken]
        return cls(label, objectives, [row["trial_id"] for row in taken], values,
                   np.array([int(r) in front for r in rows], dtype=bool), hover,
                   [json.loads(row["decisions_json"]) for row in taken])


def _hover(row: dict[str, Any], objectives: dict[str, str], label: str) -> str:
    sketch = "<br>".join(html.escape(line) for line in textwrap.wrap(describe_architecture(row["genome_json"]), 70))
    values = "<br>".join(f"{html.escape(name)} = {format_value(name, row[metric_column(name)])}"
                         for name in objectives)
    run = f"{html.escape(label)} · " if label else ""
    return f"<b>{run}trial {row['trial_id']}</b><br>{sketch}<br>{values}"


def axis_title(name: str, direction: str) -> str:
    return f"{name} ({'max' if direction == 'maximize' else 'min'})"


def _log_axes(normalization: Normalization | None, values: np.ndarray) -> list[bool]:
    """Log axes where the hypervolume is computed on a log scale, and the values allow one."""
    if normalization is None:
        return [False] * values.shape[1]
    positive: list[bool] = np.all(values > 0, axis=0).tolist() if len(values) else [True] * values.shape[1]
    return [bool(log and ok) for log, ok in zip(normalization.log_scale, positive, strict=True)]


def _staircase(values: np.ndarray, directions: Sequence[str]) -> np.ndarray:
    """The 2-D non-dominated points of one objective pair, ordered along the front for a line."""
    if len(values) == 0:
        return values
    points = to_minimization(values, list(directions))
    front = values[non_dominated_mask(points)]
    return front[np.lexsort((front[:, 1], front[:, 0]))]


def objective_pairs(m: int) -> list[tuple[int, int]]:
    return list(itertools.combinations(range(m), 2))[:MAX_PAIRS]


def pair_figure(runs: Sequence[RunPoints], i: int, j: int, normalization: Normalization | None,
                faded: bool = True) -> go.Figure:
    """Objective ``i`` against objective ``j``: all complete trials faded, each run's front highlighted.

    A dashed line joins the points that are non-dominated in this pair alone, so the trade-off between
    the two objectives reads at a glance even where the full front has more dimensions.
    """
    names, directions = list(runs[0].objectives), list(runs[0].objectives.values())
    # The step follows the edge of the dominated region: sorted by x ascending, a minimized x keeps the
    # previous point's y until the next x (hv); a maximized x takes the next point's y at once (vh).
    shape = "hv" if directions[i] == "minimize" else "vh"
    fig = go.Figure()
    for k, run in enumerate(runs):
        color = PALETTE[k % len(PALETTE)]
        prefix = f"{run.label}: " if len(runs) > 1 else ""
        if faded:
            fig.add_trace(go.Scatter(
                x=run.values[:, i].tolist(), y=run.values[:, j].tolist(), mode="markers", name=f"{prefix}all complete trials",
                marker={"color": FADED, "size": 7}, text=run.hover, hovertemplate="%{text}<extra></extra>"))
        front = run.on_front
        fig.add_trace(go.Scatter(
            x=run.values[front, i].tolist(), y=run.values[front, j].tolist(), mode="markers", name=f"{prefix}Pareto front",
            marker={"color": color, "size": 11, "line": {"color": "white", "width": 1}},
            text=[t for t, f in zip(run.hover, front, strict=True) if f], hovertemplate="%{text}<extra></extra>"))
        stairs = _staircase(run.values[front][:, [i, j]], [directions[i], directions[j]])
        fig.add_trace(go.Scatter(x=stairs[:, 0].tolist(), y=stairs[:, 1].tolist(), mode="lines", hoverinfo="skip",
                                 line={"color": color, "dash": "dot", "width": 1, "shape": shape},
                                 name=f"{prefix}front in this pair", showlegend=len(runs) == 1))
    logs = _log_axes(normalization, np.vstack([r.values for r in runs]))
    fig.update_layout(template=TEMPLATE, height=420, margin={"l": 60, "r": 40, "t": 40, "b": 50},
                      title={"text": f"{names[i]} vs {names[j]}", "x": 0.02},
                      legend={"orientation": "h", "y": -0.18}, hoverlabel={"align": "left"},
                      modebar={"orientation": "v"})  # a horizontal bar would cover the title of a narrow plot
    fig.update_xaxes(title=axis_title(names[i], directions[i]), type="log" if logs[i] else "linear",
                     **({"dtick": "D2"} if logs[i] else {}))  # 1, 2, 5 per decade, not every digit
    fig.update_yaxes(title=axis_title(names[j], directions[j]), type="log" if logs[j] else "linear",
                     **({"dtick": "D2"} if logs[j] else {}))
    return fig


def single_figure(run: RunPoints) -> go.Figure:
    """A run with one objective: its value against trial id, the best trials highlighted."""
    name, direction = next(iter(run.objectives.items()))
    fig = go.Figure()
    for mask, label, marker in ((~run.on_front, "complete trials", {"color": FADED, "size": 7}),
                                (run.on_front, "best", {"color": PALETTE[0], "size": 11})):
        fig.add_trace(go.Scatter(
            x=[t for t, f in zip(run.trial_ids, mask, strict=True) if f], y=run.values[mask, 0].tolist(), mode="markers",
            name=label, marker=marker, text=[t for t, f in zip(run.hover, mask, strict=True) if f],
            hovertemplate="%{text}<extra></extra>"))
    fig.update_layout(template=TEMPLATE, height=420, xaxis_title="trial", yaxis_title=axis_title(name, direction))
    return fig


def front_3d_figure(run: RunPoints, normalization: Normalization | None) -> go.Figure:
    """The first three objectives in 3-D: every complete trial faded, the front highlighted."""
    names, directions = list(run.objectives)[:3], list(run.objectives.values())[:3]
    logs = _log_axes(normalization, run.values)[:3]
    fig = go.Figure()
    for mask, name, marker in (
        (~run.on_front, "other complete trials", {"color": "rgba(120, 120, 145, 0.5)", "size": 3}),
        (run.on_front, "Pareto front", {"color": PALETTE[0], "size": 6}),
    ):
        fig.add_trace(go.Scatter3d(
            x=run.values[mask, 0].tolist(), y=run.values[mask, 1].tolist(), z=run.values[mask, 2].tolist(), mode="markers", name=name,
            marker=marker, text=[t for t, f in zip(run.hover, mask, strict=True) if f],
            hovertemplate="%{text}<extra></extra>"))
    axes: dict[str, Any] = {f"{axis}axis": {"title": {"text": axis_title(n, d)}, "type": "log" if log else "linear",
                            **({"dtick": "D2"} if log else {})}
            for axis, n, d, log in zip("xyz", names, directions, logs, strict=True)}
    axes["camera"] = {"eye": {"x": 1.4, "y": 1.4, "z": 0.9}, "center": {"x": 0, "y": 0, "z": -0.22}}
    axes["domain"] = {"x": [0, 1], "y": [0.04, 1]}
    fig.update_layout(template=TEMPLATE, height=640, margin={"l": 10, "r": 10, "t": 50, "b": 30},
                      title={"text": " / ".join(names), "x": 0.02}, scene=axes, hoverlabel={"align": "left"},
                      legend={"orientation": "h", "y": 0.0, "x": 0.02})
    return fig


def hypervolume_figure(histories: Sequence[tuple[str, pa.Table]]) -> go.Figure:
    """Hypervolume against evaluations (left) and against active search time (right), one line per run."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=("against evaluations", "against search time"),
                        horizontal_spacing=0.08)
    for k, (label, history) in enumerate(histories):
        color = PALETTE[k % len(PALETTE)]
        hv = history.column("hypervolume").to_pylist()
        ids = history.column("trial_id").to_pylist()
        text = [f"{html.escape(label)}<br>after trial {t}: {v:.4f}" for t, v in zip(ids, hv, strict=True)]
        for col, x in ((1, history.column("n_evaluated").to_pylist()), (2, history.column("active_s").to_pylist())):
            mode = "lines+markers" if len(hv) <= 200 else "lines"  # thousands of markers would blur the line
            fig.add_trace(go.Scatter(x=x, y=hv, mode=mode, line={"shape": "hv", "color": color},
                                     marker={"size": 4}, name=label, legendgroup=label, showlegend=col == 1,
                                     text=text, hovertemplate="%{text}<extra></extra>"), row=1, col=col)
    fig.update_xaxes(title_text="trials evaluated", row=1, col=1)
    fig.update_xaxes(title_text="seconds of search (pauses between stop and resume left out)", row=1, col=2)
    fig.update_yaxes(title_text="hypervolume (normalized)", row=1, col=1, rangemode="tozero")
    fig.update_yaxes(rangemode="tozero", row=1, col=2)
    fig.update_layout(template=TEMPLATE, height=400, margin={"l": 60, "r": 20, "t": 40, "b": 50},
                      showlegend=len(histories) > 1, legend={"orientation": "h", "y": -0.2})
    return fig


def encode_gene(values: Sequence[Any]) -> dict[str, Any] | None:
    """One parallel-coordinates axis: numbers as they are, anything else as ticked categories.

    A gene missing from some genomes (a conditional decision, such as the fourth block's activation in
    a three-block network) becomes a category ``-``. Returns None for a gene with one value: an axis
    that cannot separate anything.
    """
    present = [v for v in values if v is not None]
    numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present)
    if len({json.dumps(v) for v in values}) < 2:
        return None
    if numeric and len(present) == len(values):
        return {"values": [float(v) for v in values]}
    categories = sorted({json.dumps(v) for v in present},
                        key=lambda s: (0, json.loads(s), "") if numeric else (1, 0, s))
    labels = [c.strip('"') for c in categories] + (["-"] if len(present) < len(values) else [])
    index = {c: k for k, c in enumerate(categories)}
    codes = [index[json.dumps(v)] if v is not None else len(categories) for v in values]
    return {"values": codes, "tickvals": list(range(len(labels))), "ticktext": labels}


def parallel_figure(run: RunPoints, genes: Sequence[str] | None = None,
                    log_scale: Sequence[bool] | None = None) -> tuple[go.Figure, list[str]]:
    """Genes (decisions) against objectives, one line per complete trial, coloured by the first objective.

    Args:
        genes: the genes to show (the few that matter); default every gene.
        log_scale: per objective, whether to show it as log10 (parameters and latency span decades).

    Returns the figure and the genes left out because every trial made the same choice.
    """
    names = list(genes) if genes is not None else sorted({key for d in run.decisions for key in d})
    dimensions: list[dict[str, Any]] = [
        {"label": "on front", "values": run.on_front.astype(int).tolist(), "tickvals": [0, 1],
         "ticktext": ["no", "yes"]},
    ]
    constant = []
    for name in names:
        axis = encode_gene([d.get(name) for d in run.decisions])
        if axis is None:
            constant.append(name)
        else:
            dimensions.append({"label": name, **axis})
    for k, (name, direction) in enumerate(run.objectives.items()):
        values = run.values[:, k]
        if log_scale is not None and log_scale[k] and (values > 0).all():
            dimensions.append({"label": f"log10 {axis_title(name, direction)}", "values": np.log10(values).tolist()})
        else:
            dimensions.append({"label": axis_title(name, direction), "values": values.tolist()})
    first, direction = next(iter(run.objectives.items()))
    fig = go.Figure(go.Parcoords(
        dimensions=dimensions, labelangle=-30, labelside="top",
        line={"color": run.values[:, 0].tolist(), "colorscale": "Viridis", "showscale": True,
              "reversescale": direction == "minimize", "colorbar": {"title": {"text": first}}}))
    fig.update_layout(template=TEMPLATE, height=520, margin={"l": 60, "r": 110, "t": 140, "b": 30})
    return fig, constant


def importance_figure(importances: Sequence[Any], top: int = 12) -> go.Figure:
    """One horizontal bar chart per objective: the genes whose shuffling costs the forest most R²."""
    n = len(importances)
    titles = [f"{imp.objective} (genes explain R² {imp.oob_r2:.2f})" for imp in importances]
    fig = make_subplots(rows=1, cols=n, subplot_titles=titles, horizontal_spacing=0.12 if n > 1 else 0.0)
    for k, imp in enumerate(importances):
        genes, mean, std = imp.genes[:top][::-1], imp.mean[:top][::-1], imp.std[:top][::-1]
        fig.add_trace(go.Bar(x=[max(m, 0.0) for m in mean], y=genes, orientation="h", showlegend=False,
                             marker={"color": PALETTE[k % len(PALETTE)]},
                             error_x={"type": "data", "array": std, "thickness": 1, "width": 2},
                             hovertemplate="%{y}: R² drop %{x:.3f}<extra></extra>"), row=1, col=k + 1)
        fig.update_xaxes(title_text="R² drop when shuffled", rangemode="tozero", row=1, col=k + 1)
        fig.update_yaxes(automargin=True, tickfont={"size": 11}, row=1, col=k + 1)
    fig.update_layout(template=TEMPLATE, height=max(300, 26 * min(top, max(len(i.genes) for i in importances)) + 110),
                      margin={"l": 10, "r": 20, "t": 50, "b": 50})
    for annotation in fig.layout.annotations:
        annotation.font = {"size": 13}
    return fig


def curves_figure(curves: pa.Table, metrics: Sequence[str], front_ids: set[int], pruned_ids: set[int],
                  hover: dict[int, str] | None = None) -> go.Figure:
    """Learning curves, one panel per metric: the front's trials in colour (one line each), pruned trials
    dashed grey, the rest faint; every trial's line ends where its training ended."""
    fig = make_subplots(rows=1, cols=len(metrics), subplot_titles=list(metrics), horizontal_spacing=0.08)
    ids = curves.column("trial_id").to_pylist()
    epochs = curves.column("epoch").to_pylist()
    by_trial: dict[int, list[int]] = {}
    for row, trial in enumerate(ids):
        by_trial.setdefault(int(trial), []).append(row)
    for col, metric in enumerate(metrics, 1):
        values = curves.column(metric).to_pylist()
        groups: dict[str, tuple[list[Any], list[Any]]] = {"other": ([], []), "pruned": ([], [])}
        colour = 0
        for trial, rows in sorted(by_trial.items()):
            rows = sorted(rows, key=lambda r: epochs[r])
            xs, ys = [epochs[r] for r in rows], [values[r] for r in rows]
            if trial in front_ids:
                text = (hover or {}).get(trial, f"trial {trial}")
                fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines+markers", name=f"trial {trial} (front)",
                                         legendgroup=str(trial), showlegend=col == 1, marker={"size": 4},
                                         line={"color": PALETTE[colour % len(PALETTE)], "width": 2},
                                         text=[text] * len(xs), hovertemplate="%{text}<br>epoch %{x}: %{y:.4g}"
                                         "<extra></extra>"), row=1, col=col)
                colour += 1
            else:
                gx, gy = groups["pruned" if trial in pruned_ids else "other"]
                gx.extend([*xs, None])
                gy.extend([*ys, None])
        for group, style, label in (("other", {"color": "rgba(120, 140, 180, 0.35)", "width": 1}, "other trials"),
                                    ("pruned", {"color": "rgba(150, 150, 150, 0.6)", "width": 1, "dash": "dot"},
                                     "pruned trials")):
            gx, gy = groups[group]
            if gx:
                fig.add_trace(go.Scatter(x=gx, y=gy, mode="lines", line=style, name=label, legendgroup=group,
                                         showlegend=col == 1, hoverinfo="skip"), row=1, col=col)
        fig.update_xaxes(title_text="epoch", row=1, col=col)
    fig.update_layout(template=TEMPLATE, height=420, margin={"l": 60, "r": 20, "t": 40, "b": 50},
                      legend={"orientation": "h", "y": -0.22})
    return fig
