"""A saved run, for analysis: ``archsearch.load_run(path)``."""

from __future__ import annotations

import json
import os
from functools import cached_property
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from archsearch.results.store import RunStore
from archsearch.results.tables import pareto_summary, pareto_table, trials_table


class Run:
    """Read access to a run directory; tables are rebuilt from the journal, the source of truth.

    Attributes:
        path: the run directory.
        info: what the run is (space, strategy, task, objectives, seed, budget).
        objectives: ``{metric: direction}``.
    """

    def __init__(self, store: RunStore) -> None:
        self.store = store
        self.path = store.path
        self.info: dict[str, Any] = store.info()
        self.objectives: dict[str, str] = dict(self.info["objectives"])

    @cached_property
    def trials(self) -> pa.Table:
        """One row per trial (``.to_pandas()`` for a DataFrame)."""
        return trials_table(self.store.trials(), self.objectives)

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
        return {**{k: self.info.get(k) for k in ("space", "strategy", "task", "seed", "budget")},
                "path": os.fspath(self.path), "best": best, **summary}

    def genome_json(self, trial_id: int) -> Any:
        rows = self.trials.filter(pc.equal(self.trials.column("trial_id"), trial_id))
        if rows.num_rows == 0:
            raise KeyError(f"run {self.path} has no trial {trial_id}")
        return json.loads(rows.column("genome_json")[0].as_py())

    def __repr__(self) -> str:
        return f"Run({os.fspath(self.path)!r}, trials={self.trials.num_rows})"


def load_run(path: str | os.PathLike[str]) -> Run:
    """Open a run directory written by ``archsearch run`` or ``archsearch.search``."""
    return Run(RunStore.open(path))
