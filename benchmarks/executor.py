"""Executor benchmark: engine overhead per candidate on Ray against Ray Tune's own loop, and the
speed-up of two Ray workers over one on real training candidates.

    python benchmarks/executor.py                 # full: 200 trivial candidates, 8 trained ones
    python benchmarks/executor.py --quick         # smaller, for a smoke test

Both measurements run in one process against one local Ray started up front, so Ray's start-up is
not counted for either side. Goals (issue 6): overhead at most a quarter of Tune's; 2 workers >= 1.8x.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")

import ray  # noqa: E402

import archsearch  # noqa: E402
from archsearch.testing.faults import numbered_space, score  # noqa: E402

OBJECTIVES = {"score": "maximize", "cost": "minimize"}


def archsearch_trivial(n: int, workers: int, tmp: Path) -> float:
    """Seconds per candidate for ``n`` instant evaluations through the whole engine on Ray."""
    start = time.perf_counter()
    archsearch.search(space=numbered_space, evaluate=score, objectives=OBJECTIVES, budget=n, seed=0,
                      executor="ray", run_dir=tmp / f"trivial-{workers}-{time.time_ns()}",
                      overrides=[f"executor.workers={workers}"])
    return (time.perf_counter() - start) / n


def tune_trivial(n: int, workers: int, tmp: Path) -> float:
    """Seconds per trial for ``n`` instant trials in Ray Tune with actor reuse."""
    from ray import tune

    def trainable(config):
        tune.report(score({"x": config["x"]}))

    tuner = tune.Tuner(
        tune.with_resources(trainable, {"cpu": 1}),
        param_space={"x": tune.randint(0, 10**9)},
        tune_config=tune.TuneConfig(num_samples=n, reuse_actors=True, max_concurrent_trials=workers),
        run_config=tune.RunConfig(storage_path=str(tmp / "tune"), verbose=0),
    )
    start = time.perf_counter()
    tuner.fit()
    return (time.perf_counter() - start) / n


def training_wall(n: int, workers: int, epochs: float, tmp: Path) -> float:
    """Wall seconds to train the same ``n`` digits candidates with ``workers`` Ray workers."""
    start = time.perf_counter()
    run = archsearch.search(space="mlp", budget=n, seed=0, executor="ray",
                            run_dir=tmp / f"train-{workers}-{time.time_ns()}",
                            overrides=[f"executor.workers={workers}", f"training.epochs={epochs}"])
    elapsed = time.perf_counter() - start
    assert run.trials.num_rows == n
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--n-train", type=int, default=None, help="trained candidates (default 8, quick 4)")
    parser.add_argument("--epochs", type=float, default=None, help="epochs per candidate (default 6, quick 2)")
    args = parser.parse_args()
    n_trivial, n_train, epochs = (40, 4, 2) if args.quick else (200, 8, 6)
    n_train = args.n_train or n_train
    epochs = args.epochs or epochs
    ray.init(num_cpus=2, include_dashboard=False, configure_logging=False, log_to_driver=False,
             runtime_env={"env_vars": {"OMP_NUM_THREADS": "1", "PYTHONPATH": os.getcwd()}})
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        ours = [archsearch_trivial(n_trivial, 2, tmp) for _ in range(args.repeats)]
        theirs = [tune_trivial(n_trivial, 2, tmp) for _ in range(args.repeats)]
        one = [training_wall(n_train, 1, epochs, tmp) for _ in range(args.repeats)]
        two = [training_wall(n_train, 2, epochs, tmp) for _ in range(args.repeats)]
    ray.shutdown()

    ours_ms, theirs_ms = statistics.median(ours) * 1e3, statistics.median(theirs) * 1e3
    one_s, two_s = statistics.median(one), statistics.median(two)
    print(f"overhead per candidate, {n_trivial} instant evaluations, 2 workers (median of {args.repeats}):")
    print(f"  archsearch engine on Ray : {ours_ms:8.2f} ms   (runs: {', '.join(f'{x * 1e3:.2f}' for x in ours)})")
    print(f"  Ray Tune, reuse_actors   : {theirs_ms:8.2f} ms   (runs: {', '.join(f'{x * 1e3:.2f}' for x in theirs)})")
    print(f"  ratio archsearch / Tune  : {ours_ms / theirs_ms:8.3f}   (goal <= 0.25)")
    print(f"training {n_train} digits candidates, {epochs} epochs each (median of {args.repeats}):")
    print(f"  1 worker : {one_s:7.2f} s   (runs: {', '.join(f'{x:.2f}' for x in one)})")
    print(f"  2 workers: {two_s:7.2f} s   (runs: {', '.join(f'{x:.2f}' for x in two)})")
    print(f"  speed-up : {one_s / two_s:7.2f}x  (goal >= 1.8x)")


if __name__ == "__main__":
    main()
