"""The ask/tell strategy interface.

A strategy proposes candidates and learns from their results; it never owns the loop, the disk or the
workers (the engine does), which is what lets resume, Ray and Pareto bookkeeping exist once.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from archsearch.errors import ConfigError
from archsearch.space import SearchSpace
from archsearch.trial import Candidate, EvalResult


class Strategy(ABC):
    """Base class: ``ask`` proposes, ``tell`` reports back, ``state_dict`` saves everything needed to resume.

    Args:
        space: the search space (built-in or a user's callable wrapped in a space).
        objectives: ``{metric: "minimize" | "maximize"}``, in priority order.
        seed: seeds every random choice; the same seed gives the same proposals.

    Contract (checked by :mod:`archsearch.testing`): ``ask`` may be called several times before any
    ``tell`` (several workers), returns ``None`` when it has nothing to propose, and ``state_dict()`` is
    JSON-able and restores the strategy exactly, including its random state. Strategies keep no files:
    the engine saves ``state_dict()`` in the run directory and replays the journal into it on resume.

    The base keeps what every strategy needs: a lazily seeded ``rng``, the ``arch_id`` of every
    architecture proposed or told (to avoid training one twice), the number of proposals, and seeds
    derived from ``(seed, n)`` for helpers (surrogates, samplers) that must not carry hidden state.
    Subclasses save their own state through :meth:`_own_state` / :meth:`_load_own_state`.
    """

    name = "strategy"
    lr_siblings = 1  # class defaults too: a subclass that skips ``__init__`` still runs in the engine
    _siblings: list[dict[str, Any]] = []  # queued siblings' decisions; only ever rebound, never mutated
    _given: list[dict[str, Any]] = []  # start points not yet proposed (``start_with``); the same
    measure: Callable[[Any], Mapping[str, Any]] | None = None
    violations: Callable[[Mapping[str, float]], list[str]] | None = None

    def __init__(self, space: SearchSpace, objectives: dict[str, str] | None = None, seed: int = 0) -> None:
        self.space = space
        self.objectives = dict(objectives or {})
        self.seed = seed
        self._rng: np.random.Generator | None = None
        self._seen: set[str] = set()
        self._n_asked = 0

    def check(self) -> None:
        """Refuse option values that cannot work, with what would; called when a run is planned, so a
        bad ``strategy.*`` override stops before the run directory exists."""
        problems = option_problems(self.options())
        if problems:
            raise ConfigError(f"strategy {self.name}: " + "; ".join(problems))

    def options(self) -> dict[str, tuple[Any, str]]:
        """``{option: (value, rule)}`` for :meth:`check`; rules as :func:`option_problems` reads them."""
        return {"seed": (self.seed, "int")}

    @abstractmethod
    def ask(self) -> Candidate | None:
        """The next candidate to evaluate, or ``None`` when there is nothing left to propose."""

    @abstractmethod
    def tell(self, candidate: Candidate, result: EvalResult) -> None:
        """Learn from the result of a candidate this strategy (or a replayed journal) proposed."""

    def use_siblings(self, k: int) -> None:
        """Follow each proposal that decides a learning rate with ``k - 1`` more of the same architecture at
        other rates (:mod:`archsearch.strategies._siblings`), which the executor trains with it as one
        stacked group; 1 (the default) offers none."""
        problems = option_problems({"lr_siblings": (k, "int>=1")})
        if problems:
            raise ConfigError(f"strategy {self.name}: " + "; ".join(problems))
        self.lr_siblings = k

    def start_with(self, points: Sequence[Mapping[str, Any]]) -> None:
        """Propose ``points`` (decisions; labels left out are sampled) first, in order, before the
        strategy's own proposals (:mod:`archsearch.strategies._start`); refused in one line where the space
        cannot build one as given. Points whose architecture was proposed already are skipped."""
        from archsearch.strategies._start import checked_start_points

        self._given = checked_start_points(self.space, points)

    def queued(self) -> int:
        """Proposals already decided (siblings of the last one): the engine asks for them at once, so that
        they run together."""
        return len(self._siblings)

    def next_proposal(self) -> Candidate | None:
        """What the engine asks for: a queued sibling first, then a start point, else :meth:`ask` (a
        start point or a proposal may queue siblings of its own). Deterministic like ``ask``, so a journal
        replays through it."""
        from archsearch.strategies._siblings import SIBLING, sibling_decisions
        from archsearch.strategies._start import GIVEN

        while self._siblings:
            decisions, self._siblings = self._siblings[0], self._siblings[1:]
            sibling = self._propose_queued(decisions, SIBLING)
            if sibling is not None:
                return sibling
        candidate = None
        while self._given and candidate is None:
            decisions, self._given = self._given[0], self._given[1:]
            candidate = self._propose_queued(decisions, GIVEN)
        if candidate is None:
            candidate = self.ask()
        if candidate is not None and self.lr_siblings > 1:
            self._siblings = sibling_decisions(self.space, candidate.decisions, self.lr_siblings, self.rng)
        return candidate

    def _propose_queued(self, decisions: Mapping[str, Any], origin: str) -> Candidate | None:
        """Hand out decisions decided beforehand, a sibling or a start point (labels they lack sampled;
        ``None`` where the architecture was seen already); a strategy that keeps its own record of what it
        asked (an Optuna study, in-flight decisions) extends this."""
        from archsearch.strategies._common import rebuild

        architecture, built = rebuild(self.space, decisions, self.rng)
        candidate = Candidate(architecture, built, origin=origin)
        return self._propose(candidate) if candidate.arch_id not in self._seen else None

    def use_measure(self, measure: Callable[[Any], Mapping[str, Any]] | None) -> None:
        """Give the strategy ``measure(architecture) -> {metric: value}``: metrics known before training
        (parameters, FLOPs), so a model-based strategy spends training only where the rest is uncertain.
        Strategies that cannot use it ignore it."""
        self.measure = measure

    def use_constraints(self, violations: Callable[[Mapping[str, float]], list[str]] | None) -> None:
        """Give the strategy the run's constraints as ``violations(metrics) -> [reason, ...]``, so one that
        measures its proposals need not propose what the evaluator would reject. Others ignore it."""
        self.violations = violations

    def _call_measure(self, architecture: Any) -> dict[str, float]:
        """``measure``'s finite numbers for ``architecture``; ``{}`` where it fails (then every objective is
        predicted, and the candidate is still trained and scored as usual)."""
        if self.measure is None:
            return {}
        try:
            values = self.measure(architecture)
        except Exception:  # a user's function failing on one architecture must not stop the search
            return {}
        if not isinstance(values, Mapping):
            return {}
        return {str(k): float(v) for k, v in values.items()
                if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)}

    # -- shared bookkeeping ------------------------------------------------------------------------

    @property
    def rng(self) -> np.random.Generator:
        if self._rng is None:
            self._rng = np.random.default_rng(self.seed)
        return self._rng

    def _propose(self, candidate: Candidate | None) -> Candidate | None:
        """Book a proposal (its architecture is now seen) and hand it out; ``None`` passes through."""
        if candidate is not None:
            self._seen.add(candidate.arch_id)
            candidate.proposal = self._n_asked
            self._n_asked += 1
        return candidate

    @staticmethod
    def _trial_key(candidate: Candidate) -> str:
        """The key of a proposal's bookkeeping: its proposal number (trial identity), not its architecture,
        since one architecture may be in flight in two trials; ``arch_id`` for candidates from before."""
        return str(candidate.proposal) if candidate.proposal >= 0 else candidate.arch_id

    def _derived_seed(self, n: int) -> int:
        """A seed for the ``n``-th use of a helper: proposals depend on the history, not on hidden RNG."""
        return int(np.random.SeedSequence([self.seed, n]).generate_state(1)[0])

    # -- state ---------------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly (JSON-able)."""
        return {"rng": self.rng.bit_generator.state, "seed": self.seed, "seen": sorted(self._seen),
                "n_asked": self._n_asked, "siblings": [dict(d) for d in self._siblings],
                "given": [dict(d) for d in self._given], **self._own_state()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.seed = int(state.get("seed", self.seed))  # derived seeds follow the saved run's seed
        if "rng" in state:
            self.rng.bit_generator.state = state["rng"]
        self._seen = set(state.get("seen", ()))
        self._n_asked = int(state.get("n_asked", 0))
        self._siblings = [dict(d) for d in state.get("siblings", ())]
        self._given = [dict(d) for d in state.get("given", ())]
        self._load_own_state(state)

    def _own_state(self) -> dict[str, Any]:
        """A subclass's own JSON-able state, merged into :meth:`state_dict` (keys other than the base's)."""
        return {}

    def _load_own_state(self, state: Mapping[str, Any]) -> None:
        """Restore what :meth:`_own_state` saved."""
        return None


def option_problems(options: dict[str, tuple[Any, str]]) -> list[str]:
    """What is wrong with each ``(value, rule)``; a rule is ``bool``, ``int``, ``int>=N``, ``float>=X``,
    ``float>X``, ``0..1`` (a probability) or ``one of a|b|c``."""
    problems = []
    for name, (value, rule) in options.items():
        if rule.startswith("one of "):
            choices = rule[len("one of "):].split("|")
            if value not in choices:
                problems.append(f"{name}={value!r} is not one of {', '.join(choices)}")
            continue
        if rule == "bool":
            if not isinstance(value, bool):
                problems.append(f"{name}={value!r} must be true or false")
            continue
        kind, _, bound = rule.partition(">")
        is_int = isinstance(value, int) and not isinstance(value, bool)
        is_number = is_int or isinstance(value, float)
        if (kind == "int" and not is_int) or (kind in ("float", "0..1") and not is_number):
            problems.append(f"{name}={value!r} must be {'an integer' if kind == 'int' else 'a number'}")
        elif kind == "0..1" and not 0 <= value <= 1:
            problems.append(f"{name}={value!r} must lie in [0, 1]")
        elif bound.startswith("=") and value < float(bound[1:]):
            problems.append(f"{name}={value!r} must be at least {bound[1:]}")
        elif bound and not bound.startswith("=") and value <= float(bound):
            problems.append(f"{name}={value!r} must be greater than {bound}")
    return problems
