"""MNIST-1D baseline: the accuracy a plain MLP reaches with archsearch's own training recipe.

    PYTHONPATH=. OMP_NUM_THREADS=1 python benchmarks/mnist1d_baseline.py --seeds 5

The paper (Greydanus & Kobak, ICML 2024) reports 68% test accuracy for its MLP (two hidden ReLU layers
of 100 units on the 40 raw values). Here the same shape is written as a genome: the 40 values as one
vector (``input_kind=vector``), a width-100 stem, two non-residual ``mlp`` blocks (expansion 1, ReLU,
no normalization), the default final LayerNorm and the linear head, trained by the project's
evaluator with its default recipe (Adam, lr 3e-3, batch 64, constant schedule) at several epoch counts. Each seed changes the
train/validation split and the initialization; the 1,000 test signals are the paper's. A residual,
layer-normalized variant of the same size shows how much the genome's two most common options add.
"""

from __future__ import annotations

import argparse
import statistics
import time

from archsearch.evaluation.training import TrainingEvaluator, TrainingRecipe
from archsearch.genome import BlockSpec, Genome
from archsearch.tasks import load_task
from archsearch.tasks.mnist1d import REFERENCE_TEST_ACCURACY

WIDTH = 100


def plain_mlp(residual: bool = False) -> Genome:
    """The paper's MLP shape; with ``residual`` each block is ``x + mlp(layernorm(x))``."""
    norm, placement = ("layernorm", "pre") if residual else ("none", "none")
    block = BlockSpec("mlp", {"expansion": 1}, "relu", norm=norm, norm_placement=placement, residual=residual)
    return Genome.sequential([block, block], {"width": WIDTH})


def spread(values: list[float]) -> float:
    return statistics.stdev(values) if len(values) > 1 else 0.0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--epochs", type=float, nargs="+", default=[10, 30, 100])
    args = parser.parse_args()
    variants = {"plain MLP": plain_mlp(False), "residual pre-LN MLP": plain_mlp(True)}
    print(f"paper, test accuracy: MLP {REFERENCE_TEST_ACCURACY['mlp']:.0%}, "
          f"logistic regression {REFERENCE_TEST_ACCURACY['logistic_regression']:.0%}, "
          f"CNN {REFERENCE_TEST_ACCURACY['cnn']:.0%}, GRU {REFERENCE_TEST_ACCURACY['gru']:.0%}")
    print("| model | params | epochs | val accuracy | test accuracy | train s |")
    print("|---|---:|---:|---:|---:|---:|")
    for label, genome in variants.items():
        for epochs in args.epochs:
            val, test, seconds, params = [], [], [], 0
            for seed in range(args.seeds):
                task = load_task("mnist1d", seed=seed, input_kind="vector")
                evaluator = TrainingEvaluator(task, TrainingRecipe(epochs=epochs), seed=seed)
                start = time.perf_counter()
                result = evaluator.evaluate(genome)
                seconds.append(time.perf_counter() - start)
                if result.status != "complete":
                    raise SystemExit(f"{label}, seed {seed}: {result.error}")
                val.append(result.metrics["val_accuracy"])
                test.append(result.metrics["test_accuracy"])
                params = int(result.metrics["n_params"])
            print(f"| {label} | {params:,} | {epochs:g} | {statistics.mean(val):.3f} ± {spread(val):.3f} "
                  f"| {statistics.mean(test):.3f} ± {spread(test):.3f} | {statistics.median(seconds):.1f} |")


if __name__ == "__main__":
    main()
