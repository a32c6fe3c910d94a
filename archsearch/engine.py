"""The one search loop: ask -> schedule -> submit -> collect -> tell -> store.

Strategies, executors and stores never loop themselves; this module is the only place that decides
when to propose, when to wait and what to write, so resume and distributed execution work the same
for every strategy.

Every call to the strategy is mirrored by a journal record (``trial_started`` for an ask,
``trial_finished`` for a tell), written before the call's effect is saved. The saved strategy state
says how many of those records it has absorbed, so on resume the engine replays the rest: asks again
(proposals are deterministic given the state) and tells again. The strategy therefore continues exactly
where it stopped, whatever instant the previous driver died at.

Work is identified by ``trial_id``: a trial may come back several times (a fidelity scheduler continues
it from its checkpoint, rung after rung), and the same architecture may be in flight in two trials.
Between rungs a trial is journaled as ``trial_reported`` with its checkpoint saved first, so a resumed
run continues it from there; the strategy hears about the trial once, when it stops.
"""

from __future__ import annotations

import copy
import time
from collections import deque
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import numpy as np

from archsearch.budget import Budget
from archsearch.errors import one_line
from archsearch.execution._base import Evaluator, Executor
from archsearch.pareto import non_dominated_mask, to_minimization
from archsearch.results import outcomes
from archsearch.results.store import RunStore
from archsearch.scheduling import FullFidelity, Scheduler
from archsearch.strategies._base import Strategy
from archsearch.trial import PRUNED, REJECTED, Candidate, EvalResult, objective_values
from archsearch.versions import RUN_SCHEMA_VERSION

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


def sibling_groups(journaled: list[dict[str, Any]]) -> dict[int, int]:
    """Trial id -> the trial id of the proposal it is a learning-rate sibling of (and that proposal's own),
    for proposals that have siblings: journaled right after it, with the sibling origin."""
    from archsearch.strategies._siblings import SIBLING

    groups: dict[int, int] = {}
    leader = None
    for trial in journaled:
        if (trial["candidate"].get("origin") or "") == SIBLING and leader is not None:
            groups[leader] = groups[trial["trial_id"]] = leader
        else:
            leader = trial["trial_id"]
    return groups


@dataclass
class _Work:
    """One segment of a trial's training: the strategy's candidate, from ``start`` to ``target``."""

    candidate: Candidate
    target: float | None  # fidelity to train to; None: the evaluator's default (full)
    start: float = 0.0  # fidelity the segment continues from (0: from scratch)
    checkpoint: bytes | None = None
    last: EvalResult | None = None  # the result at ``start`` (a continuation waiting for a worker)
    group: int | None = None  # trial id of the proposal whose siblings it trains with (None: proposed alone)

    def submitted(self) -> Candidate:
        return replace(self.candidate, fidelity=self.target)


@dataclass
class Engine:
    """Runs (or resumes) one search until its budget is spent or the strategy has nothing left.

    Attributes:
        strategy: proposes candidates and learns from results.
        evaluator: turns an architecture into an :class:`EvalResult` (runs wherever the executor puts it).
        executor: runs evaluations; ``capacity`` candidates are kept in flight.
        store: the run directory; every start and finish is journaled before it is acted on.
        budget: candidates, epochs or seconds.
        keep_weights: ``front`` (weights of the current Pareto front), ``all`` or ``none``.
        scheduler: the fidelity policy; ``full`` (one shot per trial) by default.
    """

    strategy: Strategy
    evaluator: Evaluator
    executor: Executor
    store: RunStore
    budget: Budget
    progress: Progress = field(default_factory=SilentProgress)
    keep_weights: str = "front"
    scheduler: Scheduler = field(default_factory=FullFidelity)
    stop_reason: str = ""
    stop_detail: str = ""  # the stop's reason in words, where the reason alone does not say it
    _ops: int = field(default=0, init=False)  # journal records (asks and tells) the strategy has absorbed
    _strategy_settled: bool = field(default=True, init=False)  # no ask or tell since the last save
    recovery: dict[str, Any] = field(default_factory=dict, init=False)  # what a resume found and did
    _in_flight: dict[int, _Work] = field(default_factory=dict, init=False)  # trial id -> segment running
    _job_of: dict[int, int] = field(default_factory=dict, init=False)  # trial id -> job (its group's first trial)
    _waiting: deque[tuple[int, _Work]] = field(default_factory=deque, init=False)  # continuations queued
    _spent: float = field(default=0.0, init=False)  # training epochs spent (segments that came back)
    _weights: FrontWeights | None = field(default=None, init=False, repr=False)

    def run(self) -> str:
        """Run the loop; returns why it stopped (``"budget"``, ``"exhausted"``, ``"time"``,
        ``"constraints"``, ``"objectives"``: results kept lacking an objective, ``stop_detail`` says which).

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
        unreported = outcomes.UnreportedObjectives(objectives, [t["result"] for t in journaled if t["result"]])
        self._weights = weights
        self._in_flight, self._waiting, self._job_of = {}, deque(), {}
        self._spent = self._restore_schedule(journaled)
        for trial in journaled:  # a crash between a trial's end and its checkpoint's removal
            if trial["result"] is not None:
                self.store.drop_checkpoint(trial["trial_id"])
        start = last_tables = time.monotonic()
        self.progress.start(self.budget, len(finished) - n_rejected)
        self.executor.start(self.evaluator)
        first = self.scheduler.start_fidelity()
        try:
            groups = sibling_groups(journaled)
            fresh = []
            for trial in unfinished:  # in flight or paused when the last driver stopped: go on with them
                work = self._resume_trial(trial, groups.get(trial["trial_id"]))
                if work is not None:
                    fresh.append((trial["trial_id"], work))
            self._submit_grouped(fresh)
            while True:
                exhausted = False
                while self._jobs() < self.executor.capacity:
                    elapsed = time.monotonic() - start
                    if self._waiting:
                        trial_id, work = self._waiting.popleft()
                        if self.budget.max_seconds is not None and elapsed >= self.budget.max_seconds:
                            assert work.last is not None
                            self._finish(trial_id, work, work.last, PRUNED, stopped_by="budget")
                        else:
                            self._submit_grouped([(trial_id, work), *self._waiting_like(work)])
                        continue
                    cost = self._cost(first, 0.0)
                    new: list[tuple[int, _Work]] = []  # a proposal, and the siblings the strategy queued with it
                    while (n_rejected < max_rejected and not unreported.stop and (not new or self._queued())
                           and self.budget.allows(n_started, elapsed,
                                                  self._spent + self._committed() + cost * (len(new) + 1))):
                        candidate, error = self._ask()
                        if candidate is None:
                            exhausted = True
                            break
                        self.store.trial_started(next_id, candidate, first)
                        self._ops += 1
                        self._save_state()
                        if error is not None:  # the space raised for this proposal: that trial fails, not the run
                            self.store.trial_finished(next_id, EvalResult.failed(error))
                            self._ops += 1
                            self._save_state()
                        else:
                            new.append((next_id, _Work(candidate, first)))
                        next_id += 1
                        n_started += 1
                    if len(new) > 1:  # siblings: they and their continuations run together
                        for _, work in new:
                            work.group = new[0][0]
                    self._submit_grouped(new)
                    if exhausted or not new:  # nothing left to propose, or no budget (or patience) for it
                        break
                if not self._in_flight and not self._waiting:
                    self.stop_reason = "exhausted" if exhausted else "constraints" if (
                        n_rejected >= max_rejected) else "objectives" if unreported.stop else (
                        "time" if self.budget.max_seconds is not None else "budget")
                    break
                for trial_id, result in self.executor.collect(timeout=1.0):
                    unreported.count(result)
                    if self._after_result(trial_id, outcomes.checked(result, objectives)) == REJECTED:
                        n_started -= 1
                        n_rejected += 1
                if time.monotonic() - last_tables > TABLES_EVERY_S:
                    self.store.write_tables()
                    last_tables = time.monotonic()
        except KeyboardInterrupt:
            self.stop_reason = "interrupted"
            self.store.append({"event": "run_interrupted", "in_flight": sorted(self._in_flight)})
            raise
        finally:
            self.executor.close()
            self.progress.stop()
            if self._strategy_settled:  # else Ctrl-C came inside ask or tell: the last saved state stands
                self._save_state(durable=True)
            self.store.write_tables()
        if self.stop_reason == "objectives":
            self.stop_detail = unreported.reason()
        self.store.append({"event": "run_finished", "reason": self.stop_reason,
                           **({"detail": self.stop_detail} if self.stop_detail else {})})
        return self.stop_reason

    # -- trials with a life: segments, rungs, checkpoints --------------------------------------------

    def _cost(self, target: float | None, start: float) -> float:
        """Epochs a segment trains (the maximum fidelity when the evaluator decides it)."""
        end = target if target is not None else self.scheduler.max_fidelity()
        return max(0.0, (end or 0.0) - start)

    def _committed(self) -> float:
        return sum(self._cost(w.target, w.start) for w in self._in_flight.values())

    def _jobs(self) -> int:
        """Jobs in flight: a stacked group of trials is one job on one worker."""
        return len(set(self._job_of.values()))

    def _submit_grouped(self, works: list[tuple[int, _Work]]) -> None:
        """Submit segments, those the evaluator can train together (:meth:`Evaluator.group_key`, the same
        fidelities, all from scratch or all from a checkpoint) as one job each, the others alone."""
        groups: dict[Any, list[tuple[int, _Work]]] = {}
        for trial_id, work in works:
            key = self._group_key(work)
            groups.setdefault(key if key is not None else ("alone", trial_id), []).append((trial_id, work))
        for group in groups.values():
            for trial_id, work in group:
                if work.start:
                    self.store.append({"event": "trial_continued", "trial_id": trial_id, "from_fidelity": work.start,
                                       "fidelity": work.target, "from_checkpoint": work.checkpoint is not None},
                                      durable=False)
            job = group[0][0]
            if len(group) == 1:
                self.executor.submit(job, group[0][1].submitted(), group[0][1].checkpoint)
            else:
                self.executor.submit_group([(trial_id, work.submitted(), work.checkpoint) for trial_id, work in group])
            for trial_id, work in group:
                work.checkpoint, work.last = None, None  # the executor holds the bytes now
                self._in_flight[trial_id] = work
                self._job_of[trial_id] = job

    def _group_key(self, work: _Work) -> Any:
        """What a segment must share with others to run in one job with them; ``None``: it runs alone.

        Only siblings of one proposal join (``group``), whatever else waits beside them: which trials
        train together then never depends on the order results come back in, and with it neither do
        their numbers (a stacked step sums in another order than a trial alone)."""
        if work.group is None:
            return None
        key = self.evaluator.group_key(work.candidate.architecture) if hasattr(self.evaluator, "group_key") else None
        return None if key is None else (key, work.group, work.start, work.target, work.checkpoint is None)

    def _waiting_like(self, work: _Work) -> list[tuple[int, _Work]]:
        """Take the queued continuations that can run in one job with ``work`` out of the queue."""
        key = self._group_key(work)
        if key is None:
            return []
        like = [(trial_id, other) for trial_id, other in self._waiting if self._group_key(other) == key]
        for item in like:
            self._waiting.remove(item)
        return like

    def _after_result(self, trial_id: int, result: EvalResult) -> str:
        """Ask the scheduler about a segment's result: journal the rung and queue the continuation, or
        finish the trial. Returns the result's status."""
        work = self._in_flight.pop(trial_id)
        self._job_of.pop(trial_id, None)
        if work.group is not None:
            result.info["group"] = work.group
        trained = result.metrics.get("epochs_trained")
        segment = max(0.0, trained - work.start) if trained is not None else (
            0.0 if result.status == REJECTED else self._cost(work.target, work.start))
        self._spent += segment
        reached = work.target if work.target is not None else trained
        result.info["segment_epochs"] = segment
        decision = self.scheduler.decide(trial_id, reached, result)
        result.info.update(rung=decision.rung, fidelity=reached)
        if decision.next_fidelity is not None and result.info.get("stopped_early"):
            return self._finish(trial_id, work, result, result.status)  # early stopping ended its training
        if decision.next_fidelity is not None:
            resume_from = reached if result.checkpoint is not None and reached is not None else 0.0
            extra = self._cost(decision.next_fidelity, resume_from)
            if self.budget.allows_epochs(self._spent + self._committed() + extra):
                if result.checkpoint is not None:
                    self.store.save_checkpoint(trial_id, result.checkpoint)
                self.store.trial_reported(trial_id, decision.rung, reached, decision.next_fidelity, result)
                self._waiting.append((trial_id, _Work(work.candidate, decision.next_fidelity, resume_from,
                                                      result.checkpoint, result, work.group)))
                return result.status
            return self._finish(trial_id, work, result, PRUNED, stopped_by="budget")
        return self._finish(trial_id, work, result, decision.status)

    def _finish(self, trial_id: int, work: _Work, result: EvalResult, status: str, **info: Any) -> str:
        if status != result.status:
            result = EvalResult(status, result.metrics, result.error, {**result.info, **info},
                                weights=result.weights, curve=result.curve)
        self.store.trial_finished(trial_id, result)
        self.store.drop_checkpoint(trial_id)
        if self._weights is not None:
            self._weights.update(trial_id, result)
        # Counted only now: a state saved by an interrupt before the tell must not claim to hold it.
        self._strategy_settled = False
        self._ops += 1
        self.strategy.tell(work.candidate, result)
        self._save_state()
        self.progress.trial_done(trial_id, work.candidate, result)
        return status

    def _restore_schedule(self, journaled: list[dict[str, Any]]) -> float:
        """Record every journaled rung result in the scheduler again; returns the epochs spent so far."""
        spent = 0.0
        for trial in journaled:
            results = [(r["fidelity"], r["result"]) for r in trial.get("reports", [])]
            if trial["result"] is not None:
                results.append(((trial["result"].get("info") or {}).get("fidelity"), trial["result"]))
            for fidelity, data in results:
                result = EvalResult.from_dict(data)
                spent += float(result.info.get("segment_epochs") or 0.0)
                if result.status != REJECTED and "rung" in result.info:
                    self.scheduler.record(trial["trial_id"], fidelity, result)
        return spent

    def _resume_trial(self, trial: dict[str, Any], group: int | None) -> _Work | None:
        """A trial without a final result: continue it from its last rung's checkpoint (queued), or start
        it again (returned, for the caller to submit with its siblings)."""
        trial_id = trial["trial_id"]
        candidate = Candidate.from_dict(trial["candidate"])
        reports = trial.get("reports", [])
        if not reports:
            self.store.append({"event": "trial_resubmitted", "trial_id": trial_id}, durable=False)
            return _Work(candidate, trial.get("fidelity"), group=group)
        last = reports[-1]
        checkpoint = self.store.load_checkpoint(trial_id)
        start = float(last["fidelity"]) if checkpoint is not None else 0.0
        group = (last["result"].get("info") or {}).get("group")
        self._waiting.append((trial_id, _Work(candidate, last["next_fidelity"], start, checkpoint,
                                              EvalResult.from_dict(last["result"]), group)))
        return None

    def _ask(self) -> tuple[Candidate | None, str | None]:
        """The strategy's next proposal; a proposal the space raised for becomes a placeholder
        candidate and the error, so that one trial fails instead of the search."""
        self._strategy_settled = False  # until saved: an interrupt now must not save a half-asked state
        try:
            return self._next_proposal(), None
        except Exception as exc:  # a user's space that raises for one proposal
            reason = f"the space raised while building this proposal: {type(exc).__name__}: {exc}"
            placeholder = Candidate(None, {}, origin=SPACE_ERROR, arch_id=f"{SPACE_ERROR}-{self._ops}")
            return placeholder, one_line(reason)

    def _next_proposal(self) -> Candidate | None:
        """The strategy's next proposal, a sibling it queued first (strategies not built on
        :class:`Strategy` are asked plainly)."""
        next_proposal = getattr(self.strategy, "next_proposal", None)
        return next_proposal() if next_proposal is not None else self.strategy.ask()

    def _queued(self) -> int:
        queued = getattr(self.strategy, "queued", None)
        return queued() if queued is not None else 0

    def _save_state(self, durable: bool = False) -> None:
        self.store.save_strategy_state(
            {"schema_version": RUN_SCHEMA_VERSION, "journal_ops": self._ops, "strategy": self.strategy.state_dict()},
            durable=durable)
        self._strategy_settled = True

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
                proposed = self._next_proposal()
                if proposed is None or proposed.arch_id != candidate.arch_id:
                    self.store.append({"event": "replay_mismatch", "trial_id": trial_id}, durable=False)
            elif result is not None:  # a tell record always carries its result
                self.strategy.tell(candidate, result)
        self._ops = len(ops)
        return {"strategy_state": how, "replayed": len(ops) - done}
