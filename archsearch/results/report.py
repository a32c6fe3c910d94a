"""``archsearch report RUN_DIR``: one offline HTML page to explore a run.

The page holds the Pareto front (a 2-D plot per objective pair, and 3-D with three or more objectives),
the hypervolume against evaluations and wall-clock time, genes against objectives in parallel
coordinates, and the front as a sortable table listing each member's architecture.
"""

from __future__ import annotations

import html
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from archsearch.console import describe_recipe, format_value
from archsearch.results.page import facts_table, figure_div, page, sortable_table, write_page
from archsearch.results.tables import metric_column

if TYPE_CHECKING:
    import pyarrow as pa

    from archsearch.results.figures import RunPoints
    from archsearch.results.pareto import Normalization
    from archsearch.results.run import Run


def write_report(run: Run, path: Path) -> Path:
    """Render the report of ``run`` to ``path`` (atomically) and return the path."""
    return write_page(path, render_report(run))


def render_report(run: Run) -> str:
    from archsearch.results.figures import RunPoints

    points = RunPoints.from_table(run.trials, run.objectives, label=run.path.name)
    normalization = run.normalization()
    history = run.hypervolume_history(normalization)
    summary = run.summary()
    sections = [
        f"<h1>archsearch report: {html.escape(run.path.name)}</h1>",
        facts_table(_facts(summary)),
        "<h2>Pareto front</h2>",
        _front_plots(points, normalization),
        "<h2>Hypervolume</h2>",
        '<p class="note">Hypervolume of the front of the trials finished so far, in the order the journal '
        "recorded them, on the run's final normalization (the one in pareto.json), so the curve only rises. "
        "Failed trials count as evaluations.</p>",
        _hypervolume_plot([(run.path.name, history)]),
        "<h2>Genes against objectives</h2>",
        _parallel_plot(points),
        f"<h2>The front ({len(summary['pareto_trial_ids'])} trials)</h2>",
        '<p class="note">Click a column header to sort.</p>',
        front_table_html(run),
    ]
    return page(f"archsearch report: {run.path.name}", "\n".join(sections))


def _facts(summary: dict[str, Any]) -> list[tuple[str, str]]:
    counts = ", ".join(f"{k}: {v}" for k, v in summary["status_counts"].items()) or "none"
    hv = summary.get("hypervolume")
    facts = [(key, str(summary.get(key))) for key in ("path", "space", "strategy", "task", "seed", "budget")]
    facts.append(("trials", f"{summary['n_trials']} ({counts})"))
    facts += [(f"best {name}", format_value(name, value)) for name, value in summary["best"].items()]
    facts.append(("hypervolume", "-" if hv is None or math.isnan(hv) else f"{hv:.4f} (normalized)"))
    facts.append(("front size", str(len(summary["pareto_trial_ids"]))))
    return facts


def _empty(what: str) -> str:
    return f'<p class="note">No complete trials yet: no {what} to draw.</p>'


def _front_plots(points: RunPoints, normalization: Normalization) -> str:
    from archsearch.results.figures import front_3d_figure, objective_pairs, pair_figure, single_figure

    if len(points.trial_ids) == 0:
        return _empty("front")
    m = len(points.objectives)
    if m == 1:
        return figure_div("front-1d", single_figure(points))
    divs = [figure_div(f"pair-{i}-{j}", pair_figure([points], i, j, normalization))
            for i, j in objective_pairs(m)]
    parts = ['<p class="note">Every complete trial in grey, the Pareto front over all objectives in colour; '
             "the dotted line joins the trials that are non-dominated in the two plotted objectives alone. "
             "Hover a point for its trial id and architecture.</p>", f'<div class="grid">{"".join(divs)}</div>']
    if m >= 3:
        parts.append(figure_div("front-3d", front_3d_figure(points, normalization)))
    return "\n".join(parts)


def _hypervolume_plot(histories: list[tuple[str, pa.Table]]) -> str:
    from archsearch.results.figures import hypervolume_figure

    if all(h.num_rows == 0 for _, h in histories):
        return '<p class="note">No finished trials yet.</p>'
    return figure_div("hypervolume", hypervolume_figure(histories))


def _parallel_plot(points: RunPoints) -> str:
    from archsearch.results.figures import parallel_figure

    if len(points.trial_ids) == 0:
        return _empty("genes")
    figure, constant = parallel_figure(points)
    note = ('<p class="note">One line per complete trial. Categorical genes are numbered, with their values as '
            'tick labels; "-" marks a gene the architecture does not have (a conditional decision). Drag '
            "along an axis to select a range.")
    if constant:
        note += f" Genes with a single value in every trial are left out: {html.escape(', '.join(constant))}."
    return note + "</p>\n" + figure_div("genes", figure)


def front_table_html(run: Run) -> str:
    """The front as a sortable table: trial, arch_id, each objective, the architecture block by block."""
    headers = ["trial", "arch_id", *[f"{n} ({'max' if d == 'maximize' else 'min'})" for n, d in run.objectives.items()],
               "architecture", "recipe"]
    rows = []
    for row in run.pareto().to_pylist():
        cells = [(str(row["trial_id"]), row["trial_id"], True), (html.escape(row["arch_id"]), row["arch_id"], False)]
        for name in run.objectives:
            value = row[metric_column(name)]
            cells.append((html.escape(format_value(name, value)), "" if value is None else repr(value), True))
        cells.append((architecture_html(row["genome_json"]), "", False))
        recipe = describe_recipe(row.get("recipe_json"))
        cells.append((html.escape(recipe), recipe, False))
        rows.append(cells)
    return sortable_table("front-table", headers, rows)


def architecture_html(genome_json: str) -> str:
    """A genome's blocks as a numbered list (kind, parameters, activation, norm); other JSON as code."""
    data = json.loads(genome_json)
    if not isinstance(data, dict) or "nodes" not in data:
        return f"<code>{html.escape(json.dumps(data, sort_keys=True))}</code>"
    meta = data.get("meta", {})
    residual = any(node["spec"].get("residual") for node in data["nodes"])
    widths = ", ".join(str(w) for w in meta.get("widths", []))
    head = [f"width {meta['width']}" if "width" in meta else "", "residual" if residual else "",
            f"layers [in, {widths}, out]" if meta.get("form") == "layers" else "",
            f"final norm {meta['final_norm']}" if meta.get("final_norm") else ""]
    items = []
    for node in data["nodes"]:
        spec = node["spec"]
        params = ", ".join(f"{k}={v}" for k, v in sorted(spec.get("params", {}).items()))
        norm = spec.get("norm_placement", "none")
        norm_text = "no norm" if norm == "none" else f"{spec.get('norm')} ({norm})"
        parts = [f"<b>{html.escape(spec['kind'])}</b>", html.escape(params), html.escape(str(spec.get("activation"))),
                 html.escape(norm_text)]
        inputs = [a for a, b in data.get("edges", []) if b == node["id"]]
        if len(inputs) > 1:
            parts.append(html.escape(f"{spec.get('merge')} of {', '.join(inputs)}"))
        items.append(f"<li>{' · '.join(p for p in parts if p)}</li>")
    head_text = " · ".join(h for h in head if h)
    return f'<div class="arch-head">{html.escape(head_text)}</div><ol class="blocks">{"".join(items)}</ol>'
