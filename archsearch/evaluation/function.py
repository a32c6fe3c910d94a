"""Evaluator for a user's own ``evaluate(architecture) -> dict of metrics`` function."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

from archsearch.trial import COMPLETE, EvalResult


class FunctionEvaluator:
    """Calls ``fn(architecture)`` (or ``fn(architecture, fidelity)`` if it takes two arguments).

    Exceptions and non-numeric or NaN metrics make the result ``failed`` with the reason; the run goes
    on. ``eval_time_s`` is recorded beside the user's metrics.
    """

    def __init__(self, fn: Callable[..., dict[str, Any]], takes_fidelity: bool | None = None) -> None:
        self.fn = fn
        self.takes_fidelity = takes_fidelity

    def _wants_fidelity(self) -> bool:
        if self.takes_fidelity is not None:
            return self.takes_fidelity
        import inspect

        try:
            params = inspect.signature(self.fn).parameters.values()
        except (TypeError, ValueError):
            return False
        positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        return len(positional) >= 2

    def evaluate(self, architecture: Any, fidelity: float | None = None) -> EvalResult:
        start = time.perf_counter()
        try:
            out = self.fn(architecture, fidelity) if self._wants_fidelity() else self.fn(architecture)
        except Exception as exc:
            return EvalResult.failed(f"{type(exc).__name__}: {exc}".splitlines()[0][:500])
        except SystemExit as exc:  # sys.exit() in evaluate ends this trial, not the search
            return EvalResult.failed(f"evaluate called sys.exit({exc.code!r})")
        elapsed = time.perf_counter() - start
        if not isinstance(out, dict):
            return EvalResult.failed(f"evaluate returned {type(out).__name__}; it must return a dict of metrics")
        try:
            metrics = {str(k): float(v) for k, v in out.items()}
        except (TypeError, ValueError) as exc:
            return EvalResult.failed(f"evaluate returned a non-numeric metric: {exc}")
        bad = sorted(k for k, v in metrics.items() if not math.isfinite(v))
        metrics.setdefault("eval_time_s", elapsed)
        if bad:
            return EvalResult.failed(f"non-finite metric values for {', '.join(bad)}", metrics)
        return EvalResult(COMPLETE, metrics)
