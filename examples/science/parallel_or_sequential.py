"""Question 3: parallel or sequential stages?

PaLM-style parallel layers (attention beside the MLP, ``x + attn(x) + mlp(x)``), Branchformer and "Make
deep networks shallow again" say parallel branches match sequential stacks in accuracy and beat them in
latency. Here two spaces with the same blocks (attention with a relative position bias, and MLP), widths
and recipe differ only in wiring: 2-6 residual stages of one block, or 1-3 parallel stages of two blocks
merged by a sum. Both are searched on MNIST-1D at equal budgets and seeds; trials of the two arms within
20% of each other's parameter count are compared in test accuracy and in latency (batch 1, one thread).

    python examples/science/parallel_or_sequential.py          # the full comparison (docs/science.md)
    python examples/science/parallel_or_sequential.py --tiny   # a few trials (tests)

Writes every run, ``fronts.png`` and ``summary.json`` into ``--out``.
"""

from __future__ import annotations

import statistics
from pathlib import Path

import common

from archsearch.spaces import BlockGraphSpace

COMMON = dict(blocks=["attention", "mlp"], width=[32, 48], norm=["layernorm"], norm_placement=["pre"],
              activation=["gelu"], block_params={"attention": {"heads": [2, 4], "position": ["relative"]},
                                              "mlp": {"expansion": [1, 2, 4]}})
ARMS = {
    "sequential": dict(name="sequential", wiring=["residual"], depth={"low": 2, "high": 6}, **COMMON),
    "parallel": dict(name="parallel", wiring=["parallel"], merge=["sum"], depth={"low": 1, "high": 3}, **COMMON),
}
OBJECTIVES = {"val_accuracy": "maximize", "n_params": "minimize", "latency_ms": "minimize"}
MATCH = 0.2  # trials within 20% of each other's parameter count count as equal-sized


def search(arm: str, seed: int, budget: str, epochs: int, out: str, reuse: bool) -> list[dict]:
    """One search; every complete trial's size, accuracy and latency."""
    run = common.search(out, reuse, space=BlockGraphSpace(**ARMS[arm]), task="mnist1d", strategy="model", seed=seed,
                        budget=budget, executor="inline", objectives=OBJECTIVES, quiet=True,
                        progress=False, overrides=[f"training.epochs={epochs}", "training.schedule=cosine"])
    keep = ("trial_id", "n_params", "val_accuracy", "test_accuracy", "latency_ms", "flops")
    return [{k: r[k] for k in keep} for r in run.trials.to_pylist() if r["status"] == "complete"]


def main() -> None:
    args = common.arguments(__doc__.splitlines()[0], budget="10", seeds=2)
    epochs = 2 if args.tiny else 12
    items = [{"arm": arm, "seed": seed, "budget": args.budget, "epochs": epochs,
              "reuse": args.reuse, "out": str(args.out / f"{arm}-seed{seed}")}
             for seed in range(args.seeds) for arm in ARMS]
    record: dict = {"arms": ARMS, "epochs": epochs, "objectives": OBJECTIVES, "match": MATCH}
    with common.measured(record):
        results = common.sweep(search, items, args.jobs)
    trials = {arm: [t for i, r in zip(items, results, strict=True) if i["arm"] == arm for t in r] for arm in ARMS}
    record["best_test_accuracy"] = {arm: common.spread([max((t["test_accuracy"] for t in r), default=None)
                                                    for i, r in zip(items, results, strict=True) if i["arm"] == arm])
                                for arm in ARMS}
    record["matched"] = matched(trials["parallel"], trials["sequential"])
    record["trials"] = trials
    draw(args.out / "fronts.png", trials)
    common.write_summary(args, record)


def matched(parallel: list[dict], sequential: list[dict]) -> dict:
    """Pairs of trials of about equal size: parallel minus sequential accuracy, parallel / sequential latency."""
    accuracy, latency = [], []
    for p in parallel:
        for s in sequential:
            if abs(p["n_params"] - s["n_params"]) <= MATCH * max(p["n_params"], s["n_params"]):
                accuracy.append(p["test_accuracy"] - s["test_accuracy"])
                latency.append(p["latency_ms"] / s["latency_ms"])
    if not accuracy:
        return {"pairs": 0}
    return {"pairs": len(accuracy), "accuracy_difference_median": statistics.median(accuracy),
            "accuracy_difference_mean": statistics.fmean(accuracy),
            "latency_ratio_median": statistics.median(latency),
            "parallel_faster_share": sum(r < 1 for r in latency) / len(latency)}


def draw(path: Path, trials: dict[str, list[dict]]) -> None:
    colors = {"sequential": "tab:purple", "parallel": "tab:red"}

    def points(arm: str, y: str) -> dict:
        rows = sorted(trials[arm], key=lambda t: t["n_params"])
        return {"label": arm, "x": [t["n_params"] for t in rows], "y": [t[y] for t in rows], "style": "o",
                "color": colors[arm]}

    common.figure(path, "Parallel (red) against sequential (purple) stages, every trial", [
        {"title": "accuracy", "xlabel": "parameters", "ylabel": "test accuracy", "logx": True,
         "series": [points(arm, "test_accuracy") for arm in ARMS]},
        {"title": "latency", "xlabel": "parameters", "ylabel": "latency, batch 1 (ms)", "logx": True,
         "series": [points(arm, "latency_ms") for arm in ARMS]},
    ], columns=2)


if __name__ == "__main__":
    main()
