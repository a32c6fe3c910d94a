"""``archsearch report RUN_DIR``: one offline HTML page a researcher reads in a minute.

Top to bottom: what the run was (task, recipe, budget, hypervolume); the front as a table with the test
metric and the recipe; each front member's architecture drawn as a graph; the front plotted per
objective pair (and in 3-D); which genes matter for which objective (random-forest permutation
importance) and those few genes against the objectives; learning curves where the run has them; and
the hypervolume against evaluations and against active search time.
"""

from __future__ import annotations

import html
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from archsearch.console import describe_architecture, format_value
from archsearch.results.page import facts_table, figure_div, page, sortable_table, write_page
from archsearch.results.tables import GENE_PREFIX, metric_column

if TYPE_CHECKING:
    import pyarrow as pa

    from archsearch.pareto import Normalization
    from archsearch.results.figures import RunPoints
    from archsearch.results.run import Run

CURVES_FILE = "curves.parquet"
MAX_CARDS = 24  # architecture drawings; a larger front is listed in the table only
PARALLEL_GENES = 6  # genes in the parallel view: the handful that matter most
RECIPE_KEYS = ("epochs", "steps", "batch_size", "optimizer", "lr", "weight_decay", "schedule", "warmup_steps",
               "early_stopping_patience", "time_limit_s")


def write_report(run: Run, path: Path) -> Path:
    """Render the report of ``run`` to ``path`` (atomically) and return the path."""
    return write_page(path, render_report(run))


def render_report(run: Run) -> str:
    from archsearch.results.figures import RunPoints

    points = RunPoints.from_table(run.trials, run.objectives, label=run.path.name)
    normalization = run.normalization()
    history = run.hypervolume_history(normalization)
    summary = run.summary()
    front = run.pareto()
    sections = [
        f"<h1>archsearch report: {html.escape(run.path.name)}</h1>",
        facts_table(_facts(run, summary, history)),
        f"<h2>The front ({front.num_rows} trials)</h2>",
        '<p class="note">The non-dominated trials over the objectives, best first in the first one; the test '
        "metric was never used for selection. Click a column header to sort, a trial to see its graph.</p>",
        front_table_html(run, front),
        "<h2>Their architectures</h2>",
        _architecture_cards(run, front),
        "<h2>Pareto front</h2>",
        _front_plots(points, normalization),
        "<h2>Which genes matter</h2>",
        _importance_section(run, points, normalization),
        *_curves_section(run, front),
        "<h2>Hypervolume</h2>",
        '<p class="note">Hypervolume of the front of the trials finished so far, in the order the journal '
        "recorded them, on the run's final normalization (the one in pareto.json), so the curve only rises. "
        "Failed trials count as evaluations. Search time leaves out the pauses between a stop and a resume.</p>",
        _hypervolume_plot([(run.path.name, history)]),
    ]
    return page(f"archsearch report: {run.path.name}", "\n".join(sections))


def run_recipe(run: Run) -> dict[str, Any]:
    """The training recipe the run's config.yaml recorded (keys set to null left out); a damaged file is a
    one-line error naming it."""
    from archsearch.results.export import read_saved_config

    training = read_saved_config(run.path / "config.yaml")["training"]
    return {k: training[k] for k in RECIPE_KEYS if training.get(k) is not None}


def recipe_genes(table: pa.Table) -> list[str]:
    """Gene columns that are part of the training recipe (a strategy that searches the recipe too)."""
    genes = [c for c in table.column_names if c.startswith(GENE_PREFIX)]
    return [g for g in genes
            if g.removeprefix(GENE_PREFIX).removeprefix("training.").removeprefix("recipe.") in RECIPE_KEYS]


def _facts(run: Run, summary: dict[str, Any], history: pa.Table) -> list[tuple[str, str]]:
    counts = ", ".join(f"{k}: {v}" for k, v in summary["status_counts"].items()) or "none"
    hv = summary.get("hypervolume")
    facts = [(key, str(summary.get(key))) for key in ("path", "space", "strategy", "task", "seed", "budget")]
    recipe = run_recipe(run)
    if recipe:
        facts.append(("training recipe", " · ".join(f"{k} {v}" for k, v in recipe.items())))
    facts.append(("trials", f"{summary['n_trials']} ({counts})"))
    if history.num_rows:
        facts.append(("search time", f"{history.column('active_s')[-1].as_py():,.0f} s"))
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


def _importance_section(run: Run, points: RunPoints, normalization: Normalization) -> str:
    from archsearch.results.figures import importance_figure, parallel_figure
    from archsearch.results.importance import MIN_TRIALS, gene_importance, top_genes

    if len(points.trial_ids) < MIN_TRIALS:
        return (f'<p class="note">{len(points.trial_ids)} complete trials: too few to say which genes matter '
                f"(it needs {MIN_TRIALS}).</p>")
    importances = gene_importance(run.trials, run.objectives, list(normalization.log_scale), seed=0)
    if not importances:
        return '<p class="note">Every trial made the same choices: there are no genes to compare.</p>'
    parts = ['<p class="note">For each objective, a random forest learns it from the genes of the complete '
             "trials; a bar is how much the forest's R² drops when that gene is shuffled (mean and spread over "
             "three shuffles). Each title gives the forest's out-of-bag R²: how much of the objective the genes "
             "explain at all; where it is low, the bars mean little. Objectives on a log scale (parameters, "
             "latency) are learned as log10.</p>",
             figure_div("importance", importance_figure(importances))]
    genes = top_genes(importances, PARALLEL_GENES)
    if genes:
        figure, _ = parallel_figure(points, genes, normalization.log_scale)
        parts += [f"<h3>The {len(genes)} genes that matter most, against the objectives</h3>",
                  '<p class="note">One line per complete trial, coloured by the first objective; genes in label '
                  "order, so that a block's genes stand together. Categorical genes are numbered, with their "
                  'values as tick labels; "-" marks a gene the architecture does not have. Drag along an axis to '
                  "select a range. Every gene of every trial is a gene.* column of trials.parquet.</p>",
                  figure_div("genes", figure)]
    return "\n".join(parts)


def _curves_section(run: Run, front: pa.Table) -> list[str]:
    """Learning curves from ``curves.parquet`` (a row per trial and epoch), where the run recorded them."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from archsearch.results.figures import curves_figure

    path = run.path / CURVES_FILE
    if not path.exists():
        return []
    curves = pq.read_table(path)
    if curves.num_rows == 0 or not {"trial_id", "epoch"} <= set(curves.column_names):
        return []
    numeric = [c for c in curves.column_names if c not in ("trial_id", "epoch", "rung", "fidelity")
               and pa.types.is_floating(curves.schema.field(c).type)]
    first = next(iter(run.objectives))
    metrics = [first] if first in numeric else [c for c in numeric if c.startswith("val_")][:1]
    metrics += [c for c in numeric if c.startswith("train") and "loss" in c][:1]
    metrics = metrics or numeric[:2]
    if not metrics:
        return []
    statuses = dict(zip(run.trials.column("trial_id").to_pylist(), run.trials.column("status").to_pylist(),
                        strict=True))
    pruned = {t for t, status in statuses.items() if status == "pruned"}
    front_ids = set(front.column("trial_id").to_pylist())
    return ["<h2>Learning curves</h2>",
            '<p class="note">Per epoch, from curves.parquet: the front\'s trials in colour, pruned trials dotted '
            "grey (they end where the scheduler stopped them), every other trial faint.</p>",
            figure_div("curves", curves_figure(curves, metrics, front_ids, pruned))]


def _architecture_cards(run: Run, front: pa.Table) -> str:
    from archsearch.results.archgraph import architecture_svg

    if front.num_rows == 0:
        return _empty("architectures")
    cards = []
    for row in front.to_pylist()[:MAX_CARDS]:
        values = " · ".join(f"{html.escape(n)} {html.escape(format_value(n, row.get(metric_column(n))))}"
                            for n in run.objectives)
        cards.append(f'<div class="card" id="arch-{row["trial_id"]}"><h3>trial {row["trial_id"]}</h3>'
                     f'<div class="values">{values}</div>'
                     f'{architecture_svg(row["genome_json"], run.info.get("data_spec"))}</div>')
    note = ('<p class="note">Each front member as its graph, input at the top: blocks with their parameters, '
            "activation and norm placement; parallel branches side by side, merged with the stage's input by a "
            "sum (+) or a concatenation (‖); a dashed red bypass marks a residual block. Colours: blue MLP and "
            "GLU, green KAN, orange attention and token mixing, purple mixture of experts.")
    if front.num_rows > MAX_CARDS:
        note += f" The first {MAX_CARDS} of {front.num_rows} are drawn; the table lists them all."
    return note + "</p>\n" + f'<div class="cards">{"".join(cards)}</div>'


def test_metrics(table: pa.Table, objectives: dict[str, str]) -> list[str]:
    """The test-split metrics matching the validation objectives (``val_accuracy`` -> ``test_accuracy``)."""
    found = [f"test_{n.removeprefix('val_')}" for n in objectives if n.startswith("val_")]
    return [n for n in found if n in table.column_names]


def front_table_html(run: Run, front: pa.Table | None = None) -> str:
    """The front as a sortable table: trial, each objective, the test metric, the recipe, the architecture."""
    front = run.pareto() if front is None else front
    tests = test_metrics(front, run.objectives)
    recipe = recipe_genes(front)
    headers = ["trial", *[f"{n} ({'max' if d == 'maximize' else 'min'})" for n, d in run.objectives.items()],
               *tests, "fidelity", *[g.removeprefix(GENE_PREFIX) for g in recipe], "architecture"]
    rows = []
    for row in front.to_pylist():
        cells: list[tuple[str, Any, bool]] = [
            (f'<a href="#arch-{row["trial_id"]}">{row["trial_id"]}</a>', row["trial_id"], True)]
        for name in [*run.objectives, *tests]:
            value = row.get(metric_column(name))
            cells.append((html.escape(format_value(name, value)), "" if value is None else repr(value), True))
        fidelity = row.get("fidelity")
        cells.append((html.escape(format_value("fidelity", fidelity)), "" if fidelity is None else fidelity, True))
        for gene in recipe:
            cells.append((html.escape(format_value(gene, row.get(gene))), str(row.get(gene)), False))
        sketch = describe_architecture(row["genome_json"])
        cells.append((f'<code title="arch_id {html.escape(row["arch_id"])}">{html.escape(sketch)}</code>', sketch,
                      False))
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
