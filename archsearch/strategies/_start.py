"""Start points: architectures the user already knows, proposed before the strategy's own.

A researcher rarely starts from nothing: a baseline, the architecture of a paper, the front of an
earlier run on a related task. Optuna (``enqueue_trial``), Ray Tune and Syne Tune
(``points_to_evaluate``) let such points be evaluated first; here ``strategy.start_with`` does, for every
strategy. Each point is a mapping of decisions (labels as in the trials table's ``decisions_json``);
labels it leaves out are sampled, as a strategy samples them. The strategy learns from their results like
from its own proposals, so the search starts from what the points teach instead of a blind start.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from archsearch.errors import ConfigError
from archsearch.space import SearchSpace, same_choice
from archsearch.strategies._common import rebuild

GIVEN = "given to start with"
"""A start point's ``Candidate.origin``."""


def checked_start_points(space: SearchSpace, points: Sequence[Any]) -> list[dict[str, Any]]:
    """``points`` as decision dicts, refused in one line where the space cannot build one as given: a
    label it does not ask (for these decisions) or a value it does not allow."""
    if isinstance(points, str | bytes | Mapping) or not isinstance(points, Sequence):
        raise ConfigError(f"start_with must be a list of decision mappings, got {type(points).__name__}")
    checked = []
    for number, point in enumerate(points, 1):
        if not isinstance(point, Mapping) or not point:
            raise ConfigError(f"start point {number} must be a non-empty mapping of decisions "
                              f"({{label: value}}, as in a trials table's decisions_json), got {point!r}")
        decisions = {str(label): value for label, value in point.items()}
        try:
            _, asked = rebuild(space, decisions, np.random.default_rng(0))
        except Exception as exc:
            raise ConfigError(f"start point {number}: the space cannot build it: {type(exc).__name__}: {exc}") from None
        for label, value in decisions.items():
            if label not in asked:
                raise ConfigError(f"start point {number}: the space asks no decision {label!r} for these decisions "
                                  f"(it asked: {', '.join(asked)})")
            if not _same_value(asked[label], value):
                raise ConfigError(f"start point {number}: {label}={value!r} is not a value the space allows")
        checked.append(decisions)
    return checked


def _same_value(asked: Any, given: Any) -> bool:
    """Whether the build kept the given value (a number given as 1 where a range asks 1.0 counts as kept)."""
    numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (asked, given))
    return same_choice(asked, given) or (numbers and asked == given)
