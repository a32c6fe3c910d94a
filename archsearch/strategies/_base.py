"""The ask/tell strategy interface.

A strategy proposes candidates and learns from their results; it never owns the loop, the disk or the
workers (the engine does), which is what lets resume, Ray and Pareto bookkeeping exist once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from archsearch.space import SearchSpace
from archsearch.trial import Candidate, EvalResult


class Strategy:
    """Base class: ``ask`` proposes, ``tell`` reports back, ``state_dict`` saves everything needed to resume.

    Args:
        space: the search space (built-in or a user's callable wrapped in a space).
        objectives: ``{metric: "minimize" | "maximize"}``, in priority order.
        seed: seeds every random choice; the same seed gives the same proposals.

    Contract (checked by :mod:`archsearch.testing`): ``ask`` may be called several times before any
    ``tell`` (several workers), returns ``None`` when it has nothing to propose, and ``state_dict()`` is
    JSON-able and restores the strategy exactly, including its random state.
    """

    name = "strategy"

    def __init__(self, space: SearchSpace, objectives: dict[str, str] | None = None, seed: int = 0) -> None:
        self.space = space
        self.objectives = objectives or {}
        self.seed = seed

    def attach(self, run_dir: Path) -> None:
        """Called by the engine once, before the first ``ask``, with the run directory.

        Strategies that keep files of their own (Optuna's journal) put them there; the default keeps none.
        """

    def ask(self) -> Candidate | None:
        raise NotImplementedError

    def tell(self, candidate: Candidate, result: EvalResult) -> None:
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        raise NotImplementedError

    def load_state_dict(self, state: dict[str, Any]) -> None:
        raise NotImplementedError
