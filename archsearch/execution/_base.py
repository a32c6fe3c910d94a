"""Executors decide where evaluations run; the engine only submits and collects."""

from __future__ import annotations

from typing import Protocol

from archsearch.evaluation.base import Evaluator, run_evaluation
from archsearch.trial import Candidate, EvalResult

__all__ = ["Evaluator", "Executor", "Job", "run_evaluation", "run_group"]

Job = list[tuple[int, Candidate, bytes | None]]
"""Trials that run as one evaluation on one worker: ``(trial_id, candidate, checkpoint)`` each."""


def run_group(evaluator: Evaluator, candidates: list[Candidate], checkpoints: list[bytes | None]) -> list[EvalResult]:
    """Evaluate one job: a trial alone, or a group the engine formed by ``group_key`` (one fidelity)."""
    if len(candidates) == 1:
        return [run_evaluation(evaluator, candidates[0].architecture, candidates[0].fidelity, checkpoints[0])]
    results = evaluator.evaluate_group([c.architecture for c in candidates], candidates[0].fidelity, checkpoints)
    if len(results) != len(candidates):
        raise RuntimeError(f"evaluate_group returned {len(results)} results for {len(candidates)} trials")
    return results


class Executor(Protocol):
    """Runs evaluations; ``capacity`` is how many may be in flight at once (one per worker)."""

    capacity: int

    def start(self, evaluator: Evaluator) -> None: ...

    def submit(self, trial_id: int, candidate: Candidate, checkpoint: bytes | None = None) -> None:
        """Queue work for ``trial_id``: train ``candidate`` to its fidelity, from ``checkpoint`` if given.

        Work is identified by trial id: the same architecture may be in flight twice."""
        ...

    def submit_group(self, work: Job) -> None:
        """Queue trials that run as one job on one worker (``Evaluator.evaluate_group``): ``(trial_id,
        candidate, checkpoint)`` each, one fidelity; their results come back together."""
        ...

    def collect(self, timeout: float | None = None) -> list[tuple[int, EvalResult]]:
        """Results that are ready, waiting up to ``timeout`` seconds for at least one."""
        ...

    def close(self) -> None: ...
