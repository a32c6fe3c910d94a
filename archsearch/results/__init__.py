"""Run directories: the append-only store, derived tables, Pareto fronts and hypervolume."""

from archsearch.results.run import Run, load_run
from archsearch.results.store import RunDirError, RunStore

__all__ = ["Run", "RunDirError", "RunStore", "load_run"]
