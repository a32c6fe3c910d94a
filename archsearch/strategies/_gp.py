"""A Gaussian process over encoded decisions: one of the two surrogates the ``model`` strategy ranks its
pool with.

Measured on the benchmark problems (``benchmarks/RESULTS.md``), a GP needs far fewer evaluations than the
extra-trees forest on ordered decisions (ZDT: regret 0.007 at 50 evaluations against 0.13): its
predictions vary smoothly between results, where a forest's are flat between split points. It is not
better everywhere (nas_mnist1d: 0.019 at 100 against the forest's 0.009), hence ``surrogate=auto``.
Kernel: a constant times a Matérn 5/2 with one length scale per column (so decisions that do not
matter stop counting) plus white noise (training is noisy); inputs scaled to [0, 1] over the results
and the proposals, targets standardized.

Hyperparameters are fit by maximum likelihood every ``REFIT_EVERY`` new results (one in 20 past a
hundred), on at most ``FIT_ROWS`` of them, and kept in between: conditioning on every result costs one
Cholesky factorization, a fit dozens. They are part of the strategy's state, so a resumed search
proposes what an uninterrupted one would.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np

REFIT_EVERY = 5  # new results between hyperparameter fits; past 100 results, one in 20 of them
FIT_ROWS = 150  # results a fit sees at most: the latest half, and an even spread of the rest
FIT_ITERATIONS = 40  # L-BFGS steps a fit takes at most


class GaussianProcess:
    """One GP per column of the targets; ``predict`` conditions on the results and returns mean and std."""

    def __init__(self) -> None:
        self.theta: list[list[float]] = []  # log hyperparameters per target column, from the last fit
        self.fitted_rows = 0  # results behind that fit
        self.held_out = np.zeros((0, 0))  # leave-one-out predictions of the results, at the last fit
        self._conditioned: tuple[Any, list[Any]] | None = None  # (inputs, one conditioned GP per column)

    def _fits_shape(self, x_told: np.ndarray, y_told: np.ndarray) -> bool:
        """Whether the kept hyperparameters are for these targets and this many input columns."""
        return len(self.theta) == y_told.shape[1] and all(len(t) == x_told.shape[1] + 2 for t in self.theta)

    def refit_due(self, x_told: np.ndarray, y_told: np.ndarray) -> bool:
        """Whether the next ``predict`` on these results fits the hyperparameters again."""
        return not self._fits_shape(x_told, y_told) or not (
            0 <= len(x_told) - self.fitted_rows < max(REFIT_EVERY, self.fitted_rows // 20))

    def predict(self, x_told: np.ndarray, y_told: np.ndarray, x_asked: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean and standard deviation of each target at ``x_asked``, given results ``(x_told, y_told)``.
        After a fit, ``held_out`` holds each result's leave-one-out prediction (closed form)."""
        both = np.vstack([x_told, x_asked])  # the pool spans the space: a steadier range than the results'
        low, span = both.min(axis=0), np.ptp(both, axis=0)
        span = np.where(span > 0, span, 1.0)
        told, asked = (x_told - low) / span, (x_asked - low) / span
        refit = self.refit_due(x_told, y_told)
        if not refit and self._conditioned is not None and self._conditioned[0] == self._key(told, y_told):
            models = self._conditioned[1]  # the same results, scaled the same: a proposal's second ranking
        else:
            same_shape = self._fits_shape(x_told, y_told)
            models, thetas, held_out = [], [], []
            for column in range(y_told.shape[1]):
                start = np.array(self.theta[column]) if same_shape else None
                model, theta, loo = self._one(told, y_told[:, column], start, refit)
                models.append(model)
                thetas.append(theta.tolist())
                held_out.append(loo)
            if refit:
                self.theta, self.fitted_rows = thetas, len(told)
                self.held_out = np.stack(held_out, axis=1)
            self._conditioned = (self._key(told, y_told), models)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            predictions = [model.predict(asked, return_std=True) for model in models]
        return np.stack([mean for mean, _ in predictions], axis=1), np.stack([std for _, std in predictions], axis=1)

    def _key(self, told: np.ndarray, y_told: np.ndarray) -> tuple[Any, ...]:
        """What a conditioned GP depends on: the scaled results, their values and the hyperparameters.
        Conditioning (a Cholesky factorization of every result) was a third of a proposal at 500."""
        return told.shape, told.tobytes(), y_told.tobytes(), repr(self.theta)

    def _one(self, told: np.ndarray, y: np.ndarray, start: np.ndarray | None,
             refit: bool) -> tuple[Any, np.ndarray, np.ndarray]:
        """A GP conditioned on the results, the hyperparameters used (``start``, or a fresh fit when
        ``refit``) and, after a fit, the leave-one-out predictions (else ``y``, unused).

        A fit starts from the kernel's defaults, not from the previous fit: warm starts stuck to what
        the first few results suggested (ZDT1, 4 seeds: regret 0.13 at 50 evaluations, against 0.01).
        """
        from sklearn.gaussian_process import GaussianProcessRegressor

        kernel = _kernel(told.shape[1])
        theta = kernel.theta if start is None else start
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # length scales at their bounds: expected for unused decisions
            if refit:
                rows = _fit_rows(len(told))
                fit = GaussianProcessRegressor(kernel, optimizer=_lbfgs, normalize_y=True)
                theta = fit.fit(told[rows], y[rows]).kernel_.theta
            model = GaussianProcessRegressor(kernel.clone_with_theta(theta), optimizer=None, normalize_y=True)
            model.fit(told, y)
        return model, theta, _leave_one_out(model, y) if refit else y

    def state_dict(self) -> dict[str, Any]:
        return {"theta": self.theta, "fitted_rows": self.fitted_rows}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.theta = [list(map(float, t)) for t in state.get("theta", [])]
        self.fitted_rows = int(state.get("fitted_rows", 0))


def _leave_one_out(model: Any, y: np.ndarray) -> np.ndarray:
    """Each result's prediction by the GP conditioned on the others (Rasmussen & Williams, eq. 5.12):
    ``y_i - [K^-1 y]_i / [K^-1]_ii``, from the factorization the fit already holds."""
    from scipy.linalg import cho_solve

    inverse_diagonal = np.diag(cho_solve((model.L_, True), np.eye(len(y))))
    alpha = np.ravel(model.alpha_)
    return y - alpha / inverse_diagonal * float(np.ravel(model._y_train_std)[0])


def _kernel(width: int) -> Any:
    from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel

    return (ConstantKernel(1.0, (1e-3, 1e3)) * Matern(np.ones(width), (1e-2, 1e2), nu=2.5)
            + WhiteKernel(1e-3, (1e-6, 1.0)))


def _lbfgs(objective: Any, theta: np.ndarray, bounds: np.ndarray) -> tuple[np.ndarray, float]:
    """scikit-learn's optimizer, one start (deterministic) and at most ``FIT_ITERATIONS`` steps: a fit
    of 40 length scales on 200 results took over a hundred (4 s), and 40 found as good proposals."""
    from scipy.optimize import minimize

    found = minimize(objective, theta, method="L-BFGS-B", jac=True, bounds=bounds,
                     options={"maxiter": FIT_ITERATIONS})
    return found.x, float(found.fun)


def _fit_rows(n: int) -> np.ndarray:
    """Indices a fit sees: all when few, else the latest ``FIT_ROWS // 2`` and an even spread of the rest."""
    if n <= FIT_ROWS:
        return np.arange(n)
    latest = n - FIT_ROWS // 2
    return np.r_[np.linspace(0, latest - 1, FIT_ROWS - FIT_ROWS // 2).round().astype(int), np.arange(latest, n)]
