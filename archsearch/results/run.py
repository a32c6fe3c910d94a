"""A saved run, for analysis: ``archsearch.load_run(path)``."""

from __future__ import annotations

import json
import os
from functools import cached_property
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from archsearch.errors import ArchsearchError
from archsearch.genome import Genome
from archsearch.pareto import Normalization
from archsearch.results.history import finish_order, sessions
from archsearch.results.history import hypervolume_history as _hypervolume_history
from archsearch.results.store import RunStore
from archsearch.results.tables import (
    objective_matrix,
    pareto_summary,
    pareto_table,
    run_normalization,
    trials_table,
)


class Run:
    """Read access to a run directory; tables are rebuilt from the journal, the source of truth.

    Attributes:
        path: the run directory.
        info: what the run is (space, strategy, task, objectives, seed, budget).
        objectives: ``{metric: direction}``.
    """

    def __init__(self, store: RunStore | str | os.PathLike[str]) -> None:
        """``Run(path)`` opens a run directory as :func:`load_run` does (the store: for the engine's own use)."""
        if not isinstance(store, RunStore):
            store = RunStore.open(store)
            store.check_not_emptied()
            store.check_journal()
        self.store = store
        self.path = store.path
        self.info: dict[str, Any] = store.info()
        self.objectives: dict[str, str] = dict(self.info["objectives"])

    @cached_property
    def trials(self) -> pa.Table:
        """One row per trial (``.to_pandas()`` for a DataFrame)."""
        return trials_table(self.store.trials(), self.objectives)

    @cached_property
    def curves(self) -> pa.Table:
        """Learning curves: one row per trial and epoch (``trial_id``, ``epoch``, one column per metric)."""
        from archsearch.results.curves import curves_table

        return curves_table(self.store.trials())

    def pareto(self) -> pa.Table:
        """The non-dominated complete trials over the run's objectives, best first in the first one."""
        return pareto_table(self.trials, self.objectives)

    def summary(self) -> dict[str, Any]:
        """Counts by status, best value per objective, hypervolume of the front."""
        summary = pareto_summary(self.trials, self.objectives)
        complete = self.trials.filter(pc.equal(self.trials.column("status"), "complete"))
        best: dict[str, float | None] = {}
        for name, direction in self.objectives.items():
            column = complete.column(name) if complete.num_rows else None
            values = [v for v in (column.to_pylist() if column is not None else []) if v is not None]
            best[name] = (max(values) if direction == "maximize" else min(values)) if values else None
        budget = self.info.get("budget")
        for record in self.store.records():
            if record.get("event") == "run_resumed":
                budget = record.get("budget", budget)
        return {**{k: self.info.get(k) for k in ("space", "strategy", "task", "seed")}, "budget": budget,
                "path": os.fspath(self.path), "best": best, **summary}

    @property
    def recovery(self) -> dict[str, Any] | None:
        """What the last resume found (completed and in-flight trials, strategy state), if resumed."""
        found = None
        for record in self.store.records():
            if record.get("event") == "run_recovered":
                found = {k: v for k, v in record.items() if k not in ("event", "time")}
        return found

    @property
    def stop_reason(self) -> str | None:
        """Why the last session of the run stopped (``budget``, ``exhausted``, ``time``, ...), if it finished."""
        reason = None
        for record in self.store.records():
            if record.get("event") == "run_finished":
                reason = record.get("reason")
            elif record.get("event") == "run_resumed":
                reason = None
        return reason

    def normalization(self) -> Normalization:
        """The normalization of the run's ``pareto.json``: fixed bounds for built-in metrics, the run's range
        for the rest."""
        return run_normalization(objective_matrix(self.trials, self.objectives)[0], self.objectives)

    def hypervolume_history(self, normalization: Normalization | None = None) -> pa.Table:
        """Hypervolume of the front after each finished trial, in the order the journal recorded them.

        Columns ``trial_id``, ``n_evaluated`` (finished trials so far, failed ones included),
        ``elapsed_s`` (since the run was created), ``active_s`` (the same without the gaps between a stop
        and a resume) and ``hypervolume``. With the default normalization
        (this run's final one) the last value equals ``pareto.json``'s hypervolume; pass a shared one to
        put several runs on one scale.
        """
        records = list(self.store.records())
        start = next((r["time"] for r in records if r.get("event") == "run_created"), self.info.get("created"))
        return _hypervolume_history(self.store.trials(), finish_order(records), self.objectives,
                                    normalization or self.normalization(), float(start or 0.0), sessions(records))

    def report(self, path: str | os.PathLike[str] | None = None) -> Path:
        """Write the self-contained HTML report (default ``RUN_DIR/report.html``) and return its path."""
        from archsearch.results.report import write_report

        return write_report(self, Path(path) if path is not None else self.path / "report.html")

    def best_trial_id(self) -> int:
        """The front's best trial in the first objective (the first row of :meth:`pareto`)."""
        front = self.pareto()
        if front.num_rows == 0:
            raise ArchsearchError(f"run {self.path} has no complete trial yet, so no best one")
        return int(front.column("trial_id")[0].as_py())

    def trial_row(self, trial_id: int) -> dict[str, Any]:
        rows = self.trials.filter(pc.equal(self.trials.column("trial_id"), trial_id))
        if rows.num_rows == 0:
            raise ArchsearchError(f"run {self.path} has no trial {trial_id} (it has trials 0 to "
                                  f"{self.trials.num_rows - 1})")
        return rows.to_pylist()[0]

    def genome_json(self, trial_id: int) -> Any:
        return json.loads(self.trial_row(trial_id)["genome_json"])

    def genome(self, trial_id: int) -> Genome:
        """The trial's architecture as a :class:`Genome` (runs over built-in spaces only)."""
        from archsearch.results.model_files import read_genome

        data = self.genome_json(trial_id)
        if not (isinstance(data, dict) and "nodes" in data):
            raise ArchsearchError(f"trial {trial_id} of {self.path} is not a genome (the run used a callable space)")
        genome: Genome = read_genome(data, f"{self.path} trial {trial_id}")
        return genome

    def model(self, trial_id: int, retrain: bool = False) -> Any:
        """The trial's trained ``nn.Module`` (eval mode): its kept weights, or re-trained if asked."""
        from archsearch.results.export import trial_weights
        from archsearch.results.model_files import build_checked

        data, _ = trial_weights(self, trial_id, retrain)
        where = f"{self.path} trial {trial_id}"
        return build_checked(self.genome(trial_id), self.info.get("data_spec"), data, where)

    def export(self, trial_id: int, out_dir: str | os.PathLike[str], retrain: bool = False) -> Path:
        from archsearch.results.export import export_model

        return export_model(self, trial_id, out_dir, retrain)

    def __repr__(self) -> str:
        return f"Run({os.fspath(self.path)!r}, trials={self.trials.num_rows})"


def load_run(path: str | os.PathLike[str]) -> Run:
    """Open a run directory written by ``archsearch run`` or ``archsearch.search``."""
    return Run(path)
