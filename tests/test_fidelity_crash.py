"""SIGKILL of the driver at random points of an ``asha`` run, then resume.

The run must end as an uninterrupted one does (same trials, same rungs, same decisions), no completed
rung may be trained again, and only the segment in flight at each kill may be trained twice.
"""

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter

import archsearch
from archsearch.testing.faults import numbered_space
from archsearch.testing.fidelity_toys import EpochEvaluate

OBJECTIVES = {"score": "maximize", "cost": "minimize"}
BUDGET = 24
OVERRIDES = ["fidelity=asha", "fidelity.min_epochs=1", "fidelity.max_epochs=9", "fidelity.eta=3"]
DRIVER = """
import os, sys
import archsearch
from archsearch.testing.faults import numbered_space
from archsearch.testing.fidelity_toys import EpochEvaluate
run_dir, log = sys.argv[1], sys.argv[2]
evaluate = EpochEvaluate(0.01, log)
if os.path.exists(os.path.join(run_dir, "run.json")):
    archsearch.resume(run_dir, space=numbered_space, evaluate=evaluate)
else:
    archsearch.search(space=numbered_space, evaluate=evaluate, budget={budget}, seed=5, objectives={objectives!r},
                      executor="inline", run_dir=run_dir, overrides={overrides!r})
"""


def epochs_logged(log):
    return log.read_text().splitlines() if log.exists() else []


def drive(run_dir, log, kill_after_epochs=None):
    script = DRIVER.format(budget=BUDGET, objectives=OBJECTIVES, overrides=OVERRIDES)
    proc = subprocess.Popen([sys.executable, "-c", script, str(run_dir), str(log)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    if kill_after_epochs is None:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        return
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline and len(epochs_logged(log)) < kill_after_epochs:
        time.sleep(0.002)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)


def journal(run_dir):
    records = []
    for line in (run_dir / "journal.jsonl").read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def test_sigkill_mid_asha_loses_no_rung_and_retrains_only_the_interrupted_segment(tmp_path):
    reference = archsearch.search(space=numbered_space, evaluate=EpochEvaluate(), budget=BUDGET, seed=5,
                                  objectives=OBJECTIVES, executor="inline", run_dir=tmp_path / "reference",
                                  overrides=OVERRIDES).trials.to_pandas()
    total_epochs = int(reference.fidelity.sum())
    rng = random.Random(11)
    run_dir, log = tmp_path / "run", tmp_path / "epochs.log"
    kills = 0
    reported: set[tuple[int, int]] = set()
    for target in sorted(rng.sample(range(2, total_epochs - 4), 6)):
        drive(run_dir, log, kill_after_epochs=target + kills * 6)
        kills += 1
        if not (run_dir / "run.json").exists():
            shutil.rmtree(run_dir, ignore_errors=True)
            continue
        now = {(r["trial_id"], r["rung"]) for r in journal(run_dir) if r.get("event") == "trial_reported"}
        assert reported <= now, "a rung reached before the kill was lost"
        reported = now
    drive(run_dir, log)
    records = journal(run_dir)
    rungs = Counter((r["trial_id"], r["rung"]) for r in records if r.get("event") == "trial_reported")
    assert max(rungs.values()) == 1, "a completed rung was trained and reported again"
    assert max(Counter(r["trial_id"] for r in records if r.get("event") == "trial_finished").values()) == 1
    trials = archsearch.load_run(run_dir).trials.to_pandas()
    columns = ["trial_id", "arch_id", "status", "rung", "fidelity", "score"]
    assert trials[columns].equals(reference[columns])  # the same decisions as a run never killed
    twice = sum(n - 1 for n in Counter(epochs_logged(log)).values())
    assert twice <= kills * 6, "more than the segment in flight at each kill was trained again"
    assert len(epochs_logged(log)) - twice == total_epochs
    assert not list((run_dir / "checkpoints").glob("*.ckpt"))


class InterruptOnContinuation:
    """Wraps the training evaluator; Ctrl-C arrives while the ``n``-th continued segment trains."""

    def __init__(self, inner, n: int = 1) -> None:
        self.inner, self.n, self.seen = inner, n, 0

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def evaluate(self, architecture, fidelity=None, checkpoint=None):
        if checkpoint is not None:
            self.seen += 1
            if self.seen == self.n:
                raise KeyboardInterrupt
        return self.inner.evaluate(architecture, fidelity, checkpoint)


def test_a_paused_trial_resumes_from_its_checkpoint_with_the_weights_of_a_straight_run(tmp_path):
    """Real training: the run stops while a promoted trial continues; resume trains it again from the
    checkpoint saved at its rung, and every trial ends as in a run never stopped."""
    import pytest

    from archsearch._plan import plan_run

    overrides = ["space=mlp", "space.depth.high=1", "space.width=[16,32]", "task=digits", "budget=6", "seed=2",
                 "executor=inline", "fidelity=asha", "fidelity.max_epochs=3", "training.schedule=cosine",
                 "latency.repeats=3", "latency.large_batch=null", "objectives={val_accuracy:max,n_params:min}"]
    reference = plan_run([*overrides, f"run_dir={tmp_path / 'reference'}"]).execute().trials.to_pandas()
    plan = plan_run([*overrides, f"run_dir={tmp_path / 'run'}"])
    plan.evaluator = InterruptOnContinuation(plan.evaluator)
    with pytest.raises(KeyboardInterrupt):
        plan.execute()
    paused = list((tmp_path / "run" / "checkpoints").glob("*.ckpt"))
    assert len(paused) == 1
    run = archsearch.resume(tmp_path / "run")
    assert run.recovery["in_flight_again"] == 1
    trials = run.trials.to_pandas()
    columns = ["trial_id", "arch_id", "status", "rung", "fidelity", "val_accuracy", "n_params"]
    assert trials[columns].equals(reference[columns])
    assert not list((tmp_path / "run" / "checkpoints").glob("*.ckpt"))
