"""Searching the training recipe with the architecture, against one fixed default recipe, at equal budget.

Both arms search ``space=mlp`` with the same strategy, budget and seeds; the recipe arm adds a ``recipe:``
section (optimizer, learning rate per optimizer, batch size, weight decay, schedule), the fixed arm trains
every candidate with the default recipe (Adam, lr 3e-3, batch 64, constant, 10 epochs). Reported per
task: the hypervolume of the run's front (val accuracy, parameters, latency; fixed bounds, so runs are
comparable), the best validation accuracy and the test accuracy of that trial, median over seeds.

    python benchmarks/recipe_search.py [--seeds 3] [--budget 16] [--strategy evolution] [--tasks digits,mnist1d]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import archsearch

RECIPE = ("+space.recipe={optimizer: [adam, adamw, sgd], lr: {low: 0.0003, high: 0.03, log: true}, "
          "sgd: {lr: {low: 0.003, high: 0.3, log: true}}, batch_size: [32, 64, 128], "
          "weight_decay: [0.0, 0.0001, 0.001], schedule: [constant, cosine]}")


def one_run(task: str, seed: int, budget: int, strategy: str, recipe: bool) -> dict:
    overrides = ["space.width=[32,64,128]", "space.depth.high=3", *([RECIPE] if recipe else [])]
    with tempfile.TemporaryDirectory() as tmp:
        start, cpu = time.perf_counter(), time.process_time()
        run = archsearch.search(space="mlp", task=task, strategy=strategy, budget=budget, seed=seed,
                                executor="inline", run_dir=Path(tmp) / "run", overrides=overrides)
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu
        trials = run.trials.to_pandas()
        summary = run.summary()
    done = trials[trials.status == "complete"].sort_values("val_accuracy", ascending=False)
    best = done.iloc[0]
    return {"hv": summary["hypervolume"], "val": float(best.val_accuracy), "test": float(best.test_accuracy),
            "wall": wall, "cpu": cpu, "recipe": best.recipe_json}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--budget", type=int, default=16)
    parser.add_argument("--strategy", default="evolution")
    parser.add_argument("--tasks", default="digits,mnist1d")
    args = parser.parse_args()
    print(f"space=mlp strategy={args.strategy} budget={args.budget} seeds={args.seeds}, executor inline")
    print("| task | arm | hypervolume (median; per seed) | best val acc (median) | its test acc (median) "
          "| CPU s per run |")
    print("| --- | --- | --- | --- | --- | --- |")
    for task in args.tasks.split(","):
        for recipe in (False, True):
            rows = [one_run(task, seed, args.budget, args.strategy, recipe) for seed in range(args.seeds)]
            def med(key: str, rows: list[dict] = rows) -> float:
                return statistics.median(r[key] for r in rows)

            arm = "recipe genes" if recipe else "fixed default recipe"
            print(f"| {task} | {arm} | {med('hv'):.4f} ({', '.join(format(r['hv'], '.4f') for r in rows)}) "
                  f"| {med('val'):.4f} | {med('test'):.4f} | {med('cpu'):.0f} |", flush=True)
            if recipe:
                for r in rows:
                    print(f"|   | best recipe (seed) | {r['recipe']} | | | |")


if __name__ == "__main__":
    main()
