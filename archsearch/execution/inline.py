"""In-process execution: one evaluation at a time in the driver. For debugging and tiny runs."""

from __future__ import annotations

import os
import socket
from collections import deque

from archsearch.execution._base import Evaluator, run_evaluation
from archsearch.trial import Candidate, EvalResult


class InlineExecutor:
    """Evaluates each submitted candidate when results are collected, in submission order."""

    capacity = 1

    def __init__(self) -> None:
        self._evaluator: Evaluator | None = None
        self._queue: deque[tuple[int, Candidate, bytes | None]] = deque()
        self.worker = f"inline:{socket.gethostname()}:{os.getpid()}"

    def start(self, evaluator: Evaluator) -> None:
        self._evaluator = evaluator

    def submit(self, trial_id: int, candidate: Candidate, checkpoint: bytes | None = None) -> None:
        self._queue.append((trial_id, candidate, checkpoint))

    def collect(self, timeout: float | None = None) -> list[tuple[int, EvalResult]]:
        if not self._queue or self._evaluator is None:
            return []
        trial_id, candidate, checkpoint = self._queue.popleft()
        try:
            result = run_evaluation(self._evaluator, candidate.architecture, candidate.fidelity, checkpoint)
        except Exception as exc:  # an evaluator bug must cost one trial, not the run
            result = EvalResult.crashed(exc)
        result.info.setdefault("worker", self.worker)
        return [(trial_id, result)]

    def close(self) -> None:
        self._queue.clear()
