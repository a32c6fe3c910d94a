"""Search quality: every archsearch strategy against Optuna's samplers, at equal numbers of evaluations.

For each problem, seed and runner, one search of ``max(budgets)`` evaluations; the hypervolume of
everything evaluated so far is read at each budget (and every 5 evaluations for the "evaluations to
reach random search's final hypervolume" column). Hypervolume regret is ``1 - HV / HV(best known
front)`` in a fixed normalization per problem (reference point 1.1 in every normalized objective), so
it is comparable across runners and seeds. archsearch strategies run with their default options
through an engine-free ask/tell loop (one candidate in flight, as Optuna's loop); Optuna's samplers are
driven directly with ``study.ask()`` / ``study.tell()`` and, as people use them, may evaluate an
architecture twice (each repeat counts as an evaluation).

Problems: discretized ZDT1/ZDT2 (10 variables, 11 levels, 2 objectives), ZDT3 (12 levels: on 11 it
equals ZDT1) and DTLZ2 (7 variables, 3 objectives), as integer or categorical decisions of a callable
space; and the tabular benchmarks ``nas_digits`` (:mod:`nas_table`, 5,652 MLP stacks trained on
digits), ``nas_mnist1d`` / ``nas_mnist1d_3obj`` (:mod:`nas_mnist1d`, 3,768 block stacks) and ``nas_cell``
(:mod:`nas_cell`, 2,688 three-node cells: per node an operation and the earlier nodes it reads).

    PYTHONPATH=. OMP_NUM_THREADS=1 python benchmarks/strategies.py --seeds 30 --workers 2
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from multiprocessing import Pool
from pathlib import Path
from typing import Any

import numpy as np

from archsearch.pareto import REFERENCE_POINT_OFFSET, Normalization, hypervolume
from archsearch.space import SearchSpace, as_space
from archsearch.strategies import make_strategy
from archsearch.trial import COMPLETE, EvalResult

ARCHSEARCH = ("model", "random", "evolution", "local", "mcts", "bayes")
OPTUNA = ("optuna-random", "optuna-tpe", "optuna-nsga2", "optuna-gp")
VARIANTS = {  # ablations, by name: --runners evolution-plain local-plain mcts-plain
    "evolution-plain": ("evolution", {"screen": 1}),
    "local-plain": ("local", {"screen": 1}),
    "mcts-plain": ("mcts", {"rave_equivalence": 0}),
    "bayes-gp": ("bayes", {"sampler": "gp"}),
    "model-blind": ("model", {}),  # without measure=: every objective predicted
    "model-r16": ("model", {"pool_random": 16}),
    "model-m96": ("model", {"pool_random": 16, "pool_mutations": 96}),
    "model-o2": ("model", {"optimism": 2.0}),
    "model-o0": ("model", {"optimism": 0.0}),
    "model-gp": ("model", {"surrogate": "gp"}),  # one surrogate, not chosen by held-out rank
    "model-forest": ("model", {"surrogate": "forest"}),
    "model-i5": ("model", {"n_initial": 5}),
    "model-refine0": ("model", {"refine": 0}),
    "model-sweep1": ("model", {"sweep": 1}),
    "model-sweep3": ("model", {"sweep": 3}),
    "model-nograph": ("model", {"graph_features": False}),  # the default before 2026-12-05
    "model-finish0": ("model", {"finish_levels": 0}),  # the default before 2026-12-04, night
    "model-finish2": ("model", {"finish_levels": 2}),
    "model-finish3": ("model", {"finish_levels": 3}),
    "model-cross0": ("model", {"pool_crossovers": 0}),  # the default before crossovers joined the pool
    "model-cross8": ("model", {"pool_crossovers": 8}),
    "model-cross48": ("model", {"pool_crossovers": 48}),
}
BLIND = {"model-blind"}
STEP = 5  # evaluations between hypervolume readings


@dataclass
class Problem:
    name: str
    space: SearchSpace
    evaluate: Callable[[Any], dict[str, float]]
    objectives: dict[str, str]
    normalization: Normalization
    best_front: np.ndarray  # raw objective values of the best known front
    measure: Callable[[Any], dict[str, float]] | None = None  # metrics known before training

    def hv(self, raw: list[list[float]]) -> float:
        if not raw:
            return 0.0
        points = self.normalization.apply(np.array(raw, dtype=float))
        return hypervolume(points, np.full(len(self.objectives), 1.0 + REFERENCE_POINT_OFFSET))

    def regrets(self, values: list[list[float]], counts: Iterable[int]) -> list[float]:
        """Hypervolume regret of the first ``k`` rows of ``values``, for each ``k`` of ``counts``."""
        best = self.hv(self.best_front.tolist())
        return [1 - self.hv(values[:k]) / best for k in counts]


# -- synthetic problems ----------------------------------------------------------------------------

LEVELS = [i / 10 for i in range(11)]


def grid_space(n: int, categorical: bool, steps: int = 10) -> Callable[[Any], dict[str, list[float]]]:
    """``n`` decisions over the levels ``k / steps``, as integers or as unordered categoricals."""
    levels = [i / steps for i in range(steps + 1)]

    def space(chooser: Any) -> dict[str, list[float]]:
        if categorical:
            return {"x": [chooser.suggest_categorical(f"x{i}", levels) for i in range(n)]}
        return {"x": [chooser.suggest_int(f"x{i}", 0, steps) / steps for i in range(n)]}

    return space


def zdt(kind: int) -> Callable[[dict[str, list[float]]], dict[str, float]]:
    def evaluate(arch: dict[str, list[float]]) -> dict[str, float]:
        x = arch["x"]
        f1, g = x[0], 1 + 9 * sum(x[1:]) / (len(x) - 1)
        r = f1 / g
        shape = {1: 1 - math.sqrt(r), 2: 1 - r * r, 3: 1 - math.sqrt(r) - r * math.sin(10 * math.pi * f1)}[kind]
        return {"f1": f1, "f2": g * shape}

    return evaluate


def dtlz2(arch: dict[str, list[float]]) -> dict[str, float]:
    x = arch["x"]
    g = sum((v - 0.5) ** 2 for v in x[2:])
    a, b = x[0] * math.pi / 2, x[1] * math.pi / 2
    return {"f1": (1 + g) * math.cos(a) * math.cos(b), "f2": (1 + g) * math.cos(a) * math.sin(b),
            "f3": (1 + g) * math.sin(a)}


def synthetic(name: str) -> Problem:
    """The grid's Pareto set is known: ZDT needs x1.. = 0 (g = 1), DTLZ2 needs x2.. = 0.5 (g = 0)."""
    if name == "dtlz2":
        objectives = {"f1": "minimize", "f2": "minimize", "f3": "minimize"}
        front = [dtlz2({"x": [a, b] + [0.5] * 5}) for a in LEVELS for b in LEVELS]
        bounds = ([0.0] * 3, [2.25] * 3)  # 1 + g <= 1 + 5 * 0.25
        space, evaluate = grid_space(7, categorical=False), dtlz2
    else:
        kind = int(name[3])
        steps = 11 if kind == 3 else 10  # ZDT3's sin(10 pi f1) is 0 at every f1 = k/10: there it is ZDT1
        objectives = {"f1": "minimize", "f2": "minimize"}
        evaluate = zdt(kind)
        front = [evaluate({"x": [i / steps] + [0.0] * 9}) for i in range(steps + 1)]
        bounds = ([0.0, -1.0 if kind == 3 else 0.0], [1.0, 10.0])
        space = grid_space(10, categorical=name.endswith("cat"), steps=steps)
    names = list(objectives)
    norm = Normalization(tuple(names), tuple(objectives.values()), *map(tuple, bounds), (False,) * len(names))
    best = np.array([[f[k] for k in names] for f in front])
    return Problem(name, as_space(space), evaluate, objectives, norm, best)


# -- the tabular NAS problem -----------------------------------------------------------------------

def tabular(name: str, table: Any, space: SearchSpace, objectives: dict[str, str]) -> Problem:
    """A problem that looks architectures up in ``table``; ``measure`` gives what is known before training
    (``n_params`` and ``flops``, as the built-in evaluator counts them without training)."""
    table = table[table.status == COMPLETE]
    cheap = [k for k in ("n_params", "flops") if k in table.columns]
    metrics = table.set_index("arch_id")[list(dict.fromkeys([*objectives, *cheap]))].to_dict("index")
    raw = table[list(objectives)].to_numpy(float)
    norm = Normalization.from_data(list(objectives), list(objectives.values()), raw)

    def evaluate(genome: Any) -> dict[str, float]:
        return {k: metrics[genome.arch_id][k] for k in objectives}

    def measure(genome: Any) -> dict[str, float]:
        return {k: metrics[genome.arch_id][k] for k in cheap}

    return Problem(name, space, evaluate, objectives, norm, raw, measure)


def nas_digits() -> Problem:
    import pandas as pd
    from nas_table import TABLE, nas_space  # beside this script

    return tabular("nas_digits", pd.read_parquet(TABLE), nas_space(),
                   {"val_accuracy": "maximize", "n_params": "minimize"})


def nas_mnist1d(three: bool = False) -> Problem:
    import nas_mnist1d as m1d  # beside this script

    objectives = {"val_accuracy": "maximize", "n_params": "minimize"}
    if three:
        objectives["latency_ms"] = "minimize"
    return tabular("nas_mnist1d_3obj" if three else "nas_mnist1d", m1d.load_table(), m1d.nas_space(), objectives)


def nas_cell() -> Problem:
    import nas_cell as cell  # beside this script

    return tabular("nas_cell", cell.load_cell_table(), cell.nas_space(), {"val_accuracy": "maximize", "n_params": "minimize"})


PROBLEMS: dict[str, Callable[[], Problem]] = {
    "zdt1": lambda: synthetic("zdt1"),
    "zdt2_cat": lambda: synthetic("zdt2_cat"),
    "zdt3": lambda: synthetic("zdt3"),
    "dtlz2": lambda: synthetic("dtlz2"),
    "nas_digits": nas_digits,
    "nas_mnist1d": nas_mnist1d,
    "nas_mnist1d_3obj": lambda: nas_mnist1d(three=True),
    "nas_cell": nas_cell,
}


# -- runners ---------------------------------------------------------------------------------------

def run_archsearch(problem: Problem, name: str, seed: int, n: int) -> list[list[float]]:
    base, options = VARIANTS.get(name, (name, {}))
    strategy = make_strategy(base, problem.space, problem.objectives, seed, **options)
    if name not in BLIND:
        strategy.use_measure(problem.measure)
    return ask_and_tell(problem, strategy, n)[0]


def ask_and_tell(problem: Problem, strategy: Any, n: int) -> tuple[list[list[float]], list[dict[str, Any]]]:
    """Up to ``n`` proposals of ``strategy`` (queued ones first, as the engine asks), each evaluated and told:
    the objective rows and the decisions, in order."""
    values: list[list[float]] = []
    decisions: list[dict[str, Any]] = []
    while len(values) < n:
        candidate = strategy.next_proposal()
        if candidate is None:
            break
        metrics = problem.evaluate(candidate.architecture)
        strategy.tell(candidate, EvalResult(COMPLETE, metrics))
        values.append([metrics[k] for k in problem.objectives])
        decisions.append(dict(candidate.decisions))
    return values, decisions


def run_optuna(problem: Problem, name: str, seed: int, n: int) -> list[list[float]]:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = {
        "optuna-random": lambda: optuna.samplers.RandomSampler(seed=seed),
        "optuna-tpe": lambda: optuna.samplers.TPESampler(multivariate=True, seed=seed),
        "optuna-nsga2": lambda: optuna.samplers.NSGAIISampler(seed=seed),
        "optuna-gp": lambda: optuna.samplers.GPSampler(seed=seed, warn_independent_sampling=False),
    }[name]()
    study = optuna.create_study(directions=list(problem.objectives.values()), sampler=sampler)
    values: list[list[float]] = []
    for _ in range(n):
        trial = study.ask()
        metrics = problem.evaluate(problem.space.build(trial))
        row = [metrics[k] for k in problem.objectives]
        study.tell(trial, row)
        values.append(row)
    return values


def one_run(job: tuple[str, str, int, int]) -> dict[str, Any]:
    import warnings

    warnings.simplefilter("ignore")
    problem_name, runner, seed, n = job
    problem = PROBLEMS[problem_name]()
    start = time.perf_counter()
    run = run_optuna if runner in OPTUNA else run_archsearch
    values = run(problem, runner, seed, n)
    readings = problem.regrets(values, range(STEP, n + 1, STEP))
    return {"problem": problem_name, "runner": runner, "seed": seed, "regret": readings,
            "n": len(values), "seconds": time.perf_counter() - start}


# -- report ----------------------------------------------------------------------------------------

def summarize(results: list[dict[str, Any]], budgets: list[int]) -> str:
    lines = []
    for problem in dict.fromkeys(r["problem"] for r in results):
        rows = [r for r in results if r["problem"] == problem]
        runners = list(dict.fromkeys(r["runner"] for r in rows))
        curves = {name: _curves(rows, name, max(budgets)) for name in runners}
        target = np.nanmean(curves["random"][:, -1]) if "random" in curves else math.nan
        lines += [f"### {problem} ({len({r['seed'] for r in rows})} seeds)", "",
                  "| runner | " + " | ".join(f"regret @{b}" for b in budgets)
                  + " | evals to random@" + str(max(budgets)) + " | s/run |",
                  "|---" * (len(budgets) + 3) + "|"]
        for name in runners:
            curve = curves[name]
            cells = [f"{np.nanmean(curve[:, b // STEP - 1]):.4f} ± {np.nanstd(curve[:, b // STEP - 1]):.4f}"
                     for b in budgets]
            mean_curve = np.nanmean(curve, axis=0)
            reached = np.flatnonzero(mean_curve <= target + 1e-12)
            to_target = str((reached[0] + 1) * STEP) if reached.size else f">{max(budgets)}"
            seconds = np.mean([r["seconds"] for r in rows if r["runner"] == name])
            lines.append(f"| {name} | " + " | ".join(cells) + f" | {to_target} | {seconds:.2f} |")
        lines.append("")
    return "\n".join(lines)


def _curves(rows: list[dict[str, Any]], runner: str, n: int) -> np.ndarray:
    """Regret readings (seeds x readings); a run that stopped early keeps its last reading."""
    out = []
    for r in rows:
        if r["runner"] == runner:
            reading = list(r["regret"]) or [1.0]
            out.append(reading + [reading[-1]] * (n // STEP - len(reading)))
    return np.array(out, dtype=float)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", nargs="+", default=list(PROBLEMS), choices=list(PROBLEMS))
    parser.add_argument("--runners", nargs="+", default=[*ARCHSEARCH, *OPTUNA],
                        choices=[*ARCHSEARCH, *OPTUNA, *VARIANTS])
    parser.add_argument("--seeds", type=int, default=30)
    parser.add_argument("--first-seed", type=int, default=0, help="seeds first-seed .. first-seed + seeds - 1")
    parser.add_argument("--budgets", type=int, nargs="+", default=[50, 100, 200])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--json", type=Path, help="also append every run's readings here, one JSON line a run")
    args = parser.parse_args()

    n = max(args.budgets)
    jobs = [(p, r, s, n) for p in args.problems for r in args.runners
            for s in range(args.first_seed, args.first_seed + args.seeds)]
    start = time.perf_counter()
    results = []
    with Pool(args.workers) as pool:
        for result in pool.imap(one_run, jobs, chunksize=1):  # in job order: the summary's row order
            results.append(result)
            if args.json:  # one line per run as it ends, so a stopped benchmark keeps what it measured
                with args.json.open("a") as out:
                    out.write(json.dumps(result) + "\n")
    print(summarize(results, args.budgets))
    print(f"{len(jobs)} runs in {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
