"""Start points: a search started from the front of an earlier search on a related problem, against the
same search started cold.

The earlier search is the default strategy (``model``) on the source table, ``--source-budget``
evaluations, seed ``1000 + s``; its Pareto front's decisions are the later search's ``start_with``. The
later search (``model``, seed ``s``) runs on the target table, both ways; its start points are evaluated
on the target and count as evaluations. Regret as in ``strategies.py`` (hypervolume regret against the
table's best front, lower is better).

The two MNIST-1D tables hold the same architectures (the same trainings): ``nas_mnist1d`` is judged on
accuracy and parameters, ``nas_mnist1d_3obj`` on latency too. So the pair is the situation the feature is
for: a researcher who searched for accuracy and size and now also cares about latency.

    PYTHONPATH=. OMP_NUM_THREADS=1 python benchmarks/warm_start.py [--seeds 20] [--workers 2]
"""

from __future__ import annotations

import argparse
import time
from multiprocessing import Pool
from typing import Any

import numpy as np

import strategies as bench  # beside this script: the problems and the regret
from archsearch.pareto import non_dominated_mask, to_minimization
from archsearch.strategies import make_strategy

PAIRS = (("nas_mnist1d", "nas_mnist1d_3obj"), ("nas_mnist1d_3obj", "nas_mnist1d"))
READINGS = (10, 25, 50, 100)


def search(problem: bench.Problem, seed: int, n: int, start: list[dict[str, Any]] | None = None
           ) -> tuple[list[list[float]], list[dict[str, Any]]]:
    """``n`` evaluations of ``model`` on ``problem``: the objective rows and the decisions, in order."""
    strategy = make_strategy("model", problem.space, problem.objectives, seed)
    strategy.use_measure(problem.measure)
    if start:
        strategy.start_with(start)
    return bench.ask_and_tell(problem, strategy, n)


def front_decisions(problem: bench.Problem, values: list[list[float]],
                    decisions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    minimized = to_minimization(np.array(values, dtype=float), list(problem.objectives.values()))
    return [decisions[i] for i in np.flatnonzero(non_dominated_mask(minimized))]


def one_seed(job: tuple[str, str, int, int]) -> dict[str, Any]:
    import warnings

    warnings.simplefilter("ignore")
    source_name, target_name, seed, source_budget = job
    source, target = bench.PROBLEMS[source_name](), bench.PROBLEMS[target_name]()
    start = front_decisions(source, *search(source, 1000 + seed, source_budget))
    out: dict[str, Any] = {"pair": f"{source_name} -> {target_name}", "seed": seed, "n_start": len(start)}
    for name, points in (("cold", None), ("warm", start)):
        began = time.process_time()
        values, _ = search(target, seed, max(READINGS), points)
        out[name] = target.regrets(values, READINGS)
        out[f"{name}_cpu_s"] = time.process_time() - began
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--source-budget", type=int, default=50)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    jobs = [(s, t, seed, args.source_budget) for s, t in PAIRS for seed in range(args.seeds)]
    began = time.perf_counter()
    with Pool(args.workers) as pool:
        results = list(pool.imap(one_seed, jobs, chunksize=1))
    print(f"model, {args.seeds} seeds; start points: the front of a {args.source_budget}-evaluation search on "
          "the source table (another seed); mean ± standard deviation of the regret\n")
    print("| source -> target | start points | start | " + " | ".join(f"regret @{k}" for k in READINGS)
          + " | CPU s / run |")
    print("|---|---:|---" + "|---:" * len(READINGS) + "|---:|")
    for pair in dict.fromkeys(r["pair"] for r in results):
        rows = [r for r in results if r["pair"] == pair]
        n_start = np.mean([r["n_start"] for r in rows])
        for name in ("cold", "warm"):
            curve = np.array([r[name] for r in rows])
            cells = [f"{curve[:, i].mean():.4f} ± {curve[:, i].std():.4f}" for i in range(len(READINGS))]
            cpu = np.mean([r[f"{name}_cpu_s"] for r in rows])
            print(f"| {pair} | {n_start:.1f} | {name} | " + " | ".join(cells) + f" | {cpu:.1f} |")
    print(f"\n{len(jobs)} jobs in {time.perf_counter() - began:.0f} s")


if __name__ == "__main__":
    main()
