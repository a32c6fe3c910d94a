"""Tests for archsearch.pareto against brute-force oracles."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest

from archsearch.pareto import (
    REFERENCE_POINT_OFFSET,
    Normalization,
    crowding_distance,
    front_hypervolume,
    hypervolume,
    non_dominated_mask,
    non_dominated_sort,
    to_minimization,
)


# --------------------------------------------------------------------------- #
# Oracles
# --------------------------------------------------------------------------- #
def brute_mask(points: np.ndarray) -> np.ndarray:
    """O(n^2) textbook definition of non-domination (NaN rows excluded)."""
    n = len(points)
    ok = ~np.isnan(points).any(axis=1)
    out = np.zeros(n, dtype=bool)
    for i in range(n):
        if not ok[i]:
            continue
        out[i] = not any(
            ok[j] and np.all(points[j] <= points[i]) and np.any(points[j] < points[i]) for j in range(n)
        )
    return out


def grid_cover_counts(points: np.ndarray, reference: np.ndarray, low: int) -> tuple[np.ndarray, np.ndarray]:
    """For every unit cell of [low, reference), which points dominate it (integer coords)."""
    axes = [np.arange(low, int(r)) for r in reference]
    cells = np.array(list(itertools.product(*axes)), dtype=float).reshape(-1, len(reference))
    covers = np.all(points[None, :, :] <= cells[:, None, :], axis=2)  # (cells, points)
    return cells, covers


def grid_hypervolume(points: np.ndarray, reference: np.ndarray, low: int) -> float:
    _, covers = grid_cover_counts(points, reference, low)
    return float(covers.any(axis=1).sum())


def inclusion_exclusion_hv(points: np.ndarray, reference: np.ndarray) -> float:
    """Exact HV for small float sets via inclusion-exclusion over subsets."""
    pts = points[np.all(points < reference, axis=1)]
    total = 0.0
    for k in range(1, len(pts) + 1):
        for subset in itertools.combinations(range(len(pts)), k):
            corner = pts[list(subset)].max(axis=0)
            total += (-1) ** (k + 1) * float(np.prod(reference - corner))
    return total


# --------------------------------------------------------------------------- #
# to_minimization
# --------------------------------------------------------------------------- #
def test_to_minimization_negates_maximize_columns():
    values = [[0.9, 100.0, 3.0], [0.5, 10.0, -1.0]]
    out = to_minimization(values, ["maximize", "minimize", "maximize"])
    np.testing.assert_array_equal(out, [[-0.9, 100.0, -3.0], [-0.5, 10.0, 1.0]])
    assert out.dtype == float


def test_to_minimization_does_not_mutate_input():
    values = np.array([[1.0, 2.0]])
    to_minimization(values, ("maximize", "maximize"))
    np.testing.assert_array_equal(values, [[1.0, 2.0]])


# --------------------------------------------------------------------------- #
# Dominance
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("m", [2, 3, 4])
def test_non_dominated_mask_matches_brute_force(m):
    rng = np.random.default_rng(100 + m)
    for _ in range(40):
        n = int(rng.integers(1, 30))
        pts = rng.integers(0, 4, size=(n, m)).astype(float)  # many ties/duplicates
        np.testing.assert_array_equal(non_dominated_mask(pts), brute_mask(pts))


def test_non_dominated_mask_keeps_duplicates_and_rejects_nan():
    pts = np.array([[1.0, 1.0], [1.0, 1.0], [2.0, 2.0], [np.nan, 0.0], [0.0, np.nan], [3.0, 0.5]])
    np.testing.assert_array_equal(non_dominated_mask(pts), [True, True, False, False, False, True])


def test_nan_rows_never_dominate():
    pts = np.array([[np.nan, -10.0], [5.0, 5.0]])
    np.testing.assert_array_equal(non_dominated_mask(pts), [False, True])


def test_non_dominated_mask_empty():
    assert non_dominated_mask(np.zeros((0, 3))).shape == (0,)


@pytest.mark.parametrize("m", [2, 3, 4])
def test_non_dominated_sort_matches_repeated_peeling(m):
    rng = np.random.default_rng(200 + m)
    for _ in range(25):
        n = int(rng.integers(1, 40))
        pts = rng.integers(0, 5, size=(n, m)).astype(float)
        fronts = non_dominated_sort(pts)
        remaining = np.arange(n)
        expected = []
        while remaining.size:
            mask = non_dominated_mask(pts[remaining])
            expected.append(remaining[mask])
            remaining = remaining[~mask]
        assert len(fronts) == len(expected)
        for got, want in zip(fronts, expected, strict=True):
            np.testing.assert_array_equal(np.sort(got), np.sort(want))
        assert sorted(np.concatenate(fronts).tolist()) == list(range(n))


def test_non_dominated_sort_puts_nan_rows_last():
    pts = np.array([[1.0, 1.0], [np.nan, 0.0], [2.0, 2.0], [0.0, 3.0]])
    fronts = non_dominated_sort(pts)
    assert [f.tolist() for f in fronts] == [[0, 3], [2], [1]]


def test_non_dominated_sort_empty():
    assert non_dominated_sort(np.zeros((0, 2))) == []


# --------------------------------------------------------------------------- #
# Crowding distance
# --------------------------------------------------------------------------- #
def test_crowding_distance_hand_example():
    pts = np.array([[1.0, 5.0], [2.0, 3.0], [4.0, 2.0], [6.0, 1.0]])
    # obj0 range 5: (4-1)/5, (6-2)/5; obj1 range 4: (5-2)/4, (3-1)/4.
    expected = [np.inf, 0.6 + 0.75, 0.8 + 0.5, np.inf]
    np.testing.assert_allclose(crowding_distance(pts), expected)


def test_crowding_distance_zero_range_objective_contributes_nothing():
    pts = np.array([[1.0, 7.0], [2.0, 7.0], [4.0, 7.0]])
    np.testing.assert_allclose(crowding_distance(pts), [np.inf, 1.0, np.inf])


def test_crowding_distance_small_sets_are_boundary():
    assert np.all(np.isinf(crowding_distance([[1.0, 2.0], [2.0, 1.0]])))
    assert np.all(np.isinf(crowding_distance([[1.0, 2.0]])))


# --------------------------------------------------------------------------- #
# Hypervolume
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("m", [1, 2, 3, 4])
def test_hypervolume_matches_grid_oracle(m):
    rng = np.random.default_rng(300 + m)
    side = {1: 12, 2: 9, 3: 7, 4: 6}[m]
    low = -2
    for _ in range(30):
        n = int(rng.integers(0, 15))
        pts = rng.integers(low, side + 2, size=(n, m)).astype(float)  # some beyond reference
        ref = rng.integers(side - 2, side + 1, size=m).astype(float)
        assert hypervolume(pts, ref) == pytest.approx(grid_hypervolume(pts, ref, low), abs=1e-9)


@pytest.mark.parametrize("m", [1, 2, 3, 4])
def test_hypervolume_matches_inclusion_exclusion_on_floats(m):
    rng = np.random.default_rng(400 + m)
    for _ in range(20):
        n = int(rng.integers(1, 8))
        pts = rng.random((n, m))
        ref = np.full(m, 1.05)
        assert hypervolume(pts, ref) == pytest.approx(inclusion_exclusion_hv(pts, ref), rel=1e-10, abs=1e-12)


def test_hypervolume_single_point_is_box():
    assert hypervolume([[1.0, 2.0, 0.5]], [3.0, 5.0, 1.0]) == pytest.approx(2.0 * 3.0 * 0.5)
    assert hypervolume([[0.25]], [1.0]) == pytest.approx(0.75)


def test_hypervolume_2d_staircase_by_hand():
    pts = [[1.0, 3.0], [2.0, 2.0], [3.0, 1.0]]
    # Columns x in [1,2): 1, [2,3): 2, [3,4): 3.
    assert hypervolume(pts, [4.0, 4.0]) == pytest.approx(6.0)


def test_hypervolume_points_not_better_than_reference_contribute_nothing():
    assert hypervolume([[4.0, 1.0], [1.0, 4.0], [5.0, 5.0]], [4.0, 4.0]) == 0.0
    assert hypervolume([[4.0, 1.0], [2.0, 2.0]], [4.0, 4.0]) == pytest.approx(4.0)
    assert hypervolume(np.zeros((0, 3)), [1.0, 1.0, 1.0]) == 0.0


def test_hypervolume_ignores_nan_rows():
    assert hypervolume([[np.nan, 0.0], [1.0, 1.0]], [2.0, 2.0]) == pytest.approx(1.0)


def test_hypervolume_invariant_to_order_and_dominated_points():
    rng = np.random.default_rng(7)
    pts = rng.random((25, 3))
    ref = np.ones(3) * 1.1
    base = hypervolume(pts, ref)
    assert hypervolume(pts[rng.permutation(25)], ref) == pytest.approx(base, rel=1e-12)
    dominated = pts[:10] + rng.random((10, 3)) * 0.05
    assert hypervolume(np.vstack([pts, dominated, pts[:3]]), ref) == pytest.approx(base, rel=1e-12)


def test_hypervolume_runs_on_100_points_in_3d():
    rng = np.random.default_rng(11)
    x = np.abs(rng.normal(size=(100, 3)))
    front = x / np.linalg.norm(x, axis=1, keepdims=True)  # all mutually non-dominated
    hv = hypervolume(front, np.full(3, 1.1))
    # Points inside the unit-ball octant cannot be dominated by points on the sphere.
    assert 0.5 < hv < 1.1**3 - math.pi / 6
    assert hypervolume(front[::-1], np.full(3, 1.1)) == pytest.approx(hv, rel=1e-12)


# --------------------------------------------------------------------------- #
# Normalization
# --------------------------------------------------------------------------- #
def _example_norm() -> tuple[Normalization, np.ndarray]:
    values = np.array([[0.5, 1e3], [0.9, 1e5], [0.7, 1e4]])
    norm = Normalization.from_data(("accuracy", "n_params"), ("maximize", "minimize"), values)
    return norm, values


def test_normalization_from_data_bounds_and_default_log_scale():
    norm, _ = _example_norm()
    assert norm.log_scale == (False, True)
    assert norm.lower == pytest.approx((0.5, 3.0))
    assert norm.upper == pytest.approx((0.9, 5.0))


def test_normalization_apply_known_values():
    norm, values = _example_norm()
    np.testing.assert_allclose(norm.apply(values), [[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]], atol=1e-12)
    # Out of bounds is allowed and extrapolates.
    np.testing.assert_allclose(norm.apply([[1.3, 1e7]]), [[-1.0, 2.0]], atol=1e-12)


def test_normalization_round_trip_through_json():
    norm, values = _example_norm()
    again = Normalization.from_dict(json.loads(json.dumps(norm.to_dict())))
    assert again == norm
    np.testing.assert_array_equal(again.apply(values), norm.apply(values))


def test_normalization_default_log_scale_needs_positive_values_and_prefix():
    values = np.array([[0.0, 10.0, 5.0], [3.0, 100.0, 50.0]])
    norm = Normalization.from_data(("latency_ms", "flops", "loss"), ["minimize"] * 3, values)
    assert norm.log_scale == (False, True, False)


def test_normalization_degenerate_and_empty_columns():
    values = np.array([[2.0, np.nan], [2.0, np.inf]])
    norm = Normalization.from_data(("a", "b"), ("maximize", "minimize"), values)
    assert (norm.lower, norm.upper) == ((2.0, 0.0), (2.0, 1.0))
    out = norm.apply([[2.0, 0.5], [7.0, 0.25]])
    np.testing.assert_allclose(out, [[0.0, 0.5], [0.0, 0.25]])


def test_normalization_explicit_log_scale():
    norm = Normalization.from_data(("x",), ("minimize",), [[1.0], [100.0]], log_scale=[True])
    np.testing.assert_allclose(norm.apply([[10.0]]), [[0.5]])


# --------------------------------------------------------------------------- #
# front_hypervolume
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("m", [2, 3])
def test_front_hypervolume_ideal_point_gives_full_box(m):
    rng = np.random.default_rng(600 + m)
    names = ("accuracy", "n_params", "latency")[:m]
    directions = ("maximize", "minimize", "minimize")[:m]
    others = np.column_stack([rng.uniform(0.1, 0.8, 20), rng.uniform(1e4, 1e6, 20), rng.uniform(1, 9, 20)])[
        :, :m
    ]
    ideal = np.array([0.9, 1e3, 0.5])[:m]
    out = front_hypervolume(np.vstack([others, ideal]), directions, names)
    assert out["hypervolume"] == pytest.approx((1 + REFERENCE_POINT_OFFSET) ** m)
    assert out["reference_point"] == [1 + REFERENCE_POINT_OFFSET] * m
    assert out["n_points"] == 1
    assert Normalization.from_dict(out["normalization"]).names == names
    json.dumps(out)


def test_front_hypervolume_with_shared_normalization():
    norm, values = _example_norm()
    out = front_hypervolume(values, ("maximize", "minimize"), ("accuracy", "n_params"), normalization=norm)
    # Normalized points (1,0), (0,1), (0.5,0.5), reference 1.1.
    expected = hypervolume([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]], [1.1, 1.1])
    assert out["hypervolume"] == pytest.approx(expected)
    assert out["n_points"] == 3
    assert out["normalization"] == norm.to_dict()


def test_front_hypervolume_skips_non_finite_rows():
    values = [[0.5, 2.0], [np.nan, 1.0], [0.9, 4.0]]
    out = front_hypervolume(values, ("maximize", "minimize"), ("accuracy", "loss"))
    assert out["n_points"] == 2
    assert out["hypervolume"] > 0


# --------------------------------------------------------------------------- #
# Bad input
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: to_minimization([[1.0, 2.0]], ["minimize", "max"]), "minimize.*maximize"),
        (lambda: to_minimization([[1.0, 2.0]], ["minimize"]), "expected 2 directions"),
        (lambda: to_minimization([[1.0, 2.0]], "minimize"), "sequence"),
        (lambda: to_minimization([1.0, 2.0], ["minimize", "minimize"]), "2-D"),
        (lambda: non_dominated_mask([1.0, 2.0]), "2-D"),
        (lambda: non_dominated_sort([[[1.0]]]), "2-D"),
        (lambda: crowding_distance("abc"), "numeric|2-D"),
        (lambda: hypervolume([[1.0, 2.0]], [3.0]), r"reference must have shape \(2,\)"),
        (lambda: hypervolume([[1.0, 2.0]], [3.0, np.nan]), "finite"),
        (lambda: hypervolume([[-np.inf, 2.0]], [3.0, 3.0]), "unbounded"),
        (
            lambda: Normalization(("a", "b"), ("minimize",), (0.0, 0.0), (1.0, 1.0), (False, False)),
            "directions",
        ),
        (lambda: Normalization(("a",), ("up",), (0.0,), (1.0,), (False,)), "minimize.*maximize"),
        (lambda: Normalization(("a",), ("minimize",), (2.0,), (1.0,), (False,)), "upper < lower"),
        (lambda: Normalization.from_dict({"names": ["a"]}), "missing keys"),
        (lambda: _example_norm()[0].apply([[1.0, 2.0, 3.0]]), "columns"),
        (
            lambda: Normalization.from_data(("a",), ("minimize",), [[1.0], [-1.0]], log_scale=[True]),
            "non-positive",
        ),
        (lambda: Normalization.from_data(("a", "b"), ("minimize", "minimize"), [[1.0]]), "columns"),
        (lambda: front_hypervolume([[1.0, 2.0]], ("minimize", "minimize"), ("a",)), "columns"),
        (
            lambda: front_hypervolume(
                [[1.0, 2.0]], ("minimize", "maximize"), ("accuracy", "n_params"), _example_norm()[0]
            ),
            "does not match",
        ),
    ],
)
def test_bad_inputs_raise_value_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_hypervolume_3d_matches_slicing_into_2d_for_larger_sets():
    rng = np.random.default_rng(13)
    for n in (40, 90):
        pts = np.round(rng.random((n, 3)), 2)  # rounding creates ties in every coordinate
        ref = np.ones(3)
        zs = np.unique(np.append(pts[:, 2], 1.0))
        expected = sum(
            (z_next - z) * hypervolume(pts[pts[:, 2] <= z, :2], ref[:2])
            for z, z_next in zip(zs[:-1], zs[1:], strict=True)
        )
        assert hypervolume(pts, ref) == pytest.approx(expected, rel=1e-12)
