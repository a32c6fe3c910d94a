"""What the default strategy pays to measure one candidate before training, per space.

Three ways to give the strategy a candidate's counted metrics, timed on the same random genomes in one
process (CPU time beside wall time; the first pass over each space is a warm-up and not timed):

- ``build + flops``: the model built and run under torch's FLOP counter (what every candidate cost
  before the strategy was asked only for what its objectives and constraints name);
- ``build``: the model built and its parameters counted;
- ``closed form``: ``builder.param_count`` from the genome alone (what a run's strategy gets now when
  FLOPs are neither an objective nor a constraint).

    PYTHONPATH=. OMP_NUM_THREADS=1 python benchmarks/measure_cost.py
"""

from __future__ import annotations

import argparse
import time

import torch

from archsearch._plan import plan_run
from archsearch.builder import build_model, count_parameters, param_count
from archsearch.evaluation.loop import tensors
from archsearch.evaluation.measure import count_flops


def per_candidate(fn, genomes) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    cpu, wall = time.process_time(), time.perf_counter()
    for genome in genomes:
        fn(genome)
    return ((time.process_time() - cpu) / len(genomes) * 1e3, (time.perf_counter() - wall) / len(genomes) * 1e3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spaces", nargs="+", default=["mlp", "hybrid", "kan", "moe", "transformer"])
    parser.add_argument("--candidates", type=int, default=40)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print("| space | way | CPU ms / candidate | wall ms / candidate | CPU vs build + flops |")
    print("|---|---|---:|---:|---:|")
    for name in args.spaces:
        plan = plan_run([f"space={name}", "task=digits"])
        task = plan.evaluator.load_task()
        example, _ = tensors(task, task.x_train[:1], task.y_train[:1])
        genomes = [plan.space.sample(seed) for seed in range(args.candidates)]
        spec = task.data_spec
        ways = {
            "build + flops": lambda g, spec=spec, x=example: count_flops(m := build_model(g, spec), x)
            + count_parameters(m),
            "build": lambda g, spec=spec: count_parameters(build_model(g, spec)),
            "closed form": lambda g, spec=spec: param_count(g, spec),
        }
        for fn in ways.values():
            per_candidate(fn, genomes[:5])  # warm-up: imports, first-call costs
        base = None
        for way, fn in ways.items():
            cpu, wall = per_candidate(fn, genomes)
            base = base or cpu
            print(f"| {name} | {way} | {cpu:.2f} | {wall:.2f} | {cpu / base:.3f} |", flush=True)


if __name__ == "__main__":
    main()
