"""The evaluator protocol: what executors call, and the hooks that let workers start ready."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from archsearch.trial import EvalResult


class Evaluator(ABC):
    """Turns an architecture into an :class:`EvalResult`; executors call nothing else.

    Evaluators are picklable: the Ray executor ships :meth:`for_workers` once to every worker, and each
    worker calls :meth:`warm_up` before its first candidate.
    """

    @abstractmethod
    def evaluate(self, architecture: Any, fidelity: float | None = None) -> EvalResult:
        """Build, train (to ``fidelity`` epochs where given) and measure one architecture."""

    def for_workers(self) -> Evaluator:
        """What is shipped to workers (e.g. a copy that carries data the driver already loaded)."""
        return self

    def warm_up(self) -> None:
        """Pay one-time costs (data, library imports) before the first candidate, so that they count
        against no candidate's time limit."""
        return None
