"""The contract every strategy passes (Optuna's sampler test-suite habit).

Subclass :class:`StrategyContract` in a test module and implement ``make_strategy``; pytest collects
the inherited tests. Toy spaces keep the whole suite torch-free and fast.
"""

from __future__ import annotations

import json

import pytest

from archsearch.results.store import journal_line
from archsearch.space import CallableSpace, SearchSpace, as_space
from archsearch.strategies._base import Strategy
from archsearch.testing.toys import tiny_block_space, toy_objectives, toy_result, toy_space
from archsearch.trial import PRUNED, REJECTED, Candidate, EvalResult


def drive(strategy: Strategy, n: int, in_flight: int = 1, fail_every: int = 0, prune_every: int = 0) -> list[Candidate]:
    """Ask/tell ``n`` candidates keeping up to ``in_flight`` outstanding, as an engine would; with
    ``prune_every``, those results come back ``pruned`` at a low fidelity, as a scheduler stops them."""
    proposed: list[Candidate] = []
    pending: list[Candidate] = []
    while len(proposed) < n:
        while len(pending) < in_flight and len(proposed) < n:
            candidate = strategy.ask()
            if candidate is None:
                break
            proposed.append(candidate)
            pending.append(candidate)
        if not pending:
            break
        candidate = pending.pop(0)
        index = len(proposed) - len(pending)
        if fail_every and index % fail_every == 0:
            result = EvalResult.failed("injected failure") if index % 2 else EvalResult(REJECTED, error="too big")
        elif prune_every and index % prune_every:
            result = pruned_toy(candidate)
        else:
            result = evaluate_toy(candidate)
        strategy.tell(candidate, result)
    for candidate in pending:
        strategy.tell(candidate, evaluate_toy(candidate))
    return proposed


def from_journal(candidate: Candidate) -> Candidate:
    """``candidate`` as a resumed run reads it back: through the journal's JSON (equal, not identical)."""
    return Candidate.from_dict(json.loads(journal_line(candidate.to_dict())))


def evaluate_toy(candidate: Candidate) -> EvalResult:
    arch = candidate.architecture
    if isinstance(arch, dict) and "depth" in arch:
        return toy_result(arch)
    if isinstance(arch, dict):  # any other small callable space: numbers sum to a score
        numbers = [float(v) for v in arch.values() if isinstance(v, int | float)]
        return EvalResult("complete", {"score": sum(numbers), "cost": float(len(numbers))})
    blocks = arch.blocks()
    size = float(arch.meta["width"] * len(blocks))
    return EvalResult("complete", {"score": 1 - 1 / (1 + size / 16), "cost": size})


def pruned_toy(candidate: Candidate) -> EvalResult:
    """The toy result as a scheduler leaves it when it stops a trial at its first rung: ``pruned``, with
    the metrics it had there (a worse score) and the rung and fidelity in ``info``."""
    full = evaluate_toy(candidate)
    metrics = {k: (v * 0.5 if k == "score" else v) for k, v in full.metrics.items()}
    return EvalResult(PRUNED, metrics, info={"rung": 0, "fidelity": 1.0})


class StrategyContract:
    """Inherited tests; override ``make_strategy`` (and ``n_candidates`` for slow strategies)."""

    n_candidates = 16

    def make_strategy(self, space: SearchSpace, objectives: dict[str, str], seed: int) -> Strategy:
        raise NotImplementedError

    @pytest.fixture(params=["callable", "blocks"])
    def space(self, request: pytest.FixtureRequest) -> SearchSpace:
        return as_space(toy_space) if request.param == "callable" else tiny_block_space()

    def _ids(self, candidates: list[Candidate]) -> list[str]:
        return [c.arch_id for c in candidates]

    def test_same_seed_same_proposals(self, space: SearchSpace) -> None:
        first = drive(self.make_strategy(space, toy_objectives(), seed=3), self.n_candidates, in_flight=2)
        second = drive(self.make_strategy(space, toy_objectives(), seed=3), self.n_candidates, in_flight=2)
        assert self._ids(first) == self._ids(second)
        assert [c.decisions for c in first] == [c.decisions for c in second]

    def test_different_seeds_differ(self) -> None:
        space = as_space(toy_space)
        a = drive(self.make_strategy(space, toy_objectives(), seed=1), self.n_candidates)
        b = drive(self.make_strategy(space, toy_objectives(), seed=2), self.n_candidates)
        assert self._ids(a) != self._ids(b)

    def test_candidates_replay_to_same_architecture(self, space: SearchSpace) -> None:
        from archsearch.space import architecture_id

        for candidate in drive(self.make_strategy(space, toy_objectives(), seed=0), self.n_candidates):
            assert architecture_id(space.replay(candidate.decisions)) == candidate.arch_id

    def test_failed_and_rejected_results_do_not_break_it(self, space: SearchSpace) -> None:
        strategy = self.make_strategy(space, toy_objectives(), seed=0)
        proposed = drive(strategy, self.n_candidates, in_flight=3, fail_every=2)
        assert len(proposed) == self.n_candidates
        json.dumps(strategy.state_dict())
        assert strategy.ask() is not None

    def test_pruned_trials_at_a_low_fidelity_do_not_stop_it(self, space: SearchSpace) -> None:
        """Under a fidelity scheduler most trials end ``pruned`` at a low rung; the strategy hears about
        each once and goes on proposing distinct candidates."""
        strategy = self.make_strategy(space, toy_objectives(), seed=0)
        proposed = drive(strategy, self.n_candidates, in_flight=2, prune_every=4)
        assert len(proposed) == self.n_candidates
        assert len({c.arch_id for c in proposed}) == self.n_candidates
        assert [c.proposal for c in proposed] == list(range(self.n_candidates))  # trial identity
        json.dumps(strategy.state_dict())
        assert strategy.ask() is not None

    def test_several_in_flight(self, space: SearchSpace) -> None:
        strategy = self.make_strategy(space, toy_objectives(), seed=0)
        batch = [c for c in (strategy.ask() for _ in range(4)) if c is not None]
        assert len(batch) == 4, "a strategy must propose several candidates before any result"
        assert len({c.arch_id for c in batch}) == 4, "candidates in flight together must differ"
        for candidate in reversed(batch):  # results come back out of order under several workers
            strategy.tell(candidate, evaluate_toy(candidate))
        assert strategy.ask() is not None

    def test_state_dict_is_json_and_resumes_identically(self, space: SearchSpace) -> None:
        original = self.make_strategy(space, toy_objectives(), seed=5)
        drive(original, self.n_candidates // 2, in_flight=2)
        state = json.loads(json.dumps(original.state_dict()))
        restored = self.make_strategy(space, toy_objectives(), seed=5)
        restored.load_state_dict(state)
        assert self._ids(drive(restored, self.n_candidates // 2)) == self._ids(drive(original, self.n_candidates // 2))

    def test_journal_replay_restores_the_strategy(self, space: SearchSpace) -> None:
        """What resume does: load an older state, then re-ask and re-tell (with candidates rebuilt from
        their JSON, equal but not identical) what happened since; the strategy must then continue exactly
        as the one that never stopped."""
        original = self.make_strategy(space, toy_objectives(), seed=4)
        drive(original, 4, in_flight=2)
        older = json.loads(json.dumps(original.state_dict()))
        log: list[tuple[str, Candidate, EvalResult | None]] = []
        pending: list[Candidate] = []
        for _ in range(6):  # asks and tells interleaved, two in flight
            candidate = original.ask()
            assert candidate is not None
            log.append(("ask", candidate, None))
            pending.append(candidate)
            if len(pending) == 2:
                done = pending.pop(0)
                result = evaluate_toy(done)
                original.tell(done, result)
                log.append(("tell", done, result))
        replayed = self.make_strategy(space, toy_objectives(), seed=4)
        replayed.load_state_dict(older)
        for kind, candidate, logged in log:
            rebuilt = from_journal(candidate)
            if kind == "ask":
                proposed = replayed.ask()
                assert proposed is not None and proposed.arch_id == candidate.arch_id
            else:
                assert logged is not None
                replayed.tell(rebuilt, EvalResult.from_dict(json.loads(journal_line(logged.to_dict()))))
        for candidate in pending:
            result = evaluate_toy(candidate)
            original.tell(candidate, result)
            replayed.tell(from_journal(candidate), result)
        assert self._ids(drive(replayed, 6, in_flight=2)) == self._ids(drive(original, 6, in_flight=2))

    def test_journal_replay_with_pruned_trials_is_exact(self, space: SearchSpace) -> None:
        """Resume of a scheduled run: pruned results replayed from the journal restore the strategy exactly."""
        original = self.make_strategy(space, toy_objectives(), seed=6)
        older = json.loads(json.dumps(original.state_dict()))
        log: list[tuple[str, Candidate, EvalResult | None]] = []
        for index in range(8):
            candidate = original.ask()
            assert candidate is not None
            result = pruned_toy(candidate) if index % 3 else evaluate_toy(candidate)
            original.tell(candidate, result)
            log += [("ask", candidate, None), ("tell", candidate, result)]
        replayed = self.make_strategy(space, toy_objectives(), seed=6)
        replayed.load_state_dict(older)
        for kind, candidate, logged in log:
            if kind == "ask":
                proposed = replayed.ask()
                assert proposed is not None and proposed.arch_id == candidate.arch_id
                assert proposed.proposal == candidate.proposal
            else:
                rebuilt = from_journal(candidate)
                assert logged is not None
                replayed.tell(rebuilt, EvalResult.from_dict(json.loads(journal_line(logged.to_dict()))))
        assert self._ids(drive(replayed, 6, prune_every=2)) == self._ids(drive(original, 6, prune_every=2))

    def test_seed_is_honoured_after_restore_of_fresh_state(self, space: SearchSpace) -> None:
        fresh_state = self.make_strategy(space, toy_objectives(), seed=9).state_dict()
        strategy = self.make_strategy(space, toy_objectives(), seed=0)
        strategy.load_state_dict(json.loads(json.dumps(fresh_state)))
        reference = self.make_strategy(space, toy_objectives(), seed=9)
        assert self._ids(drive(strategy, 6)) == self._ids(drive(reference, 6))

    def test_exhausted_space_ends_with_none(self) -> None:
        space = CallableSpace(lambda c: {"x": c.suggest_categorical("x", [0, 1, 2])}, name="three")
        strategy = self.make_strategy(space, {"score": "maximize"}, seed=0)
        proposed = drive(strategy, 50)
        assert 3 <= len(proposed) < 50
        assert len({c.arch_id for c in proposed}) == 3
        assert strategy.ask() is None
