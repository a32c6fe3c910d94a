"""Learning-rate siblings: a proposal offered with other learning rates for the same architecture.

The learning rate is the recipe value an architecture's verdict depends on most, and the one that
stacking can vary inside one batched model (:mod:`archsearch.evaluation.group`): trials that differ
only in it train together for little more than one of them costs on a small model. A strategy with
``lr_siblings=k`` follows each proposal that decides a learning rate with ``k - 1`` more, the same
decisions but the learning rate, which the engine journals as trials of their own and the executor runs
with the first as one job.

The siblings' rates lie around the proposal's, which the strategy chose (in log space where the rate is
log-scaled): steps of a ``2k``-th of the domain, alternately up and down (one up, one down, two up, ...),
skipping those that leave it; a list of rates gives the other choices, in random order. Around, rather than
spread over the whole domain: on digits (``benchmarks/kernels.py --sections groups-quality``, 5 seeds)
siblings around the chosen rate found better fronts than siblings in the other strata of the domain,
at 40 and at 80 trials.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from archsearch.space import ReplayChooser, SearchSpace, same_choice

SIBLING = "learning-rate sibling"
"""A sibling's ``Candidate.origin``."""

LR_LABEL = re.compile(r"^recipe\.(?:[A-Za-z_]\w*\.)?lr$")
"""A learning-rate decision: ``recipe.lr``, or ``recipe.<optimizer>.lr`` for a per-optimizer domain."""


class _DomainRecorder(ReplayChooser):
    """Replays decisions and keeps each learning-rate decision's domain."""

    def __init__(self, decisions: Mapping[str, Any]) -> None:
        super().__init__(decisions)
        self.domains: dict[str, tuple[str, Any]] = {}

    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any:
        if LR_LABEL.match(name):
            self.domains[name] = ("choices", list(choices))
        return super().suggest_categorical(name, choices)

    def suggest_float(self, name: str, low: float, high: float, step: float | None = None,
                      log: bool = False) -> float:
        if LR_LABEL.match(name):
            self.domains[name] = ("range", (low, high, step, log))
        return super().suggest_float(name, low, high, step, log)


def lr_label(decisions: Mapping[str, Any]) -> str | None:
    """The learning-rate decision among ``decisions``, if there is one."""
    return next((label for label in decisions if LR_LABEL.match(label)), None)


def sibling_decisions(space: SearchSpace, decisions: Mapping[str, Any], k: int,
                      rng: np.random.Generator) -> list[dict[str, Any]]:
    """Up to ``k - 1`` copies of ``decisions`` with other learning rates (none where none is decided)."""
    label = lr_label(decisions)
    if label is None or k < 2:
        return []
    recorder = _DomainRecorder(decisions)
    space.build(recorder)
    kind, domain = recorder.domains.get(label, ("", None))
    current = decisions[label]
    if kind == "choices":
        others = [c for c in domain if not same_choice(c, current)]
        picked = [others[int(i)] for i in rng.permutation(len(others))[:k - 1]]
    elif kind == "range":
        low, high, step, log = domain
        picked = _around(current, low, high, step, log, k)
    else:
        return []
    return [{**decisions, label: value} for value in picked]


def _around(current: float, low: float, high: float, step: float | None, log: bool, k: int) -> list[float]:
    """``k - 1`` rates around ``current``, the first of 1, -1, 2, -2, ... steps of a ``2k``-th of
    ``[low, high]`` that stay inside it (near an end, the steps all go the other way)."""
    warp, unwarp = (math.log, math.exp) if log and low > 0 else (float, float)
    lo, hi = warp(low), warp(high)
    if hi <= lo:
        return []
    width, centre = (hi - lo) / (2 * k), warp(current)
    inside = [x for j in range(1, 2 * k + 1) for x in (centre + j * width, centre - j * width)
              if lo - 1e-12 <= x <= hi + 1e-12]
    rates = []
    for x in inside[:k - 1]:
        value = unwarp(min(hi, max(lo, x)))
        if step:
            value = low + round((value - low) / step) * step
        rates.append(float(min(high, max(low, value))))
    return rates
