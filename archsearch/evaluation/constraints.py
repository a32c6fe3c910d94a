"""Constraints on cheap metrics (measured before training): ``constraints.max_params=50000``.

A candidate that violates one is recorded as ``rejected`` with the reason and its measured cheap
metrics, and costs no training time.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from archsearch.errors import ConfigError

# Metrics known before training, and the short names constraints may use for them.
CHEAP_METRICS = ("n_params", "flops", "latency_ms", "latency_iqr_ms", "memory_mb")
ALIASES = {"params": "n_params"}


def _is_cheap(metric: str) -> bool:
    return metric in CHEAP_METRICS or (metric.startswith("latency_b") and metric.endswith("_ms"))


@dataclass(frozen=True)
class Constraints:
    """``{metric: (lower, upper)}`` bounds, either side ``None`` for open."""

    bounds: Mapping[str, tuple[float | None, float | None]] = field(default_factory=dict)

    @classmethod
    def parse(cls, options: Mapping[str, Any] | None) -> Constraints:
        """From ``{"max_params": 5e4, "max_latency_ms": 0.5, "min_flops": ...}``; ``None`` values are unset."""
        bounds: dict[str, list[float | None]] = {}
        for key, value in (options or {}).items():
            if value is None:
                continue
            side, _, name = key.partition("_")
            if side not in ("max", "min") or not name:
                raise ConfigError(f"constraint {key!r} must be written max_<metric> or min_<metric>, "
                                  "e.g. constraints.max_params=50000")
            metric = ALIASES.get(name, name)
            if not _is_cheap(metric):
                raise ConfigError(f"constraint {key!r} is on {metric!r}, which is only known after training; "
                                  f"constraints apply to {', '.join(CHEAP_METRICS)}, latency_b<N>_ms")
            if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
                raise ConfigError(f"constraint {key!r} must be a number, got {value!r}")
            pair = bounds.setdefault(metric, [None, None])
            pair[0 if side == "min" else 1] = float(value)
        return cls({m: (lo, hi) for m, (lo, hi) in bounds.items()})

    def violations(self, metrics: Mapping[str, float]) -> list[str]:
        """Human-readable reasons, empty when every bound holds."""
        reasons = []
        for metric, (low, high) in self.bounds.items():
            value = metrics.get(metric)
            if value is None:
                continue
            if high is not None and value > high:
                reasons.append(f"{metric} {_fmt(value)} > max {_fmt(high)}")
            if low is not None and value < low:
                reasons.append(f"{metric} {_fmt(value)} < min {_fmt(low)}")
        return reasons

    def to_dict(self) -> dict[str, list[float | None]]:
        return {m: list(b) for m, b in self.bounds.items()}

    def __bool__(self) -> bool:
        return bool(self.bounds)


def _fmt(value: float) -> str:
    """Counts with thousands separators, measurements with four significant digits."""
    return f"{int(value):,}" if float(value).is_integer() and abs(value) < 1e15 else f"{value:.4g}"
