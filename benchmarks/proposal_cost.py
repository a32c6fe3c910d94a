"""Driver CPU per proposal: what each strategy costs the driver when a run is already large.

Each strategy runs ``--trials`` ask/tell steps on a problem of :mod:`strategies` (evaluations are table
lookups, so only the strategy's own work is timed); the CPU time (``time.process_time``) of ``ask`` +
``tell`` is averaged over the last ``--window`` steps, beside its wall time. The issue's bar: at most
0.2 s of driver CPU per proposal at 500 trials.

The shared machine's speed drifts (the same code measured 0.16 s and 0.34 s an hour apart), so a fixed
reference workload (Python loops and a 500x500 Cholesky factorization, the mix a proposal does) is
timed before and after, and each figure is also given in units of it.

    PYTHONPATH=. OMP_NUM_THREADS=1 python benchmarks/proposal_cost.py --problem nas_digits
"""

from __future__ import annotations

import argparse
import time
import warnings

from archsearch.strategies import make_strategy
from archsearch.trial import COMPLETE, EvalResult


def cost(problem_name: str, name: str, trials: int, window: int) -> tuple[float, float, int]:
    from strategies import PROBLEMS, VARIANTS  # beside this script

    problem = PROBLEMS[problem_name]()
    base, options = VARIANTS.get(name, (name, {}))  # a variant: a strategy with other options
    strategy = make_strategy(base, problem.space, problem.objectives, 0, **options)
    strategy.use_measure(problem.measure)
    cpu = wall = 0.0
    done = 0
    for i in range(trials):
        cpu_start, wall_start = time.process_time(), time.perf_counter()
        candidate = strategy.ask()
        if candidate is None:
            break
        metrics = problem.evaluate(candidate.architecture)
        strategy.tell(candidate, EvalResult(COMPLETE, metrics))
        cpu_end, wall_end = time.process_time(), time.perf_counter()  # the lookup is microseconds
        if i >= trials - window:
            cpu += cpu_end - cpu_start
            wall += wall_end - wall_start
            done += 1
    return cpu / max(done, 1), wall / max(done, 1), i + 1


def reference() -> float:
    """CPU seconds of a fixed workload: the yardstick of this machine's speed during the run."""
    import numpy as np

    start = time.process_time()
    total = 0
    for i in range(2_000_000):
        total += i * i
    a = np.random.default_rng(0).standard_normal((500, 500))
    for _ in range(20):
        np.linalg.cholesky(a @ a.T + 500 * np.eye(500))
    return time.process_time() - start


def main() -> None:
    from strategies import ARCHSEARCH, PROBLEMS, VARIANTS  # beside this script

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problem", default="nas_digits", choices=list(PROBLEMS))
    parser.add_argument("--runners", nargs="+", default=list(ARCHSEARCH), choices=[*ARCHSEARCH, *VARIANTS])
    parser.add_argument("--trials", type=int, default=500)
    parser.add_argument("--window", type=int, default=20)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    before = reference()
    rows = [(name, *cost(args.problem, name, args.trials, args.window)) for name in args.runners]
    yardstick = (before + reference()) / 2
    print(f"reference workload: {before:.3f} s CPU before, {yardstick * 2 - before:.3f} s after")
    print(f"| strategy | CPU s / proposal at {args.trials} trials | in reference units | wall s | trials run |")
    print("|---|---|---|---|---|")
    for name, cpu, wall, n in rows:
        print(f"| {name} | {cpu:.3f} | {cpu / yardstick:.3f} | {wall:.3f} | {n} |", flush=True)


if __name__ == "__main__":
    main()
