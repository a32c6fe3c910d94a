"""Multi-fidelity benchmark: hypervolume of the max-fidelity front against training epochs spent.

At one budget of training epochs per run, compares on each task

- ``full``: every candidate trained to ``max_epochs`` (today's one-shot search);
- ``asha``: archsearch's multi-objective asynchronous successive halving (``fidelity=asha``);
- ``moasha``: Syne Tune's MOASHA scheduler (syne-tune 0.16) with its own random sampling of the
  same space, our evaluator behind it, trials continued from our checkpoints rung to rung;

with random search and evolution as strategies (MOASHA samples at random: it has no strategy of its
own over an architecture space). Every run trains with the same recipe and seed scheme, so a
candidate gets the same weights whichever method trains it. Hypervolume is taken over the complete
(max-fidelity) trials with the run-independent bounds of ``pareto.json`` (accuracy 0..1, parameters
1e2..1e8 on a log scale), after every trial's end, against the cumulative epochs spent.

Goals (issue 12): the hypervolume ``full`` reaches at budget B is reached by ``asha`` with at most B/3
epochs, and ``asha`` is ahead of MOASHA at equal epochs.

    flock /tmp/archsearch-heavy.lock python benchmarks/fidelity.py --seeds 5
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("OMP_NUM_THREADS", "1")

OBJECTIVES = {"val_accuracy": "maximize", "n_params": "minimize"}
SPACE = ["space=mlp", "space.depth.high=3", "space.width=[32,64,128]"]
CHEAP_LATENCY = ["latency.warmup=1", "latency.repeats=3", "latency.large_batch=null"]
TASKS = {"digits": ["task=digits"], "mnist1d": ["task=mnist1d", "task.input_kind=vector"]}


def hypervolume(points: list[list[float]]) -> float:
    from archsearch.pareto import front_hypervolume
    from archsearch.results.tables import run_normalization

    if not points:
        return 0.0
    values = np.array(points, dtype=float)
    summary = front_hypervolume(values, list(OBJECTIVES.values()), list(OBJECTIVES),
                                run_normalization(values, OBJECTIVES))
    return float(summary["hypervolume"])


def curve_from_journal(run_dir: Path) -> list[tuple[float, float]]:
    """(epochs spent, hypervolume of the complete trials so far) after every segment, in journal order."""
    spent, points, curve = 0.0, [], []
    for line in (run_dir / "journal.jsonl").read_text().splitlines():
        record = json.loads(line)
        if record["event"] not in ("trial_reported", "trial_finished"):
            continue
        result = record["result"]
        spent += float(result["info"].get("segment_epochs") or 0.0)
        if record["event"] == "trial_finished" and result["status"] == "complete":
            points.append([result["metrics"][m] for m in OBJECTIVES])
        curve.append((spent, hypervolume(points)))
    return curve


def run_archsearch(task: str, strategy: str, fidelity: str, seed: int, budget: float, args: Any) -> dict[str, Any]:
    import archsearch

    overrides = [*SPACE, *TASKS[task], *CHEAP_LATENCY, f"training.epochs={args.max_epochs}"]
    if fidelity == "asha":
        overrides += ["fidelity=asha", f"fidelity.min_epochs={args.min_epochs}",
                      f"fidelity.max_epochs={args.max_epochs}", f"fidelity.eta={args.eta}"]
    if strategy == "evolution":
        overrides += ["strategy.population_size=8", "strategy.sample_size=3"]
    if strategy == "model-nopruned":  # the ablation: model learning from complete trials only
        strategy, overrides = "model", [*overrides, "strategy.use_pruned=false"]
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp) / "run"
        archsearch.search(space="mlp", task=task, strategy=strategy, budget=f"{budget:g} epochs", seed=seed,
                          executor="inline", run_dir=run_dir, objectives=OBJECTIVES, overrides=overrides)
        curve = curve_from_journal(run_dir)
        statuses = [t["result"]["status"] for t in archsearch.load_run(run_dir).store.trials() if t["result"]]
    return {"curve": curve, "trials": len(statuses), "complete": statuses.count("complete")}


def run_moasha(task: str, seed: int, budget: float, args: Any) -> dict[str, Any]:
    """Syne Tune's MOASHA drives; each of its trials is one of our candidates, sampled at random from the
    space by the integer MOASHA samples, trained rung to rung from our checkpoints."""
    from syne_tune.backend.trial_status import Trial
    from syne_tune.config_space import randint
    from syne_tune.optimizer.scheduler import SchedulerDecision
    from syne_tune.optimizer.schedulers.multiobjective.moasha import MOASHA

    from archsearch import config
    from archsearch._plan import plan_from_config
    from archsearch.scheduling import rung_levels
    from archsearch.strategies._common import random_candidate

    overrides = [*SPACE, *TASKS[task], *CHEAP_LATENCY, f"training.epochs={args.max_epochs}", "executor=inline",
                 f"seed={seed}", "run_dir=/nonexistent-never-created"]
    plan = plan_from_config(config.compose(overrides), objectives=OBJECTIVES)
    evaluator, space = plan.evaluator, plan.space
    np.random.seed(seed)  # MOASHA samples configurations with numpy's global generator
    scheduler = MOASHA({"arch": randint(0, 2**31 - 2)}, metrics=["neg_val_accuracy", "n_params"],
                       do_minimize=True, time_attr="epoch", max_t=int(args.max_epochs),
                       grace_period=int(args.min_epochs), reduction_factor=args.eta, random_seed=seed)
    levels = rung_levels(args.min_epochs, args.max_epochs, args.eta)
    spent, points, curve, n_trials, trial_id = 0.0, [], [], 0, 0
    while spent + levels[0] <= budget + 1e-9:
        suggestion = scheduler.suggest()
        trial = Trial(trial_id=trial_id, config=suggestion.config, creation_time=None)
        scheduler.on_trial_add(trial)
        candidate = random_candidate(space, np.random.default_rng(int(suggestion.config["arch"])))
        checkpoint, reached = None, 0.0
        for level in levels:
            if spent + level - reached > budget + 1e-9:
                break
            result = evaluator.evaluate(candidate.architecture, level, checkpoint)
            spent += level - reached
            reached, checkpoint = level, result.checkpoint
            if result.status != "complete":
                scheduler.on_trial_remove(trial)
                break
            report = {"epoch": level, "neg_val_accuracy": -result.metrics["val_accuracy"],
                      "n_params": result.metrics["n_params"]}
            if level >= args.max_epochs:
                scheduler.on_trial_complete(trial, report)
                points.append([result.metrics[m] for m in OBJECTIVES])
                break
            if scheduler.on_trial_result(trial, report) == SchedulerDecision.STOP:
                break
            curve.append((spent, hypervolume(points)))
        curve.append((spent, hypervolume(points)))
        n_trials += 1
        trial_id += 1
    return {"curve": curve, "trials": n_trials, "complete": len(points)}


def hv_at(curve: list[tuple[float, float]], epochs: float) -> float:
    """Hypervolume reached with at most ``epochs`` spent."""
    return max([hv for spent, hv in curve if spent <= epochs + 1e-9], default=0.0)


def epochs_to_reach(curve: list[tuple[float, float]], target: float) -> float | None:
    return next((spent for spent, hv in curve if hv >= target - 1e-12), None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", nargs="+", default=["digits", "mnist1d"], choices=sorted(TASKS))
    parser.add_argument("--strategies", nargs="+", default=["random", "evolution"])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--budget-epochs", type=float, default=162.0)
    parser.add_argument("--min-epochs", type=float, default=1)
    parser.add_argument("--max-epochs", type=float, default=9)
    parser.add_argument("--eta", type=float, default=3)
    parser.add_argument("--out", type=Path, default=None,
                        help="append every run's curve here as a JSON line, as it finishes (a crash loses one run)")
    parser.add_argument("--summarize", type=Path, default=None, help="only print the summary of such a file")
    args = parser.parse_args()
    if args.summarize is not None:
        results: dict[str, Any] = {}
        for line in args.summarize.read_text().splitlines():
            record = json.loads(line)
            results.setdefault(record.pop("key"), []).append(record)
        summarize(results, args)
        return
    budget = args.budget_epochs
    print(f"budget {budget:g} epochs per run; rungs {args.min_epochs:g}..{args.max_epochs:g}, eta {args.eta:g}; "
          f"objectives {OBJECTIVES}; seeds 0..{args.seeds - 1}")
    results = {}
    for task in args.tasks:
        for seed in range(args.seeds):
            jobs = [(s, f) for s in args.strategies for f in ("full", "asha")] + [("random", "moasha")]
            for strategy, method in jobs:
                cpu, wall = time.process_time(), time.perf_counter()
                if method == "moasha":
                    out = run_moasha(task, seed, budget, args)
                else:
                    out = run_archsearch(task, strategy, method, seed, budget, args)
                out.update(cpu_s=time.process_time() - cpu, wall_s=time.perf_counter() - wall)
                results.setdefault(f"{task}/{strategy}/{method}", []).append(out)
                if args.out is not None:
                    with open(args.out, "a") as f:
                        f.write(json.dumps({"key": f"{task}/{strategy}/{method}", "seed": seed, **out}) + "\n")
                print(f"  {task} seed {seed} {strategy:9s} {method:6s} hv@B {hv_at(out['curve'], budget):.4f} "
                      f"hv@B/3 {hv_at(out['curve'], budget / 3):.4f} trials {out['trials']:3d} "
                      f"complete {out['complete']:2d}  cpu {out['cpu_s']:.0f}s wall {out['wall_s']:.0f}s", flush=True)
    summarize(results, args)


def summarize(results: dict[str, Any], args: Any) -> None:
    budget = args.budget_epochs
    print("\nmedian over seeds (hypervolume of the max-fidelity front; epochs spent)")
    print(f"{'task/strategy':22s} {'full@B':>7s} {'asha@B/3':>8s} {'asha@B':>7s} {'moasha@B':>8s} "
          f"{'asha epochs to full@B':>22s} {'goal B/3':>8s} {'asha>moasha':>11s}")
    for task in args.tasks:
        for strategy in args.strategies:
            full = results[f"{task}/{strategy}/full"]
            asha = results[f"{task}/{strategy}/asha"]
            moasha = results[f"{task}/random/moasha"]
            reach = []
            for f, a in zip(full, asha, strict=False):
                epochs = epochs_to_reach(a["curve"], hv_at(f["curve"], budget))
                reach.append(epochs if epochs is not None else float("inf"))
            med = statistics.median
            ahead = sum(hv_at(a["curve"], budget) > hv_at(m["curve"], budget) for a, m in zip(asha, moasha, strict=False))
            reached = med(reach)
            print(f"{task + '/' + strategy:22s} {med(hv_at(r['curve'], budget) for r in full):7.4f} "
                  f"{med(hv_at(r['curve'], budget / 3) for r in asha):8.4f} "
                  f"{med(hv_at(r['curve'], budget) for r in asha):7.4f} "
                  f"{med(hv_at(r['curve'], budget) for r in moasha):8.4f} "
                  f"{'never' if reached == float('inf') else f'{reached:g} ({reached / budget:.2f} B)':>22s} "
                  f"{'met' if reached <= budget / 3 else 'not met':>8s} {ahead}/{len(asha):>9}")
    cpu = {k: sum(r["cpu_s"] for r in v) for k, v in results.items()}
    print("\ncpu seconds per method (all seeds):", {k: round(v) for k, v in cpu.items()})


if __name__ == "__main__":
    main()
