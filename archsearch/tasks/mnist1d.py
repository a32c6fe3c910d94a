"""MNIST-1D (Greydanus & Kobak, "Scaling down deep learning with MNIST-1D", ICML 2024).

Ten 1-D digit templates, padded, translated, scaled, sheared and blurred with correlated and iid
noise into length-40 signals. Small enough to train on a CPU in seconds, yet it separates
architectures the way MNIST no longer does: the paper reports test accuracy of logistic regression
32%, MLP 68%, CNN 94%, GRU 91%. Data is made by the ``mnist1d`` package's own generator (nothing is
downloaded) with its default arguments, so ``data_seed=42`` gives the paper's dataset.
"""

from __future__ import annotations

import functools
import math
import random

import numpy as np

from archsearch.tasks._base import Task, TaskError

REFERENCE_TEST_ACCURACY = {"logistic_regression": 0.32, "mlp": 0.68, "cnn": 0.94, "gru": 0.91}
SEQ_LEN = 40


@functools.lru_cache(maxsize=4)
def generate(data_seed: int = 42, num_samples: int = 5000, shuffle_seq: bool = False,
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The package's (x_train, y_train, x_test, y_test), made once per process for each set of arguments.

    The generator draws from numpy's and Python's global random state; both are restored afterwards so
    loading the task does not disturb anyone else's random stream.
    """
    try:
        from mnist1d.data import get_dataset_args, make_dataset
    except ImportError:
        raise TaskError("task mnist1d needs the mnist1d package: pip install mnist1d") from None
    args = get_dataset_args()
    args.seed, args.num_samples, args.shuffle_seq = data_seed, num_samples, shuffle_seq
    np_state, py_state = np.random.get_state(), random.getstate()
    try:
        data = make_dataset(args)
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)
    arrays = (data["x"].astype(np.float32), data["y"].astype(np.int64),
              data["x_test"].astype(np.float32), data["y_test"].astype(np.int64))
    for array in arrays:
        array.flags.writeable = False  # shared by every task built from this cache entry
    return arrays


def sizes(num_samples: int = 5000, val_fraction: float = 0.2) -> tuple[int, int, int]:
    """(train, val, test) sizes without generating: the package keeps 80% for training."""
    n_train = int(num_samples * 0.8)
    n_val = math.ceil(n_train * val_fraction)  # scikit-learn rounds the held-out part up
    return n_train - n_val, n_val, num_samples - n_train


def mnist1d(seed: int = 0, val_fraction: float = 0.2, data_seed: int = 42, num_samples: int = 5000,
            shuffle_seq: bool = False, input_kind: str = "sequence") -> Task:
    """MNIST-1D as a length-40 one-channel sequence task with 10 classes.

    Args:
        seed: seeds the validation split carved (stratified) out of the 4,000 training signals; the
            package's 1,000 test signals stay the test split.
        val_fraction: share of the training signals held out for validation.
        data_seed: the generator's seed; 42 (the package default) is the paper's dataset.
        num_samples: signals generated in all, 80% train / 20% test as in the package.
        shuffle_seq: permute positions with one fixed permutation (the paper's test of spatial priors).
        input_kind: ``"sequence"`` (one token per position, for mixers) or ``"vector"`` (the 40 values
            as one feature vector: the input the paper's MLP and logistic regression see).
    """
    if input_kind not in ("sequence", "vector"):
        raise TaskError(f"input_kind={input_kind!r} must be sequence or vector")
    x_train, y_train, x_test, y_test = generate(int(data_seed), int(num_samples), bool(shuffle_seq))
    train_idx, val_idx = _carve_validation(y_train, val_fraction, seed)
    return Task(
        name="mnist1d", problem="classification", input_kind=input_kind,
        x_train=x_train[train_idx], y_train=y_train[train_idx], x_val=x_train[val_idx], y_val=y_train[val_idx],
        x_test=x_test.copy(), y_test=y_test.copy(), n_classes=10,
        info={"reference_test_accuracy": REFERENCE_TEST_ACCURACY, "data_seed": data_seed,
              "source": "mnist1d.data.make_dataset", "shuffle_seq": shuffle_seq},
    )


def _carve_validation(y: np.ndarray, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.model_selection import train_test_split

    if not 0 < val_fraction < 1:
        raise TaskError(f"val_fraction={val_fraction} must be in (0, 1)")
    train_idx, val_idx = train_test_split(np.arange(len(y)), test_size=val_fraction, random_state=seed,
                                          stratify=y)
    return train_idx, val_idx
