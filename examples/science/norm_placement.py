"""Question 4: where should the norm go as networks get deeper?

Post-LN trains badly when deep, Pre-LN is the default, Peri-LN (norm before and after each block) and
Mix-LN (post-norm in the first quarter, pre-norm after) claim to beat it. Here the placement is one gene
per network (``placement_scope: network``), searched with the blocks' kinds (attention with a relative
position bias, MLP) and sizes at depths 2, 4 and 8
on MNIST-1D and on associative recall (a token task). For each depth the summary gives the placement of
the most accurate trial and every placement's best and mean validation accuracy.

    python examples/science/norm_placement.py              # the full comparison (docs/science.md)
    python examples/science/norm_placement.py --tiny       # a few trials (tests)

Writes every run, ``placements.png`` and ``summary.json`` into ``--out``.
"""

from __future__ import annotations

import statistics
from pathlib import Path

import common

from archsearch.spaces import BlockGraphSpace

PLACEMENTS = ["pre", "post", "peri", "mix"]
DEPTHS = [2, 4, 8]
TASKS = ["mnist1d", "associative_recall"]
OBJECTIVES = {"val_accuracy": "maximize", "n_params": "minimize"}


def space(depth: int) -> BlockGraphSpace:
    return BlockGraphSpace(name=f"depth{depth}", blocks=["attention", "mlp"], depth={"low": depth, "high": depth},
                           width=[32], wiring=["residual"], norm=["layernorm"], norm_placement=PLACEMENTS,
                           placement_scope="network", activation=["gelu", "relu"],
                           block_params={"attention": {"heads": [2, 4], "position": ["relative"]},
                                         "mlp": {"expansion": [2, 4]}})


def search(task: str, depth: int, seed: int, budget: str, epochs: int, out: str, reuse: bool) -> list[dict]:
    """One search at one depth; every complete trial's placement and scores."""
    run = common.search(out, reuse, space=space(depth), task=task, strategy="model", seed=seed, budget=budget,
                        executor="inline", objectives=OBJECTIVES, quiet=True, progress=False,
                        overrides=[f"training.epochs={epochs}", "training.schedule=cosine"])
    return [{"placement": r["gene.norm_placement"], "val_accuracy": r["val_accuracy"],
             "test_accuracy": r["test_accuracy"], "n_params": r["n_params"]}
            for r in run.trials.to_pylist() if r["status"] == "complete"]


def main() -> None:
    args = common.arguments(__doc__.splitlines()[0], budget="8", seeds=2)
    tasks, depths, epochs = TASKS, DEPTHS, 8
    if args.tiny:
        tasks, depths, epochs = ["associative_recall"], [2], 1
    items = [{"task": task, "depth": depth, "seed": seed, "budget": args.budget, "epochs": epochs,
              "reuse": args.reuse, "out": str(args.out / f"{task}-depth{depth}-seed{seed}")}
             for task in tasks for depth in reversed(depths) for seed in range(args.seeds)]
    record: dict = {"tasks": tasks, "depths": depths, "placements": PLACEMENTS, "epochs": epochs,
                    "objectives": OBJECTIVES}
    with common.measured(record):
        results = common.sweep(search, items, args.jobs)
    by_key = {(i["task"], i["depth"], i["seed"]): r for i, r in zip(items, results, strict=True)}
    record["results"] = {task: {depth: summarize([by_key[task, depth, s] for s in range(args.seeds)])
                            for depth in depths} for task in tasks}
    draw(args.out / "placements.png", record["results"], tasks, depths)
    common.write_summary(args, record)


def summarize(searches: list[list[dict]]) -> dict:
    """The winning placement of each seed's search, and each placement's scores over all seeds' trials."""
    winners = [max(trials, key=lambda t: t["val_accuracy"])["placement"] if trials else None for trials in searches]
    pooled = [t for trials in searches for t in trials]
    per = {}
    for placement in PLACEMENTS:
        val = [t["val_accuracy"] for t in pooled if t["placement"] == placement]
        test = [t["test_accuracy"] for t in pooled if t["placement"] == placement]
        per[placement] = {"trials": len(val), "best_val": max(val, default=None),
                          "mean_val": statistics.fmean(val) if val else None,
                          "mean_test": statistics.fmean(test) if test else None}
    return {"winners": winners, "placements": per}


def draw(path: Path, results: dict, tasks: list[str], depths: list[int]) -> None:
    def series(task: str, placement: str) -> dict:
        points = [(d, results[task][d]["placements"][placement]["best_val"]) for d in depths]
        points = [(d, v) for d, v in points if v is not None]
        return {"label": placement, "x": [d for d, _ in points], "y": [v for _, v in points]}

    panels = [{"title": task, "xlabel": "depth (residual stages)", "ylabel": "best validation accuracy",
               "series": [series(task, placement) for placement in PLACEMENTS]} for task in tasks]
    common.figure(path, "Best validation accuracy per norm placement and depth", panels, columns=len(panels))

if __name__ == "__main__":
    main()
