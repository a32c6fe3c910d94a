"""Normalization of raw objective values, so that hypervolumes of different runs share one scale."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from archsearch.pareto._checks import as_points, as_raw_points, check_directions, check_names
from archsearch.pareto.dominance import non_dominated_mask
from archsearch.pareto.hypervolume import hypervolume

REFERENCE_POINT_OFFSET = 0.1
"""Reference point in normalized space is ``1 + offset`` in every objective.

The margin lets points on the nadir boundary (normalized value 1) still contribute a little volume
instead of vanishing.
"""

LOG_SCALE_PREFIXES: tuple[str, ...] = ("n_params", "flops", "latency", "memory", "train_time")
"""Objectives named like counts and durations span orders of magnitude: compared on a log scale."""


def _default_log_scale(name: str, column: np.ndarray) -> bool:
    """Log-scale count/duration objectives, but only where log10 is defined."""
    finite = column[np.isfinite(column)]
    return name.startswith(LOG_SCALE_PREFIXES) and finite.size > 0 and bool(np.all(finite > 0))


def _log10_or_nan(v: np.ndarray) -> np.ndarray:
    """log10 with non-positive inputs mapped to NaN instead of warnings."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(v > 0, np.log10(np.where(v > 0, v, 1.0)), np.nan)


@dataclasses.dataclass(frozen=True)
class Normalization:
    """Maps raw objective values to [0, 1]-ish minimization space so hypervolumes of different runs are comparable.

    Degenerate objectives (``upper == lower``) map every finite value to 0,
    whatever the direction, so a constant objective never penalizes a run.
    """

    names: tuple[str, ...]
    directions: tuple[str, ...]
    lower: tuple[float, ...]
    upper: tuple[float, ...]
    log_scale: tuple[bool, ...]

    def __post_init__(self) -> None:
        """Coerce to tuples (so lists from JSON work) and validate consistency."""
        for field in ("names", "directions", "lower", "upper", "log_scale"):
            value = getattr(self, field)
            if isinstance(value, str) or not isinstance(value, Sequence):
                raise ValueError(f"Normalization.{field} must be a sequence; got {value!r}")
        m = len(self.names)
        if m < 1:
            raise ValueError("Normalization needs at least one objective")
        for field in ("directions", "lower", "upper", "log_scale"):
            if len(getattr(self, field)) != m:
                raise ValueError(
                    f"Normalization.{field} has length {len(getattr(self, field))}, expected {m} (one per name)"
                )
        object.__setattr__(self, "names", tuple(str(n) for n in self.names))
        object.__setattr__(self, "directions", check_directions(tuple(self.directions), m))
        object.__setattr__(self, "lower", tuple(float(v) for v in self.lower))
        object.__setattr__(self, "upper", tuple(float(v) for v in self.upper))
        object.__setattr__(self, "log_scale", tuple(bool(v) for v in self.log_scale))
        for name, lo, hi in zip(self.names, self.lower, self.upper, strict=True):
            if not (math.isfinite(lo) and math.isfinite(hi)):
                raise ValueError(f"Normalization bounds for {name!r} must be finite; got ({lo}, {hi})")
            if hi < lo:
                raise ValueError(f"Normalization upper < lower for {name!r}: ({lo}, {hi})")

    def apply(self, values: Any) -> np.ndarray:
        """Map raw values (n, m) to normalized minimization space.

        ``t = log10(v)`` for log-scaled objectives (NaN where v <= 0), then
        ``s = (t - lower) / (upper - lower)``; "maximize" objectives use
        ``1 - s`` so smaller is better. Out-of-bounds values give < 0 or > 1.
        """
        raw = as_points(values, "values")
        if raw.shape[1] != len(self.names):
            raise ValueError(
                f"values have {raw.shape[1]} columns but the normalization has {len(self.names)} objectives"
            )
        t = raw.copy()
        log_cols = np.array(self.log_scale)
        t[:, log_cols] = _log10_or_nan(raw[:, log_cols])
        lower = np.array(self.lower)
        span = np.array(self.upper) - lower
        degenerate = span <= 0
        diff = t - lower
        with np.errstate(invalid="ignore"):
            scaled = diff / np.where(degenerate, 1.0, span)
            # Degenerate: finite -> 0, but keep +-inf/NaN recognisable.
            s = np.where(degenerate & np.isfinite(diff), 0.0, scaled)
            maximize = np.array([d == "maximize" for d in self.directions])
            flipped = np.where(degenerate, -s, 1.0 - s)
        return np.where(maximize, flipped, s) + 0.0

    def to_dict(self) -> dict[str, list]:
        """JSON-able form; :meth:`from_dict` inverts it."""
        return {
            "names": list(self.names),
            "directions": list(self.directions),
            "lower": list(self.lower),
            "upper": list(self.upper),
            "log_scale": list(self.log_scale),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Normalization:
        """Rebuild from :meth:`to_dict` output (e.g. a stored results file)."""
        fields = ("names", "directions", "lower", "upper", "log_scale")
        if not isinstance(data, dict):
            raise ValueError(f"Normalization.from_dict expects a dict; got {type(data).__name__}")
        missing = [f for f in fields if f not in data]
        if missing:
            raise ValueError(f"Normalization dict is missing keys: {missing}")
        return cls(**{f: tuple(data[f]) for f in fields})

    @classmethod
    def from_data(
        cls,
        names: Sequence[str],
        directions: Sequence[str],
        values: Any,
        log_scale: Sequence[bool] | None = None,
    ) -> Normalization:
        """Fit bounds to the finite min/max of each objective column.

        Args:
            names: m objective names.
            directions: m entries, "minimize" or "maximize".
            values: Raw values (n, m).
            log_scale: m flags; by default True for objectives named like
                n_params/flops/latency/memory/train_time whose finite values
                are all > 0.

        Returns:
            The fitted normalization; columns without finite values get (0, 1).
        """
        m = check_names(names)
        raw = as_raw_points(values, m)
        dirs = check_directions(directions, m)
        if log_scale is None:
            logs = tuple(_default_log_scale(str(nm), raw[:, k]) for k, nm in enumerate(names))
        else:
            if isinstance(log_scale, str) or not isinstance(log_scale, Sequence) or len(log_scale) != m:
                raise ValueError(f"log_scale must be a sequence of {m} booleans; got {log_scale!r}")
            logs = tuple(bool(v) for v in log_scale)
        lower: list[float] = []
        upper: list[float] = []
        for k in range(m):
            col = raw[:, k]
            col = col[np.isfinite(col)]
            if logs[k]:
                if np.any(col <= 0):
                    raise ValueError(f"objective {names[k]!r} is log-scaled but has non-positive values")
                col = np.log10(col)
            if col.size == 0:
                lower.append(0.0)
                upper.append(1.0)
            else:
                lower.append(float(col.min()))
                upper.append(float(col.max()))
        return cls(tuple(str(n) for n in names), dirs, tuple(lower), tuple(upper), logs)


def front_hypervolume(
    values: Any,
    directions: Sequence[str],
    names: Sequence[str],
    normalization: Normalization | None = None,
) -> dict[str, Any]:
    """Normalized hypervolume summary of a run's raw objective values.

    Pass a shared ``normalization`` to compare several runs on one scale;
    without one, bounds are fitted to ``values`` themselves.

    Args:
        values: Raw values (n, m).
        directions: m entries, "minimize" or "maximize".
        names: m objective names.
        normalization: Optional fixed normalization; must match names/directions.

    Returns:
        Dict with "hypervolume", "reference_point", "normalization" (as a dict)
        and "n_points" (number of non-dominated finite points).
    """
    m = check_names(names)
    raw = as_raw_points(values, m)
    dirs = check_directions(directions, m)
    if normalization is None:
        normalization = Normalization.from_data(names, dirs, raw)
    elif normalization.names != tuple(names) or normalization.directions != dirs:
        raise ValueError(
            "normalization does not match the objectives: "
            f"{normalization.names}/{normalization.directions} vs {tuple(names)}/{dirs}"
        )
    pts = normalization.apply(raw)
    pts = pts[np.all(np.isfinite(pts), axis=1)]
    reference = np.full(m, 1.0 + REFERENCE_POINT_OFFSET)
    return {
        "hypervolume": hypervolume(pts, reference),
        "reference_point": reference.tolist(),
        "normalization": normalization.to_dict(),
        "n_points": int(non_dominated_mask(pts).sum()),
    }
