"""Question 2: do searched activations beat ReLU?

"Searching for Activation Functions" (Ramachandran et al. 2017) found Swish by search (+0.9% top-1 on
ImageNet). Here the activation is a gene of every block of ``space=mlp``: each task is searched twice at
equal budgets and seeds, once with every activation archsearch has, once with the space forced to ReLU.
The first tells which activations the front keeps; the difference tells what they gain.

    python examples/science/activations.py                 # the full comparison (docs/science.md)
    python examples/science/activations.py --tiny          # one task, a few trials (tests)

Writes every run, ``fronts.png`` and ``summary.json`` into ``--out``.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import common

TASKS = {"mnist1d": ["task.input_kind=vector"], "breast_cancer": [], "wine": []}
ACTIVATIONS = ["elu", "gelu", "golu", "hardswish", "identity", "leaky_relu", "mish", "pau", "prelu", "relu",
               "relu2", "selu", "sigmoid", "silu", "snake", "softplus", "swish_beta", "tanh", "xsilu"]
ARMS = {"searched": ACTIVATIONS, "relu": ["relu"]}
OBJECTIVES = {"val_accuracy": "maximize", "n_params": "minimize"}


def search(task: str, arm: str, seed: int, budget: str, epochs: int, out: str, reuse: bool) -> dict:
    """One search; its front, hypervolume, best trial and the activations of its front and of all trials."""
    run = common.search(out, reuse, space="mlp", task=task, strategy="model", seed=seed, budget=budget,
                        executor="inline", objectives=OBJECTIVES, quiet=True, progress=False,
                        overrides=[*TASKS[task], f"space.activation=[{','.join(ARMS[arm])}]",
                                   f"training.epochs={epochs}", "training.schedule=cosine"])
    front = run.pareto()
    x, y = common.front_points(front, "n_params", "test_accuracy")
    best = front.to_pylist()[0]  # the front is sorted best first in val_accuracy
    complete = [r for r in run.trials.to_pylist() if r["status"] == "complete"]
    return {"n_params": x, "test_accuracy": y, "hypervolume": run.summary()["hypervolume"],
            "best_val": best["val_accuracy"], "best_test": best["test_accuracy"], "best_params": best["n_params"],
            "front_activations": activations(front.to_pylist()), "all_activations": activations(complete)}


def activations(rows: list[dict]) -> dict[str, int]:
    """How many blocks use each activation among ``rows``' genomes."""
    counts: Counter[str] = Counter()
    for row in rows:
        for node in json.loads(row["genome_json"])["nodes"]:
            if node["spec"]["kind"] != "identity":
                counts[node["spec"]["activation"]] += 1
    return dict(counts)


def main() -> None:
    args = common.arguments(__doc__.splitlines()[0], budget="12", seeds=3)
    tasks, epochs = list(TASKS), 40
    if args.tiny:
        tasks, epochs = ["wine"], 2
    items = [{"task": task, "arm": arm, "seed": seed, "budget": args.budget, "epochs": epochs,
              "reuse": args.reuse, "out": str(args.out / f"{task}-{arm}-seed{seed}")}
             for task in tasks for arm in ARMS for seed in range(args.seeds)]
    record: dict = {"tasks": {t: TASKS[t] for t in tasks}, "arms": ARMS, "epochs": epochs, "objectives": OBJECTIVES}
    with common.measured(record):
        results = common.sweep(search, items, args.jobs)
    by_key = {(i["task"], i["arm"], i["seed"]): r for i, r in zip(items, results, strict=True)}
    record["results"] = {task: summarize(by_key, task, args.seeds) for task in tasks}
    draw(args.out / "fronts.png", by_key, tasks, args.seeds)
    common.write_summary(args, record)


def summarize(by_key: dict, task: str, seeds: int) -> dict:
    """Per arm: hypervolume and the most accurate front member's scores; the searched arm's gain per seed;
    the activations' shares among the searched fronts' blocks against their shares among all its trials."""
    result: dict = {}
    for metric in ("hypervolume", "best_test", "best_val", "best_params"):
        values = {arm: [by_key[task, arm, s][metric] for s in range(seeds)] for arm in ARMS}
        result[metric] = {arm: common.spread(v) for arm, v in values.items()}
        result[metric]["gain"] = common.spread([a - b for a, b in zip(values["searched"], values["relu"], strict=True)])
    front, everywhere = Counter(), Counter()
    for s in range(seeds):
        front.update(by_key[task, "searched", s]["front_activations"])
        everywhere.update(by_key[task, "searched", s]["all_activations"])
    n_front, n_all = sum(front.values()) or 1, sum(everywhere.values()) or 1
    result["front_activations"] = {a: {"front_share": round(front[a] / n_front, 3),
                                   "trial_share": round(everywhere[a] / n_all, 3), "front_blocks": front[a]}
                               for a, _ in front.most_common()}
    return result


def draw(path: Path, by_key: dict, tasks: list[str], seeds: int) -> None:
    colors = {"searched": "tab:green", "relu": "tab:gray"}
    panels = [{"title": task, "xlabel": "parameters", "ylabel": "test accuracy", "logx": True,
               "series": common.arm_fronts(by_key, task, colors, seeds, "test_accuracy")} for task in tasks]
    common.figure(path, "Activation searched (green) against ReLU only (gray): fronts", panels,
                  columns=len(panels))


if __name__ == "__main__":
    main()
