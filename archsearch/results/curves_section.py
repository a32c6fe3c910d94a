"""The report's learning-curves section: who was stopped when, and how the front's trials trained.

One line per trial over epochs, for the task's validation metric (and the training loss beside it):
the Pareto front's trials in colour, other complete trials in grey, pruned ones in light grey ending at
the rung they stopped at; dotted verticals mark the rungs. It lives apart from the rest of the report so
that the page's layout and this section evolve separately.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from archsearch.results.run import Run

GREY, LIGHT = "rgba(90,90,90,0.55)", "rgba(170,170,170,0.35)"


def curves_section(run: Run) -> str:
    """``<h2>`` and the figure(s), or an empty string when no trial reported a curve."""
    from archsearch.results.page import figure_div

    curves = run.curves
    if curves.num_rows == 0:
        return ""
    metrics = [m for m in curves.column_names if m not in ("trial_id", "epoch")]
    preferred = [m for m in metrics if m.startswith("val_")] + [m for m in metrics if not m.startswith("val_")]
    rows = curves.to_pylist()
    trials = {r["trial_id"]: r for r in run.trials.select(["trial_id", "status", "rung", "fidelity"]).to_pylist()}
    front = set(run.summary()["pareto_trial_ids"])
    rungs = sorted({t["fidelity"] for t in trials.values() if t["fidelity"] is not None and t["status"] == "pruned"})
    divs = [figure_div(f"curves-{i}", _figure(rows, trials, front, metric, rungs))
            for i, metric in enumerate(preferred[:2])]
    n_pruned = sum(t["status"] == "pruned" for t in trials.values())
    note = ("One line per trial: the Pareto front in colour, other complete trials in grey"
            + (f", the {n_pruned} pruned trials in light grey, ending at the rung they stopped at (dotted)"
               if n_pruned else "") + ". Hover a line for its trial.")
    return f'<h2>Learning curves</h2>\n<p class="note">{html.escape(note)}</p>\n<div class="grid">{"".join(divs)}</div>'


def _figure(rows: list[dict[str, Any]], trials: dict[int, dict[str, Any]], front: set[int], metric: str,
            rungs: list[float]) -> Any:
    import plotly.graph_objects as go

    by_trial: dict[int, list[dict[str, Any]]] = {}
    for row in rows:
        if row.get(metric) is not None:
            by_trial.setdefault(row["trial_id"], []).append(row)
    figure = go.Figure()
    order = sorted(by_trial, key=lambda t: (t in front, trials.get(t, {}).get("status") == "complete"))
    for trial_id in order:  # drawn last, on top: the front
        points = by_trial[trial_id]
        status = trials.get(trial_id, {}).get("status")
        on_front = trial_id in front
        color = None if on_front else GREY if status == "complete" else LIGHT
        figure.add_trace(go.Scatter(
            x=[p["epoch"] for p in points], y=[p[metric] for p in points], mode="lines",
            name=f"trial {trial_id}", showlegend=on_front, hovertemplate=f"trial {trial_id} ({status})<br>"
            "epoch %{x}<br>" + metric + " %{y:.4g}<extra></extra>",
            line={"width": 2.5 if on_front else 1, **({"color": color} if color else {})}))
    for rung in rungs:
        figure.add_vline(x=rung, line={"dash": "dot", "width": 1, "color": "#888"})
    figure.update_layout(xaxis_title="epoch", yaxis_title=metric, margin={"l": 50, "r": 10, "t": 30, "b": 40},
                         height=360, template="plotly_white")
    return figure
