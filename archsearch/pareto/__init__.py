"""Pareto maths for multi-objective search results: the bottom layer (numpy and moocore, nothing else).

Everything works in *minimization* space so that one set of dominance and hypervolume routines serves
every study; callers convert raw objective values first with :func:`to_minimization` (or
:meth:`Normalization.apply`). Objective directions use Optuna's words, ``"minimize"`` and ``"maximize"``.
"""

from archsearch.pareto._checks import DIRECTIONS
from archsearch.pareto.dominance import (
    crowding_distance,
    non_dominated_mask,
    non_dominated_sort,
    to_minimization,
)
from archsearch.pareto.hypervolume import hypervolume
from archsearch.pareto.improvement import hypervolume_improvement
from archsearch.pareto.normalization import (
    LOG_SCALE_PREFIXES,
    REFERENCE_POINT_OFFSET,
    Normalization,
    front_hypervolume,
)

__all__ = [
    "DIRECTIONS",
    "LOG_SCALE_PREFIXES",
    "REFERENCE_POINT_OFFSET",
    "Normalization",
    "crowding_distance",
    "front_hypervolume",
    "hypervolume",
    "hypervolume_improvement",
    "non_dominated_mask",
    "non_dominated_sort",
    "to_minimization",
]
