"""Kill -9 soak: drivers killed at random instants over inline and Ray runs, then resumed, over and over.

Each campaign runs one search (a fresh run directory) to the end through repeated ``SIGKILL``s of its
driver at a random delay after start, each followed by a resume. After every kill the journal is read
back and compared with what earlier kills left:

- lost: a trial that had completed and is no longer complete (or has vanished);
- changed: a completed trial whose metrics or architecture differ from before;
- duplicated: a trial id finished twice in the journal, or two finished trials with one start.

At the end of each campaign the run must hold exactly its budget's trials, all complete; inline
campaigns must also propose exactly what an uninterrupted run of the same seed proposes. For Ray
drivers, the Ray processes the killed driver had started are noted before the kill and counted if any
is still alive 5 s after it (the reaper in ``archsearch/execution/reaper.py`` should leave none).

    PYTHONPATH=. OMP_NUM_THREADS=1 python benchmarks/soak.py --inline-kills 70 --ray-kills 30
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

OBJECTIVES = {"score": "maximize", "cost": "minimize"}
DRIVER = """
import os, sys
import archsearch
from archsearch.testing.faults import SlowEvaluate, numbered_space
run_dir, executor, budget, strategy = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
evaluate = SlowEvaluate(0.05 if executor == "inline" else 0.3)
if os.path.exists(os.path.join(run_dir, "run.json")):
    archsearch.resume(run_dir, space=numbered_space, evaluate=evaluate)
else:
    archsearch.search(space=numbered_space, evaluate=evaluate, budget=budget, seed=11, strategy=strategy,
                      objectives={objectives!r}, executor=executor, run_dir=run_dir,
                      overrides=["executor.workers=2"] if executor == "ray" else [])
""".replace("{objectives!r}", repr(OBJECTIVES))


def journal_state(run_dir: Path) -> tuple[dict[int, tuple[str, dict]], int]:
    """Completed trials ``{id: (arch_id, metrics)}`` and the number of duplicate finishes."""
    started: dict[int, str] = {}
    done: dict[int, tuple[str, dict]] = {}
    duplicates = 0
    path = run_dir / "journal.jsonl"
    if not path.exists():
        return done, 0
    for line in path.read_bytes().splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue  # a torn tail: resume keeps it aside
        if record.get("event") == "trial_started":
            started[record["trial_id"]] = record["candidate"]["arch_id"]
        elif record.get("event") == "trial_finished" and record["result"]["status"] == "complete":
            if record["trial_id"] in done:
                duplicates += 1
            done[record["trial_id"]] = (started.get(record["trial_id"], "?"), record["result"]["metrics"])
    return done, duplicates


def _descendants(pid: int) -> dict[int, bytes]:
    stats: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        try:
            stats[int(entry)] = int(Path(f"/proc/{entry}/stat").read_bytes().rsplit(b")", 1)[1].split()[1])
        except (ValueError, OSError, IndexError):
            continue
    found: dict[int, bytes] = {}
    todo = [pid]
    while todo:
        parent = todo.pop()
        for child, ppid in stats.items():
            if ppid == parent and child not in found:
                try:
                    found[child] = Path(f"/proc/{child}/stat").read_bytes().split()[21]  # start time
                except (OSError, IndexError):
                    continue
                todo.append(child)
    return found


def _still_alive(processes: dict[int, bytes]) -> int:
    alive = 0
    for pid, start in processes.items():
        try:
            fields = Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        if fields[19] == start and fields[0] != b"Z":
            alive += 1
    return alive


def uninterrupted(executor: str, budget: int, strategy: str, base: Path) -> list[str]:
    run_dir = base / f"reference-{strategy}"
    if not run_dir.exists():
        subprocess.run([sys.executable, "-c", DRIVER, str(run_dir), executor, str(budget), strategy], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    import archsearch

    return archsearch.load_run(run_dir).trials.column("arch_id").to_pylist()


def campaign(executor: str, budget: int, strategy: str, kills_left: int, delays: tuple[float, float],
             rng: random.Random, base: Path, totals: dict[str, int]) -> int:
    """One run to the end through kills; returns the kills made."""
    run_dir = base / f"{executor}-{totals['campaigns']}"
    totals["campaigns"] += 1
    seen: dict[int, tuple[str, dict]] = {}
    kills = 0
    while True:
        proc = subprocess.Popen([sys.executable, "-c", DRIVER, str(run_dir), executor, str(budget), strategy],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                env={**os.environ, "OMP_NUM_THREADS": "1"})
        killed = False
        if kills < kills_left:
            try:
                proc.wait(timeout=rng.uniform(*delays))
            except subprocess.TimeoutExpired:
                ray_processes = _descendants(proc.pid) if executor == "ray" else {}
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                killed, kills = True, kills + 1
                if ray_processes:
                    time.sleep(5)
                    totals["ray_processes_left"] += _still_alive(ray_processes)
        if not killed:
            _, err = proc.communicate(timeout=900)
            if proc.returncode != 0:
                raise SystemExit(f"driver failed in {run_dir}: {err[-2000:]}")
        if not (run_dir / "run.json").exists():
            shutil.rmtree(run_dir, ignore_errors=True)  # killed before the run directory was complete
            continue
        now, duplicates = journal_state(run_dir)
        totals["duplicated"] += duplicates
        totals["lost"] += sum(1 for i in seen if i not in now)
        totals["changed"] += sum(1 for i, value in seen.items() if i in now and now[i] != value)
        seen = now
        if not killed:
            break
    import archsearch

    trials = archsearch.load_run(run_dir).trials.to_pandas()
    totals["trials_checked"] += len(trials)
    if trials.trial_id.tolist() != list(range(budget)) or not (trials.status == "complete").all():
        totals["bad_final_runs"] += 1
    if executor == "inline" and trials.arch_id.tolist() != uninterrupted(executor, budget, strategy, base):
        totals["inexact_inline_runs"] += 1
    totals[f"{executor}_kills"] += kills
    return kills


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inline-kills", type=int, default=70)
    parser.add_argument("--ray-kills", type=int, default=30)
    parser.add_argument("--budget", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    base = Path(tempfile.mkdtemp(prefix="archsearch-soak-"))
    totals = dict.fromkeys(("campaigns", "inline_kills", "ray_kills", "trials_checked", "lost", "changed",
                            "duplicated", "bad_final_runs", "inexact_inline_runs", "ray_processes_left"), 0)
    wall, cpu = time.monotonic(), resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        for executor, quota, delays in (("inline", args.inline_kills, (0.5, 4.0)), ("ray", args.ray_kills, (3.0, 14.0))):
            strategies = ["random", "evolution", "mcts", "local"]
            made = 0
            while made < quota:
                strategy = strategies[totals["campaigns"] % len(strategies)] if executor == "inline" else "random"
                made += campaign(executor, args.budget, strategy, min(12, quota - made), delays, rng, base, totals)
                print(json.dumps(totals), flush=True)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    child_cpu = children.ru_utime + children.ru_stime - cpu.ru_utime - cpu.ru_stime
    print(f"kills: {totals['inline_kills']} inline + {totals['ray_kills']} Ray over {totals['campaigns']} runs; "
          f"completed trials checked at the end: {totals['trials_checked']}")
    print(f"lost {totals['lost']}, changed {totals['changed']}, duplicated {totals['duplicated']}; final runs not "
          f"exactly their budget of complete trials: {totals['bad_final_runs']}; inline runs not proposing what an "
          f"uninterrupted run proposes: {totals['inexact_inline_runs']}; Ray processes alive 5 s after their "
          f"driver's kill: {totals['ray_processes_left']}")
    print(f"wall {time.monotonic() - wall:.0f} s, CPU of the drivers and workers {child_cpu:.0f} s")


if __name__ == "__main__":
    main()
