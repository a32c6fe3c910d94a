"""What flows through the engine: a proposed candidate, and the result of evaluating it.

Both are torch-free and JSON-able so that strategies, stores and executors can pass them anywhere.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# Candidate imports the genome and space modules (networkx) when it needs them, so a Ray worker,
# which only sends back EvalResults, starts without them.

COMPLETE, FAILED, PRUNED, REJECTED = "complete", "failed", "pruned", "rejected"
STATUSES = (COMPLETE, FAILED, PRUNED, REJECTED)


@dataclass
class Candidate:
    """An architecture a strategy asks to have evaluated.

    Attributes:
        architecture: a :class:`Genome`, or the JSON-able value a user's callable space returned.
        decisions: the chooser decisions that built it (replayable).
        fidelity: training budget in epochs; ``None`` lets the evaluator use its default.
        origin: how the strategy made it (``"random"``, ``"mutation of 12"``), recorded for analysis.
        arch_id: content hash of the architecture, filled in from ``architecture``.
        proposal: the strategy's count of proposals before this one (its trial identity: equal to the
            engine's ``trial_id``), set when the strategy hands the candidate out; -1 before. Two trials
            of one architecture share ``arch_id`` but never ``proposal``.
    """

    architecture: Any
    decisions: dict[str, Any]
    fidelity: float | None = None
    origin: str = ""
    arch_id: str = ""
    proposal: int = -1

    def __post_init__(self) -> None:
        if not self.arch_id:
            from archsearch.space import architecture_id

            self.arch_id = architecture_id(self.architecture)

    def to_dict(self) -> dict[str, Any]:
        from archsearch.genome import Genome
        from archsearch.space import architecture_to_json

        return {
            "architecture": architecture_to_json(self.architecture),
            "is_genome": isinstance(self.architecture, Genome),
            "decisions": self.decisions,
            "fidelity": self.fidelity,
            "origin": self.origin,
            "arch_id": self.arch_id,
            "proposal": self.proposal,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Candidate:
        from archsearch.genome import Genome

        arch = data["architecture"]
        if data.get("is_genome"):
            arch = Genome.from_dict(arch)
        return cls(arch, dict(data["decisions"]), data.get("fidelity"), data.get("origin", ""), data["arch_id"],
                   int(data.get("proposal", -1)))


@dataclass
class EvalResult:
    """The outcome of one evaluation.

    Attributes:
        status: ``complete``, ``failed`` (see ``error``), ``pruned`` (stopped early on purpose) or
            ``rejected`` (refused by a constraint before training).
        metrics: numbers with units in their names: ``val_accuracy``, ``n_params``, ``latency_ms``, ...
        error: why a failed or rejected evaluation did not complete, in one line.
        info: where and how it ran (worker, device, timings), recorded beside the metrics.
        weights: the trained model's state dict as safetensors bytes, for the run to keep if the
            candidate reaches the Pareto front; never written to the journal.
        curve: one point per epoch trained in this evaluation, ``{"epoch": e, "val_accuracy": ...,
            "train_loss": ...}`` (epochs counted from the trial's start, not this segment's).
        checkpoint: bytes to continue training from (the evaluator's format; safetensors for the
            built-in one), or ``None`` when the trial cannot be trained further; never journaled.
    """

    status: str
    metrics: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    info: dict[str, Any] = field(default_factory=dict)
    weights: bytes | None = field(default=None, repr=False, compare=False)  # safetensors, not journaled
    curve: list[dict[str, float]] = field(default_factory=list)
    checkpoint: bytes | None = field(default=None, repr=False, compare=False)  # not journaled

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status {self.status!r} is not one of {', '.join(STATUSES)}")
        self.metrics = {k: _as_float(v) for k, v in self.metrics.items()}
        self.curve = [{k: _as_float(v) for k, v in point.items()} for point in self.curve]

    @classmethod
    def failed(cls, error: str, metrics: dict[str, float] | None = None, **info: Any) -> EvalResult:
        return cls(FAILED, metrics or {}, error, info)

    @classmethod
    def crashed(cls, exc: BaseException, metrics: dict[str, float] | None = None, **info: Any) -> EvalResult:
        """A failed result whose reason is the exception's type and first line."""
        from archsearch.errors import one_line

        return cls.failed(one_line(f"{type(exc).__name__}: {exc}"), metrics, **info)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"status": self.status, "metrics": self.metrics, "error": self.error, "info": self.info}
        if self.curve:
            data["curve"] = self.curve
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EvalResult:
        return cls(data["status"], dict(data.get("metrics") or {}), data.get("error"), dict(data.get("info") or {}),
                   curve=list(data.get("curve") or []))


def _as_float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"metric values must be numbers, got {value!r}") from None


def objective_values(result: EvalResult, objectives: dict[str, str]) -> list[float] | None:
    """The result's objective values in order, or ``None`` if it is not complete or any is missing/NaN."""
    return metric_values(result.metrics, objectives) if result.status == COMPLETE else None


def metric_values(metrics: Mapping[str, float], objectives: Mapping[str, str]) -> list[float] | None:
    """The objectives' values in ``metrics``, in order, or ``None`` if any is missing/NaN; for a pruned
    trial, its values at the rung where it stopped."""
    values = [metrics.get(name, math.nan) for name in objectives]
    return None if any(math.isnan(v) for v in values) else values
