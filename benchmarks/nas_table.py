"""Builds the tabular NAS benchmark: every architecture of a small block space trained once on digits.

Each architecture trains for ``--epochs`` epochs (low fidelity) with the project's own evaluator and
seed 0, so the table is a fixed, cheap stand-in for a real search: a strategy "evaluates" an
architecture by looking it up. Regenerate with

    PYTHONPATH=. OMP_NUM_THREADS=1 python benchmarks/nas_table.py

(about 5 minutes on a quiet core, 21 beside other work). The space is :func:`nas_space`; the Parquet file has one row per
architecture: ``arch_id``, ``decisions`` (JSON) and the evaluator's metrics.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from archsearch.space import RecordingChooser, SearchSpace

TABLE = Path(__file__).parent / "data" / "nas_digits.parquet"


def nas_space() -> SearchSpace:
    """Depth 1-3 MLP stacks: 3 widths x (2 wirings x 3 activations x 2 norm placements) per block = 5,652."""
    from archsearch.spaces import BlockGraphSpace

    return BlockGraphSpace(
        name="nas_digits", blocks=["mlp"], depth={"low": 1, "high": 3}, width=[16, 32, 64],
        wiring=["sequential", "residual"], norm=["layernorm"], norm_placement=["pre", "none"],
        activation=["relu", "tanh", "silu"], block_params={"mlp": {"expansion": [2]}},
    )


class _IndexChooser(RecordingChooser):
    """Takes the i-th option of the i-th decision (0 past the given indices) and notes each decision's size."""

    def __init__(self, indices: Sequence[int]) -> None:
        super().__init__()
        self.indices = list(indices)
        self.sizes: list[int] = []

    def _pick(self, name: str, options: list[Any]) -> Any:
        i = self.indices[len(self.sizes)] if len(self.sizes) < len(self.indices) else 0
        self.sizes.append(len(options))
        return self._record(name, options[i])

    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any:
        return self._pick(name, list(choices))

    def suggest_int(self, name: str, low: int, high: int, step: int = 1, log: bool = False) -> int:
        return self._pick(name, list(range(low, high + 1, step)))

    def suggest_float(self, name: str, low: float, high: float, step: float | None = None, log: bool = False) -> float:
        raise ValueError("enumeration needs a discrete space")


def enumerate_space(space: SearchSpace) -> Iterator[Any]:
    """Every architecture of a discrete define-by-run space, by counting through decision indices."""
    indices: list[int] = []
    while True:
        chooser = _IndexChooser(indices)
        yield space.build(chooser)
        indices = [chooser.indices[i] if i < len(chooser.indices) else 0 for i in range(len(chooser.sizes))]
        position = len(indices) - 1
        while position >= 0 and indices[position] + 1 >= chooser.sizes[position]:
            position -= 1
        if position < 0:
            return
        indices = [*indices[:position], indices[position] + 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=float, default=2.0)
    parser.add_argument("--out", type=Path, default=TABLE)
    parser.add_argument("--limit", type=int, default=0, help="train only the first N (a quick check)")
    args = parser.parse_args()

    import pandas as pd

    from archsearch.evaluation.latency import LatencyProtocol
    from archsearch.evaluation.training import TaskRef, TrainingEvaluator, TrainingRecipe

    evaluator = TrainingEvaluator(TaskRef("digits", 0), TrainingRecipe(epochs=args.epochs),
                                  LatencyProtocol(warmup=3, repeats=10), seed=0)
    rows = []
    start = time.perf_counter()
    for i, genome in enumerate(enumerate_space(nas_space())):
        if args.limit and i >= args.limit:
            break
        result = evaluator.evaluate(genome)
        rows.append({"arch_id": genome.arch_id, "decisions": json.dumps(dict(genome.decisions), sort_keys=True),
                     "status": result.status, **result.metrics})
        if i % 100 == 0:
            print(f"{i} architectures, {time.perf_counter() - start:.0f} s", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_parquet(args.out, index=False)
    print(f"wrote {len(rows)} rows to {args.out} in {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
