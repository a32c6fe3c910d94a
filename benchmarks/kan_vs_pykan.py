"""KANs fitting functions: pykan against archsearch's layer and archsearch's search, on the same data.

For each function (the KAN paper's toys and some Feynman equations) and seed, on archsearch's task
(inputs standardized, target standardized for training, RMSE reported in the target's units, the same
train/test split for everyone):

- ``pykan``: ``KAN(width=shape, grid=5, k=3)`` fitted with pykan's own loop (``fit``: L-BFGS, 50 steps,
  grid updates from samples), ``symbolic_enabled=False`` (its fastest setting; the symbolic branch is
  off at initialization anyway);
- ``layer``: archsearch's ``kan_bspline`` layers in the same shape (``form: layers``, grid [-2, 2]),
  the same 50 L-BFGS steps (``training.optimizer=lbfgs``), no early stopping: the per-fit comparison;
- ``search``: ``archsearch.search(space="kan", task=..., constraints.max_params=P)`` with P = pykan's
  parameter count, the task's default recipe, ``--budget`` trials; the best trial by validation RMSE,
  and the CPU time of the whole search (every candidate, rejected ones included);
- ``mlp``: the same search over ``space=mlp`` at widths small enough to fit under P: the "is a KAN
  needed here" answer.

CPU seconds are this process's CPU time (``time.process_time``, one torch thread), so other processes
on a shared machine do not inflate them.

    python benchmarks/kan_vs_pykan.py [--seeds 3] [--search-seeds 1] [--budget 12] [--only exp_sin,...]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch

import archsearch
from archsearch.evaluation.recipe import TrainingRecipe
from archsearch.evaluation.training import TrainingEvaluator
from archsearch.genome import BlockSpec, Genome
from archsearch.tasks import load_task

# name -> (task, task option, pykan shape). Toy shapes are the KAN paper's (Figure 3.1: [1,1], [2,5,1],
# [2,2,1], [100,1,1]); the Feynman equations get [n_in, 5, 1].
PROBLEMS: dict[str, tuple[str, dict, list[int]]] = {
    "exp_sin": ("kan_toy", {"function": "exp_sin"}, [2, 5, 1]),
    "bessel": ("kan_toy", {"function": "bessel"}, [1, 1]),
    "xy": ("kan_toy", {"function": "xy"}, [2, 2, 1]),
    "high_dim": ("kan_toy", {"function": "high_dim"}, [100, 1, 1]),
    "I.6.2": ("feynman", {"equation": "I.6.2"}, [2, 5, 1]),
    "I.12.11": ("feynman", {"equation": "I.12.11"}, [5, 5, 1]),
    "I.13.12": ("feynman", {"equation": "I.13.12"}, [5, 5, 1]),
    "I.29.16": ("feynman", {"equation": "I.29.16"}, [4, 5, 1]),
    "III.17.37": ("feynman", {"equation": "III.17.37"}, [3, 5, 1]),
}
STEPS = 50


def tensors(task):
    def t(a):
        return torch.tensor(np.asarray(a), dtype=torch.float32)

    scale = lambda y: t((y - task.y_mean) / task.y_std)[:, None]  # noqa: E731
    return {"train_input": t(task.x_train), "train_label": scale(task.y_train),
            "test_input": t(task.x_test), "test_label": scale(task.y_test)}


def fit_pykan(task, shape: list[int], seed: int) -> dict:
    from kan import KAN

    data = tensors(task)
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()), \
            warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = KAN(width=list(shape), grid=5, k=3, seed=seed, auto_save=False, symbolic_enabled=False)
        start = time.process_time()
        model.fit(data, opt="LBFGS", steps=STEPS, log=STEPS + 1)
        cpu = time.process_time() - start
    with torch.no_grad():
        rmse = torch.sqrt((model(data["test_input"]) - data["test_label"]).square().mean()).item() * task.y_std
    params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"rmse": rmse, "params": params, "cpu": cpu}


def fit_layer(task, shape: list[int], seed: int) -> dict:
    spec = BlockSpec("kan_bspline", {"grid_size": 5, "spline_order": 3, "grid_range": 2.0}, "silu", "none", "none")
    genome = Genome.sequential([spec] * (len(shape) - 1), {"form": "layers", "widths": shape[1:-1]})
    evaluator = TrainingEvaluator(task, TrainingRecipe(optimizer="lbfgs", lr=1.0, epochs=STEPS), seed=seed)
    start = time.process_time()
    result = evaluator.evaluate(genome)
    cpu = time.process_time() - start  # includes the cheap metrics (FLOPs, latency), which pykan does not pay
    return {"rmse": result.metrics.get("test_rmse", float("nan")), "params": result.metrics.get("n_params"),
            "cpu": cpu, "fit_cpu": result.metrics.get("train_time_s"), "error": result.error}


def run_search(space: str, task_name: str, options: dict, max_params: int, budget: int, seed: int,
               extra: list[str]) -> dict:
    overrides = [f"constraints.max_params={max_params}", *[f"task.{k}={v}" for k, v in options.items()], *extra]
    with tempfile.TemporaryDirectory() as tmp:
        start = time.process_time()
        run = archsearch.search(space=space, task=task_name, budget=budget, seed=seed, executor="inline",
                                run_dir=Path(tmp) / "run", overrides=overrides)
        cpu = time.process_time() - start
        trials = run.trials.to_pandas()
    done = trials[trials.status == "complete"].sort_values("val_rmse")
    if done.empty:
        return {"rmse": float("nan"), "params": None, "cpu": cpu, "n": 0, "what": "nothing under the budget"}
    best = done.iloc[0]
    from archsearch.console import describe_architecture

    return {"rmse": float(best.test_rmse), "params": int(best.n_params), "cpu": cpu,
            "n": int(len(trials)), "what": describe_architecture(best.genome_json)}


def fmt(rows: list[dict]) -> str:
    return ", ".join(format(r["rmse"], ".2g") for r in rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=3, help="seeds of the pykan and layer fits")
    parser.add_argument("--search-seeds", type=int, default=1, help="seeds of each search")
    parser.add_argument("--budget", type=int, default=12, help="trials per search")
    parser.add_argument("--only", default="", help="comma-separated problem names")
    args = parser.parse_args()
    torch.set_num_threads(1)
    os.chdir(tempfile.mkdtemp())  # pykan writes a ./model folder even with auto_save off in some versions
    names = [n for n in PROBLEMS if not args.only or n in args.only.split(",")]
    print(f"torch {torch.__version__}, one thread; pykan {STEPS} L-BFGS steps, grid 5, k 3; search budget "
          f"{args.budget}, default recipe of the task")
    header = ("| function | shape | P (pykan params) | pykan RMSE (median, seeds) | pykan CPU s/fit | layer RMSE "
              "(median) | layer params | layer CPU s/fit | pykan/layer CPU | search best RMSE | search CPU s "
              "| search CPU / pykan fit | search best | MLP search RMSE | MLP CPU s |")
    print(header)
    print("|" + " --- |" * header.count("|")[:-1] if False else "|" + " --- |" * (header.count("|") - 1))
    totals = []
    for name in names:
        task_name, options, shape = PROBLEMS[name]
        pyk, lay = [], []
        for seed in range(args.seeds):
            task = load_task(task_name, seed=seed, **options)
            pyk.append(fit_pykan(task, shape, seed))
            lay.append(fit_layer(task, shape, seed))
            if lay[-1]["error"]:
                print(f"layer fit failed: {lay[-1]['error']}")
        budget_p = int(pyk[0]["params"])
        searches, mlps = [], []
        for seed in range(args.search_seeds):
            searches.append(run_search("kan", task_name, options, budget_p, args.budget, seed, []))
            mlps.append(run_search("mlp", task_name, options, budget_p, args.budget, seed,
                                   ["space.width=[2,4,6,8,12,16]", "space.depth.high=2"]))
        med = lambda rows, key: statistics.median(r[key] for r in rows)  # noqa: E731
        py_rmse, py_cpu = med(pyk, "rmse"), med(pyk, "cpu")
        row = {"name": name, "pykan": py_rmse, "layer": med(lay, "rmse"), "search": med(searches, "rmse"),
               "mlp": med(mlps, "rmse"), "speed": py_cpu / med(lay, "cpu"), "search_x": med(searches, "cpu") / py_cpu}
        totals.append(row)
        print(f"| {name} | {shape} | {budget_p} | {py_rmse:.3g} ({fmt(pyk)}) "
              f"| {py_cpu:.2f} | {med(lay, 'rmse'):.3g} ({fmt(lay)}) "
              f"| {int(lay[0]['params'])} | {med(lay, 'cpu'):.2f} | {row['speed']:.2f}x "
              f"| {row['search']:.3g} | {med(searches, 'cpu'):.1f} | {row['search_x']:.1f}x "
              f"| {searches[0]['what']} ({searches[0]['params']} params) | {row['mlp']:.3g} "
              f"| {med(mlps, 'cpu'):.1f} |", flush=True)
    met = sum(r["search"] <= r["pykan"] for r in totals)
    fast = sum(r["speed"] >= 2 for r in totals)
    mlp_wins = sum(r["mlp"] <= r["search"] for r in totals)
    print(f"\nsearch reaches pykan's median RMSE on {met}/{len(totals)}; layer >= 2x faster per fit on "
          f"{fast}/{len(totals)} (median speed-up {statistics.median(r['speed'] for r in totals):.2f}x); "
          f"search CPU / one pykan fit: median {statistics.median(r['search_x'] for r in totals):.1f}x; "
          f"MLP search as good as the KAN search on {mlp_wins}/{len(totals)}")


if __name__ == "__main__":
    main()
