"""What the five science scripts share: their command line, machine CPU time, fronts and figures.

Every script answers its question through the public API only (``archsearch.search``, ``load_run``):
what a researcher would write. This module holds the plumbing they would otherwise repeat.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

import archsearch

T = TypeVar("T")


def arguments(description: str, budget: str, seeds: int, tiny_budget: str = "2") -> argparse.Namespace:
    """The options every script takes; ``--tiny`` is the test mode (inline, a couple of 1-epoch trials)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--out", default=None, help="where runs, figures and summary.json go")
    parser.add_argument("--budget", default=None, help=f"budget of each search (default {budget})")
    parser.add_argument("--seeds", type=int, default=None, help=f"search seeds per arm (default {seeds})")
    parser.add_argument("--executor", default="ray", choices=["ray", "inline"])
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                        help="searches run side by side, each inline on one core (scripts of many small searches)")
    parser.add_argument("--tiny", action="store_true", help="smallest run that exercises the script (tests)")
    parser.add_argument("--reuse", action="store_true",
                        help="read the runs already in --out instead of searching again (redraw, re-summarize)")
    args = parser.parse_args()
    if args.tiny:
        args.budget = args.budget or tiny_budget
        args.seeds = args.seeds or 1
        args.executor = "inline"
        args.jobs = 1
    args.budget = args.budget or budget
    args.seeds = args.seeds or seeds
    name = Path(sys.argv[0]).stem
    args.out = Path(args.out or Path("runs") / "science" / name)
    args.out.mkdir(parents=True, exist_ok=True)
    args.command = " ".join(shlex.quote(a) for a in ["python", *sys.argv])
    return args


def machine_cpu_s() -> float:
    """CPU seconds spent by the whole machine (Ray's workers are not this process's children).

    Linux only; elsewhere this process's and its children's CPU time. Other load on the machine counts
    too, so the science runs are made on an otherwise idle machine.
    """
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
        user, nice, system = (int(v) for v in fields[:3])
        irq, softirq = int(fields[5]), int(fields[6])
        return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        t = os.times()
        return t.user + t.system + t.children_user + t.children_system


@contextmanager
def measured(record: dict[str, Any]) -> Iterator[None]:
    """Add ``wall_s`` and ``cpu_s`` (machine CPU seconds) of the block to ``record``."""
    wall, cpu = time.perf_counter(), machine_cpu_s()
    try:
        yield
    finally:
        record["wall_s"] = round(time.perf_counter() - wall, 1)
        record["cpu_s"] = round(machine_cpu_s() - cpu, 1)


def machine() -> dict[str, Any]:
    """The machine the figures were measured on."""
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version()}


def search_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """Keywords for ``archsearch.search`` that follow the command line."""
    return {"budget": args.budget, "executor": args.executor, "quiet": args.tiny,
            "progress": False if not sys.stderr.isatty() else None}


def search(out: str | Path, reuse: bool = False, **kwargs: Any) -> archsearch.Run:
    """``archsearch.search(run_dir=out, ...)``, or with ``reuse`` the run already saved there."""
    if reuse and (Path(out) / "run.json").exists():
        return archsearch.load_run(out)
    return archsearch.search(run_dir=out, **kwargs)


def _one_thread() -> None:
    os.environ["OMP_NUM_THREADS"] = "1"
    import torch

    torch.set_num_threads(1)


def sweep(function: Callable[..., T], items: Sequence[dict[str, Any]], jobs: int) -> list[T]:
    """``function(**item)`` for every item, ``jobs`` at a time in separate processes of one torch thread.

    Many small searches (a task, an arm, a seed each) keep both cores busy this way without starting a
    Ray cluster per search; the results come back in the order of ``items``.
    """
    if jobs <= 1:
        return [function(**item) for item in items]
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn"), initializer=_one_thread) as pool:
        futures = [pool.submit(function, **item) for item in items]
        return [f.result() for f in futures]


def front_points(front: Any, x: str, y: str) -> tuple[list[float], list[float]]:
    """(x, y) of a front table, sorted by x, without missing values."""
    rows = sorted((float(a), float(b)) for a, b in zip(front[x].to_pylist(), front[y].to_pylist(), strict=True)
                  if a is not None and b is not None and np.isfinite(a) and np.isfinite(b))
    return [a for a, _ in rows], [b for _, b in rows]


def best_below(xs: Sequence[float], ys: Sequence[float], limit: float, lower_is_better: bool) -> float | None:
    """The best y among points with x at most ``limit`` (a front read at a parameter budget)."""
    kept = [y for x, y in zip(xs, ys, strict=True) if x <= limit]
    if not kept:
        return None
    return min(kept) if lower_is_better else max(kept)


def spread(values: Sequence[float | None]) -> dict[str, Any]:
    """Mean, sample standard deviation and the values themselves (None where a seed found nothing)."""
    kept = [float(v) for v in values if v is not None]
    return {"mean": float(np.mean(kept)) if kept else None,
            "std": float(np.std(kept, ddof=1)) if len(kept) > 1 else None,
            "n": len(kept), "values": [None if v is None else float(v) for v in values]}


def figure(path: Path, title: str, panels: Sequence[dict[str, Any]], columns: int = 1) -> Path:
    """Draw panels of lines or step fronts into a PNG.

    A panel: ``title``, ``xlabel``, ``ylabel``, ``series``, optional ``logx`` / ``logy``. A series:
    ``label``, ``x``, ``y``, optional ``step`` (a front: staircase), ``style`` (matplotlib format),
    ``color`` and ``alpha``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = -(-len(panels) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(4.2 * columns if columns > 1 else 6.4, 3.2 * rows + 0.6),
                             dpi=100, squeeze=False)
    for ax, panel in zip(axes.flat, panels, strict=False):
        for s in panel["series"]:
            if not s["x"]:
                continue
            kwargs = {"label": s["label"], "alpha": s.get("alpha", 0.9)}
            if s.get("color"):
                kwargs["color"] = s["color"]
            if s.get("step"):
                ax.step(s["x"], s["y"], where="post", marker="o", markersize=3, linewidth=1.2, **kwargs)
            else:
                ax.plot(s["x"], s["y"], s.get("style", "o-"), markersize=3, linewidth=1.2, **kwargs)
        ax.set_title(panel.get("title", ""), fontsize=9)
        ax.set_xlabel(panel.get("xlabel", ""), fontsize=8)
        ax.set_ylabel(panel.get("ylabel", ""), fontsize=8)
        ax.tick_params(labelsize=7)
        if panel.get("logx"):
            ax.set_xscale("log")
        if panel.get("logy"):
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6, loc="best")
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def arm_fronts(by_key: dict, panel: str, colors: dict[str, str], seeds: int, y: str) -> list[dict[str, Any]]:
    """A panel's series: each arm's front (``by_key[panel, arm, seed]``) per seed, the first seed darker."""
    return [{"label": f"{arm} seed {s}", "x": by_key[panel, arm, s]["n_params"], "y": by_key[panel, arm, s][y],
             "step": True, "color": color, "alpha": 0.9 if s == 0 else 0.5}
            for arm, color in colors.items() for s in range(seeds)]


def write_summary(args: argparse.Namespace, summary: dict[str, Any]) -> Path:
    """``summary.json`` in ``--out``: the command, machine, budget, seeds and the answer's figures."""
    summary = {"command": args.command, "budget": args.budget, "seeds": args.seeds, "tiny": args.tiny,
               "machine": machine(), **summary}
    path = args.out / "summary.json"
    path.write_text(json.dumps(summary, indent=1, default=str) + "\n")
    print(json.dumps(summary, indent=1, default=str))
    return path
