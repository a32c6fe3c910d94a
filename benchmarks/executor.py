"""Executor benchmark: engine overhead per candidate on Ray against Ray Tune's own loop, and the
speed-up of two Ray workers over one on real training candidates.

    python benchmarks/executor.py                 # full: 200 trivial candidates, 24 trained ones
    python benchmarks/executor.py --quick         # smaller, for a smoke test

Both measurements run in one process against one local Ray started up front, so Ray's start-up is
not counted for either side, and a warm-up run first pays the driver's one-time imports (torch,
scikit-learn), which a process pays once whatever the number of workers. Repeats alternate between
the two sides so that a disturbance of the machine hits both. Goals (issue 6): overhead at most a
quarter of Tune's; 2 workers >= 1.8x.

Overhead is reported two ways: wall time per candidate of the whole call (each side's per-run
start-up included: our config composition and actor start, Tune's experiment set-up), and the
steady state, from timestamps taken inside the evaluations on both sides (the interval between
consecutive evaluations once both workers are running).
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


def timed_score(arch: dict[str, int]) -> dict[str, float]:
    """The trivial evaluation, with the moment it ran (the steady-state clock for both sides)."""
    return {**score(arch), "t": time.time()}


def steady_interval(stamps: list[float]) -> float:
    """Seconds between consecutive evaluations, from the second to the last (the first one waits for
    the workers to start on both sides)."""
    stamps = sorted(stamps)[1:]
    return (stamps[-1] - stamps[0]) / (len(stamps) - 1) if len(stamps) > 1 else float("nan")


def archsearch_trivial(n: int, workers: int, tmp: Path) -> tuple[float, float]:
    """(wall seconds per candidate, steady-state seconds per candidate) for ``n`` instant evaluations
    through the whole engine on Ray."""
    start = time.perf_counter()
    run = archsearch.search(space=numbered_space, evaluate=timed_score, objectives=OBJECTIVES, budget=n,
                            seed=0, executor="ray", run_dir=tmp / f"trivial-{workers}-{time.time_ns()}",
                            overrides=[f"executor.workers={workers}"])
    wall = (time.perf_counter() - start) / n
    return wall, steady_interval(run.trials.column("t").to_pylist())


def tune_trivial(n: int, workers: int, tmp: Path) -> tuple[float, float]:
    """(wall seconds per trial, steady-state seconds per trial) for ``n`` instant trials in Ray Tune
    with actor reuse."""
    from ray import tune

    def trainable(config):
        tune.report(timed_score({"x": config["x"]}))

    tuner = tune.Tuner(
        tune.with_resources(trainable, {"cpu": 1}),
        param_space={"x": tune.randint(0, 10**9)},
        tune_config=tune.TuneConfig(num_samples=n, reuse_actors=True, max_concurrent_trials=workers),
        run_config=tune.RunConfig(storage_path=str(tmp / "tune"), verbose=0),
    )
    start = time.perf_counter()
    results = tuner.fit()
    wall = (time.perf_counter() - start) / n
    return wall, steady_interval([r.metrics["t"] for r in results])


def training_wall(n: int, workers: int, epochs: float, tmp: Path) -> tuple[float, float, float]:
    """(wall seconds, summed per-candidate training seconds, steady-state seconds per candidate) to
    train the same ``n`` digits candidates with ``workers`` Ray workers. The second number shows how
    fast the machine itself was; the third is the interval between results once the workers run."""
    start = time.perf_counter()
    run = archsearch.search(space="mlp", budget=n, seed=0, executor="ray",
                            run_dir=tmp / f"train-{workers}-{time.time_ns()}",
                            overrides=[f"executor.workers={workers}", f"training.epochs={epochs}"])
    elapsed = time.perf_counter() - start
    assert run.trials.num_rows == n
    return (elapsed, sum(run.trials.column("train_time_s").to_pylist()),
            steady_interval([t.timestamp() for t in run.trials.column("finished_at").to_pylist()]))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--part", choices=["all", "overhead", "speedup"], default="all")
    parser.add_argument("--n-trivial", type=int, default=None, help="instant candidates (default 200, quick 40)")
    parser.add_argument("--n-train", type=int, default=None, help="trained candidates (default 24, quick 4)")
    parser.add_argument("--epochs", type=float, default=None, help="epochs per candidate (default 10, quick 2)")
    args = parser.parse_args()
    n_trivial, n_train, epochs = (40, 4, 2) if args.quick else (200, 24, 10)
    n_trivial = args.n_trivial or n_trivial
    n_train = args.n_train or n_train
    epochs = args.epochs or epochs
    ray.init(num_cpus=2, include_dashboard=False, configure_logging=False, log_to_driver=False,
             runtime_env={"env_vars": {"OMP_NUM_THREADS": "1", "PYTHONPATH": os.getcwd()}})
    ours, theirs, one, two = [], [], [], []
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        training_wall(1, 1, 1, tmp)  # warm-up: the driver's one-time imports
        for _ in range(args.repeats if args.part != "speedup" else 0):
            ours.append(archsearch_trivial(n_trivial, 2, tmp))
            theirs.append(tune_trivial(n_trivial, 2, tmp))
        for _ in range(args.repeats if args.part != "overhead" else 0):
            one.append(training_wall(n_train, 1, epochs, tmp))
            two.append(training_wall(n_train, 2, epochs, tmp))
    ray.shutdown()

    if ours:
        print_overhead(ours, theirs, n_trivial, args.repeats)
    if one:
        print_speedup(one, two, n_train, epochs, args.repeats)


def print_overhead(ours: list[tuple[float, float]], theirs: list[tuple[float, float]], n: int, repeats: int) -> None:
    def median_ms(label: str, runs: list[tuple[float, float]], which: int) -> float:
        values = [r[which] * 1e3 for r in runs]
        print(f"  {label:<24}: {statistics.median(values):8.2f} ms   (runs: {', '.join(f'{v:.2f}' for v in values)})")
        return statistics.median(values)

    print(f"overhead per candidate, {n} instant evaluations, 2 workers (median of {repeats}):")
    for which, title in ((0, "wall time of the whole call / candidates"), (1, "steady state (in-trial timestamps)")):
        print(f" {title}")
        ours_ms = median_ms("archsearch engine on Ray", ours, which)
        theirs_ms = median_ms("Ray Tune, reuse_actors", theirs, which)
        print(f"  {'ratio archsearch / Tune':<24}: {ours_ms / theirs_ms:8.3f}   (goal <= 0.25)")


def print_speedup(one: list[tuple[float, float, float]], two: list[tuple[float, float, float]], n: int,
                  epochs: float, repeats: int) -> None:
    one_s, two_s = statistics.median(r[0] for r in one), statistics.median(r[0] for r in two)
    print(f"training {n} digits candidates, {epochs:g} epochs each (median of {repeats}; "
          "in brackets the summed training time of the candidates):")
    for label, runs in (("1 worker ", one), ("2 workers", two)):
        detail = ", ".join(f"{wall:.2f} [{train:.1f}]" for wall, train, _ in runs)
        print(f"  {label}: {statistics.median(r[0] for r in runs):7.2f} s   (runs: {detail})")
    pairs = sorted(a[0] / b[0] for a, b in zip(one, two, strict=True))
    print(f"  speed-up : {one_s / two_s:7.2f}x  (goal >= 1.8x; per alternating pair: "
          f"{', '.join(f'{p:.2f}' for p in pairs)})")
    one_steady, two_steady = statistics.median(r[2] for r in one), statistics.median(r[2] for r in two)
    print(f"  steady state, s between results: 1 worker {one_steady:.3f}, 2 workers {two_steady:.3f} "
          f"-> {one_steady / two_steady:.2f}x (worker start-up and the last candidate's tail excluded)")


if __name__ == "__main__":
    main()
