"""Kept weights, export / load_model, and resume (after a finished run and after Ctrl-C)."""

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest
import torch
from clitools import archsearch_cli as cli
from safetensors.torch import load_file

import archsearch
from archsearch.errors import ArchsearchError

FAST = ["training.epochs=0.3", "latency.repeats=5", "latency.large_batch=null"]


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    path = tmp_path_factory.mktemp("runs") / "run"
    return archsearch.search(space="mlp", budget=6, seed=0, executor="inline", run_dir=path, overrides=FAST)


def test_weights_are_kept_for_exactly_the_front(small_run):
    front = set(small_run.pareto().column("trial_id").to_pylist())
    assert set(small_run.store.kept_weights()) == front
    from safetensors import safe_open

    with safe_open(small_run.store.weights_path(min(front)), "pt") as weights:
        assert weights.metadata() == {"archsearch.schema_version": "1"}


def test_retraining_reproduces_the_kept_weights(small_run):
    trial = small_run.pareto().column("trial_id")[0].as_py()
    kept = load_file(small_run.store.weights_path(trial))
    from safetensors.torch import load

    from archsearch.results.export import retrain_weights

    again = load(retrain_weights(small_run, trial))
    assert kept.keys() == again.keys()
    assert all(torch.equal(kept[k], again[k]) for k in kept)


def test_export_and_load_model_give_the_runs_outputs(small_run, tmp_path):
    trial = small_run.pareto().column("trial_id")[0].as_py()
    proc = cli("export", str(small_run.path), str(trial), str(tmp_path / "model"))
    assert "exported trial" in proc.stdout
    for name in ("genome.json", "model.safetensors", "model.json", "README.md"):
        assert (tmp_path / "model" / name).exists()
    model = archsearch.load_model(tmp_path / "model")
    reference = small_run.model(trial)
    from sklearn.datasets import load_digits

    from archsearch.tasks import load_task
    from archsearch.tasks.arrays import split_indices

    task = load_task("digits", seed=0)
    x = torch.from_numpy(task.x_val[:32])
    digits = load_digits()  # the same rows, raw: the exported model standardizes them itself
    raw = digits.data[split_indices(len(digits.target), 0.2, 0.2, 0, digits.target)[1][:32]]
    with torch.no_grad():
        assert torch.equal(model.network(x), reference(x))
        assert torch.allclose(model(torch.from_numpy(raw).float()), reference(x), atol=1e-4)
    accuracy = (model.predict(raw) == task.y_val[:32]).mean()
    assert accuracy > 0.3  # trained weights, not a fresh initialization
    assert model.predict_proba(raw).shape == (32, 10)
    described = json.loads((tmp_path / "model" / "model.json").read_text())
    assert described["arch_id"] == small_run.trial_row(trial)["arch_id"] and not described["retrained"]
    prep = described["preprocessing"]
    assert prep["input_kind"] == "vector" and prep["input_shape"] == [64] and len(prep["x_mean"]) == 64
    assert prep["classes"] == list(range(10))
    readme = (tmp_path / "model" / "README.md").read_text()
    assert "a vector of 64 features" in readme and "vocabulary" not in readme and "e+" not in readme


def test_export_of_a_trial_without_weights_needs_retrain(small_run, tmp_path):
    off_front = sorted(set(range(6)) - set(small_run.store.kept_weights()))
    if not off_front:
        pytest.skip("every trial is on the front")
    trial = off_front[0]
    proc = cli("export", str(small_run.path), str(trial), str(tmp_path / "m"), check=False)
    assert proc.returncode == 2 and "--retrain" in proc.stderr
    cli("export", str(small_run.path), str(trial), str(tmp_path / "m"), "--retrain")
    assert json.loads((tmp_path / "m" / "model.json").read_text())["retrained"]
    archsearch.load_model(tmp_path / "m")


def test_export_errors(small_run, tmp_path):
    proc = cli("export", str(small_run.path), "99", str(tmp_path / "m"), check=False)
    assert proc.returncode == 2 and "has no trial 99" in proc.stderr
    with pytest.raises(ArchsearchError, match="not an exported model"):
        archsearch.load_model(tmp_path)


def test_resume_a_finished_run_to_a_larger_budget_continues_the_strategy(tmp_path):
    archsearch.search(budget=3, seed=2, executor="inline", run_dir=tmp_path / "a", overrides=FAST)
    resumed = archsearch.resume(tmp_path / "a", budget=6)
    straight = archsearch.search(budget=6, seed=2, executor="inline", run_dir=tmp_path / "b", overrides=FAST)
    ids = resumed.trials.column("arch_id").to_pylist()
    assert resumed.trials.column("trial_id").to_pylist() == list(range(6))
    assert ids == straight.trials.column("arch_id").to_pylist()  # continued, not restarted
    assert '"event": "run_resumed"' in (tmp_path / "a" / "journal.jsonl").read_text()


@pytest.mark.parametrize(
    "changes, message",
    [(["space=kan"], "resume takes budget="), (["executor.colour=red"], "unknown option 'executor.colour'")],
)
def test_resume_refuses_changes_to_what_is_searched(small_run, changes, message):
    with pytest.raises(ArchsearchError, match=message):
        archsearch.resume(small_run.path, overrides=changes)


def test_resume_of_a_callable_space_run_needs_the_callables(tmp_path):
    from archsearch.testing.faults import numbered_space, score

    archsearch.search(space=numbered_space, evaluate=score, objectives={"score": "maximize"}, budget=3,
                      executor="inline", run_dir=tmp_path / "r")
    with pytest.raises(ArchsearchError, match="resume it from Python"):
        archsearch.resume(tmp_path / "r", budget=5)
    run = archsearch.resume(tmp_path / "r", budget=5, space=numbered_space, evaluate=score)
    assert run.trials.num_rows == 5 and len(set(run.trials.column("arch_id").to_pylist())) == 5


def test_ctrl_c_then_resume_matches_an_uninterrupted_run(tmp_path):
    # 16 trials, so that the resumed part has the default strategy learning from results. No timing
    # objective: it learns from what it is given, and a measured latency differs between two runs of a seed.
    args = ["run", "space=mlp", "budget=16", "seed=5", "executor=inline", "training.epochs=1", "latency.repeats=5",
            "objectives=[val_accuracy:max,n_params:min]"]
    # SIGINT back to its default in the child: a test run started in the background of a shell without job
    # control inherits SIGINT ignored, and Python then leaves it ignored (the run would finish, exit 0).
    proc = subprocess.Popen([sys.executable, "-m", "archsearch.cli", *args, f"run_dir={tmp_path / 'cut'}"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"},
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    journal = tmp_path / "cut" / "journal.jsonl"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if journal.exists() and journal.read_text().count("trial_finished") >= 2:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "archsearch resume" in err
    interrupted = archsearch.load_run(tmp_path / "cut").trials.to_pandas()
    assert 2 <= (interrupted.status == "complete").sum() < 16

    cli("resume", str(tmp_path / "cut"), "--quiet")
    cli(*args, f"run_dir={tmp_path / 'whole'}", "--quiet")
    cut = archsearch.load_run(tmp_path / "cut").trials.to_pandas()
    whole = archsearch.load_run(tmp_path / "whole").trials.to_pandas()
    assert len(cut) == len(whole) == 16 and (cut.status == "complete").all()
    assert cut.arch_id.tolist() == whole.arch_id.tolist()  # the strategy continued where it stopped
    assert cut.val_accuracy.tolist() == whole.val_accuracy.tolist()  # same seed, same training

    cli("resume", str(tmp_path / "cut"), "budget=18", "--quiet")  # a finished run, given more budget
    grown = archsearch.load_run(tmp_path / "cut").trials.to_pandas()
    assert len(grown) == 18 and grown.arch_id.is_unique and (grown.status == "complete").all()
    assert grown.arch_id.tolist()[:16] == whole.arch_id.tolist()


def test_exported_model_example_predicts_raw_test_images(small_run):
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    proc = subprocess.run([sys.executable, os.path.join(root, "examples", "use_exported_model.py"), str(small_run.path)],
                          capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr
    accuracy, recorded = map(float, re.search(r"raw test images: ([\d.]+) \(the run recorded test_accuracy ([\d.]+)",
                                              proc.stdout).groups())
    assert accuracy == recorded  # the exported model's own preprocessing reproduces the run's test metric
