import json

import numpy as np
import pyarrow.parquet as pq
import pytest

import archsearch
from archsearch.pareto import non_dominated_mask, to_minimization
from archsearch.results import RunDirError, RunStore, load_run
from archsearch.trial import Candidate, EvalResult

OBJECTIVES = {"score": "maximize", "cost": "minimize"}


def make_run(path, points, statuses=None):
    store = RunStore.create(path, {"space": "toy", "strategy": "random", "objectives": OBJECTIVES}, "seed: 0\n")
    for i, (score, cost) in enumerate(points):
        candidate = Candidate({"i": i}, {"i": i})
        store.trial_started(i, candidate)
        status = statuses[i] if statuses else "complete"
        metrics = {"score": score, "cost": cost}
        result = EvalResult(status, metrics if status == "complete" else {}, None if status == "complete" else "x")
        store.trial_finished(i, result)
    store.write_tables()
    return store


def test_tables_have_one_row_per_trial_and_the_documented_columns(tmp_path):
    make_run(tmp_path / "r", [(0.5, 3), (0.7, 5), (0.4, 4)])
    table = pq.read_table(tmp_path / "r" / "trials.parquet")
    assert table.num_rows == 3
    for column in ("trial_id", "arch_id", "genome_json", "decisions_json", "status", "error", "fidelity",
                   "started_at", "finished_at", "duration_s", "score", "cost"):
        assert column in table.column_names
    assert table.schema.metadata[b"archsearch.schema_version"] == b"1"
    assert json.loads(table.column("genome_json")[0].as_py()) == {"i": 0}


def test_pareto_is_exactly_the_non_dominated_complete_trials(tmp_path):
    rng = np.random.default_rng(0)
    points = [(float(s), float(c)) for s, c in zip(rng.integers(0, 6, 40), rng.integers(0, 6, 40), strict=True)]
    statuses = ["complete" if i % 7 else "failed" for i in range(40)]
    make_run(tmp_path / "r", points, statuses)
    front = pq.read_table(tmp_path / "r" / "pareto.parquet").to_pylist()
    complete = [(i, p) for i, p in enumerate(points) if statuses[i] == "complete"]
    mask = non_dominated_mask(to_minimization(np.array([p for _, p in complete]), ["maximize", "minimize"]))
    expected = {i for (i, _), keep in zip(complete, mask, strict=True) if keep}
    assert {row["trial_id"] for row in front} == expected
    assert all(row["status"] == "complete" for row in front)
    summary = json.loads((tmp_path / "r" / "pareto.json").read_text())
    assert summary["hypervolume"] > 0 and summary["reference_point"] == [1.1, 1.1]
    assert summary["normalization"]["names"] == ["score", "cost"]
    assert sorted(summary["pareto_trial_ids"]) == sorted(expected)


def test_create_refuses_an_existing_run_and_keeps_it(tmp_path):
    make_run(tmp_path / "r", [(0.5, 3)])
    before = (tmp_path / "r" / "journal.jsonl").read_text()
    with pytest.raises(RunDirError, match="already holds a run"):
        RunStore.create(tmp_path / "r", {"objectives": OBJECTIVES}, "")
    assert (tmp_path / "r" / "journal.jsonl").read_text() == before
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(RunDirError, match="not empty"):
        RunStore.create(tmp_path / "other", {"objectives": OBJECTIVES}, "")


def test_torn_last_journal_line_is_ignored(tmp_path):
    store = make_run(tmp_path / "r", [(0.5, 3), (0.6, 4)])
    with open(store.path / "journal.jsonl", "a") as f:
        f.write('{"event": "trial_fin')
    run = load_run(tmp_path / "r")
    assert run.trials.num_rows == 2


def test_corrupted_middle_of_journal_is_an_error(tmp_path):
    store = make_run(tmp_path / "r", [(0.5, 3), (0.6, 4)])
    lines = (store.path / "journal.jsonl").read_text().splitlines()
    lines[1] = lines[1][:10]
    (store.path / "journal.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(RunDirError, match="corrupted at line 2"):
        load_run(tmp_path / "r").trials  # noqa: B018


def test_unfinished_trials_show_as_running(tmp_path):
    store = make_run(tmp_path / "r", [(0.5, 3)])
    store.trial_started(1, Candidate({"i": 1}, {"i": 1}))
    run = load_run(tmp_path / "r")
    assert run.trials.column("status").to_pylist() == ["complete", "running"]
    assert run.pareto().column("trial_id").to_pylist() == [0]


def test_load_run_refuses_non_runs_and_newer_schemas(tmp_path):
    with pytest.raises(RunDirError, match="not an archsearch run directory"):
        load_run(tmp_path)
    make_run(tmp_path / "r", [(0.5, 3)])
    info = json.loads((tmp_path / "r" / "run.json").read_text())
    info["schema_version"] = 99
    (tmp_path / "r" / "run.json").write_text(json.dumps(info))
    with pytest.raises(RunDirError, match="schema_version 99"):
        load_run(tmp_path / "r")


def test_run_opens_a_path_as_its_repr_suggests(tmp_path):
    from archsearch.testing.faults import SlowEvaluate, numbered_space

    run = archsearch.search(space=numbered_space, evaluate=SlowEvaluate(0.0), objectives={"score": "maximize"},
                            budget=3, executor="inline", run_dir=tmp_path / "r", quiet=True)
    again = archsearch.Run(tmp_path / "r")
    assert repr(again) == repr(run) == f"Run({str(tmp_path / 'r')!r}, trials=3)"
    assert again.trials.equals(run.trials)
    with pytest.raises(archsearch.ArchsearchError):
        archsearch.Run(tmp_path / "nothing here")
