"""Function fitting for KAN research: the toy functions of Liu et al., "KAN: Kolmogorov-Arnold Networks" (2024).

Inputs are drawn uniformly from [-1, 1] in every dimension (the range the KAN paper's dataset helper
uses by default); targets are the exact function values plus optional Gaussian noise. Each function
has a known compositional structure, so the RMSE a block family reaches says how well it captures
that structure:

===================  ==============================================================  ====
name                 formula                                                         dims
===================  ==============================================================  ====
bessel               J0(20 x)  (Bessel function of the first kind, order 0)          1
exp_sin              exp(sin(pi x) + y^2)                                            2
xy                   x * y                                                           2
high_dim             exp(mean_i sin^2(pi x_i / 2)),  i = 1..100                      100
four_dim             exp((sin(pi (x1^2 + x2^2)) + sin(pi (x3^2 + x4^2))) / 2)        4
exp_bessel           exp(J0(20 x) + y^2)                                             2
phase_transition     tanh(5 (x1^4 + x2^4 + x3^4 - 1))                                3
distance             sqrt((x1 - x2)^2 + (x3 - x4)^2)                                 4
===================  ==============================================================  ====

The first five are the paper's toy datasets for scaling laws (its Figure 3.1); the last three come
from its interpretability examples (Figure 4.1).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from archsearch.tasks._base import Task, TaskError
from archsearch.tasks.arrays import task_from_arrays


def _j0(x: np.ndarray) -> np.ndarray:
    from scipy.special import j0

    return j0(x)


@dataclass(frozen=True)
class Function:
    """A target function: its formula for people, its input ranges, and its numpy implementation."""

    formula: str
    ranges: tuple[tuple[float, float], ...]
    fn: Callable[[np.ndarray], np.ndarray]  # (n, dims) -> (n,)
    variables: tuple[str, ...] = ()

    @property
    def dims(self) -> int:
        return len(self.ranges)


def _cube(dims: int) -> tuple[tuple[float, float], ...]:
    return ((-1.0, 1.0),) * dims


PI = np.pi
FUNCTIONS: dict[str, Function] = {
    "bessel": Function("J0(20 x)", _cube(1), lambda x: _j0(20 * x[:, 0])),
    "exp_sin": Function("exp(sin(pi x) + y^2)", _cube(2), lambda x: np.exp(np.sin(PI * x[:, 0]) + x[:, 1] ** 2)),
    "xy": Function("x * y", _cube(2), lambda x: x[:, 0] * x[:, 1]),
    "high_dim": Function("exp(mean_i sin^2(pi x_i / 2)), i = 1..100", _cube(100),
                         lambda x: np.exp(np.mean(np.sin(PI * x / 2) ** 2, axis=1))),
    "four_dim": Function("exp((sin(pi (x1^2 + x2^2)) + sin(pi (x3^2 + x4^2))) / 2)", _cube(4),
                         lambda x: np.exp(0.5 * (np.sin(PI * (x[:, 0] ** 2 + x[:, 1] ** 2))
                                                 + np.sin(PI * (x[:, 2] ** 2 + x[:, 3] ** 2))))),
    "exp_bessel": Function("exp(J0(20 x) + y^2)", _cube(2), lambda x: np.exp(_j0(20 * x[:, 0]) + x[:, 1] ** 2)),
    "phase_transition": Function("tanh(5 (x1^4 + x2^4 + x3^4 - 1))", _cube(3),
                                 lambda x: np.tanh(5 * (np.sum(x ** 4, axis=1) - 1))),
    "distance": Function("sqrt((x1 - x2)^2 + (x3 - x4)^2)", _cube(4),
                         lambda x: np.sqrt((x[:, 0] - x[:, 1]) ** 2 + (x[:, 2] - x[:, 3]) ** 2)),
}


def sample_function_task(
    name: str, function: Function, *, seed: int, n_samples: int, noise: float, val_fraction: float,
    test_fraction: float, info: dict | None = None,
) -> Task:
    """Draw ``n_samples`` inputs uniformly in the function's ranges, evaluate it, add noise, split.

    ``noise`` is the standard deviation of Gaussian noise relative to the clean target's standard
    deviation (0.1 = 10% noise), so it means the same for every function. Validation and test
    targets carry noise too, as measured data would; ``noise=0`` gives exact targets.
    """
    if n_samples < 10:
        raise TaskError(f"n_samples={n_samples} is too few to split into train/val/test")
    if noise < 0:
        raise TaskError(f"noise={noise} must be >= 0")
    rng = np.random.default_rng(seed)
    low, high = np.array(function.ranges, dtype=np.float64).T
    x = low + (high - low) * rng.random((int(n_samples), function.dims))
    y = function.fn(x)
    if not np.isfinite(y).all():  # pragma: no cover - every formula here is finite on its ranges
        raise TaskError(f"{name}: the formula is not finite on the sampled inputs")
    if noise:
        y = y + noise * y.std() * rng.standard_normal(len(y))
    details = {"formula": function.formula, "ranges": [list(r) for r in function.ranges], "noise": noise}
    if function.variables:
        details["variables"] = list(function.variables)
    return task_from_arrays(x, y, name=name, problem="regression", val_fraction=val_fraction,
                            test_fraction=test_fraction, seed=seed, info={**details, **(info or {})})


def kan_toy(seed: int = 0, function: str = "exp_sin", n_samples: int = 1000, noise: float = 0.0,
            val_fraction: float = 0.2, test_fraction: float = 0.2) -> Task:
    """One of the KAN paper's toy functions (see the module docstring), as a regression task.

    Args:
        seed: seeds both the sampled inputs and the split.
        function: a key of :data:`FUNCTIONS`.
        n_samples: points drawn in all, before the train/val/test split.
        noise: Gaussian noise standard deviation relative to the target's standard deviation.
    """
    if function not in FUNCTIONS:
        raise TaskError(f"unknown kan_toy function {function!r}; valid: {', '.join(FUNCTIONS)}")
    return sample_function_task("kan_toy", FUNCTIONS[function], seed=seed, n_samples=n_samples,
                                noise=noise, val_fraction=val_fraction, test_fraction=test_fraction,
                                info={"function": function})
