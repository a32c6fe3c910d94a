"""``archsearch compare RUN_A RUN_B ...``: hypervolumes on one normalization and the fronts side by side.

Each run's own ``pareto.json`` fits non-standard metrics to that run's range, so two runs' stored
hypervolumes need not be on one scale. Here every run is measured on one normalization: fixed bounds
for the built-in metrics (as in ``pareto.json``) and the union of all runs' complete trials for the rest.
"""

from __future__ import annotations

import html
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from archsearch.errors import ArchsearchError
from archsearch.pareto import Normalization, front_hypervolume, non_dominated_mask
from archsearch.results.history import common_normalization
from archsearch.results.run import Run, load_run
from archsearch.results.tables import metric_column, objective_matrix


class CompareError(ArchsearchError):
    """Runs that cannot be compared (different objectives, too few runs)."""


@dataclass
class Comparison:
    """Runs measured on one normalization.

    Attributes:
        runs: the runs, in the order given.
        labels: a short unique name per run (the directory name, or the path where names repeat).
        objectives: ``{metric: direction}``, shared by all runs.
        normalization: the common normalization.
        rows: per run: label, path, space, strategy, trials, front_size, hypervolume.
        fronts: every run's front members, tagged by run, best first in the first objective.
    """

    runs: list[Run]
    labels: list[str]
    objectives: dict[str, str]
    normalization: Normalization
    rows: list[dict[str, Any]]
    fronts: pa.Table

    def histories(self) -> list[tuple[str, pa.Table]]:
        """Each run's hypervolume history on the common normalization."""
        return [(label, run.hypervolume_history(self.normalization))
                for label, run in zip(self.labels, self.runs, strict=True)]


def run_labels(paths: Sequence[Path]) -> list[str]:
    names = [p.resolve().name for p in paths]
    return names if len(set(names)) == len(names) else [os.fspath(p) for p in paths]


def compare_runs(paths: Sequence[str | os.PathLike[str]]) -> Comparison:
    """Load the runs at ``paths`` and measure them on one normalization.

    Raises:
        CompareError: fewer than two runs, or runs whose objectives (names or directions) differ.
    """
    if len(paths) < 2:
        raise CompareError("compare needs at least two run directories")
    runs = [load_run(p) for p in paths]
    objectives = runs[0].objectives
    for run in runs[1:]:
        if run.objectives != objectives:
            raise CompareError(
                f"cannot compare runs with different objectives: {runs[0].path} has {_describe(objectives)}, "
                f"{run.path} has {_describe(run.objectives)}")
    labels = run_labels([Path(p) for p in paths])
    normalization = common_normalization([run.trials for run in runs], objectives)
    rows = []
    for label, run in zip(labels, runs, strict=True):
        values, _ = objective_matrix(run.trials, objectives)
        hv = front_hypervolume(values, list(objectives.values()), list(objectives), normalization)["hypervolume"]
        rows.append({"run": label, "path": os.fspath(run.path), "space": run.info.get("space"),
                     "strategy": run.info.get("strategy"), "trials": run.trials.num_rows,
                     "front_size": run.pareto().num_rows, "hypervolume": hv})
    return Comparison(runs, labels, objectives, normalization, rows, _overlaid_fronts(runs, labels, objectives))


def _describe(objectives: dict[str, str]) -> str:
    return "{" + ", ".join(f"{k}: {'max' if v == 'maximize' else 'min'}" for k, v in objectives.items()) + "}"


def _overlaid_fronts(runs: Sequence[Run], labels: Sequence[str], objectives: dict[str, str]) -> pa.Table:
    """All runs' front members in one table, with ``joint_front``: still non-dominated among all runs."""
    fronts = []
    for label, run in zip(labels, runs, strict=True):
        front = run.pareto()
        columns = ["trial_id", "arch_id", "genome_json", *[metric_column(n) for n in objectives]]
        front = front.select(columns)
        fronts.append(front.add_column(0, "run", pa.array([label] * front.num_rows, pa.string())))
    table = pa.concat_tables(fronts)
    values = np.column_stack([np.array(table.column(metric_column(n)).to_pylist(), dtype=float)
                              for n in objectives]) if table.num_rows else np.empty((0, len(objectives)))
    signs = np.array([-1.0 if d == "maximize" else 1.0 for d in objectives.values()])
    joint = non_dominated_mask(values * signs) if table.num_rows else np.zeros(0, dtype=bool)
    table = table.append_column("joint_front", pa.array(joint.tolist(), pa.bool_()))
    order = np.lexsort((values * signs).T[::-1]) if table.num_rows else np.zeros(0, dtype=int)
    return table.take(pa.array(order, type=pa.int64()))


def comparison_tables(comparison: Comparison) -> list[Any]:
    """Rich tables for the terminal: one row per run, then the fronts overlaid."""
    from rich.table import Table

    from archsearch.console import describe_architecture, format_value, plain

    runs = Table(title="Runs (hypervolume on a common normalization)", title_justify="left")
    for column, justify in (("run", "left"), ("space", "left"), ("strategy", "left"), ("trials", "right"),
                            ("front size", "right"), ("hypervolume", "right")):
        runs.add_column(column, justify=justify)  # type: ignore[arg-type]
    for row in comparison.rows:
        runs.add_row(plain(row["run"]), plain(row["space"]), plain(row["strategy"]), str(row["trials"]),
                     str(row["front_size"]), f"{row['hypervolume']:.4f}")
    fronts = Table(title="Fronts overlaid (* = non-dominated among all runs)", title_justify="left")
    fronts.add_column("run")
    fronts.add_column("trial", justify="right")
    fronts.add_column("joint", justify="center")
    for name, direction in comparison.objectives.items():
        fronts.add_column(f"{name} ({'max' if direction == 'maximize' else 'min'})", justify="right", no_wrap=True)
    fronts.add_column("architecture", overflow="fold")
    for row in comparison.fronts.to_pylist():
        fronts.add_row(plain(row["run"]), str(row["trial_id"]), "*" if row["joint_front"] else "",
                       *[format_value(n, row[metric_column(n)]) for n in comparison.objectives],
                       plain(describe_architecture(row["genome_json"])))
    return [runs, fronts]


def write_comparison(comparison: Comparison, path: Path) -> Path:
    """The comparison page: the runs' table, their fronts overlaid per objective pair, hypervolume curves."""
    from archsearch.results.figures import RunPoints, hypervolume_figure, objective_pairs, pair_figure
    from archsearch.results.page import facts_table, figure_div, page, write_page

    points = [RunPoints.from_table(run.trials, run.objectives, label)
              for label, run in zip(comparison.labels, comparison.runs, strict=True)]
    m = len(comparison.objectives)
    pairs = [figure_div(f"pair-{i}-{j}", pair_figure(points, i, j, comparison.normalization, faded=False))
             for i, j in objective_pairs(m)] if any(len(p.trial_ids) for p in points) else []
    facts = [(row["run"], f"{row['path']} · {row['space']} / {row['strategy']} · {row['trials']} trials · "
              f"front {row['front_size']} · hypervolume {row['hypervolume']:.4f}") for row in comparison.rows]
    body = [
        "<h1>archsearch comparison</h1>",
        facts_table(facts),
        '<p class="note">Hypervolumes share one normalization: fixed bounds for built-in metrics, the union '
        "of the runs' complete trials for the others.</p>",
        "<h2>Fronts overlaid</h2>",
        f'<div class="grid">{"".join(pairs)}</div>' if pairs else '<p class="note">No fronts to draw.</p>',
        "<h2>Hypervolume</h2>",
        figure_div("hypervolume", hypervolume_figure(comparison.histories())),
        "<h2>Fronts</h2>",
        '<p class="note">Every run\'s front; "joint" marks members non-dominated among all runs. Click a column '
        "header to sort.</p>",
        _fronts_table_html(comparison),
    ]
    title = "archsearch comparison: " + ", ".join(comparison.labels)
    return write_page(path, page(title, "\n".join(body)))


def _fronts_table_html(comparison: Comparison) -> str:
    from archsearch.console import format_value
    from archsearch.results.page import sortable_table
    from archsearch.results.report import architecture_html

    headers = ["run", "trial", "joint", *[f"{n} ({'max' if d == 'maximize' else 'min'})"
                                          for n, d in comparison.objectives.items()], "architecture"]
    rows = []
    for row in comparison.fronts.to_pylist():
        cells = [(html.escape(row["run"]), row["run"], False), (str(row["trial_id"]), row["trial_id"], True),
                 ("yes" if row["joint_front"] else "", int(row["joint_front"]), False)]
        for name in comparison.objectives:
            value = row[metric_column(name)]
            cells.append((html.escape(format_value(name, value)), "" if value is None else repr(value), True))
        cells.append((architecture_html(row["genome_json"]), "", False))
        rows.append(cells)
    return sortable_table("fronts-table", headers, rows)
