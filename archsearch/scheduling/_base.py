"""The scheduler interface: which trial trains further, to which fidelity, and which stops.

The engine asks the scheduler at which fidelity a new trial starts and, whenever a trial's result at a
fidelity arrives, whether it continues (from its checkpoint, to the next fidelity) or stops. Strategies
and executors do not know a scheduler exists: a strategy hears about a trial once, when it stops.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

from archsearch.trial import COMPLETE, EvalResult


@dataclass(frozen=True)
class Decision:
    """What happens to a trial after a result.

    Attributes:
        rung: the rung (0-based fidelity level) the result was reached at.
        next_fidelity: continue training to this fidelity; ``None`` means the trial stops here.
        status: the final status when it stops: the result's own, or ``pruned`` below the maximum.
    """

    rung: int
    next_fidelity: float | None = None
    status: str = COMPLETE

    @property
    def continues(self) -> bool:
        return self.next_fidelity is not None


class Scheduler(ABC):
    """A fidelity policy. Decisions must be a deterministic function of the results recorded so far,
    so that a resumed run can rebuild the scheduler by :meth:`record`-ing the journal again."""

    name = "scheduler"

    @abstractmethod
    def start_fidelity(self) -> float | None:
        """The fidelity a new trial is trained to first (``None``: the evaluator's default)."""

    @abstractmethod
    def max_fidelity(self) -> float | None:
        """The run's maximum fidelity (epochs), or ``None`` when only the evaluator knows it."""

    @abstractmethod
    def rung_of(self, fidelity: float | None) -> int:
        """The rung a fidelity belongs to."""

    @abstractmethod
    def record(self, trial_id: int, fidelity: float | None, result: EvalResult) -> None:
        """Remember a result at a fidelity (decisions read what was recorded; resume replays this)."""

    @abstractmethod
    def decide(self, trial_id: int, fidelity: float | None, result: EvalResult) -> Decision:
        """Record ``result`` and say whether the trial continues."""

    def describe(self) -> dict[str, object]:
        return {"name": self.name}
