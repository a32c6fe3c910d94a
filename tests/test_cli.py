"""The CLI as a user types it: real subprocesses, real training, and the run directory checked after."""

import json
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from clitools import archsearch_cli as archsearch

from archsearch.pareto import non_dominated_mask, to_minimization

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    cwd = tmp_path_factory.mktemp("cli")
    proc = archsearch("run", "space=mlp", "task=digits", "budget=5", "seed=0", "executor=inline",
                      "run_dir=runs/demo", "training.epochs=2", cwd=cwd)
    return cwd, cwd / "runs" / "demo", proc


def test_run_prints_the_front_and_the_run_directory(demo_run):
    _, run_dir, proc = demo_run
    assert "Pareto front" in proc.stdout
    assert f"run directory: {Path('runs/demo')}" in proc.stdout
    assert "val_accuracy (max)" in proc.stdout and "n_params (min)" in proc.stdout
    assert "Traceback" not in proc.stderr


def test_run_directory_contents(demo_run):
    _, run_dir, _ = demo_run
    info = json.loads((run_dir / "run.json").read_text())
    assert info["space"] == "mlp" and info["strategy"] == "model" and info["task"] == "digits"
    assert info["objectives"] == {"val_accuracy": "maximize", "n_params": "minimize", "latency_ms": "minimize"}
    config = (run_dir / "config.yaml").read_text()
    assert "_target_: archsearch.spaces.BlockGraphSpace" in config and "epochs: 2" in config

    trials = pq.read_table(run_dir / "trials.parquet").to_pandas()
    assert len(trials) == 5
    assert set(trials.status) == {"complete"}
    assert trials.arch_id.is_unique
    assert (trials.val_accuracy > 0.3).all() and (trials.test_accuracy > 0.3).all()
    assert (trials.train_time_s > 0).all() and (trials.latency_ms > 0).all()
    assert trials.started_at.le(trials.finished_at).all()
    for genome in trials.genome_json:
        data = json.loads(genome)
        assert {"nodes", "edges", "meta", "decisions"} <= set(data)

    front = pq.read_table(run_dir / "pareto.parquet").to_pandas()
    objectives = info["objectives"]
    points = to_minimization(trials[list(objectives)].to_numpy(), list(objectives.values()))
    assert set(front.trial_id) == set(trials.trial_id[non_dominated_mask(points)])
    summary = json.loads((run_dir / "pareto.json").read_text())
    assert 0 < summary["hypervolume"] <= 1.1 ** 3
    assert summary["normalization"]["log_scale"] == [False, True, True]

    journal = [json.loads(line) for line in (run_dir / "journal.jsonl").read_text().splitlines()]
    events = [r["event"] for r in journal]
    assert events[0] == "run_created" and events[-1] == "run_finished"
    assert events.count("trial_started") == events.count("trial_finished") == 5


def test_show_prints_summary_and_front(demo_run):
    cwd, run_dir, _ = demo_run
    proc = archsearch("show", str(run_dir), cwd=cwd)
    for text in ("space", "mlp", "strategy", "model", "complete: 5", "best val_accuracy", "hypervolume",
                 "Pareto front"):
        assert text in proc.stdout


def test_existing_run_is_never_overwritten(demo_run):
    cwd, run_dir, _ = demo_run
    before = (run_dir / "journal.jsonl").read_bytes()
    proc = archsearch("run", "run_dir=runs/demo", "budget=2", cwd=cwd, check=False)
    assert proc.returncode == 2
    assert "already holds a run" in proc.stderr and "Traceback" not in proc.stderr
    assert (run_dir / "journal.jsonl").read_bytes() == before


@pytest.mark.ray
def test_defaults_run_on_ray_into_a_named_run_dir(tmp_path):
    archsearch("run", "budget=2", "training.epochs=0.2", "--quiet", cwd=tmp_path)
    (made,) = (tmp_path / "runs").iterdir()
    assert made.name.endswith("-mlp-model")
    trials = pq.read_table(made / "trials.parquet").to_pandas()
    assert len(trials) == 2 and (trials.status == "complete").all()
    assert trials.worker.str.startswith("ray:").all() and trials.node.notna().all()


def test_own_space_file_in_working_directory(tmp_path):
    (tmp_path / "search_spaces").mkdir()
    (tmp_path / "search_spaces" / "tiny.yaml").write_text(
        "_target_: archsearch.spaces.BlockGraphSpace\nname: tiny\ndepth: 1\nwidth: [8]\nactivation: [relu]\n"
        "wiring: [sequential]\nnorm_placement: [pre, none]\n")
    proc = archsearch("run", "space=tiny", "budget=3", "training.epochs=0.2", "executor=inline", "run_dir=r",
                      cwd=tmp_path)
    trials = pq.read_table(tmp_path / "r" / "trials.parquet").to_pandas()
    assert len(trials) == 2  # the space holds two architectures: the run ends when it is exhausted
    assert "tiny" in archsearch("list", "spaces", cwd=tmp_path).stdout
    assert proc.returncode == 0


@pytest.mark.parametrize("strategy, options", [
    ("evolution", ["strategy.population_size=3", "strategy.screen=4"]),
    ("mcts", []),
    ("bayes", ["strategy.n_startup_trials=3"]),
    ("local", ["strategy.n_initial=3", "strategy.screen=4"]),
    ("model", ["strategy.n_initial=3", "strategy.pool_random=6", "strategy.pool_mutations=6",
               "strategy.pool_crossovers=4", "strategy.refine=2"]),
])
def test_every_strategy_runs_from_the_cli_on_a_built_in_space(tmp_path, strategy, options):
    archsearch("run", "space=mlp", f"strategy={strategy}", *options, "budget=6", "training.epochs=0.3",
               "objectives=[val_accuracy:max,n_params:min]", "executor=inline", "run_dir=r", cwd=tmp_path)
    info = json.loads((tmp_path / "r" / "run.json").read_text())
    assert info["strategy"] == strategy
    assert info["objectives"] == {"val_accuracy": "maximize", "n_params": "minimize"}
    trials = pq.read_table(tmp_path / "r" / "trials.parquet").to_pandas()
    assert len(trials) == 6 and (trials.status == "complete").all() and trials.arch_id.is_unique
    if strategy in ("evolution", "local"):  # past its random start, it proposes from what it has learnt
        assert not trials.origin.iloc[3:].str.startswith("random").all(), trials.origin.tolist()
    if strategy == "model":  # past its start, each proposal is the surrogate's pick from a pool: 10-16
        #                      drawn (crossovers once the front has two members), and up to 2 mutations
        #                      around each of the 3 best-ranked
        assert trials.origin.iloc[3:].str.contains("pool of (?:1[0-9]|2[0-2])\\)").all(), trials.origin.tolist()


@pytest.mark.parametrize(
    "args, message",
    [
        (["space=nope"], "unknown space 'nope'; valid spaces: hybrid, kan, mlp, moe, transformer"),
        (["strategy=nope"], "unknown strategy 'nope'; valid strategies: bayes, evolution, local, mcts, model, random"),
        (["task=nope"], "unknown task 'nope'; valid tasks: associative_recall, breast_cancer, diabetes, digits"),
        (["budget=0"], "budget must be a positive number of candidates, got 0"),
        (["budget=-4"], "budget must be a positive number of candidates, got -4"),
        (["budget=[1,"], "malformed override"),
        (["budget"], "malformed override 'budget': write key=value"),
        (["seed='4"], """malformed override "seed='4": the override syntax does not allow "'" at character 6"""),
        (["training.lr=0.1\n0.2"], r"malformed override 'training.lr=0.1\n0.2': the override syntax does not allow '\n'"),
        (["budget=4\n5", "budget=6"], r"budget is given 2 times (budget='4\n5' budget=6)"),
        (["space.depth.high=0"], "space option 'depth'"),
        (["space.activation=[relu,sparkle]"], "sparkle"),
        (["strategy=bayes", "strategy.sampler=cmaes"], "strategy bayes: sampler='cmaes' is not one of tpe, gp"),
        (["strategy=evolution", "strategy.sample_size=0"], "strategy evolution: sample_size=0 must be at least 1"),
        (["strategy=evolution", "strategy.population_size=abc"], "population_size='abc' must be an integer"),
        (["strategy=mcts", "strategy.widening_exponent=2"], "widening_exponent=2 must lie in [0, 1]"),
    ],
)
def test_bad_input_is_one_line_with_exit_status_2(tmp_path, args, message):
    proc = archsearch("run", *args, cwd=tmp_path, check=False)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], proc.stderr
    assert not (tmp_path / "runs").exists()


def test_show_of_a_non_run_is_a_clear_error(tmp_path):
    proc = archsearch("show", str(tmp_path), cwd=tmp_path, check=False)
    assert proc.returncode == 2 and "not an archsearch run directory" in proc.stderr


def test_debug_shows_the_traceback(tmp_path):
    proc = archsearch("--debug", "run", "space=nope", cwd=tmp_path, check=False)
    assert proc.returncode != 0 and "Traceback" in proc.stderr


@pytest.mark.parametrize("what, expected", [("spaces", "mlp"), ("strategies", "random"), ("tasks", "digits"),
                                            ("blocks", "mlp"), ("activations", "gelu"), ("norms", "rmsnorm")])
def test_list(tmp_path, what, expected):
    assert expected in archsearch("list", what, cwd=tmp_path).stdout


def test_quickstart_example_runs(tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "examples" / "quickstart.py"), "--budget", "2", "--epochs",
                           "0.5", "--run-dir", str(tmp_path / "q")], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "val_accuracy" in proc.stdout and "hypervolume" in proc.stdout
    assert pq.read_table(tmp_path / "q" / "trials.parquet").num_rows == 2
