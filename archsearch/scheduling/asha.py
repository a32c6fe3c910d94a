"""``fidelity=asha``: multi-objective asynchronous successive halving.

Rungs sit at ``min_epochs * eta**k`` epochs below ``max_epochs``, and at ``max_epochs``. When a trial's
result at a rung arrives, it is ranked against every result recorded at that rung so far, by
non-dominated rank over the run's objectives; objectives known before training (parameters, FLOPs,
latency) count at every rung, since they do not change with training. The trial continues to the next
rung, from its checkpoint, when it is among the best ``max(1, floor(n / eta))`` of the ``n`` results at
its rung; otherwise it stops as ``pruned`` with the rung it reached.

Decisions are taken as results arrive and are final (the "stopping" form of asynchronous successive
halving, as in Syne Tune's MOASHA), so no worker ever waits for a rung to fill and every trial is told
to its strategy exactly once. Within a non-dominated rank, ties are broken by crowding distance
(larger first), then by trial id (earlier first). Crowding distance rather than hypervolume
contribution: it needs no reference point, is invariant to each objective's scale (parameters span
orders of magnitude, accuracy a unit interval), costs O(n log n) per objective in any number of
objectives, and prefers the trials that spread the front, which is what a front built from the
promoted trials needs; hypervolume contribution is exponential in the number of objectives and its
value at a rung depends on a reference point that low-fidelity accuracies make arbitrary.
"""

from __future__ import annotations

import math

import numpy as np

from archsearch.errors import ConfigError
from archsearch.pareto import crowding_distance, non_dominated_sort, to_minimization
from archsearch.scheduling._base import Decision, Scheduler
from archsearch.trial import COMPLETE, PRUNED, EvalResult, metric_values


def rung_levels(min_epochs: float, max_epochs: float, eta: float) -> list[float]:
    """``min * eta**k`` for every k below ``max``, then ``max``."""
    levels: list[float] = []
    level = float(min_epochs)
    while level < max_epochs * (1 - 1e-9):
        levels.append(level)
        level *= eta
    return [*levels, float(max_epochs)]


class SuccessiveHalving(Scheduler):
    """Multi-objective asynchronous successive halving over ``objectives``.

    Args:
        objectives: ``{metric: "minimize" | "maximize"}``, the run's objectives.
        min_epochs: the first rung.
        max_epochs: the last rung, the run's maximum fidelity.
        eta: reduction factor: about one in ``eta`` trials goes on from each rung.
    """

    name = "asha"

    def __init__(self, objectives: dict[str, str], min_epochs: float = 1, max_epochs: float = 9,
                 eta: float = 3) -> None:
        self.objectives = objectives
        self.min_epochs = min_epochs
        self.max_epochs = max_epochs
        self.eta = eta
        self._rungs: list[dict[int, list[float]]] = []

    def check(self) -> None:
        """Refuse options that cannot work, in one line, before the run directory exists."""
        problems = []
        for key in ("min_epochs", "max_epochs", "eta"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                problems.append(f"fidelity.{key} must be a number, got {value!r}")
        if problems:
            raise ConfigError("; ".join(problems))
        if not self.eta > 1:
            problems.append(f"fidelity.eta must be greater than 1 (3 keeps a third at each rung), got {self.eta}")
        if not self.min_epochs > 0:
            problems.append(f"fidelity.min_epochs must be positive, got {self.min_epochs}")
        if self.min_epochs > self.max_epochs:
            problems.append(f"fidelity.min_epochs ({self.min_epochs}) must not exceed fidelity.max_epochs "
                            f"({self.max_epochs})")
        if problems:
            raise ConfigError("; ".join(problems))

    @property
    def levels(self) -> list[float]:
        return rung_levels(self.min_epochs, self.max_epochs, self.eta)

    def start_fidelity(self) -> float | None:
        return self.levels[0]

    def max_fidelity(self) -> float | None:
        return float(self.max_epochs)

    def rung_of(self, fidelity: float | None) -> int:
        levels = self.levels
        if fidelity is None:
            return len(levels) - 1
        return min(range(len(levels)), key=lambda k: abs(levels[k] - fidelity))

    def _rung(self, rung: int) -> dict[int, list[float]]:
        while len(self._rungs) <= rung:
            self._rungs.append({})
        return self._rungs[rung]

    def record(self, trial_id: int, fidelity: float | None, result: EvalResult) -> None:
        # a pruned result (replayed from the journal) has the metrics it had at the rung
        values = metric_values(result.metrics, self.objectives) if result.status in (COMPLETE, PRUNED) else None
        if values is not None:
            self._rung(self.rung_of(fidelity))[trial_id] = values

    def ranking(self, rung: int) -> list[int]:
        """Trial ids recorded at ``rung``, best first: non-dominated rank, then crowding distance, then id."""
        entries = self._rung(rung)
        ids = np.array(sorted(entries), dtype=int)
        if ids.size == 0:
            return []
        points = to_minimization(np.array([entries[i] for i in ids], dtype=float), list(self.objectives.values()))
        order: list[int] = []
        for front in non_dominated_sort(points):
            distance = crowding_distance(points[front])
            ranked = sorted(range(len(front)), key=lambda j: (-distance[j], ids[front[j]]))
            order.extend(int(ids[front[j]]) for j in ranked)
        return order

    def decide(self, trial_id: int, fidelity: float | None, result: EvalResult) -> Decision:
        levels = self.levels
        rung = self.rung_of(fidelity)
        if result.status != COMPLETE:
            return Decision(rung, status=result.status)
        self.record(trial_id, fidelity, result)
        if rung == len(levels) - 1:
            return Decision(rung, status=COMPLETE)
        ranking = self.ranking(rung)
        if trial_id not in ranking:  # an objective missing or NaN: it cannot be ranked, so it stops
            return Decision(rung, status=PRUNED)
        keep = max(1, math.floor(len(ranking) / self.eta))
        if ranking.index(trial_id) < keep:
            return Decision(rung, next_fidelity=levels[rung + 1])
        return Decision(rung, status=PRUNED)

    def describe(self) -> dict[str, object]:
        return {"name": self.name, "min_epochs": self.min_epochs, "max_epochs": self.max_epochs, "eta": self.eta,
                "rungs": self.levels}
