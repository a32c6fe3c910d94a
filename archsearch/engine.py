"""The one search loop: ask -> submit -> collect -> tell -> store.

Strategies, executors and stores never loop themselves; this module is the only place that decides
when to propose, when to wait and what to write, so resume and distributed execution work the same
for every strategy.

Every call to the strategy is mirrored by a journal record (``trial_started`` for an ask,
``trial_finished`` for a tell), written before the call's effect is saved. The saved strategy state
says how many of those records it has absorbed, so on resume the engine replays the rest: asks again
(proposals are deterministic given the state) and tells again. The strategy therefore continues exactly
where it stopped, whatever instant the previous driver died at.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from archsearch.budget import Budget
from archsearch.execution._base import Evaluator, Executor
from archsearch.results import outcomes
from archsearch.results.pareto import non_dominated_mask, to_minimization
from archsearch.results.store import SCHEMA_VERSION, RunStore
from archsearch.strategies._base import Strategy
from archsearch.trial import REJECTED, Candidate, EvalResult, objective_values

TABLES_EVERY_S = 30.0  # rewrite the Parquet tables at most this often during a run
REJECTIONS_PER_BUDGET = 50  # rejected candidates allowed per unit of trial budget before giving up
KEEP_WEIGHTS = ("front", "all", "none")
SPACE_ERROR = "space_error"  # origin of a trial whose proposal the space raised for


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


class FrontWeights:
    """Keeps the weights of exactly the trials on the current Pareto front (or all, or none)."""

    def __init__(self, store: RunStore, objectives: dict[str, str], policy: str) -> None:
        self.store = store
        self.directions = list(objectives.values())
        self.objectives = objectives
        self.policy = policy
        self.front: dict[int, list[float]] = {}

    def restore(self, journaled: list[dict[str, Any]]) -> None:
        for trial in journaled:
            if trial["result"] is not None:
                values = objective_values(EvalResult.from_dict(trial["result"]), self.objectives)
                if values is not None:
                    self._admit(trial["trial_id"], values)

    def _admit(self, trial_id: int, values: list[float]) -> tuple[bool, list[int]]:
        ids = [*self.front, trial_id]
        points = to_minimization(np.array([*self.front.values(), values], dtype=float), self.directions)
        mask = non_dominated_mask(points)
        if not mask[-1]:
            return False, []
        dropped = [i for i, keep in zip(ids[:-1], mask[:-1], strict=True) if not keep]
        for i in dropped:
            del self.front[i]
        self.front[trial_id] = values
        return True, dropped

    def update(self, trial_id: int, result: EvalResult) -> None:
        values = objective_values(result, self.objectives)
        if values is None or self.policy == "none":
            return
        on_front, dropped = self._admit(trial_id, values)
        if result.weights is not None and (on_front or self.policy == "all"):
            self.store.save_weights(trial_id, result.weights)
        if self.policy == "front":
            for i in dropped:
                self.store.drop_weights(i)


@dataclass
class Engine:
    """Runs (or resumes) one search until its budget is spent or the strategy has nothing left.

    Attributes:
        strategy: proposes candidates and learns from results.
        evaluator: turns an architecture into an :class:`EvalResult` (runs wherever the executor puts it).
        executor: runs evaluations; ``capacity`` candidates are kept in flight.
        store: the run directory; every start and finish is journaled before it is acted on.
        budget: candidates or seconds.
        keep_weights: ``front`` (weights of the current Pareto front), ``all`` or ``none``.
    """

    strategy: Strategy
    evaluator: Evaluator
    executor: Executor
    store: RunStore
    budget: Budget
    progress: Progress = field(default_factory=SilentProgress)
    keep_weights: str = "front"
    stop_reason: str = ""
    _ops: int = field(default=0, init=False)  # journal records (asks and tells) the strategy has absorbed
    recovery: dict[str, Any] = field(default_factory=dict, init=False)  # what a resume found and did

    def run(self) -> str:
        """Run the loop; returns why it stopped (``"budget"``, ``"exhausted"``, ``"time"``,
        ``"constraints"``).

        Rejected candidates (refused by a constraint before training) do not use the trial budget, up
        to ``REJECTIONS_PER_BUDGET`` of them per budgeted trial.
        """
        objectives = dict(self.store.info()["objectives"])
        repaired = self.store.repair_journal()
        journaled = self.store.trials()
        weights = FrontWeights(self.store, objectives, self.keep_weights)
        weights.restore(journaled)
        recovery = self._catch_up()
        next_id = max((t["trial_id"] for t in journaled), default=-1) + 1
        finished = [t["result"]["status"] for t in journaled if t["result"] is not None]
        n_rejected = finished.count(REJECTED)
        unfinished = [t for t in journaled if t["result"] is None]
        n_started = len(finished) - n_rejected + len(unfinished)  # trials that used budget
        if journaled:
            self.recovery = {"completed": len(finished), "in_flight_again": len(unfinished),
                             "journal": repaired or "intact", **recovery}
            self.store.append({"event": "run_recovered", **self.recovery})
            report = getattr(self.progress, "recovered", None)
            if report is not None:
                report(self.recovery)
        max_rejected = REJECTIONS_PER_BUDGET * max(1, self.budget.max_trials or 1_000)
        in_flight: dict[int, Candidate] = {}
        start = last_tables = time.monotonic()
        self.strategy.attach(self.store.path)
        self.progress.start(self.budget, len(finished) - n_rejected)
        self.executor.start(self.evaluator)
        try:
            for trial in unfinished:  # in flight when the last driver stopped: evaluate them again
                candidate = Candidate.from_dict(trial["candidate"])
                self.store.append({"event": "trial_resubmitted", "trial_id": trial["trial_id"]}, durable=False)
                self.executor.submit(trial["trial_id"], candidate)
                in_flight[trial["trial_id"]] = candidate
            while True:
                exhausted = False
                while (len(in_flight) < self.executor.capacity and n_rejected < max_rejected
                       and self.budget.allows(n_started, time.monotonic() - start)):
                    proposal, error = self._ask()
                    if proposal is None:
                        exhausted = True
                        break
                    candidate = proposal
                    self.store.trial_started(next_id, candidate)
                    self._ops += 1
                    self._save_state()
                    if error is not None:  # the space raised for this proposal: that trial fails, not the run
                        self.store.trial_finished(next_id, EvalResult.failed(error))
                        self._ops += 1
                        self._save_state()
                    else:
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
                    result = outcomes.checked(result, objectives)
                    if result.status == REJECTED:
                        n_started -= 1
                        n_rejected += 1
                    self.store.trial_finished(trial_id, result)
                    self._ops += 1
                    weights.update(trial_id, result)
                    self.strategy.tell(candidate, result)
                    self._save_state()
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
            self._save_state(durable=True)
            self.store.write_tables()
        self.store.append({"event": "run_finished", "reason": self.stop_reason})
        return self.stop_reason

    def _ask(self) -> tuple[Candidate | None, str | None]:
        """The strategy's next proposal; a proposal the space raised for becomes a placeholder
        candidate and the error, so that one trial fails instead of the search."""
        try:
            return self.strategy.ask(), None
        except Exception as exc:  # a user's space that raises for one proposal
            reason = f"the space raised while building this proposal: {type(exc).__name__}: {exc}"
            placeholder = Candidate(None, {}, origin=SPACE_ERROR, arch_id=f"{SPACE_ERROR}-{self._ops}")
            return placeholder, reason.splitlines()[0][:500]

    def _save_state(self, durable: bool = False) -> None:
        self.store.save_strategy_state(
            {"schema_version": SCHEMA_VERSION, "journal_ops": self._ops, "strategy": self.strategy.state_dict()},
            durable=durable)

    def _catch_up(self) -> dict[str, Any]:
        """Load the saved strategy state and replay the journal records it had not absorbed yet.

        A missing, unreadable or too new state (a journal cut back by a crash) is rebuilt by replaying
        the whole journal into a fresh strategy, which is exact because proposals are deterministic.
        """
        ops = self.store.strategy_ops()  # (kind, trial_id, candidate, result) in journal order
        saved = self.store.load_strategy_state()
        done, how = 0, "fresh"
        saved_ops = saved.get("journal_ops") if saved is not None else None
        if not isinstance(saved_ops, int) or isinstance(saved_ops, bool) or saved_ops < 0:
            saved, saved_ops = None, 0  # a damaged state file: rebuild from the journal
        if saved is not None and saved_ops <= len(ops):
            pristine = copy.deepcopy(self.strategy)
            try:
                self.strategy.load_state_dict(saved["strategy"])
                done, how = saved_ops, "loaded"
            except Exception:  # state of the wrong shape (damaged, or another strategy's): replay instead
                self.strategy, saved = pristine, None
        if how == "fresh" and ops:
            how = "rebuilt from the journal (saved state " + ("missing or unreadable)" if saved is None
                                                              else "ahead of the journal)")
        for kind, trial_id, candidate, result in ops[done:]:
            if candidate.origin == SPACE_ERROR:  # the live ask raised: so does its replay, and no tell followed
                if kind == "ask":
                    self._ask()
                continue
            if kind == "ask":
                proposed = self.strategy.ask()
                if proposed is None or proposed.arch_id != candidate.arch_id:
                    self.store.append({"event": "replay_mismatch", "trial_id": trial_id}, durable=False)
            else:
                self.strategy.tell(candidate, result)
        self._ops = len(ops)
        return {"strategy_state": how, "replayed": len(ops) - done}
