"""``fidelity=full``: every trial is trained once, to the maximum fidelity (no early stopping of trials)."""

from __future__ import annotations

from archsearch.scheduling._base import Decision, Scheduler
from archsearch.trial import EvalResult


class FullFidelity(Scheduler):
    """Train each candidate once to ``max_epochs`` (``None``: the evaluator's own recipe)."""

    name = "full"

    def __init__(self, max_epochs: float | None = None) -> None:
        self.max_epochs = max_epochs

    def start_fidelity(self) -> float | None:
        return None

    def max_fidelity(self) -> float | None:
        return self.max_epochs

    def rung_of(self, fidelity: float | None) -> int:
        return 0

    def record(self, trial_id: int, fidelity: float | None, result: EvalResult) -> None:
        pass

    def decide(self, trial_id: int, fidelity: float | None, result: EvalResult) -> Decision:
        return Decision(rung=0, status=result.status)
