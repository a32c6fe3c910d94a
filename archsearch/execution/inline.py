"""In-process execution: one evaluation at a time in the driver. For debugging and tiny runs."""

from __future__ import annotations

import os
import socket
from collections import deque

from archsearch.execution._base import Evaluator, Job, run_group
from archsearch.trial import Candidate, EvalResult


class InlineExecutor:
    """Evaluates each submitted job (a trial, or a group of them) when results are collected, in
    submission order."""

    capacity = 1

    def __init__(self) -> None:
        self._evaluator: Evaluator | None = None
        self._queue: deque[Job] = deque()
        self.worker = f"inline:{socket.gethostname()}:{os.getpid()}"

    def start(self, evaluator: Evaluator) -> None:
        self._evaluator = evaluator

    def submit(self, trial_id: int, candidate: Candidate, checkpoint: bytes | None = None) -> None:
        self._queue.append([(trial_id, candidate, checkpoint)])

    def submit_group(self, work: Job) -> None:
        self._queue.append(list(work))

    def collect(self, timeout: float | None = None) -> list[tuple[int, EvalResult]]:
        if not self._queue or self._evaluator is None:
            return []
        job = self._queue.popleft()
        try:
            results = run_group(self._evaluator, [c for _, c, _ in job], [ckpt for _, _, ckpt in job])
        except Exception as exc:  # an evaluator bug must cost its trials, not the run
            results = [EvalResult.crashed(exc) for _ in job]
        for result in results:
            result.info.setdefault("worker", self.worker)
        return [(trial_id, result) for (trial_id, _, _), result in zip(job, results, strict=True)]

    def close(self) -> None:
        self._queue.clear()
