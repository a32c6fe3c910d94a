"""Pieces the model-free strategies share: the archive of results, mutation by replay, unique proposals.

Kept apart from the strategies so that evolution, local search and MCTS judge results the same way
(non-dominated sorting in minimization space, from :mod:`archsearch.pareto`) and mutate the
same way (a parent's decisions replayed with a few labels dropped and re-sampled).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from archsearch.pareto import (
    crowding_distance,
    non_dominated_mask,
    non_dominated_sort,
    to_minimization,
)
from archsearch.space import Chooser, RandomChooser, ReplayChooser, SearchSpace, same_choice
from archsearch.trial import COMPLETE, Candidate, EvalResult, metric_values


class Archive:
    """Completed results as rows of objective values in minimization space.

    With no objectives every result gets one constant column, so ranking still works (all tie).
    """

    def __init__(self, objectives: Mapping[str, str]) -> None:
        self.objectives = dict(objectives)
        self.ids: list[str] = []
        self.decisions: list[dict[str, Any]] = []
        self.values: list[list[float]] = []
        self._front: tuple[int, np.ndarray] | None = None

    def __len__(self) -> int:
        return len(self.ids)

    def minimized(self, result: EvalResult) -> list[float] | None:
        """The result's objectives in minimization space, or ``None`` if it is not complete or cannot be ranked."""
        return self.minimized_metrics(result.metrics) if result.status == COMPLETE else None

    def minimized_metrics(self, metrics: Mapping[str, float]) -> list[float] | None:
        """The objectives of ``metrics`` in minimization space (a pruned trial's: its values at the rung),
        or ``None`` if one is missing or not finite."""
        if not self.objectives:
            return [0.0]
        values = metric_values(metrics, self.objectives)
        if values is None or not all(math.isfinite(v) for v in values):
            return None
        return to_minimization([values], list(self.objectives.values()))[0].tolist()

    def add(self, candidate: Candidate, result: EvalResult) -> list[float] | None:
        """Record a complete result; returns its minimized values (``None``: not recorded)."""
        values = self.minimized(result)
        if values is not None:
            self.ids.append(candidate.arch_id)
            self.decisions.append(dict(candidate.decisions))
            self.values.append(values)
        return values

    def pop_oldest(self) -> None:
        """Drop the first row (aging evolution's population is a queue)."""
        del self.ids[0], self.decisions[0], self.values[0]
        self._front = None

    def points(self) -> np.ndarray:
        return np.array(self.values, dtype=float).reshape(len(self.values), max(1, len(self.objectives)))

    def front(self) -> np.ndarray:
        """Indices of the non-dominated rows (cached until the archive grows)."""
        if self._front is None or self._front[0] != len(self.values):
            mask = non_dominated_mask(self.points()) if self.values else np.zeros(0, dtype=bool)
            self._front = (len(self.values), np.flatnonzero(mask))
        return self._front[1]

    def state_dict(self) -> dict[str, Any]:
        return {"ids": self.ids, "decisions": self.decisions, "values": self.values}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.ids = list(state["ids"])
        self.decisions = [dict(d) for d in state["decisions"]]
        self.values = [list(map(float, v)) for v in state["values"]]
        self._front = None


def rank_and_crowding(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """NSGA-II keys per row: front index (lower is better) and crowding within its front (higher is better)."""
    rank = np.zeros(len(points), dtype=int)
    crowd = np.zeros(len(points), dtype=float)
    for r, front in enumerate(non_dominated_sort(points) if len(points) else []):
        rank[front] = r
        crowd[front] = crowding_distance(points[front])
    return rank, crowd


def domination_quantile(values: Sequence[float], points: np.ndarray) -> float:
    """Share of ``points`` that do not strictly dominate ``values``: 1 on the front, near 0 deep below it.

    A scale-free reward in [0, 1] for any number of objectives (the best-so-far quantile with one).
    """
    if len(points) == 0:
        return 1.0
    v = np.asarray(values, dtype=float)
    dominating = np.all(points <= v, axis=1) & np.any(points < v, axis=1)
    return 1.0 - float(dominating.sum()) / len(points)


class MutationChooser(RandomChooser):
    """Fallback of a :class:`ReplayChooser` when mutating: re-samples a dropped decision *differently*.

    A dropped categorical takes another choice; an integer moves one step half of the time (a local
    move) and is re-drawn otherwise; a float takes a Gaussian step of a fifth of its range (in log
    space where the decision is log-scaled). Labels the parent never had (new conditional decisions)
    are sampled uniformly.
    """

    def __init__(self, rng: np.random.Generator, previous: Mapping[str, Any]) -> None:
        super().__init__(rng)
        self.previous = dict(previous)

    def _other(self, name: str, draw: Callable[[], Any]) -> Any:
        value = draw()
        if name in self.previous:
            for _ in range(8):
                if not same_choice(value, self.previous[name]):
                    break
                value = draw()
        return value

    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any:
        options = list(choices)
        return self._record(name, self._other(name, lambda: RandomChooser(self.rng).suggest_categorical(name, options)))

    def suggest_int(self, name: str, low: int, high: int, step: int = 1, log: bool = False) -> int:
        old = self.previous.get(name)
        if isinstance(old, int) and low <= old <= high and self.rng.random() < 0.5:
            moves = [v for v in (old - step, old + step) if low <= v <= high]
            if moves:
                return self._record(name, int(moves[int(self.rng.integers(len(moves)))]))
        return self._record(name, self._other(name, lambda: RandomChooser(self.rng).suggest_int(name, low, high, step, log)))

    def suggest_float(
        self, name: str, low: float, high: float, step: float | None = None, log: bool = False
    ) -> float:
        old = self.previous.get(name)
        if not isinstance(old, int | float) or not low <= old <= high or high == low:
            return super().suggest_float(name, low, high, step, log)
        lo, hi, x = (math.log(low), math.log(high), math.log(old)) if log else (low, high, float(old))
        x = min(hi, max(lo, x + self.rng.normal(0.0, 0.2 * (hi - lo))))
        value = math.exp(x) if log else x
        if step is not None:
            value = low + round((value - low) / step) * step
        return self._record(name, float(min(high, max(low, value))))


def mutate(
    space: SearchSpace, decisions: Mapping[str, Any], rng: np.random.Generator, n_changes: int = 1
) -> Candidate:
    """A child: ``decisions`` replayed with ``n_changes`` labels dropped and re-sampled differently."""
    labels = list(decisions)
    n = min(max(1, n_changes), len(labels))
    dropped = {labels[i] for i in rng.choice(len(labels), size=n, replace=False)} if labels else set()
    kept = {k: v for k, v in decisions.items() if k not in dropped}
    chooser = ReplayChooser(kept, fallback=MutationChooser(rng, {k: decisions[k] for k in dropped}))
    return Candidate(space.build(chooser), dict(chooser.decisions), origin=f"mutation of {sorted(dropped)}")


def rebuild(space: SearchSpace, decisions: Mapping[str, Any], rng: np.random.Generator) -> tuple[Any, dict[str, Any]]:
    """The architecture ``decisions`` build (a label they lack, or a value the space does not allow, is
    sampled) and the decisions it took."""
    chooser = ReplayChooser(decisions, fallback=RandomChooser(rng))
    return space.build(chooser), dict(chooser.decisions)


def crossover(
    space: SearchSpace, a: Mapping[str, Any], b: Mapping[str, Any], rng: np.random.Generator
) -> Candidate:
    """Uniform crossover of decisions: each label from either parent; labels neither has are sampled."""
    mixed = {}
    for label in dict.fromkeys([*a, *b]):
        sources = [p for p in (a, b) if label in p]
        mixed[label] = sources[int(rng.integers(len(sources)))][label]
    return Candidate(*rebuild(space, mixed, rng), origin="crossover")


class AlternativesChooser(ReplayChooser):
    """Replays decisions and notes, per decision, the values it could take instead (``alternatives``):
    every choice, every integer of the range and no float here; a walk that needs others overrides
    ``_int_alternatives`` and ``_float_alternatives``."""

    def __init__(self, decisions: Mapping[str, Any], fallback: Chooser | None = None) -> None:
        super().__init__(decisions, fallback)
        self.alternatives: dict[str, Sequence[Any]] = {}

    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any:
        self.alternatives[name] = list(choices)
        return super().suggest_categorical(name, choices)

    def suggest_int(self, name: str, low: int, high: int, step: int = 1, log: bool = False) -> int:
        value = super().suggest_int(name, low, high, step, log)
        self.alternatives[name] = self._int_alternatives(name, low, high, step, log)
        return value

    def suggest_float(self, name: str, low: float, high: float, step: float | None = None,
                      log: bool = False) -> float:
        value = super().suggest_float(name, low, high, step, log)
        self.alternatives[name] = self._float_alternatives(name, low, high, step, log)
        return value

    def _int_alternatives(self, name: str, low: int, high: int, step: int, log: bool) -> Sequence[Any]:
        return range(low, high + 1, step)

    def _float_alternatives(self, name: str, low: float, high: float, step: float | None,
                            log: bool) -> Sequence[Any]:
        return []


def neighbourhood(space: SearchSpace, decisions: Mapping[str, Any], rng: np.random.Generator,
                  max_values: int = 16) -> list[Candidate]:
    """Every architecture one decision away from ``decisions``: a decision with more than ``max_values``
    values contributes ``max_values`` of them, spread evenly, and a continuous one none; decisions that
    a changed one brings in are sampled."""
    recorder = AlternativesChooser(decisions)
    space.build(recorder)
    out = []
    for label, domain in recorder.alternatives.items():
        if len(domain) > max_values:
            domain = [domain[int(i)] for i in np.linspace(0, len(domain) - 1, max_values)]
        for value in domain:
            if same_choice(value, decisions[label]):
                continue
            chooser = ReplayChooser({**decisions, label: value}, fallback=RandomChooser(rng))
            out.append(Candidate(space.build(chooser), dict(chooser.decisions), origin=f"neighbour on {label}"))
    return out


def random_candidate(space: SearchSpace, rng: np.random.Generator) -> Candidate:
    chooser = RandomChooser(rng)
    return Candidate(space.build(chooser), dict(chooser.decisions), origin="random")


def best_of_unseen(
    make: Callable[[int], Candidate | None],
    seen: set[str],
    attempts: int,
    k: int,
    pick: Callable[[list[Candidate]], int],
    allow_duplicates: bool = False,
) -> Candidate | None:
    """Collect up to ``k`` distinct unseen candidates from ``make(attempt)``, return the one ``pick`` chooses."""
    found: dict[str, Candidate] = {}
    for attempt in range(max(1, attempts)):
        candidate = make(attempt)
        if candidate is not None and (allow_duplicates or candidate.arch_id not in seen):
            found.setdefault(candidate.arch_id, candidate)
            if len(found) >= max(1, k):
                break
    options = list(found.values())
    return options[pick(options)] if options else None


def first_unseen(
    make: Callable[[int], Candidate | None], seen: set[str], attempts: int, allow_duplicates: bool = False
) -> Candidate | None:
    """Call ``make(attempt)`` until it returns an architecture not in ``seen``; ``None`` after ``attempts``."""
    for attempt in range(max(1, attempts)):
        candidate = make(attempt)
        if candidate is not None and (allow_duplicates or candidate.arch_id not in seen):
            return candidate
    return None
