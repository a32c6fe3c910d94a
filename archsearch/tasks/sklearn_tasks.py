"""scikit-learn's small bundled datasets: real tabular problems that load offline in milliseconds."""

from __future__ import annotations

from typing import Any

from archsearch.tasks._base import Task
from archsearch.tasks.arrays import task_from_arrays

# name -> (loader in sklearn.datasets, problem, rows); the row counts let listings show sizes unloaded.
DATASETS = {
    "digits": ("load_digits", "classification", 1797),
    "breast_cancer": ("load_breast_cancer", "classification", 569),
    "wine": ("load_wine", "classification", 178),
    "diabetes": ("load_diabetes", "regression", 442),
}


def load_sklearn(name: str, seed: int = 0, val_fraction: float = 0.2, test_fraction: float = 0.2) -> Task:
    """One of :data:`DATASETS`, split 60/20/20 (by default) with ``seed``, stratified for classification."""
    import sklearn.datasets

    loader, problem, _ = DATASETS[name]
    data: Any = getattr(sklearn.datasets, loader)()
    info = {"source": f"sklearn.datasets.{loader}", "features": [str(f) for f in data.feature_names]}
    return task_from_arrays(data.data, data.target, name=name, problem=problem, val_fraction=val_fraction,
                            test_fraction=test_fraction, seed=seed, info=info)


def digits(seed: int = 0, val_fraction: float = 0.2, test_fraction: float = 0.2) -> Task:
    """Handwritten digits: 1,797 8x8 images as 64 pixel features, 10 classes."""
    return load_sklearn("digits", seed, val_fraction, test_fraction)


def breast_cancer(seed: int = 0, val_fraction: float = 0.2, test_fraction: float = 0.2) -> Task:
    """Wisconsin breast cancer: 569 tumours, 30 features, malignant or benign."""
    return load_sklearn("breast_cancer", seed, val_fraction, test_fraction)


def wine(seed: int = 0, val_fraction: float = 0.2, test_fraction: float = 0.2) -> Task:
    """Wine recognition: 178 wines, 13 chemical features, 3 cultivars."""
    return load_sklearn("wine", seed, val_fraction, test_fraction)


def diabetes(seed: int = 0, val_fraction: float = 0.2, test_fraction: float = 0.2) -> Task:
    """Diabetes progression after one year: 442 patients, 10 features, a real-valued target (RMSE)."""
    return load_sklearn("diabetes", seed, val_fraction, test_fraction)
