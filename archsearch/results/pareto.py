"""Pareto-front utilities for multi-objective search results (pure numpy).

Everything here works in *minimization* space so that one set of dominance
and hypervolume routines serves every study; callers convert raw objective
values first with :func:`to_minimization` (or :meth:`Normalization.apply`).
Objective directions use Optuna's words, ``"minimize"`` and ``"maximize"``.
"""

from __future__ import annotations

import bisect
import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = [
    "DIRECTIONS",
    "REFERENCE_POINT_OFFSET",
    "Normalization",
    "crowding_distance",
    "front_hypervolume",
    "hypervolume",
    "hypervolume_contributions",
    "non_dominated_mask",
    "non_dominated_sort",
    "to_minimization",
]

DIRECTIONS: tuple[str, ...] = ("minimize", "maximize")

REFERENCE_POINT_OFFSET = 0.1
"""Reference point in normalized space is ``1 + offset`` in every objective.

The margin lets points on the nadir boundary (normalized value 1) still
contribute a little volume instead of vanishing.
"""

# Objectives named like counts/durations span orders of magnitude, so they are
# compared on a log scale by default.
_LOG_SCALE_PREFIXES: tuple[str, ...] = ("n_params", "flops", "latency", "memory", "train_time")

# Upper bound on elements of the temporary (block, n, m) comparison arrays.
_CHUNK_ELEMENTS = 4_000_000


# --------------------------------------------------------------------------- #
# Input validation
# --------------------------------------------------------------------------- #
def _as_points(values: Any, what: str = "points") -> np.ndarray:
    """Return ``values`` as a float (n, m) array, m >= 1, or raise ValueError."""
    try:
        arr = np.array(values, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what} must be a numeric array-like of shape (n, m): {exc}") from None
    if arr.ndim != 2:
        raise ValueError(f"{what} must be 2-D with shape (n, m); got shape {arr.shape}")
    if arr.shape[1] < 1:
        raise ValueError(f"{what} must have at least one objective column; got shape {arr.shape}")
    return arr


def _check_directions(directions: Any, m: int) -> tuple[str, ...]:
    """Validate a sequence of ``m`` Optuna-style direction names."""
    if isinstance(directions, str) or not isinstance(directions, Sequence):
        raise ValueError(
            f"directions must be a sequence of {m} strings from {DIRECTIONS}; got {directions!r}"
        )
    if len(directions) != m:
        raise ValueError(f"expected {m} directions (one per objective), got {len(directions)}")
    for d in directions:
        if d not in DIRECTIONS:
            raise ValueError(f"unknown direction {d!r}; valid directions are 'minimize' and 'maximize'")
    return tuple(directions)


def _check_reference(reference: Any, m: int) -> np.ndarray:
    """Validate a finite reference point of shape (m,)."""
    try:
        ref = np.array(reference, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"reference must be a numeric array-like of shape ({m},): {exc}") from None
    if ref.shape != (m,):
        raise ValueError(f"reference must have shape ({m},) to match the points; got shape {ref.shape}")
    if not np.all(np.isfinite(ref)):
        raise ValueError(f"reference must be finite; got {ref.tolist()}")
    return ref


# --------------------------------------------------------------------------- #
# Direction handling
# --------------------------------------------------------------------------- #
def to_minimization(values: Any, directions: Sequence[str]) -> np.ndarray:
    """Negate "maximize" columns so that smaller is better everywhere.

    Args:
        values: Array-like (n, m) of raw objective values.
        directions: m entries, each "minimize" or "maximize".

    Returns:
        New float array (n, m) in minimization space.
    """
    pts = _as_points(values, "values")
    dirs = _check_directions(directions, pts.shape[1])
    signs = np.array([-1.0 if d == "maximize" else 1.0 for d in dirs])
    return pts * signs


# --------------------------------------------------------------------------- #
# Dominance
# --------------------------------------------------------------------------- #
def _dominated_by_any(candidates: np.ndarray, others: np.ndarray) -> np.ndarray:
    """For each candidate row, whether some row of ``others`` strictly dominates it.

    Chunked so the (block, n, m) comparison temporaries stay bounded.
    """
    n_c, m = candidates.shape
    out = np.zeros(n_c, dtype=bool)
    if n_c == 0 or others.shape[0] == 0:
        return out
    block = max(1, _CHUNK_ELEMENTS // (others.shape[0] * m))
    for start in range(0, n_c, block):
        c = candidates[start : start + block, None, :]
        weakly = np.all(others[None, :, :] <= c, axis=2)
        strictly = np.any(others[None, :, :] < c, axis=2)
        out[start : start + block] = np.any(weakly & strictly, axis=1)
    return out


def _domination_matrix(pts: np.ndarray) -> np.ndarray:
    """Boolean (n, n) matrix ``D[j, i]`` = row j strictly dominates row i."""
    n, m = pts.shape
    dom = np.zeros((n, n), dtype=bool)
    if n == 0:
        return dom
    block = max(1, _CHUNK_ELEMENTS // (n * m))
    for start in range(0, n, block):
        p = pts[start : start + block, None, :]
        weakly = np.all(p <= pts[None, :, :], axis=2)
        strictly = np.any(p < pts[None, :, :], axis=2)
        dom[start : start + block] = weakly & strictly
    return dom


def non_dominated_mask(points: Any) -> np.ndarray:
    """Mark rows not strictly dominated by any other row (minimization).

    Duplicates of a non-dominated point are all kept, since neither strictly
    dominates the other. Rows containing NaN are unusable results: they are
    never non-dominated and never dominate anything.

    Args:
        points: Array-like (n, m) in minimization space.

    Returns:
        Boolean array (n,).
    """
    pts = _as_points(points)
    valid = ~np.any(np.isnan(pts), axis=1)
    mask = np.zeros(pts.shape[0], dtype=bool)
    good = pts[valid]
    mask[valid] = ~_dominated_by_any(good, good)
    return mask


def non_dominated_sort(points: Any) -> list[np.ndarray]:
    """Split rows into successive Pareto fronts (NSGA-II fast non-dominated sort).

    Rows containing NaN are placed in a final front of their own so every row
    gets a rank.

    Args:
        points: Array-like (n, m) in minimization space.

    Returns:
        List of integer index arrays (ascending), front 0 (the Pareto front) first.
    """
    pts = _as_points(points)
    nan_rows = np.any(np.isnan(pts), axis=1)
    idx = np.flatnonzero(~nan_rows)
    dom = _domination_matrix(pts[idx])
    n_dominators = dom.sum(axis=0)
    remaining = np.ones(idx.size, dtype=bool)
    fronts: list[np.ndarray] = []
    while remaining.any():
        current = np.flatnonzero(remaining & (n_dominators == 0))
        fronts.append(idx[current])
        remaining[current] = False
        n_dominators = n_dominators - dom[current].sum(axis=0)
    if nan_rows.any():
        fronts.append(np.flatnonzero(nan_rows))
    return fronts


def crowding_distance(points: Any) -> np.ndarray:
    """NSGA-II crowding distance of each row within the given set.

    Larger means more isolated, which NSGA-II prefers to keep diversity.
    Per objective, the extreme rows get ``inf`` and interior rows add the
    normalized gap between their neighbours. Objectives with zero range carry
    no information and contribute 0 (no ``inf`` either). Sets of at most two
    rows are all boundary, hence all ``inf``. Rows with non-finite values
    cannot be placed and get 0; they are ignored for the others.

    Args:
        points: Array-like (n, m) in minimization space.

    Returns:
        Float array (n,).
    """
    pts = _as_points(points)
    n = pts.shape[0]
    finite = np.all(np.isfinite(pts), axis=1)
    dist = np.zeros(n, dtype=float)
    idx = np.flatnonzero(finite)
    if idx.size <= 2:
        dist[idx] = np.inf
        return dist
    sub = pts[idx]
    acc = np.zeros(idx.size, dtype=float)
    for k in range(sub.shape[1]):
        order = np.argsort(sub[:, k], kind="stable")
        col = sub[order, k]
        span = col[-1] - col[0]
        if span <= 0:
            continue
        acc[order[0]] = np.inf
        acc[order[-1]] = np.inf
        acc[order[1:-1]] += (col[2:] - col[:-2]) / span
    dist[idx] = acc
    return dist


# --------------------------------------------------------------------------- #
# Hypervolume
# --------------------------------------------------------------------------- #
def _hv_2d(pts: np.ndarray, ref: np.ndarray) -> float:
    """Exact 2-D hypervolume by a staircase sweep; dominated rows are harmless."""
    order = np.lexsort((pts[:, 1], pts[:, 0]))
    x = pts[order, 0]
    y_best = np.minimum.accumulate(pts[order, 1])
    widths = np.diff(np.append(x, ref[0]))
    return float(np.sum(widths * (ref[1] - y_best)))


def _hv_3d(pts: np.ndarray, ref: np.ndarray) -> float:
    """Exact 3-D hypervolume: sweep z while maintaining a 2-D staircase and its area.

    Each insertion updates the covered (x, y) area incrementally, so the whole
    sweep costs about O(n log n) plus list shifts, instead of one 2-D
    hypervolume per slice. Dominated rows are skipped on insertion.
    """
    order = np.argsort(pts[:, 2], kind="stable")
    xs_in, ys_in, zs = pts[order, 0].tolist(), pts[order, 1].tolist(), pts[order, 2].tolist()
    rx, ry, rz = float(ref[0]), float(ref[1]), float(ref[2])
    xs: list[float] = []  # staircase: x ascending, y strictly descending
    ys: list[float] = []
    area = 0.0
    total = 0.0
    n = len(zs)
    for i in range(n):
        px, py = xs_in[i], ys_in[i]
        lo = bisect.bisect_left(xs, px)
        covered = (lo > 0 and ys[lo - 1] <= py) or (lo < len(xs) and xs[lo] == px and ys[lo] <= py)
        if not covered:
            hi = lo
            while hi < len(ys) and ys[hi] >= py:
                hi += 1  # rows at hi-1 and before (from lo) are dominated by p
            level = ys[lo - 1] if lo > 0 else ry
            x_prev = px
            for j in range(lo, hi):
                area += (xs[j] - x_prev) * (level - py)
                x_prev, level = xs[j], ys[j]
            x_next = xs[hi] if hi < len(xs) else rx
            area += (x_next - x_prev) * (level - py)
            xs[lo:hi] = [px]
            ys[lo:hi] = [py]
        depth = (zs[i + 1] if i + 1 < n else rz) - zs[i]
        if depth > 0:
            total += depth * area
    return total


def _hv_sweep(pts: np.ndarray, ref: np.ndarray) -> float:
    """Exact hypervolume of rows that are all strictly better than ``ref``.

    HSO-style slicing: sweep the last objective upward; between consecutive
    values the covered region is a prism over the (m-1)-D hypervolume of the
    rows seen so far, computed recursively on their non-dominated subset.
    m <= 3 use dedicated sweeps, which is where the recursion bottoms out.
    """
    m = pts.shape[1]
    if pts.shape[0] == 0:
        return 0.0
    if m == 1:
        return float(ref[0] - pts[:, 0].min())
    if m == 2:
        return _hv_2d(pts, ref)
    if m == 3:
        return _hv_3d(pts, ref)
    pts = pts[np.argsort(pts[:, -1], kind="stable")]
    depths = np.diff(np.append(pts[:, -1], ref[-1]))
    sub_ref = ref[:-1]
    total = 0.0
    for i in range(pts.shape[0]):
        if depths[i] <= 0:
            continue  # tied with the next row: that slice includes this row.
        sub = pts[: i + 1, :-1]
        if m - 1 >= 4:
            sub = sub[~_dominated_by_any(sub, sub)]
        total += depths[i] * _hv_sweep(sub, sub_ref)
    return total


def _hv_ready(points: Any, reference: Any) -> tuple[np.ndarray, np.ndarray]:
    """Validate inputs; keep only usable rows strictly better than the reference."""
    pts = _as_points(points)
    ref = _check_reference(reference, pts.shape[1])
    pts = pts[~np.any(np.isnan(pts), axis=1)]
    if np.any(np.isneginf(pts)):
        raise ValueError("points contain -inf; the hypervolume would be unbounded")
    pts = pts[np.all(pts < ref, axis=1)]
    return pts, ref


def hypervolume(points: Any, reference: Any) -> float:
    """Exact hypervolume dominated by ``points`` and bounded by ``reference``.

    Higher is better: it grows with both convergence and spread of the front,
    which is why it is the scalar used to compare runs.

    Args:
        points: Array-like (n, m) in minimization space, any m >= 1. Rows with
            NaN are ignored; rows not strictly better than ``reference`` in
            every objective contribute nothing.
        reference: Array-like (m,), finite.

    Returns:
        The hypervolume (0.0 when no row contributes).
    """
    pts, ref = _hv_ready(points, reference)
    if pts.shape[0] == 0:
        return 0.0
    if pts.shape[1] >= 4:
        pts = pts[~_dominated_by_any(pts, pts)]
    return _hv_sweep(pts, ref)


def hypervolume_contributions(points: Any, reference: Any) -> np.ndarray:
    """Exclusive hypervolume contribution of each row: HV(all) - HV(all but i).

    Useful for pruning the least valuable member of a front. Dominated rows,
    duplicates and rows outside the reference box contribute 0.

    Args:
        points: Array-like (n, m) in minimization space.
        reference: Array-like (m,), finite.

    Returns:
        Float array (n,).
    """
    pts = _as_points(points)
    _hv_ready(pts, reference)  # validation only
    ref = _check_reference(reference, pts.shape[1])
    n = pts.shape[0]
    contrib = np.zeros(n, dtype=float)
    usable = ~np.any(np.isnan(pts), axis=1) & np.all(pts < ref, axis=1)
    idx = np.flatnonzero(usable)
    if idx.size == 0:
        return contrib
    sub = pts[idx]
    strict_front = ~_dominated_by_any(sub, sub)
    _, inverse, counts = np.unique(sub, axis=0, return_inverse=True, return_counts=True)
    unique_rows = counts[np.ravel(inverse)] == 1
    total = hypervolume(sub, ref)
    keep = np.ones(idx.size, dtype=bool)
    for j in np.flatnonzero(strict_front & unique_rows):
        keep[j] = False
        contrib[idx[j]] = max(0.0, total - hypervolume(sub[keep], ref))
        keep[j] = True
    return contrib


# --------------------------------------------------------------------------- #
# Normalization
# --------------------------------------------------------------------------- #
def _default_log_scale(name: str, column: np.ndarray) -> bool:
    """Log-scale count/duration objectives, but only where log10 is defined."""
    finite = column[np.isfinite(column)]
    return name.startswith(_LOG_SCALE_PREFIXES) and finite.size > 0 and bool(np.all(finite > 0))


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
        object.__setattr__(self, "directions", _check_directions(tuple(self.directions), m))
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
        raw = _as_points(values, "values")
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
        if isinstance(names, str) or not isinstance(names, Sequence):
            raise ValueError(f"names must be a sequence of strings; got {names!r}")
        m = len(names)
        if m < 1:
            raise ValueError("names must contain at least one objective")
        raw = np.array(values, dtype=float)
        if raw.ndim == 2 and raw.shape[0] == 0:
            raw = raw.reshape(0, m)
        raw = _as_points(raw, "values")
        if raw.shape[1] != m:
            raise ValueError(f"values have {raw.shape[1]} columns but {m} names were given")
        dirs = _check_directions(directions, m)
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


# --------------------------------------------------------------------------- #
# Run-level summary
# --------------------------------------------------------------------------- #
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
    if isinstance(names, str) or not isinstance(names, Sequence):
        raise ValueError(f"names must be a sequence of strings; got {names!r}")
    m = len(names)
    raw = np.array(values, dtype=float)
    if raw.ndim == 2 and raw.shape[0] == 0:
        raw = raw.reshape(0, m)
    raw = _as_points(raw, "values")
    if raw.shape[1] != m:
        raise ValueError(f"values have {raw.shape[1]} columns but {m} names were given")
    dirs = _check_directions(directions, m)
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
