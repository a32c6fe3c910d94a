"""Terminal output with rich: live progress during a run, the front and summaries after it.

Every string that comes from a genome, a run or the user goes into rich as :class:`~rich.text.Text`
(or escaped), never as markup: an architecture sketch such as ``[mlp | attention] +sum`` would otherwise
be read as a markup tag and vanish.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Mapping
from typing import Any

import numpy as np
import pyarrow as pa
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from archsearch.budget import Budget, parse_budget
from archsearch.errors import printable
from archsearch.trial import COMPLETE, PRUNED, Candidate, EvalResult, objective_values

console = Console(stderr=True, soft_wrap=True)  # a path or header line is never broken mid-word
if not console.is_terminal:  # a log file: room for the whole progress line
    console = Console(stderr=True, soft_wrap=True, width=160)
out = Console()
if not out.is_terminal:  # piped or captured: rich would assume 80 columns and squeeze the front table
    out = Console(width=160)


def plain(value: Any) -> Text:
    """A table cell or line that rich prints as it is (no markup, no emoji codes)."""
    return Text(str(value))


def format_value(name: str, value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if name.startswith(("n_params", "flops")) or (isinstance(value, int) and not isinstance(value, bool)):
        return f"{int(value):,}"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


class RichProgress:
    """A progress bar with counts by status, the size of the front so far and the best value of each
    objective so far: each best may come from a different trial, which the line says."""

    def __init__(self, objectives: dict[str, str]) -> None:
        self.objectives = objectives
        self.best: dict[str, float] = {}
        self.front: list[list[float]] = []
        self.failed = 0
        self._bar: Progress | None = None
        self._task: Any = None

    def start(self, budget: Budget, already_done: int) -> None:
        self._bar = Progress(
            TextColumn("[bold]search"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            TextColumn("{task.fields[status]}", markup=False), console=console, transient=False,
        )
        total = budget.max_trials
        self._task = self._bar.add_task("search", total=total, completed=already_done, status="")
        self._bar.start()

    def recovered(self, recovery: dict[str, Any]) -> None:
        console.print(plain(describe_recovery(recovery)))

    def trial_done(self, trial_id: int, candidate: Candidate, result: EvalResult) -> None:
        if result.status == PRUNED:
            self.pruned = getattr(self, "pruned", 0) + 1
        elif result.status != COMPLETE:
            self.failed += 1
        values = objective_values(result, self.objectives)
        if values is not None:
            self._admit(values)
            for (name, direction), value in zip(self.objectives.items(), values, strict=True):
                old = self.best.get(name)
                better = old is None or (value > old if direction == "maximize" else value < old)
                if better:
                    self.best[name] = value
        if self._bar is not None:
            self._bar.update(self._task, advance=1, status=self.status_line())

    def _admit(self, values: list[float]) -> None:
        from archsearch.pareto import non_dominated_mask, to_minimization

        points = [*self.front, values]
        mask = non_dominated_mask(to_minimization(np.array(points, dtype=float), list(self.objectives.values())))
        self.front = [p for p, keep in zip(points, mask, strict=True) if keep]

    def status_line(self) -> str:
        """``front 4 · best val_accuracy 0.975 · best n_params 3,546 · failed 1``."""
        parts = [f"front {len(self.front)}"] if self.front else []
        parts += [f"best {n} {format_value(n, v)}" for n, v in self.best.items()]
        if getattr(self, "pruned", 0):
            parts.append(f"pruned {self.pruned}")
        if self.failed:
            parts.append(f"failed {self.failed}")
        return " · ".join(parts)

    def stop(self) -> None:
        if self._bar is not None:
            self._bar.stop()


def in_notebook() -> bool:
    """Whether this process is a Jupyter kernel (IPython's ZMQ shell), where a live bar is not wanted."""
    ipython = sys.modules.get("IPython")
    shell = getattr(ipython, "get_ipython", lambda: None)() if ipython is not None else None
    return type(shell).__name__ == "ZMQInteractiveShell"


def api_progress(progress: Any, quiet: bool, objectives: dict[str, str]) -> Any:
    """The reporter for ``archsearch.search`` / ``resume``: a bar when ``progress`` is True, or when it is
    None (the default) and stderr is a terminal outside a notebook; no bar of ours when ``quiet``. A
    reporter object of the caller's own is always used."""
    if progress is not None and not isinstance(progress, bool):
        return progress
    if quiet or progress is False:
        return None
    if progress is None:
        progress = console.is_terminal and not in_notebook() and not os.environ.get("CI")
    if progress is True:
        return RichProgress(objectives)
    return progress or None


def run_header(info: Mapping[str, Any], run_dir: Any, verb: str = "run") -> Text:
    """``archsearch run: space=mlp strategy=model task=digits budget=20 candidates executor=ray -> runs/x``."""
    budget: Any = info.get("budget")
    try:
        budget_text = parse_budget(budget).describe()
    except Exception:  # an unusual run.json: show what it says
        budget_text = printable(budget)
    text = Text("archsearch ", style="bold")
    text.append(f"{verb}: space={printable(info.get('space'))} strategy={printable(info.get('strategy'))} "
                f"task={printable(info.get('task'))} budget={budget_text} executor={printable(info.get('executor'))} "
                f"-> {run_dir}", style="")
    return text



STOP_NOTES = {
    "exhausted": "the strategy ran out of new architectures in this space before the budget was spent",
    "constraints": "too many candidates were rejected by the constraints before the budget was spent",
    "time": "the time budget was spent",
    "objectives": "trial after trial returned no value for an objective (the trials' error column says which)",
}


def stop_note(run: Any, summary: dict[str, Any]) -> str | None:
    """A line saying why ``run`` (with its ``summary()``) stopped early; None when it spent its budget."""
    reason = run.stop_reason
    if reason in ("exhausted", "constraints", "objectives"):
        return f"stopped after {summary['n_trials']} trials: {STOP_NOTES[reason]} (budget {summary['budget']})"
    return None


def announce_result(run: Any) -> None:
    """After a Python API run: why it stopped if early, the hypervolume, where the run directory is."""
    summary = run.summary()
    note = stop_note(run, summary)
    if note:
        console.print(plain(note))
    counts = ", ".join(f"{k}: {v}" for k, v in summary["status_counts"].items())
    hv = summary.get("hypervolume")
    hv_text = "-" if hv is None or math.isnan(hv) else f"{hv:.4f}"
    console.print(plain(f"{summary['n_trials']} trials ({counts}) · front {len(summary['pareto_trial_ids'])} · "
                        f"hypervolume {hv_text} · run directory: {run.path}"))


def front_table(front: pa.Table, objectives: dict[str, str], title: str = "Pareto front") -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("trial", justify="right")
    table.add_column("arch_id", no_wrap=True)
    for name, direction in objectives.items():
        table.add_column(f"{name} ({'max' if direction == 'maximize' else 'min'})", justify="right", no_wrap=True)
    table.add_column("architecture", overflow="fold")
    rows = front.to_pylist()
    recipes = [describe_recipe(row.get("recipe_json")) for row in rows]
    if len(set(recipes)) > 1:  # one recipe for every trial is the run's config; show it only when it varies
        table.add_column("recipe", overflow="fold")
    for row, recipe in zip(rows, recipes, strict=True):
        table.add_row(
            str(row["trial_id"]), plain(row["arch_id"]),
            *[format_value(name, row.get(name)) for name in objectives],
            plain(describe_architecture(row["genome_json"])),
            *([plain(recipe)] if len(set(recipes)) > 1 else []),
        )
    return table


def describe_recipe(recipe_json: str | None) -> str:
    """``lbfgs lr=1 e50`` or ``adamw lr=0.0012 wd=1e-4 b64 cosine e20``: the recipe in a few words."""
    import json

    if not recipe_json:
        return ""
    r = json.loads(recipe_json)
    parts = [str(r.get("optimizer", "")), f"lr={r.get('lr', 0):.2g}"]
    if r.get("weight_decay"):
        parts.append(f"wd={r['weight_decay']:.1g}")
    if r.get("optimizer") != "lbfgs":
        parts.append(f"b{r.get('batch_size')}")
    if r.get("schedule", "constant") != "constant":
        parts.append(str(r["schedule"]))
    if r.get("warmup_steps"):
        parts.append(f"warmup{r['warmup_steps']}")
    if r.get("dropout"):
        parts.append(f"drop{r['dropout']:.2g}")
    parts.append(f"e{r.get('epochs', 0):g}")
    return " ".join(parts)


def describe_architecture(genome_json: str) -> str:
    """A one-line sketch: ``w64 | mlp(e2,gelu,pre) -> [attention(h4) | mlp(e2,gelu)] +sum | residual``.

    Blocks that share their inputs (parallel branches) are bracketed and joined by ``|``; the merge node
    after them shows as ``+sum`` or ``+concat``.
    """
    import json

    data = json.loads(genome_json)
    if not isinstance(data, dict) or "nodes" not in data:
        return genome_json if len(genome_json) < 80 else genome_json[:77] + "..."
    inputs: dict[str, list[str]] = {}
    for source, target in data.get("edges", []):
        inputs.setdefault(target, []).append(source)
    groups: list[list[str]] = []
    previous_inputs = None
    for node in data["nodes"]:
        spec = node["spec"]
        node_inputs = sorted(inputs.get(node["id"], []))
        if spec["kind"] == "identity" and len(node_inputs) > 1:
            groups.append([f"+{spec['merge']}"])
            previous_inputs = None
            continue
        params = ",".join(f"{k[0]}{v}" for k, v in sorted(spec["params"].items()))
        activation = spec["activation"] if spec["activation"] != "identity" else ""
        inner = ",".join(p for p in (params, activation, spec["norm_placement"]) if p)
        text = f"{spec['kind']}({inner})"
        if groups and node_inputs == previous_inputs:
            groups[-1].append(text)
        else:
            groups.append([text])
        previous_inputs = node_inputs
    parts: list[str] = []
    for group in groups:
        if group[0].startswith("+") and parts:
            parts[-1] += f" {group[0]}"
        else:
            parts.append(group[0] if len(group) == 1 else "[" + " | ".join(group) + "]")
    residual = any(node["spec"]["residual"] for node in data["nodes"])
    meta = data.get("meta", {})
    if meta.get("form") == "layers":
        return "layers in-" + "".join(f"{w}-" for w in meta.get("widths", [])) + "out | " + " -> ".join(parts)
    return f"w{meta.get('width')} | " + " -> ".join(parts) + (" | residual" if residual else "")


def summary_table(summary: dict[str, Any]) -> Table:
    table = Table(show_header=False, title="Run", title_justify="left")
    table.add_column("key", style="bold")
    table.add_column("value")
    for key in ("path", "space", "strategy", "task", "seed", "budget"):
        table.add_row(key, plain(summary.get(key)))
    counts = ", ".join(f"{k}: {v}" for k, v in summary["status_counts"].items()) or "none"
    table.add_row("trials", plain(f"{summary['n_trials']} ({counts})"))
    for name, value in summary["best"].items():
        table.add_row(plain(f"best {name}"), format_value(name, value))
    hv = summary.get("hypervolume")
    table.add_row("hypervolume", "-" if hv is None or math.isnan(hv) else f"{hv:.4f} (normalized, "
                  f"reference {summary['reference_point'][0]:g} per objective)")
    table.add_row("front size", str(len(summary["pareto_trial_ids"])))
    return table


def describe_recovery(recovery: dict[str, Any]) -> str:
    """One line on what a resumed run found: ``recovered 12 finished trials; 2 in flight ...``."""
    parts = [f"recovered {recovery['completed']} finished trials"]
    if recovery["in_flight_again"]:
        parts.append(f"{recovery['in_flight_again']} that were in flight will be evaluated again")
    parts.append(f"strategy state {recovery['strategy_state']}"
                 + (f", {recovery['replayed']} journal records replayed into it" if recovery["replayed"] else ""))
    if recovery["journal"] != "intact":
        parts.append(recovery["journal"])
    return "; ".join(parts)
