"""What a run's objectives and a trial's metrics must satisfy before they reach the journal.

An objective that no trial can produce would train the whole budget for a front that stays empty; a
trial that omits an objective would count as complete without a place on the front; a metric named
like one of the trials table's own columns (``status``, ``error``, ...) would collide with it. The
first is refused before the run starts, the other two fail that trial with the reason.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from archsearch.errors import ConfigError
from archsearch.trial import COMPLETE, EvalResult


def reserved_names() -> set[str]:
    """Names a metric may not take: the trials table's fixed columns, and the names those would be
    renamed to (``metric_status``) if a metric shadowed one."""
    from archsearch.results.tables import FIXED_COLUMNS

    fixed = {name for name, _ in FIXED_COLUMNS}
    return fixed | {f"metric_{name}" for name in fixed}


def check_objectives(objectives: Mapping[str, str], producible: Iterable[str] | None, task: str) -> None:
    """Refuse objectives named like a fixed column, or (when the evaluator says what it produces)
    objectives it never reports."""
    reserved = reserved_names()
    for name in objectives:
        if name in reserved:
            raise ConfigError(f"objective {name!r} is the name of a column archsearch fills itself; "
                              "name your metric otherwise (e.g. with a unit: score_pct)")
    if producible is None:
        return
    known = list(producible)
    unknown = [name for name in objectives if name not in known]
    if unknown:
        raise ConfigError(f"objective {unknown[0]!r} is not a metric of task {task!r}; its metrics: {', '.join(known)}")


def checked(result: EvalResult, objectives: Mapping[str, Any]) -> EvalResult:
    """The result as the run records it: ``failed`` (with the reason) if it is complete but lacks an
    objective, or if any metric takes a reserved name."""
    reserved = sorted(set(result.metrics) & reserved_names())
    if reserved:
        return _failed(result, f"metric {reserved[0]!r} is the name of a column archsearch fills itself; "
                               "rename it")
    if result.status != COMPLETE:
        return result
    missing = [name for name in objectives if name not in result.metrics]
    if missing:
        reported = ", ".join(sorted(result.metrics)) or "none"
        return _failed(result, f"did not report objective {', '.join(map(repr, missing))} (reported: {reported})")
    return result


def _failed(result: EvalResult, reason: str) -> EvalResult:
    reserved = reserved_names()
    failed = EvalResult.failed(reason, {k: v for k, v in result.metrics.items() if k not in reserved},
                               **result.info)
    failed.weights = None
    return failed
