"""The one search loop: ask -> submit -> collect -> tell -> store.

Strategies, executors and stores never loop themselves; this module is the only place that decides
when to propose, when to wait and what to write, so resume and distributed execution work the same
for every strategy.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Protocol

from archsearch.budget import Budget
from archsearch.execution._base import Evaluator, Executor
from archsearch.results.store import RunStore
from archsearch.strategies._base import Strategy
from archsearch.trial import REJECTED, Candidate, EvalResult

TABLES_EVERY_S = 30.0  # rewrite the Parquet tables at most this often during a run
REJECTIONS_PER_BUDGET = 50  # rejected candidates allowed per unit of trial budget before giving up


class Progress(Protocol):
    """What the engine reports while it works (the CLI shows it with rich)."""

    def start(self, budget: Budget, already_done: int) -> None: ...

    def trial_done(self, trial_id: int, candidate: Candidate, result: EvalResult) -> None: ...

    def stop(self) -> None: ...


class SilentProgress:
    def start(self, budget: Budget, already_done: int) -> None:
        pass

    def trial_done(self, trial_id: int, candidate: Candidate, result: EvalResult) -> None:
        pass

    def stop(self) -> None:
        pass


@dataclass
class Engine:
    """Runs one search until its budget is spent or the strategy has nothing left to propose.

    Attributes:
        strategy: proposes candidates and learns from results.
        evaluator: turns an architecture into an :class:`EvalResult` (runs wherever the executor puts it).
        executor: runs evaluations; ``capacity`` candidates are kept in flight.
        store: the run directory; every start and finish is journaled before it is acted on.
        budget: candidates or seconds.
    """

    strategy: Strategy
    evaluator: Evaluator
    executor: Executor
    store: RunStore
    budget: Budget
    progress: Progress = field(default_factory=SilentProgress)
    stop_reason: str = ""

    def run(self) -> str:
        """Run the loop; returns why it stopped (``"budget"``, ``"exhausted"``, ``"time"``,
        ``"constraints"``).

        Rejected candidates (refused by a constraint before training) do not use the trial budget,
        up to ``REJECTIONS_PER_BUDGET`` of them per budgeted trial.
        """
        journaled = self.store.trials()
        next_id = max((t["trial_id"] for t in journaled), default=-1) + 1
        finished = [t["result"]["status"] for t in journaled if t["result"] is not None]
        n_rejected = finished.count(REJECTED)
        n_started = len(finished) - n_rejected  # trials that used budget, finished or in flight
        max_rejected = REJECTIONS_PER_BUDGET * max(1, self.budget.max_trials or 1_000)
        in_flight: dict[int, Candidate] = {}
        start = time.monotonic()
        last_tables = start
        self.strategy.attach(self.store.path)
        self.progress.start(self.budget, n_started)
        self.executor.start(self.evaluator)
        try:
            while True:
                exhausted = False
                while (len(in_flight) < self.executor.capacity and n_rejected < max_rejected
                       and self.budget.allows(n_started, time.monotonic() - start)):
                    candidate = self.strategy.ask()
                    if candidate is None:
                        exhausted = True
                        break
                    self.store.trial_started(next_id, candidate)
                    self.executor.submit(next_id, candidate)
                    in_flight[next_id] = candidate
                    next_id += 1
                    n_started += 1
                if not in_flight:
                    self.stop_reason = "exhausted" if exhausted else "constraints" if (
                        n_rejected >= max_rejected) else "budget" if self.budget.max_trials is not None else "time"
                    break
                for trial_id, result in self.executor.collect(timeout=1.0):
                    candidate = in_flight.pop(trial_id)
                    if result.status == REJECTED:
                        n_started -= 1
                        n_rejected += 1
                    self.store.trial_finished(trial_id, result)
                    self.strategy.tell(candidate, result)
                    self.store.save_strategy_state(self.strategy.state_dict())
                    self.progress.trial_done(trial_id, candidate, result)
                if time.monotonic() - last_tables > TABLES_EVERY_S:
                    self.store.write_tables()
                    last_tables = time.monotonic()
        except KeyboardInterrupt:
            self.stop_reason = "interrupted"
            self.store.append({"event": "run_interrupted", "in_flight": sorted(in_flight)})
            raise
        finally:
            self.executor.close()
            self.progress.stop()
            self.store.save_strategy_state(self.strategy.state_dict(), durable=True)
            self.store.write_tables()
        self.store.append({"event": "run_finished", "reason": self.stop_reason})
        return self.stop_reason
