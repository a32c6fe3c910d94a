"""Fault injection on the driver: SIGKILL at random instants, torn and corrupted files, then resume.

Every kill is followed by a resume; at the end the run must hold exactly the budget's trials, each
completed once, none altered after it completed, and the same proposals as an uninterrupted run.
"""

import json
import os
import random
import signal
import subprocess
import sys

import pytest

import archsearch
from archsearch.testing.faults import SlowEvaluate, numbered_space

OBJECTIVES = {"score": "maximize", "cost": "minimize"}
BUDGET = 40
DRIVER = """
import os, signal, sys
import archsearch
from archsearch.results.store import RunStore
from archsearch.testing.faults import SlowEvaluate, numbered_space
run_dir, kill_after, window = sys.argv[1], int(sys.argv[2]), sys.argv[3]
journal = os.path.join(run_dir, "journal.jsonl")
finished = [0]
if os.path.exists(journal):
    with open(journal, "rb") as f:
        finished[0] = sum(b'"event": "trial_finished"' in line for line in f)
append, save_state = RunStore.append, RunStore.save_strategy_state

def die():
    os.kill(os.getpid(), signal.SIGKILL)

def armed():
    return 0 <= kill_after <= finished[0]

def patched_append(self, record, durable=True):
    event = record.get("event")
    if event == "trial_started" and window == "torn_start" and armed():
        import json
        with open(journal, "a") as f:  # half a record reaches the disk, then the driver dies
            f.write(json.dumps(dict(record, candidate={{"architecture": "x" * 64}}))[:40])
        die()
    append(self, record, durable)
    if event == "trial_finished":
        finished[0] += 1
    if armed() and (window == "after_finish" and event == "trial_finished"
                    or window == "after_start" and event == "trial_started"):
        die()

def patched_save_state(self, state, durable=False):
    if armed() and window == "before_state":
        die()
    save_state(self, state, durable)
    if armed() and window == "after_state":
        die()

RunStore.append, RunStore.save_strategy_state = patched_append, patched_save_state
if os.path.exists(os.path.join(run_dir, "run.json")):
    archsearch.resume(run_dir, space=numbered_space, evaluate=SlowEvaluate(0.0))
else:
    archsearch.search(space=numbered_space, evaluate=SlowEvaluate(0.0), budget={budget}, seed=3,
                      objectives={objectives!r}, strategy={strategy!r}, executor="inline", run_dir=run_dir)
"""
WINDOWS = ("after_finish", "before_state", "after_state", "after_start", "torn_start")
STRATEGIES = ["random", "evolution", "mcts", "bayes", "local", "model"]


def completed_rows(run_dir):
    rows = {}
    path = run_dir / "journal.jsonl"
    if not path.exists():
        return rows
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if record.get("event") == "trial_finished":
            assert record["trial_id"] not in rows, "a trial finished twice"
            rows[record["trial_id"]] = record["result"]["metrics"]
    return rows


def drive(run_dir, kill_after=-1, window="after_finish", strategy="random"):
    """Run the driver; with ``kill_after``, it SIGKILLs itself in ``window`` once that many trials have
    finished: the kill point is a journal position, so the test does not depend on the machine's load."""
    script = DRIVER.format(budget=BUDGET, objectives=OBJECTIVES, strategy=strategy)
    proc = subprocess.run([sys.executable, "-c", script, str(run_dir), str(kill_after), window],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    if kill_after < 0:
        assert proc.returncode == 0, proc.stderr
    else:
        assert proc.returncode == -signal.SIGKILL, proc.stderr


def uninterrupted(path, strategy="random"):
    return archsearch.search(space=numbered_space, evaluate=SlowEvaluate(0.0), budget=BUDGET, seed=3,
                             objectives=OBJECTIVES, strategy=strategy, executor="inline",
                             run_dir=path).trials.to_pandas()


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    return uninterrupted(tmp_path_factory.mktemp("ref") / "run")


@pytest.mark.parametrize("strategy", ["random", "bayes"])
def test_sigkill_of_the_driver_at_random_points(tmp_path, strategy):
    """Kills at seeded journal positions, each in one of the windows between a journal append, the
    strategy's state save and the next proposal (``bayes`` keeps Optuna's study besides)."""
    reference = uninterrupted(tmp_path / "reference", strategy)
    rng = random.Random(7)
    run_dir = tmp_path / "run"
    seen: dict[int, dict] = {}
    kill_points = sorted(rng.sample(range(1, BUDGET - 5), 10 if strategy == "random" else 8))
    for n, kill_after in enumerate(kill_points):
        window = WINDOWS[n % len(WINDOWS)]
        drive(run_dir, kill_after=kill_after, window=window, strategy=strategy)
        now = completed_rows(run_dir)
        assert all(now[i] == metrics for i, metrics in seen.items()), "a completed trial was altered"
        assert len(now) == kill_after, (window, len(now), kill_after)  # the kill came where it was aimed
        seen = now
    drive(run_dir, strategy=strategy)
    trials = archsearch.load_run(run_dir).trials.to_pandas()
    assert trials.trial_id.tolist() == list(range(BUDGET))
    assert (trials.status == "complete").all()
    assert trials.arch_id.tolist() == reference.arch_id.tolist()  # the strategy continued exactly
    assert trials.score.tolist() == reference.score.tolist()
    assert all(completed_rows(run_dir)[i] == m for i, m in seen.items())


def test_power_loss_torn_journal_record_is_cut_and_reported(tmp_path, reference):
    run_dir = tmp_path / "run"
    archsearch.search(space=numbered_space, evaluate=SlowEvaluate(0.0), budget=10, seed=3, objectives=OBJECTIVES,
                      strategy="random", executor="inline", run_dir=run_dir)
    journal = run_dir / "journal.jsonl"
    lines = journal.read_text().splitlines(keepends=True)
    last_finish = max(i for i, line in enumerate(lines) if '"trial_finished"' in line)
    journal.write_text("".join(lines[:last_finish]) + lines[last_finish][:25])  # torn mid-record
    assert archsearch.load_run(run_dir).trials.num_rows == 10  # readable as it is: the torn tail is skipped
    run = archsearch.resume(run_dir, budget=BUDGET, space=numbered_space, evaluate=SlowEvaluate(0.0))
    assert run.recovery["journal"].startswith("cut a torn last journal record")
    assert run.recovery["in_flight_again"] == 1 and run.recovery["completed"] == 9
    trials = run.trials.to_pandas()
    assert trials.trial_id.tolist() == list(range(BUDGET)) and (trials.status == "complete").all()
    assert trials.arch_id.tolist() == reference.arch_id.tolist()
    assert (run_dir / "journal.jsonl.torn").exists()


@pytest.mark.parametrize("damage", ["delete", "garbage", "ahead"])
def test_lost_or_corrupted_strategy_state_is_rebuilt_from_the_journal(tmp_path, reference, damage):
    run_dir = tmp_path / "run"
    archsearch.search(space=numbered_space, evaluate=SlowEvaluate(0.0), budget=12, seed=3, objectives=OBJECTIVES,
                      strategy="random", executor="inline", run_dir=run_dir)
    damage_state(run_dir, damage)
    run = archsearch.resume(run_dir, budget=BUDGET, space=numbered_space, evaluate=SlowEvaluate(0.0))
    assert run.recovery["strategy_state"].startswith("rebuilt from the journal")
    assert run.trials.column("arch_id").to_pylist() == reference.arch_id.tolist()


@pytest.mark.parametrize("strategy", [s for s in STRATEGIES if s != "random"])
def test_every_strategy_continues_exactly_after_losing_its_state(tmp_path, strategy):
    """The state is rebuilt by replaying the journal into a fresh strategy, whatever the strategy."""
    budget = 24
    reference = archsearch.search(space=numbered_space, evaluate=SlowEvaluate(0.0), budget=budget, seed=3,
                                  objectives=OBJECTIVES, strategy=strategy, executor="inline",
                                  run_dir=tmp_path / "reference").trials.column("arch_id").to_pylist()
    run_dir = tmp_path / "run"
    archsearch.search(space=numbered_space, evaluate=SlowEvaluate(0.0), budget=10, seed=3, objectives=OBJECTIVES,
                      strategy=strategy, executor="inline", run_dir=run_dir)
    damage_state(run_dir, "delete")
    run = archsearch.resume(run_dir, budget=budget, space=numbered_space, evaluate=SlowEvaluate(0.0))
    assert run.recovery["strategy_state"].startswith("rebuilt from the journal")
    assert run.trials.column("arch_id").to_pylist() == reference
    assert '"replay_mismatch"' not in (run_dir / "journal.jsonl").read_text()


def damage_state(run_dir, damage):
    state = run_dir / "strategy_state.json"
    if damage == "delete":
        state.unlink()
    elif damage == "garbage":
        state.write_text("{not json")
    else:
        data = json.loads(state.read_text())
        data["journal_ops"] += 5
        state.write_text(json.dumps(data))


def test_corrupted_parquet_tables_do_not_lose_the_run(tmp_path):
    run_dir = tmp_path / "run"
    archsearch.search(space=numbered_space, evaluate=SlowEvaluate(0.0), budget=5, seed=3, objectives=OBJECTIVES,
                      executor="inline", run_dir=run_dir)
    (run_dir / "trials.parquet").write_bytes(b"PAR1 this is not parquet")
    (run_dir / "pareto.parquet").write_bytes(b"")
    assert archsearch.load_run(run_dir).trials.num_rows == 5  # tables are rebuilt from the journal
    run = archsearch.resume(run_dir, budget=7, space=numbered_space, evaluate=SlowEvaluate(0.0))
    import pyarrow.parquet as pq

    assert pq.read_table(run_dir / "trials.parquet").num_rows == 7 == run.trials.num_rows


@pytest.mark.parametrize("damage, message", [
    ("run_list", "run.json is corrupted: expected a JSON object"),
    ("journal_not_object", "is corrupted at line 2: a record must be a JSON object"),
    ("journal_missing_field", "is corrupted at line 2: trial_started record without a valid 'candidate'"),
])
def test_corrupted_run_files_are_one_line_errors(tmp_path, damage, message):
    from clitools import archsearch_cli

    run_dir = tmp_path / "run"
    archsearch.search(space=numbered_space, evaluate=SlowEvaluate(0.0), budget=3, seed=3, objectives=OBJECTIVES,
                      executor="inline", run_dir=run_dir)
    journal = run_dir / "journal.jsonl"
    lines = journal.read_text().splitlines(keepends=True)
    if damage == "run_list":
        (run_dir / "run.json").write_text("[1, 2]")
    elif damage == "journal_not_object":
        journal.write_text(lines[0] + "[3]\n" + "".join(lines[2:]))
    else:
        record = json.loads(lines[1])
        assert record["event"] == "trial_started"
        del record["candidate"]
        journal.write_text(lines[0] + json.dumps(record) + "\n" + "".join(lines[2:]))
    for command in (["show", str(run_dir)], ["resume", str(run_dir)]):
        proc = archsearch_cli(*command, cwd=tmp_path, check=False)
        assert proc.returncode == 2, proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1 and message in proc.stderr, proc.stderr


def test_ctrl_c_inside_a_proposal_keeps_the_last_saved_state(tmp_path):
    """An interrupt while the strategy is choosing (model's proposals take a while) must not save a
    strategy that has drawn half a proposal: the resumed run proposes what an uninterrupted one did."""
    budget = 16
    reference = uninterrupted(tmp_path / "reference", "model").arch_id.tolist()[:budget]
    calls = [0]

    def interrupting_space(chooser):
        calls[0] += 1
        if calls[0] == 700:  # inside the pool of the 13th proposal (the model phase)
            raise KeyboardInterrupt
        return numbered_space(chooser)

    run_dir = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        archsearch.search(space=interrupting_space, evaluate=SlowEvaluate(0.0), budget=budget, seed=3,
                          objectives=OBJECTIVES, strategy="model", executor="inline", run_dir=run_dir, quiet=True)
    assert 8 < archsearch.load_run(run_dir).trials.num_rows < budget
    run = archsearch.resume(run_dir, space=numbered_space, evaluate=SlowEvaluate(0.0), quiet=True)
    assert run.recovery["strategy_state"] == "loaded"
    assert run.trials.column("arch_id").to_pylist() == reference
