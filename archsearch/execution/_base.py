"""Executors decide where evaluations run; the engine only submits and collects."""

from __future__ import annotations

from typing import Protocol

from archsearch.evaluation.base import Evaluator
from archsearch.trial import Candidate, EvalResult

__all__ = ["Evaluator", "Executor"]


class Executor(Protocol):
    """Runs evaluations; ``capacity`` is how many may be in flight at once (one per worker)."""

    capacity: int

    def start(self, evaluator: Evaluator) -> None: ...

    def submit(self, trial_id: int, candidate: Candidate) -> None: ...

    def collect(self, timeout: float | None = None) -> list[tuple[int, EvalResult]]:
        """Results that are ready, waiting up to ``timeout`` seconds for at least one."""
        ...

    def close(self) -> None: ...
