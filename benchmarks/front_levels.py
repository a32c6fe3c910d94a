"""Where a strategy loses hypervolume on nas_digits: for each parameter count on the table's front, how
many architectures of that size a run evaluated and how far its best fell short of the size's best.

The regret of the ``nas_digits`` problem is set by the single most accurate architecture of each of its
front's sizes (levels); this shows which levels a runner leaves. ::

    PYTHONPATH=. OMP_NUM_THREADS=1 python benchmarks/front_levels.py model mcts bayes --seeds 20
"""

from __future__ import annotations

import argparse
from multiprocessing import Pool
from typing import Any

import numpy as np

import strategies  # beside this script

BUDGET = 100
VALIDATION_ROWS = 360  # the digits validation split: accuracy moves in steps of 1/360


def run(job: tuple[str, int]) -> tuple[str, list[list[float]], float]:
    runner, seed = job
    problem = strategies.nas_digits()
    values = strategies.run_archsearch(problem, runner, seed, BUDGET)
    return runner, values, 1 - problem.hv(values) / problem.hv(problem.best_front.tolist())


def main() -> None:
    import pandas as pd
    from nas_table import TABLE  # beside this script

    from archsearch.pareto import non_dominated_mask

    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("runners", nargs="+", choices=[*strategies.ARCHSEARCH, *strategies.VARIANTS])
    parser.add_argument("--seeds", type=int, default=20)
    args = parser.parse_args()
    table = pd.read_parquet(TABLE)
    table = table[table.status == "complete"]
    front = table[non_dominated_mask(np.c_[-table.val_accuracy, table.n_params])]
    levels = sorted(set(front.n_params))
    size = {level: int((table.n_params == level).sum()) for level in levels}
    best = {level: table[table.n_params == level].val_accuracy.max() for level in levels}
    with Pool(2) as pool:
        out: list[Any] = pool.map(run, [(r, s) for r in args.runners for s in range(args.seeds)])
    print(f"{BUDGET} evaluations, {args.seeds} seeds; gap in validation rows (1/{VALIDATION_ROWS} of accuracy)\n")
    print("| runner | regret | level (architectures) | evaluated | missed in seeds | gap when found | level best found |")
    print("|---|---|---|---|---|---|---|")
    for runner in args.runners:
        runs = [(values, regret) for name, values, regret in out if name == runner]
        for i, level in enumerate(levels):
            found = [[v[0] for v in values if v[1] == level] for values, _ in runs]
            gaps = np.array([best[level] - max(f) if f else np.nan for f in found])
            regret = f"{np.mean([r for _, r in runs]):.4f}" if i == 0 else ""
            print(f"| {runner if i == 0 else ''} | {regret} | {int(level)} ({size[level]}) | "
                  f"{np.mean([len(f) for f in found]):.1f} | {int(np.isnan(gaps).sum())} | "
                  f"{np.nanmean(gaps) * VALIDATION_ROWS:.1f} | {int((gaps == 0).sum())} of {len(runs)} |")


if __name__ == "__main__":
    main()
