"""The default strategy in real searches: `model` against `random` on built-in spaces and tasks, trained
for real, at the same seed and budget.

Each pair of runs is measured on one normalization (what `archsearch compare` does), with the runs'
wall-clock and CPU time (driver and training: the inline executor trains in this process, one torch
thread). The tabular benchmarks (`strategies.py`) say how many evaluations each strategy needs; this
says whether that carries over to searches that train, with a noisy latency objective and the
evaluator's own `measure`.

    PYTHONPATH=. OMP_NUM_THREADS=1 python benchmarks/default_strategy.py --spaces mlp kan hybrid --seeds 0 1 --budget 16
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

import archsearch
from archsearch.results.compare import compare_runs

STRATEGIES = ("random", "model")


def one_pair(space: str, seed: int, budget: int, root: Path) -> list[dict[str, float | str]]:
    """Both strategies on one space and seed; hypervolumes on the pair's common normalization."""
    rows: list[dict[str, float | str]] = []
    for strategy in STRATEGIES:
        wall, cpu = time.perf_counter(), time.process_time()
        run = archsearch.search(space=space, strategy=strategy, budget=budget, seed=seed, executor="inline",
                                run_dir=root / f"{space}-{seed}-{strategy}", quiet=True)
        trained = sum(t or 0.0 for t in run.trials.column("train_time_s").to_pylist())
        rows.append({"space": space, "seed": seed, "strategy": strategy, "wall_s": time.perf_counter() - wall,
                     "cpu_s": time.process_time() - cpu, "trained_s": trained})
    comparison = compare_runs([root / f"{space}-{seed}-{s}" for s in STRATEGIES])
    for row, measured in zip(rows, comparison.rows, strict=True):
        row["hypervolume"] = measured["hypervolume"]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spaces", nargs="+", default=["mlp", "kan", "hybrid"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    parser.add_argument("--budget", type=int, default=16)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print("| space | seed | strategy | hypervolume (common) | wall s | CPU s | training s |\n|---|---:|---|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        for space in args.spaces:
            for seed in args.seeds:
                for row in one_pair(space, seed, args.budget, Path(tmp)):
                    print(f"| {row['space']} | {row['seed']} | {row['strategy']} | {row['hypervolume']:.4f} | "
                          f"{row['wall_s']:.1f} | {row['cpu_s']:.1f} | {row['trained_s']:.1f} |", flush=True)


if __name__ == "__main__":
    main()
