"""Synthetic token tasks that separate token mixers from per-token computation.

Both are classification over token ids (``input_kind="tokens"``). A network without a token mixer
(per-token MLP blocks, then mean pooling and one normalization) combines the tokens almost additively
and solves neither task; attention can. That makes them a probe of whether a search finds the mixer.
"""

from __future__ import annotations

import numpy as np

from archsearch.tasks._base import Task, TaskError
from archsearch.tasks.arrays import split_sizes, task_from_arrays


def modular_addition(seed: int = 0, p: int = 97, train_fraction: float = 0.3, equals_token: bool = True) -> Task:
    """(a + b) mod p from the tokens ``a b =``: the grokking setting (Power et al. 2022).

    Every pair (a, b) with 0 <= a, b < p occurs once. A seeded ``train_fraction`` of the pairs is the
    training split; the rest is halved into validation and test, so validation accuracy measures
    generalization to unseen pairs (the quantity that "groks" late in training).

    Args:
        seed: seeds the split (the data itself is the full addition table).
        p: the modulus; prime in the grokking papers. Token ids 0..p-1 are the numbers.
        train_fraction: share of the p^2 pairs used for training.
        equals_token: append an ``=`` token (id p) as the grokking papers do, giving length 3.
    """
    p = int(p)
    if p < 2:
        raise TaskError(f"p={p} must be at least 2")
    if not 0 < train_fraction < 1:
        raise TaskError(f"train_fraction={train_fraction} must be in (0, 1)")
    a, b = (grid.ravel() for grid in np.meshgrid(np.arange(p), np.arange(p), indexing="ij"))
    columns = [a, b, np.full_like(a, p)] if equals_token else [a, b]
    held_out = (1 - train_fraction) / 2
    return task_from_arrays(
        np.stack(columns, axis=1), (a + b) % p, name="modular_addition", input_kind="tokens",
        val_fraction=held_out, test_fraction=held_out, seed=seed, stratify=False, n_classes=p,
        vocab_size=p + 1 if equals_token else p,
        info={"formula": "(a + b) mod p", "p": p, "train_fraction": train_fraction, "chance_accuracy": 1 / p},
    )


def modular_addition_sizes(p: int = 97, train_fraction: float = 0.3) -> tuple[int, int, int]:
    held_out = (1 - train_fraction) / 2
    return split_sizes(p * p, held_out, held_out)


def associative_recall(seed: int = 0, n_samples: int = 4000, n_pairs: int = 8, vocab_size: int = 32,
                       val_fraction: float = 0.2, test_fraction: float = 0.2) -> Task:
    """Key-value pairs then a query key; the target is the value that followed that key.

    A sequence is ``k1 v1 k2 v2 ... kn vn q`` (length ``2 * n_pairs + 1``) with ``q`` one of the
    keys. Keys are the ids below ``vocab_size // 2`` (distinct within a sequence), values the ids
    above; the class is the value's id minus ``vocab_size // 2``. Chance is ``1 / n_values``; a model
    that only sees which values occur guesses among them and does better than chance, but recalling
    the pair needs a token mixer that matches the query to its key (the associative-recall probe of
    H3 and Zoology).

    Args:
        seed: seeds the sequences and the split.
        n_samples: sequences generated.
        n_pairs: key-value pairs per sequence.
        vocab_size: token ids in all, split evenly into keys and values.
    """
    n_keys = int(vocab_size) // 2
    n_values = int(vocab_size) - n_keys
    if n_pairs < 1 or n_pairs > n_keys:
        raise TaskError(f"n_pairs={n_pairs} must be between 1 and vocab_size // 2 = {n_keys} (keys are distinct)")
    rng = np.random.default_rng(seed)
    keys = np.argsort(rng.random((n_samples, n_keys)), axis=1)[:, :n_pairs]
    values = rng.integers(n_keys, n_keys + n_values, (n_samples, n_pairs))
    query = rng.integers(0, n_pairs, n_samples)
    rows = np.arange(n_samples)
    x = np.concatenate([np.stack([keys, values], axis=2).reshape(n_samples, 2 * n_pairs),
                        keys[rows, query][:, None]], axis=1)
    return task_from_arrays(
        x, values[rows, query] - n_keys, name="associative_recall", input_kind="tokens",
        val_fraction=val_fraction, test_fraction=test_fraction, seed=seed, stratify=False,
        n_classes=n_values, vocab_size=int(vocab_size),
        info={"n_pairs": n_pairs, "seq_len": 2 * n_pairs + 1, "chance_accuracy": 1 / n_values},
    )
