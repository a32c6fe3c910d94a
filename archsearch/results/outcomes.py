"""What a run's objectives and a trial's metrics must satisfy before they reach the journal.

An objective that no trial can produce would train the whole budget for a front that stays empty; a
trial that omits an objective would count as complete without a place on the front; a metric named
like one of the trials table's own columns (``status``, ``error``, ...) would collide with it. The
first is refused before the run starts (where the evaluator says what it produces; for a user's own
function, the run stops once ``UNREPORTED_STOP`` results in a row lacked an objective that no result
has reported), the other two fail that trial with the reason.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from archsearch.errors import ConfigError
from archsearch.trial import COMPLETE, EvalResult

UNREPORTED_STOP = 5  # results in a row without an objective no result reported: the run stops


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


class UnreportedObjectives:
    """Counts results in a row that lacked an objective no result of this session has reported: a
    function that never returns an objective (a typo, a renamed key) would otherwise fail every trial of
    the budget. ``stop`` says when the run should stop proposing, ``reason`` says why in one line."""

    def __init__(self, objectives: Iterable[str], journaled: Iterable[Mapping[str, Any]] = ()) -> None:
        self.never = set(objectives)  # not yet reported by any result (journaled ones, as dicts, included)
        for result in journaled:
            self.never -= set(result.get("metrics") or {})
        self.in_a_row = 0
        self.example = ""

    def count(self, result: EvalResult) -> None:
        """Count one result as the evaluator returned it (before :func:`checked`)."""
        self.never -= set(result.metrics)
        if result.status != COMPLETE:  # crashed, rejected...: says nothing about what the function returns
            return
        self.in_a_row = self.in_a_row + 1 if self.never else 0  # what is left in never, this result lacked
        self.example = ", ".join(sorted(result.metrics)) or "none"

    @property
    def stop(self) -> bool:
        return self.in_a_row >= UNREPORTED_STOP and bool(self.never)

    def reason(self) -> str:
        names = ", ".join(map(repr, sorted(self.never)))
        it = "them" if len(self.never) > 1 else "it"
        return (f"{self.in_a_row} trials in a row did not report objective {names} (they reported: {self.example}); "
                f"return {it} from evaluate (or measure=), or choose objectives among what it returns")


def _failed(result: EvalResult, reason: str) -> EvalResult:
    reserved = reserved_names()
    failed = EvalResult.failed(reason, {k: v for k, v in result.metrics.items() if k not in reserved},
                               **result.info)
    failed.weights = None
    return failed
