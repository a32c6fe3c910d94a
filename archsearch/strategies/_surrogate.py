"""A cheap surrogate that screens proposals before they cost an evaluation.

Predictor-guided evolution (e.g. White et al. 2021, "BANANAS") proposes several mutants and evaluates
only the one a model of past results likes best; evaluations are the scarce resource, a forest fit on
a few hundred rows is not. The model is an extra-trees forest (scikit-learn) on the decisions encoded
as numbers: a number as itself, a categorical choice by the order it was first seen, an absent
(conditional) decision as a sentinel, which trees separate cleanly. Candidates are ranked by the
hypervolume their predicted objectives would add to the current front, then by their predicted
domination quantile.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from archsearch.genome import canonical_json
from archsearch.pareto import hypervolume, non_dominated_mask
from archsearch.strategies._common import Archive, domination_quantile

MISSING = -1e9
MIN_ROWS = 8  # below this the forest is noise; proposals are not screened


class Encoder:
    """Decisions -> fixed-width rows; the columns and categorical codes are learned as labels appear."""

    def __init__(self) -> None:
        self.columns: dict[str, int] = {}
        self.codes: dict[str, dict[str, int]] = {}

    def _number(self, label: str, value: Any) -> float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        codes = self.codes.setdefault(label, {})
        return float(codes.setdefault(canonical_json(value), len(codes)))

    def encode(self, rows: Sequence[Mapping[str, Any]]) -> np.ndarray:
        for decisions in rows:
            for label in decisions:
                self.columns.setdefault(label, len(self.columns))
        out = np.full((len(rows), max(1, len(self.columns))), MISSING)
        for i, decisions in enumerate(rows):
            for label, value in decisions.items():
                out[i, self.columns[label]] = self._number(label, value)
        return out


def pick_by_surrogate(archive: Archive, proposals: Sequence[Mapping[str, Any]], seed: int) -> int:
    """Index of the proposal (given as decisions) whose predicted objectives look best; 0 if unsure."""
    if len(proposals) < 2 or len(archive) < MIN_ROWS:
        return 0
    from sklearn.ensemble import ExtraTreesRegressor

    encoder = Encoder()
    x = encoder.encode(archive.decisions)
    x_new = encoder.encode(list(proposals))
    x = np.pad(x, ((0, 0), (0, x_new.shape[1] - x.shape[1])), constant_values=MISSING)
    y = archive.points()
    low, span = y.min(axis=0), np.ptp(y, axis=0)
    span[span == 0] = 1.0
    forest = ExtraTreesRegressor(n_estimators=16, min_samples_leaf=2, random_state=seed)
    forest.fit(x, (y - low) / span)
    predicted = forest.predict(x_new).reshape(len(proposals), -1)
    scaled = (y - low) / span
    front = scaled[non_dominated_mask(scaled)]
    reference = np.full(y.shape[1], 1.1)
    base = hypervolume(front, reference)
    gains = [hypervolume(np.vstack([front, p]), reference) - base for p in predicted]
    quantiles = [domination_quantile(p, scaled) for p in predicted]
    return int(max(range(len(proposals)), key=lambda i: (gains[i], quantiles[i], -i)))
