"""What a new user meets in the terminal: architectures with their parallel branches, a progress line that
says what it shows, errors that name the cause (brace expansion, a nested key), every option of a space
or block, the task named, and the Python API saying what it does. No training here: genomes are scored by
a function, so these run in seconds."""

import subprocess
import sys

import pytest
from clitools import archsearch_cli as cli

import archsearch
from archsearch.api import plan_run
from archsearch.console import RichProgress
from archsearch.trial import Candidate, EvalResult


def score(genome):
    width = genome.decisions["width"]
    return {"val_accuracy": 0.5 + width / 1000, "n_params": float(width * 10), "latency_ms": 0.01 * genome.decisions["depth"]}


@pytest.fixture(scope="module")
def parallel_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("parallel")
    for name, seed in (("a", 0), ("b", 1)):
        archsearch.search(space="mlp", evaluate=score, objectives={"val_accuracy": "max", "n_params": "min"},
                          budget=4, seed=seed, executor="inline", run_dir=root / name, quiet=True,
                          overrides=["space.wiring=[parallel]", "space.depth.high=2"])
    return root


@pytest.mark.parametrize("command", [["show", "a"], ["compare", "a", "b"]])
def test_parallel_branches_are_printed_not_eaten_as_markup(parallel_runs, command):
    proc = cli(*command, cwd=parallel_runs)
    rows = [line for line in proc.stdout.splitlines() if "w" in line and "mlp(" in line]
    assert rows and all("[mlp(" in row and " | mlp(" in row for row in rows)  # [branch | branch] +merge
    assert "+sum" in proc.stdout or "+concat" in proc.stdout


def test_progress_line_says_front_and_best_per_objective():
    progress = RichProgress({"val_accuracy": "maximize", "n_params": "minimize"})
    candidate = Candidate({"x": 1}, {"x": 1})
    progress.trial_done(0, candidate, EvalResult("complete", {"val_accuracy": 0.9, "n_params": 5000}))
    progress.trial_done(1, candidate, EvalResult("complete", {"val_accuracy": 0.8, "n_params": 300}))
    progress.trial_done(2, candidate, EvalResult.failed("diverged"))
    assert progress.status_line() == "front 2 · best val_accuracy 0.9 · best n_params 300 · failed 1"


def test_brace_expansion_is_named_in_the_error(tmp_path):
    line = f"{sys.executable} -m archsearch.cli run objectives={{val_accuracy:max,n_params:min}} budget=1"
    proc = subprocess.run(["bash", "-c", line], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "brace expansion" in proc.stderr and "'objectives=[val_accuracy:max,n_params:min]'" in proc.stderr
    assert not (tmp_path / "runs").exists()


def test_top_level_key_that_is_nested_is_suggested(tmp_path):
    proc = cli("run", "epochs=5", cwd=tmp_path, check=False)
    assert proc.returncode == 2 and "did you mean training.epochs=" in proc.stderr


def test_run_help_examples_survive_a_shell():
    proc = cli("run", "--help")
    assert "objectives={" not in proc.stdout and "'objectives=[val_accuracy:max,n_params:min]'" in proc.stdout


@pytest.mark.parametrize(("what", "expected"), [
    (["spaces", "mlp"], ["space.depth", "1..4 (integers)", "space.block_params.mlp.expansion", "0.5 | 1 | 2 | 4"]),
    (["blocks", "moe_topk"], ["experts", "hybrid: 2 | 4", "moe: 2 | 4 | 8", "expert"]),
    (["strategies", "evolution"], ["strategy.population_size", "20", "members per tournament"]),
    (["tasks", "kan_toy"], ["task.function", "exp_sin"]),
])
def test_list_one_option_prints_every_setting(what, expected):
    out = cli("list", *what).stdout
    for text in expected:
        assert text in out


def test_list_block_without_activation_does_not_offer_one():
    out = cli("list", "blocks", "attention").stdout
    assert "position" in out and "relative" in out and "token offset" in out
    assert "activation" not in out and "gene of its own" not in out


def test_list_unknown_name_is_a_one_line_error():
    proc = cli("list", "spaces", "nope", check=False)
    assert proc.returncode == 2 and "valid spaces: hybrid, kan, mlp" in proc.stderr


def test_kan_space_fits_a_function_and_other_spaces_classify_digits():
    assert plan_run(["space=kan"]).run_info["task"] == "kan_toy"
    assert plan_run(["space=kan", "task=digits"]).run_info["task"] == "digits"
    assert plan_run(["space=mlp"]).run_info["task"] == "digits"


def test_python_api_says_what_it_runs_and_where_unless_quiet(tmp_path, capfd):
    archsearch.search(space="mlp", evaluate=score, objectives={"val_accuracy": "max"}, budget=2,
                      executor="inline", run_dir=tmp_path / "loud")
    err = capfd.readouterr().err
    assert "archsearch run: space=mlp strategy=model" in err and f"run directory: {tmp_path / 'loud'}" in err
    archsearch.search(space="mlp", evaluate=score, objectives={"val_accuracy": "max"}, budget=2,
                      executor="inline", run_dir=tmp_path / "quiet", quiet=True)
    assert capfd.readouterr().err == ""


def test_a_space_that_runs_out_says_so(tmp_path, capfd):
    def tiny(chooser):
        return {"x": chooser.suggest_categorical("x", [1, 2])}

    run = archsearch.search(space=tiny, evaluate=lambda a: {"y": a["x"]}, objectives={"y": "max"}, budget=10,
                            executor="inline", run_dir=tmp_path / "r")
    assert run.trials.num_rows == 2 and run.stop_reason == "exhausted"
    assert "stopped after 2 trials: the strategy ran out of new architectures" in capfd.readouterr().err
