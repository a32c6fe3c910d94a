"""archsearch: neural architecture search over graph genomes, with a Pareto front over
accuracy, parameters and latency.

Importing this package is cheap: torch, Hydra and Ray load only when a search or a model needs them.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "search": ("archsearch.api", "search"),
    "resume": ("archsearch.api", "resume"),
    "load_model": ("archsearch.results.export", "load_model"),
    "load_run": ("archsearch.results.run", "load_run"),
    "Run": ("archsearch.results.run", "Run"),
    "Genome": ("archsearch.genome", "Genome"),
    "BlockSpec": ("archsearch.genome", "BlockSpec"),
    "SearchSpace": ("archsearch.space", "SearchSpace"),
    "RandomChooser": ("archsearch.space", "RandomChooser"),
    "ReplayChooser": ("archsearch.space", "ReplayChooser"),
    "Candidate": ("archsearch.trial", "Candidate"),
    "EvalResult": ("archsearch.trial", "EvalResult"),
    "Strategy": ("archsearch.strategies._base", "Strategy"),
    "Task": ("archsearch.tasks._base", "Task"),
    "task_from_arrays": ("archsearch.tasks.arrays", "task_from_arrays"),
    "task_from_dataset": ("archsearch.tasks.arrays", "task_from_dataset"),
    "load_task": ("archsearch.tasks", "load_task"),
    "build_model": ("archsearch.builder", "build_model"),
    "ArchsearchError": ("archsearch.errors", "ArchsearchError"),
}

__all__ = [*sorted(_LAZY), "__version__"]

def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(module), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'archsearch' has no attribute {name!r}")
