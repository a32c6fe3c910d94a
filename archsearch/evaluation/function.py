"""Evaluator for a user's own ``evaluate(architecture) -> dict of metrics`` function.

A function that takes more can take part in multi-fidelity scheduling, as with ``optuna.Trial.report``:

- ``fidelity`` (or a second positional argument): the epochs to train to, counted from the trial's start;
- ``checkpoint``: a file path; if the file exists, continue from it; whatever the function leaves there
  is the trial's checkpoint (its format is the function's own business);
- ``report``: call ``report(epoch, val_accuracy=..., train_loss=...)`` once per epoch for the learning
  curve.
"""

from __future__ import annotations

import contextlib
import math
import os
import tempfile
import time
from collections.abc import Callable
from typing import Any

from archsearch.evaluation.base import Evaluator
from archsearch.trial import COMPLETE, EvalResult


class FunctionEvaluator(Evaluator):
    """Calls ``fn(architecture)``, passing ``fidelity``, ``checkpoint`` and ``report`` if it takes them.

    With ``measure`` (the metrics known before training), a result holds what it measures unless
    ``fn`` returned the same metric.

    Exceptions and non-numeric or NaN metrics make the result ``failed`` with the reason; the run goes
    on. ``eval_time_s`` is recorded beside the user's metrics.
    """

    def __init__(self, fn: Callable[..., dict[str, Any]], takes_fidelity: bool | None = None,
                 measure: Callable[[Any], dict[str, Any]] | None = None) -> None:
        self.fn = fn
        self.takes_fidelity = takes_fidelity
        self.measure_fn = measure

    def measure(self, architecture: Any) -> dict[str, float]:
        """The user's ``measure(architecture)``, as numbers (``{}`` without one)."""
        if self.measure_fn is None:
            return {}
        return {str(k): float(v) for k, v in self.measure_fn(architecture).items()}

    def _parameters(self) -> dict[str, Any]:
        import inspect

        try:
            return dict(inspect.signature(self.fn).parameters)
        except (TypeError, ValueError):
            return {}

    def _wants_fidelity(self, params: dict[str, Any] | None = None) -> bool:
        if self.takes_fidelity is not None:
            return self.takes_fidelity
        params = self._parameters() if params is None else params
        positional = [p for p in params.values() if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        return len(positional) >= 2 or "fidelity" in params

    def supports_fidelity(self) -> bool:
        """Whether the function can be run at a reduced fidelity (a scheduler other than ``full`` needs it)."""
        return self._wants_fidelity()

    def evaluate(self, architecture: Any, fidelity: float | None = None, checkpoint: bytes | None = None) -> EvalResult:
        params = self._parameters()
        curve: list[dict[str, float]] = []
        kwargs: dict[str, Any] = {}
        if "report" in params:
            kwargs["report"] = lambda epoch, **values: curve.append({"epoch": float(epoch), **values})
        # A checkpoint file only for a function that takes one: the others pay no directory per trial.
        folder = tempfile.TemporaryDirectory(prefix="archsearch-ckpt-") if "checkpoint" in params else None
        with folder or contextlib.nullcontext():
            path = os.path.join(folder.name, "checkpoint") if folder is not None else ""
            if folder is not None:
                if checkpoint is not None:
                    with open(path, "wb") as f:
                        f.write(checkpoint)
                kwargs["checkpoint"] = path
            start = time.perf_counter()
            try:
                args = (architecture, fidelity) if self._wants_fidelity(params) and "fidelity" not in params else (
                    architecture,)
                if "fidelity" in params:
                    kwargs["fidelity"] = fidelity
                out = self.fn(*args, **kwargs)
            except Exception as exc:
                return EvalResult.crashed(exc)
            except SystemExit as exc:  # sys.exit() in evaluate ends this trial, not the search
                return EvalResult.failed(f"evaluate called sys.exit({exc.code!r})")
            elapsed = time.perf_counter() - start
            saved = None
            if folder is not None and os.path.exists(path):
                with open(path, "rb") as f:
                    saved = f.read()
        if not isinstance(out, dict):
            return EvalResult.failed(f"evaluate returned {type(out).__name__}; it must return a dict of metrics")
        try:
            metrics = {str(k): float(v) for k, v in out.items()}
            result_curve = [{str(k): float(v) for k, v in point.items()} for point in curve]
        except (TypeError, ValueError) as exc:
            return EvalResult.failed(f"evaluate returned or reported a non-numeric metric: {exc}")
        bad = sorted(k for k, v in metrics.items() if not math.isfinite(v))
        metrics.setdefault("eval_time_s", elapsed)
        if self.measure_fn is not None and not bad:  # what measure knows, evaluate need not return
            try:
                metrics = {**self.measure(architecture), **metrics}
            except Exception as exc:
                return EvalResult.failed(f"measure failed: {exc}", metrics)
        if bad:
            return EvalResult.failed(f"non-finite metric values for {', '.join(bad)}", metrics)
        return EvalResult(COMPLETE, metrics, curve=result_curve, checkpoint=saved)
