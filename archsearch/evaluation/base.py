"""The evaluator protocol: what executors call, and the hooks that let workers start ready."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from archsearch.trial import EvalResult


def run_evaluation(evaluator: Evaluator, architecture: Any, fidelity: float | None,
                   checkpoint: bytes | None) -> EvalResult:
    """Evaluate one piece of work; evaluators that predate checkpoints are called without one."""
    if checkpoint is None:
        return evaluator.evaluate(architecture, fidelity)
    return evaluator.evaluate(architecture, fidelity, checkpoint)


class Evaluator(ABC):
    """Turns an architecture into an :class:`EvalResult`; executors call nothing else.

    Evaluators are picklable: the Ray executor ships :meth:`for_workers` once to every worker, and each
    worker calls :meth:`warm_up` before its first candidate.
    """

    @abstractmethod
    def evaluate(self, architecture: Any, fidelity: float | None = None, checkpoint: bytes | None = None) -> EvalResult:
        """Build, train (to ``fidelity`` epochs where given, continuing from ``checkpoint``, the bytes an
        earlier result of the same trial carried) and measure one architecture.

        A result may carry per-epoch points (``curve``) and a ``checkpoint`` to continue from; a
        continued trial must equal one trained straight through (a schedule defined over the run's
        maximum fidelity, random states restored). Evaluators written before checkpoints may leave the
        argument out: executors pass it only when there is one.
        """

    def group_key(self, architecture: Any) -> str | None:
        """Trials whose architectures share a key (not ``None``) may be handed to :meth:`evaluate_group`
        together, as one job; ``None`` (the default): this one is evaluated alone."""
        return None

    def evaluate_group(self, architectures: list[Any], fidelity: float | None,
                       checkpoints: list[bytes | None]) -> list[EvalResult]:
        """Evaluate trials of one :meth:`group_key` as one job, one result each, in order: each must be
        what :meth:`evaluate` gives it alone. The default evaluates them one after another."""
        return [run_evaluation(self, a, fidelity, c) for a, c in zip(architectures, checkpoints, strict=True)]

    def supports_fidelity(self) -> bool:
        """Whether a reduced fidelity means anything to this evaluator (fidelity schedulers need it)."""
        return True

    def for_workers(self) -> Evaluator:
        """What is shipped to workers (e.g. a copy that carries data the driver already loaded)."""
        return self

    def metric_names(self) -> list[str] | None:
        """Every metric a complete result holds, where known before any trial (objectives are checked
        against it before a run starts); ``None`` when only results will tell (a user's function)."""
        return None

    def measure(self, architecture: Any) -> dict[str, float]:
        """Metrics known without training (e.g. ``n_params``, ``flops``), cheap enough to ask for many
        proposals; a model-based strategy uses them exactly and predicts only the rest. ``{}``: none."""
        return {}

    def warm_up(self) -> None:
        """Pay one-time costs (data, library imports) before the first candidate, so that they count
        against no candidate's time limit."""
        return None
