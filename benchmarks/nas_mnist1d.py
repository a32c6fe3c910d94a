"""Builds the larger tabular NAS benchmark: every architecture of a conditional block space trained on MNIST-1D.

Like ``nas_table.py`` (which it reuses for enumeration) but on ``mnist1d`` (the 40 values as one vector,
the input of the paper's MLP) and over a space of 3,768 with a block kind per stage, where a later
stage's decisions exist only when the depth reaches it. Every architecture trains once for ``--epochs`` epochs with the project's
evaluator and seed 0; the table keeps the per-epoch validation curve, so multi-fidelity strategies can
read any epoch. Regenerate with

    PYTHONPATH=. OMP_NUM_THREADS=1 python benchmarks/nas_mnist1d.py

(46 min wall, 35 min CPU on one core of the project's shared 2-core box, 6 epochs; 0.56 s CPU per
architecture). Rows are written to the Parquet file every ``--checkpoint`` architectures,
and a rerun resumes after the rows already there. One row per architecture: ``arch_id``, ``decisions``
(JSON), ``status``, ``error``, the evaluator's metrics, ``curve`` (JSON list of validation accuracy per
epoch), ``curve_train_loss`` (the same for the training loss) and ``seconds`` (wall time of the whole
evaluation).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from nas_table import enumerate_space  # beside this script

from archsearch.space import SearchSpace

TABLE = Path(__file__).parent / "data" / "nas_mnist1d.parquet"
TASK_OPTIONS = {"input_kind": "vector"}


def nas_space() -> SearchSpace:
    """Depth 1-3 chains at width 32 or 64: per stage sequential or residual, per block a kind and an activation.

    Kinds: ``mlp``, ``glu`` (ReGLU or SwiGLU by activation) and ``kan_chebyshev`` (a Chebyshev KAN
    whose base branch takes the activation); activations relu and silu; pre-LayerNorm. That is
    2 x 3 x 2 = 12 options a stage and 2 x (12 + 12**2 + 12**3) = 3,768 architectures; a stage's
    decisions exist only when ``depth`` reaches it. (A group-rational KAN, whose missing activation
    would have made the per-kind decisions differ, trains 3x slower than an MLP block and did not fit
    the one-core-hour budget; attention and token mixers need 40 feature tokens and cost 5-8x.)
    """
    from archsearch.spaces import BlockGraphSpace

    return BlockGraphSpace(
        name="nas_mnist1d", blocks=["mlp", "glu", "kan_chebyshev"], depth={"low": 1, "high": 3},
        width=[32, 64], wiring=["sequential", "residual"], norm=["layernorm"], norm_placement=["pre"],
        activation=["relu", "silu"],
        block_params={"mlp": {"expansion": [2]}, "glu": {"expansion": [2]}, "kan_chebyshev": {"degree": [3]}},
    )


def load_table(path: Path = TABLE) -> Any:
    """The table's complete rows as a pandas DataFrame (``curve`` still JSON text)."""
    import pandas as pd

    table = pd.read_parquet(path)
    return table[table["status"] == "complete"].reset_index(drop=True)


def evaluate_row(evaluator: Any, genome: Any) -> dict[str, Any]:
    start = time.perf_counter()
    result = evaluator.evaluate(genome)
    seconds = time.perf_counter() - start
    return {"arch_id": genome.arch_id, "decisions": json.dumps(dict(genome.decisions), sort_keys=True),
            "status": result.status, "error": result.error or "", **result.metrics,
            "curve": json.dumps([round(p["val_accuracy"], 6) for p in result.curve]),
            "curve_train_loss": json.dumps([round(p["train_loss"], 6) for p in result.curve]),
            "seconds": seconds}


_EVALUATOR: Any = None  # one per process that trains rows


def _start_evaluator(epochs: float) -> None:
    global _EVALUATOR
    import torch

    from archsearch.evaluation.latency import LatencyProtocol
    from archsearch.evaluation.training import TaskRef, TrainingEvaluator, TrainingRecipe

    torch.set_num_threads(1)
    _EVALUATOR = TrainingEvaluator(TaskRef("mnist1d", 0, dict(TASK_OPTIONS)), TrainingRecipe(epochs=epochs),
                                   LatencyProtocol(warmup=3, repeats=10), seed=0)
    _EVALUATOR.warm_up()


def _train(genome: Any) -> dict[str, Any]:
    return evaluate_row(_EVALUATOR, genome)


def build_table(space: SearchSpace, out: Path, epochs: float, limit: int = 0, checkpoint: int = 100,
                fresh: bool = False, workers: int = 1) -> None:
    """Trains every architecture of ``space`` on MNIST-1D into the Parquet table ``out``, resuming after
    the rows already there (``nas_cell.py`` builds its table the same way). With ``workers`` > 1 the rows
    train in that many processes of one thread each; every row is the same as in one process (seed 0,
    one thread), only latencies feel the neighbour."""
    import multiprocessing

    import pandas as pd

    rows: list[dict[Any, Any]] = []
    if out.exists() and not fresh:
        rows = pd.read_parquet(out).to_dict("records")
        if any(row["status"] == "complete" and row["epochs_trained"] != epochs for row in rows):
            raise SystemExit(f"{out} was trained for other than --epochs {epochs:g}; pass --fresh or another --out")
        print(f"resuming after {len(rows)} rows in {out}", flush=True)
    done = {row["arch_id"] for row in rows}
    out.parent.mkdir(parents=True, exist_ok=True)
    todo = []
    for i, genome in enumerate(enumerate_space(space)):
        if limit and i >= limit:
            break
        if genome.arch_id not in done:
            done.add(genome.arch_id)
            todo.append(genome)

    def write() -> None:
        partial = out.with_suffix(".partial")
        pd.DataFrame(rows).to_parquet(partial, index=False)
        partial.replace(out)

    start, cpu_start = time.perf_counter(), time.process_time()
    pool = multiprocessing.get_context("spawn").Pool(workers, _start_evaluator, (epochs,)) if workers > 1 else None
    if pool is None:
        _start_evaluator(epochs)
    for trained, row in enumerate(pool.imap(_train, todo) if pool else map(_train, todo), 1):
        rows.append(row)
        if trained % checkpoint == 0:
            write()
            print(f"{trained} of {len(todo)} trained, {time.perf_counter() - start:.0f} s", flush=True)
    if pool is not None:
        pool.close()
        pool.join()
    write()
    print(f"wrote {len(rows)} rows to {out}; trained {len(todo)} in {time.perf_counter() - start:.0f} s wall, "
          f"{time.process_time() - cpu_start:.0f} s CPU in this process")


def table_main(space: SearchSpace, table: Path, doc: str | None) -> None:
    """The command line of a table script: this one's and ``nas_cell.py``'s."""
    parser = argparse.ArgumentParser(description=(doc or "").splitlines()[0])
    parser.add_argument("--epochs", type=float, default=6.0)
    parser.add_argument("--out", type=Path, default=table)
    parser.add_argument("--limit", type=int, default=0, help="train only the first N (a quick check)")
    parser.add_argument("--checkpoint", type=int, default=100, help="write the table every N architectures")
    parser.add_argument("--fresh", action="store_true", help="ignore rows already in --out")
    parser.add_argument("--workers", type=int, default=1, help="processes training rows, one thread each")
    args = parser.parse_args()
    build_table(space, args.out, args.epochs, args.limit, args.checkpoint, args.fresh, args.workers)


def main() -> None:
    table_main(nas_space(), TABLE, __doc__)


if __name__ == "__main__":
    main()
