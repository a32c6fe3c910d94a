"""Pareto maths at scale: archsearch.pareto against a pairwise numpy baseline and Optuna's routines.

The baseline is what archsearch did before moocore: non-dominated sorting by an (n, n, m) comparison
(O(n^2 m)), and hypervolume above three objectives by recursive slicing. Optuna's own non-dominated
sort and hypervolume are timed beside them. Every measurement is the median of ``--repeats`` calls,
CPU time of this thread beside wall time (ratios are of CPU time: the machine is shared); results are
checked to agree before any figure is printed.

    python benchmarks/pareto.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from archsearch.pareto import hypervolume, non_dominated_sort


def pairwise_sort(points: np.ndarray) -> list[np.ndarray]:
    """Non-dominated sort from the full domination matrix (the former implementation)."""
    dominates = np.all(points[:, None, :] <= points[None, :, :], axis=2) & np.any(
        points[:, None, :] < points[None, :, :], axis=2)
    n_dominators = dominates.sum(axis=0)
    remaining = np.ones(len(points), dtype=bool)
    fronts = []
    while remaining.any():
        current = np.flatnonzero(remaining & (n_dominators == 0))
        fronts.append(current)
        remaining[current] = False
        n_dominators = n_dominators - dominates[current].sum(axis=0)
    return fronts


def slicing_hypervolume(points: np.ndarray, reference: np.ndarray) -> float:
    """Exact hypervolume by slicing the last objective, recursing down to 2-D (the former method above
    three objectives)."""
    points = points[np.all(points < reference, axis=1)]
    if len(points) == 0:
        return 0.0
    if points.shape[1] == 2:
        order = np.lexsort((points[:, 1], points[:, 0]))
        x, y = points[order, 0], np.minimum.accumulate(points[order, 1])
        return float(np.sum(np.diff(np.append(x, reference[0])) * (reference[1] - y)))
    points = points[np.argsort(points[:, -1], kind="stable")]
    depths = np.diff(np.append(points[:, -1], reference[-1]))
    total = 0.0
    for i in range(len(points)):
        if depths[i] > 0:
            sub = points[: i + 1, :-1]
            front = sub[pairwise_sort(sub)[0]]
            total += depths[i] * slicing_hypervolume(front, reference[:-1])
    return total


def timed(repeats: int, fn: Callable[..., Any], *args: Any) -> tuple[float, float, Any]:
    """Median wall and thread-CPU milliseconds of ``fn(*args)``, and its last result."""
    walls, cpus, out = [], [], None
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.thread_time()
        out = fn(*args)
        cpus.append(time.thread_time() - cpu)
        walls.append(time.perf_counter() - wall)
    return 1e3 * statistics.median(walls), 1e3 * statistics.median(cpus), out


def same_fronts(a: list[np.ndarray], b: list[np.ndarray]) -> bool:
    return len(a) == len(b) and all(np.array_equal(np.sort(x), np.sort(y)) for x, y in zip(a, b, strict=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    from optuna._hypervolume import compute_hypervolume
    from optuna.study._multi_objective import _fast_non_domination_rank

    rng = np.random.default_rng(0)
    print(f"machine: {platform.processor() or platform.machine()}, numpy {np.__version__}")
    print("\nnon-dominated sorting (ms, median; wall / cpu)")
    print(f"{'points':>7} {'m':>2} {'archsearch':>16} {'pairwise numpy':>18} {'optuna':>16} {'vs pairwise':>12}")
    for n, m in [(200, 2), (1000, 2), (1000, 3), (3000, 3)]:
        pts = rng.random((n, m))
        ours = timed(args.repeats, non_dominated_sort, pts)
        base = timed(args.repeats, pairwise_sort, pts)
        opt = timed(args.repeats, _fast_non_domination_rank, pts)
        assert same_fronts(ours[2], base[2])
        ranks = np.asarray(opt[2])
        assert same_fronts(ours[2], [np.flatnonzero(ranks == r) for r in np.unique(ranks)])
        print(f"{n:>7} {m:>2} {ours[0]:>8.2f} /{ours[1]:>6.2f} {base[0]:>9.2f} /{base[1]:>7.2f} "
              f"{opt[0]:>8.2f} /{opt[1]:>6.2f} {base[1] / ours[1]:>11.0f}x")
    print("\nhypervolume (ms, median; wall / cpu), points on the unit sphere's positive part, reference 1.1")
    print(f"{'points':>7} {'m':>2} {'archsearch':>16} {'slicing numpy':>18} {'optuna':>16} {'vs optuna':>10}")
    for n, m in [(100, 2), (1000, 2), (100, 3), (1000, 3), (100, 4), (100, 5)]:
        raw = np.abs(rng.normal(size=(n, m)))
        pts = 1.0 - raw / np.linalg.norm(raw, axis=1, keepdims=True)
        ref = np.full(m, 1.1)
        ours = timed(args.repeats, hypervolume, pts, ref)
        opt = timed(args.repeats, compute_hypervolume, pts, ref)
        assert abs(ours[2] - opt[2]) <= 1e-9 * max(1.0, abs(opt[2])), (ours[2], opt[2])
        former = "    (same code)    "  # up to three objectives the sweeps are the former ones
        if m >= 4:
            base = timed(max(1, args.repeats // 2), slicing_hypervolume, pts, ref)
            assert abs(ours[2] - base[2]) <= 1e-9 * max(1.0, abs(base[2])), (ours[2], base[2])
            former = f"{base[0]:>9.2f} /{base[1]:>7.2f}"
        print(f"{n:>7} {m:>2} {ours[0]:>8.2f} /{ours[1]:>6.2f} {former} "
              f"{opt[0]:>8.2f} /{opt[1]:>6.2f} {opt[1] / ours[1]:>9.1f}x")


if __name__ == "__main__":
    main()
