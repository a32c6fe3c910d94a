"""Question 1: KAN or MLP? Fronts of test RMSE against parameters on function fitting.

The KAN paper (Liu et al. 2024) says small KANs match much larger MLPs on function fitting; "KAN or MLP:
a fairer comparison" (Yu et al. 2024) says MLPs win at equal parameters except on symbolic formulas.
Here ``space=kan`` and ``space=mlp`` search every ``kan_toy`` function and ten Feynman equations at equal
budgets, with the same recipe (the tasks' full-batch L-BFGS, 50 steps, the best validation step kept) and
the same seeds, among networks of at most 10,000 parameters (the region both papers argue about; larger
candidates are rejected before training and cost no budget).

    python examples/science/kan_or_mlp.py                  # the full comparison (docs/science.md)
    python examples/science/kan_or_mlp.py --tiny           # one function, a few trials (tests)

Writes every run, ``fronts.png`` (one panel per task) and ``summary.json`` into ``--out``.
"""

from __future__ import annotations

import math
from pathlib import Path

import common

FUNCTIONS = ["bessel", "exp_sin", "xy", "high_dim", "four_dim", "exp_bessel", "phase_transition", "distance"]
EQUATIONS = ["I.6.2", "I.9.18", "I.12.11", "I.13.12", "I.18.4", "I.27.6", "I.30.3", "II.6.15a", "II.24.17",
             "III.9.52"]
SPACES = {
    "kan": [],
    # mlp.yaml's widths start at 32; small widths let the MLP front reach the KANs' smallest sizes
    "mlp": ["space.width=[4,8,16,32,64]"],
}
PARAMETER_BUDGETS = (100, 1000, 10000)
MAX_PARAMS = PARAMETER_BUDGETS[-1]
OBJECTIVES = {"val_rmse": "minimize", "n_params": "minimize"}


def fit(space: str, task: str, option: str, value: str, seed: int, budget: str, epochs: int, out: str,
        reuse: bool) -> dict:
    """One search; its front as (parameters, test RMSE) points."""
    run = common.search(out, reuse, space=space, task=task, strategy="model", seed=seed, budget=budget,
                        executor="inline", objectives=OBJECTIVES, quiet=True, progress=False,
                        overrides=[f"task.{option}={value}", f"training.epochs={epochs}",
                                   f"constraints.max_params={MAX_PARAMS}", *SPACES[space]])
    x, y = common.front_points(run.pareto(), "n_params", "test_rmse")
    return {"n_params": x, "test_rmse": y}


def main() -> None:
    args = common.arguments(__doc__.splitlines()[0], budget="6", seeds=2)
    tasks = [("kan_toy", "function", f) for f in FUNCTIONS] + [("feynman", "equation", e) for e in EQUATIONS]
    epochs = 50
    if args.tiny:
        tasks, epochs = tasks[1:2], 3
    items = [{"space": space, "task": task, "option": option, "value": value, "seed": seed, "budget": args.budget,
              "epochs": epochs, "reuse": args.reuse, "out": str(args.out / f"{value}-{space}-seed{seed}")}
             for task, option, value in tasks for space in SPACES for seed in range(args.seeds)]
    record: dict = {"tasks": [v for _, _, v in tasks], "spaces": SPACES, "epochs": epochs, "objectives": OBJECTIVES}
    with common.measured(record):
        fronts = common.sweep(fit, items, args.jobs)
    by_key = {(i["value"], i["space"], i["seed"]): f for i, f in zip(items, fronts, strict=True)}
    record["results"] = {value: compare(by_key, value, args.seeds) for _, _, value in tasks}
    record["verdicts"] = tally(record["results"])
    draw(args.out / "fronts.png", by_key, [v for _, _, v in tasks], args.seeds)
    common.write_summary(args, record)


def compare(by_key: dict, value: str, seeds: int) -> dict:
    """Each space's best test RMSE within each parameter budget (over seeds), and MLP / KAN ratios."""
    result: dict = {}
    for budget in (*PARAMETER_BUDGETS, math.inf):
        name = "any" if budget == math.inf else str(budget)
        best = {space: common.spread([common.best_below(by_key[value, space, s]["n_params"],
                                                    by_key[value, space, s]["test_rmse"], budget, True)
                                  for s in range(seeds)]) for space in SPACES}
        ratios = [m / k for m, k in zip(best["mlp"]["values"], best["kan"]["values"], strict=True)
                  if m is not None and k is not None and k > 0]
        ratio = math.exp(sum(math.log(r) for r in ratios) / len(ratios)) if ratios else None
        result[name] = {"kan": best["kan"], "mlp": best["mlp"], "mlp_over_kan": ratio, "verdict": verdict(ratio)}
    return result


def verdict(ratio: float | None) -> str:
    """Which space's front is better by more than 25% in RMSE (the ratio is the seeds' geometric mean)."""
    if ratio is None:
        return "no point"
    return "KAN" if ratio > 1.25 else "MLP" if ratio < 0.8 else "tie"


def tally(results: dict) -> dict:
    """How many tasks each space wins at each parameter budget."""
    verdicts = ("KAN", "MLP", "tie", "no point")
    return {budget: {v: sum(r[budget]["verdict"] == v for r in results.values()) for v in verdicts}
            for budget in (*map(str, PARAMETER_BUDGETS), "any")}


def draw(path: Path, by_key: dict, values: list[str], seeds: int) -> None:
    colors = {"kan": "tab:blue", "mlp": "tab:orange"}
    panels = [{"title": value, "xlabel": "parameters", "ylabel": "test RMSE", "logx": True, "logy": True,
               "series": common.arm_fronts(by_key, value, colors, seeds, "test_rmse")} for value in values]
    common.figure(path, "KAN (blue) against MLP (orange): fronts of test RMSE against parameters", panels,
                  columns=min(3, len(panels)))


if __name__ == "__main__":
    main()
