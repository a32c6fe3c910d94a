"""A run directory that a second writer, a damaged byte or an emptied journal cannot break (issue 16).

Findings 1 (no lock), 2 (damaged journal tails) and 8 (a deleted or emptied journal) each have a test
here that failed before the fix.
"""

import json
import os
import signal
import subprocess
import sys

import pytest
from clitools import archsearch_cli

import archsearch
from archsearch.results.lock import LOCK_FILE, RunLock, RunLockedError
from archsearch.results.store import RunDirError, RunStore
from archsearch.testing.faults import SlowEvaluate, numbered_space

OBJECTIVES = {"score": "maximize", "cost": "minimize"}


def small_run(run_dir, budget=6):
    return archsearch.search(space=numbered_space, evaluate=SlowEvaluate(0.0), budget=budget, seed=3,
                             objectives=OBJECTIVES, executor="inline", run_dir=run_dir)


def resume(run_dir, budget):
    return archsearch.resume(run_dir, budget=budget, space=numbered_space, evaluate=SlowEvaluate(0.0))


HOLDER = """
import sys
from archsearch.results.lock import RunLock
lock = RunLock(sys.argv[1]).acquire("resume")
print("held", flush=True)
sys.stdin.read()
"""


def hold_lock(run_dir):
    """A separate process holding the run's lock until its stdin closes (or it is killed)."""
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(run_dir)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


# -- finding 1: one writer --------------------------------------------------------------------------


def test_a_second_writer_is_refused_naming_the_holder_and_a_killed_holder_frees_the_lock(tmp_path):
    run_dir = tmp_path / "run"
    small_run(run_dir, budget=3)
    holder = hold_lock(run_dir)
    try:
        with pytest.raises(RunLockedError, match=rf"pid {holder.pid} on \S+ since .* \(kill {holder.pid}\)"):
            resume(run_dir, budget=5)
    finally:
        holder.send_signal(signal.SIGKILL)  # a holder that dies without releasing: the kernel frees it
        holder.wait()
    assert len([r for r in RunStore(run_dir).records() if r["event"] == "trial_started"]) == 3  # untouched
    assert resume(run_dir, budget=5).trials.num_rows == 5


def test_a_new_run_on_a_locked_directory_is_refused_before_writing(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    holder = hold_lock(run_dir)
    try:
        with pytest.raises(RunLockedError, match="another archsearch resume writes it"):
            small_run(run_dir)
        proc = archsearch_cli("run", "executor=inline", "budget=1", f"run_dir={run_dir}", "--quiet", cwd=tmp_path,
                              check=False)
        errors = [line for line in proc.stderr.splitlines() if line.startswith("archsearch: error")]
        assert proc.returncode == 2 and len(errors) == 1 and "Traceback" not in proc.stderr, proc.stderr
        assert f"another archsearch resume writes it (pid {holder.pid} on" in errors[0]
    finally:
        holder.stdin.close()
        holder.wait()
    assert {p.name for p in run_dir.iterdir()} == {LOCK_FILE}


CONCURRENT_RESUME = """
import sys
import archsearch
from archsearch.testing.faults import SlowEvaluate, numbered_space
try:
    archsearch.resume(sys.argv[1], budget=20, space=numbered_space, evaluate=SlowEvaluate(0.02))
except archsearch.errors.ArchsearchError as exc:
    print(exc, file=sys.stderr)
    sys.exit(2)
"""


def test_two_concurrent_resumes_one_runs_the_other_is_refused(tmp_path):
    run_dir = tmp_path / "run"
    small_run(run_dir, budget=4)
    procs = [subprocess.Popen([sys.executable, "-c", CONCURRENT_RESUME, str(run_dir)], stderr=subprocess.PIPE,
                              text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}) for _ in range(2)]
    outcomes = sorted((p.wait(timeout=300), p.stderr.read()) for p in procs)
    # Overlapping, one is refused; on a loaded machine the first may finish before the second starts, and
    # the second then finds the budget spent. Either way no trial is trained twice.
    assert [code for code, _ in outcomes] in ([0, 2], [0, 0]), outcomes
    if outcomes[1][0] == 2:
        assert "another archsearch resume writes it" in outcomes[1][1]
    records = list(RunStore(run_dir).records())
    started = [r["trial_id"] for r in records if r["event"] == "trial_started"]
    finished = [r["trial_id"] for r in records if r["event"] == "trial_finished"]
    assert started == finished == list(range(20))  # no trial id twice


def test_the_lock_is_released_on_every_exit_path(tmp_path):
    run_dir = tmp_path / "run"
    small_run(run_dir, budget=2)
    with pytest.raises(RunDirError):  # a refused resume (emptied journal, below) must not keep the lock
        (run_dir / "journal.jsonl").write_text("")
        resume(run_dir, budget=4)
    lock = RunLock(run_dir).acquire()  # free again
    lock.release()


def test_without_a_lock_nothing_is_appended(tmp_path):
    run_dir = tmp_path / "run"
    small_run(run_dir, budget=2)
    with pytest.raises(RunDirError, match="needs the run's lock"):
        RunStore.open(run_dir).append({"event": "note"})


# -- finding 2: damaged tails -----------------------------------------------------------------------

TAILS = {
    "nul_bytes": b"\x00" * 4096,  # a power-loss artifact
    "invalid_utf8": b'{"event": "trial_finished", "x": "\xff\xfe"}\n',
    "newline_terminated_garbage": b"this is not json\n",
    "garbage_lines": b'{"event": "trial_fin\n\x00\x00\nnot json either',
    "deep_nesting": b"[" * 200_000 + b"]" * 200_000 + b"\n",
}


@pytest.mark.parametrize("tail", sorted(TAILS))
def test_a_damaged_tail_is_kept_aside_and_every_completed_trial_survives(tmp_path, tail):
    run_dir = tmp_path / "run"
    small_run(run_dir, budget=6)
    journal = run_dir / "journal.jsonl"
    intact = journal.read_bytes()
    journal.write_bytes(intact + TAILS[tail])
    assert archsearch.load_run(run_dir).trials.num_rows == 6  # readers skip the tail
    proc = archsearch_cli("show", str(run_dir), cwd=tmp_path, check=False)
    assert proc.returncode == 0, proc.stderr
    run = resume(run_dir, budget=8)
    assert run.recovery["journal"].startswith("cut a torn last journal record")
    assert run.recovery["completed"] == 6 and run.recovery["in_flight_again"] == 0
    assert (run_dir / "journal.jsonl.torn").read_bytes() == TAILS[tail]
    assert journal.read_bytes().startswith(intact)
    assert run.trials.num_rows == 8 and (run.trials.column("status").to_pylist() == ["complete"] * 8)
    assert archsearch_cli("report", str(run_dir), cwd=tmp_path, check=False).returncode == 0


def test_a_valid_last_record_lacking_only_its_newline_is_kept(tmp_path):
    run_dir = tmp_path / "run"
    small_run(run_dir, budget=6)
    journal = run_dir / "journal.jsonl"
    lines = journal.read_bytes().splitlines(keepends=True)
    last_finish = max(i for i, line in enumerate(lines) if b'"trial_finished"' in line)
    journal.write_bytes(b"".join(lines[:last_finish]) + lines[last_finish].rstrip(b"\n"))
    assert archsearch.load_run(run_dir).trials.column("status").to_pylist() == ["complete"] * 6
    run = resume(run_dir, budget=7)
    assert run.recovery["completed"] == 6 and run.recovery["in_flight_again"] == 0  # not trained again
    assert run.recovery["journal"].startswith("completed the last record's line")
    assert not (run_dir / "journal.jsonl.torn").exists()


def test_damage_in_the_middle_is_an_error_naming_the_line_never_a_silent_drop(tmp_path):
    run_dir = tmp_path / "run"
    small_run(run_dir, budget=3)
    journal = run_dir / "journal.jsonl"
    lines = journal.read_bytes().splitlines(keepends=True)
    journal.write_bytes(b"".join(lines[:2]) + b"\x00\x00garbage\n" + b"".join(lines[2:]))
    for command in ("show", "resume"):
        proc = archsearch_cli(command, str(run_dir), cwd=tmp_path, check=False)
        assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
        assert "journal.jsonl is corrupted at line 3: it does not parse, and valid records follow" in proc.stderr
    assert not (run_dir / "journal.jsonl.torn").exists()


@pytest.mark.parametrize("result", [{}, {"status": "complete", "metrics": {"score": "high"}},
                                    {"status": "done"}, {"status": "complete", "info": []}])
def test_a_finished_record_with_a_malformed_result_is_refused_with_its_line(tmp_path, result):
    run_dir = tmp_path / "run"
    small_run(run_dir, budget=2)
    journal = run_dir / "journal.jsonl"
    lines = journal.read_text().splitlines(keepends=True)
    number = next(i for i, line in enumerate(lines) if '"trial_finished"' in line)
    record = json.loads(lines[number])
    record["result"] = result
    lines[number] = json.dumps(record) + "\n"
    journal.write_text("".join(lines))
    with pytest.raises(RunDirError, match=f"corrupted at line {number + 1}: trial_finished record whose"):
        archsearch.load_run(run_dir)


# -- finding 8: a deleted or emptied journal --------------------------------------------------------


@pytest.mark.parametrize("damage", ["delete", "empty", "header_only"])
def test_resume_refuses_a_journal_that_lost_its_trials_when_the_table_holds_them(tmp_path, damage):
    run_dir = tmp_path / "run"
    small_run(run_dir, budget=4)
    journal = run_dir / "journal.jsonl"
    table = (run_dir / "trials.parquet").read_bytes()
    if damage == "delete":
        journal.unlink()
    else:
        journal.write_text("" if damage == "empty" else journal.read_text().splitlines(keepends=True)[0])
    for command in ("resume", "show"):
        proc = archsearch_cli(command, str(run_dir), cwd=tmp_path, check=False)
        assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
        assert "trials.parquet holds 4 trials; restore the journal from a backup" in proc.stderr
    assert (run_dir / "trials.parquet").read_bytes() == table  # the last copy of the results is untouched
