"""Objectives no trial can produce, trials that omit one, metric names that collide with the table's
own columns, sys.exit() in evaluate and a space that raises (issue 16, finding 6)."""

import pytest
from clitools import archsearch_cli

import archsearch
from archsearch.errors import ConfigError
from archsearch.testing.faults import ExitOn, SlowEvaluate, numbered_space, space_raising_sometimes

OBJECTIVES = {"score": "maximize", "cost": "minimize"}


def test_an_objective_the_task_cannot_produce_is_refused_before_training(tmp_path):
    proc = archsearch_cli("run", "objectives={foo:max}", "executor=inline", f"run_dir={tmp_path / 'r'}",
                          cwd=tmp_path, check=False)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().startswith("archsearch: error: objective 'foo' is not a metric of task 'digits'; "
                                          "its metrics: n_params, flops")
    assert not (tmp_path / "r").exists()


def test_objectives_named_like_a_fixed_column_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="objective 'status' is the name of a column archsearch fills itself"):
        archsearch.search(space=numbered_space, evaluate=SlowEvaluate(0.0), objectives={"status": "max"},
                          executor="inline", run_dir=tmp_path / "r")
    assert not (tmp_path / "r").exists()


def omits_cost(arch):
    return {"score": 1.0} if arch["x"] % 2 else {"score": 0.5, "cost": 1.0}


def colliding(arch):
    return {"score": 1.0, "cost": 1.0, "status": 2.0, "metric_status": 3.0}


def test_a_trial_missing_an_objective_fails_naming_it(tmp_path):
    run = archsearch.search(space=numbered_space, evaluate=omits_cost, objectives=OBJECTIVES, budget=8,
                            executor="inline", run_dir=tmp_path / "r")
    trials = run.trials.to_pandas()
    odd = trials.genome_json.map(lambda g: int(g.split(":")[1].strip(" }")) % 2 == 1)
    assert (trials[odd].status == "failed").all() and (trials[~odd].status == "complete").all()
    assert trials[odd].error.str.startswith("did not report objective 'cost' (reported: eval_time_s, score)").all()


def test_metrics_named_like_fixed_columns_fail_the_trial_and_the_run_stays_readable(tmp_path):
    run = archsearch.search(space=numbered_space, evaluate=colliding, objectives=OBJECTIVES, budget=3,
                            executor="inline", run_dir=tmp_path / "r")
    trials = run.trials.to_pandas()
    assert (trials.status == "failed").all()
    assert trials.error.str.contains("metric 'metric_status' is the name of a column archsearch fills itself").all()
    assert archsearch_cli("report", str(tmp_path / "r"), cwd=tmp_path, check=False).returncode == 0


def test_sys_exit_in_evaluate_fails_that_trial_not_the_search(tmp_path):
    run = archsearch.search(space=numbered_space, evaluate=ExitOn("exit"), objectives=OBJECTIVES, budget=9,
                            executor="inline", run_dir=tmp_path / "r")
    trials = run.trials.to_pandas()
    assert len(trials) == 9 and (trials.status == "failed").any() and (trials.status == "complete").any()
    assert trials[trials.status == "failed"].error.eq("evaluate called sys.exit(3)").all()


def test_ctrl_c_inside_an_inline_evaluate_still_stops_the_run(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        archsearch.search(space=numbered_space, evaluate=ExitOn("interrupt"), objectives=OBJECTIVES, budget=30,
                          executor="inline", run_dir=tmp_path / "r")
    assert '"run_interrupted"' in (tmp_path / "r" / "journal.jsonl").read_text()


@pytest.mark.ray
def test_sys_exit_and_keyboard_interrupt_on_a_ray_worker_fail_that_trial(tmp_path):
    for kind in ("exit", "interrupt"):
        run = archsearch.search(space=numbered_space, evaluate=ExitOn(kind), objectives=OBJECTIVES, budget=9,
                                executor="ray", run_dir=tmp_path / kind, overrides=["executor.workers=1"])
        trials = run.trials.to_pandas()
        failed = trials[trials.status == "failed"]
        assert len(trials) == 9 and len(failed) >= 1 and (trials.status == "complete").any()
        assert failed.error.str.contains("sys.exit|KeyboardInterrupt").all(), failed.error.tolist()
        assert (failed.attempts == 1).all()  # the worker survived: nothing was retried


def test_a_space_raising_for_one_proposal_fails_that_trial_and_resume_continues_exactly(tmp_path):
    def search(run_dir, budget):
        return archsearch.search(space=space_raising_sometimes, evaluate=SlowEvaluate(0.0), objectives=OBJECTIVES,
                                 budget=budget, seed=1, strategy="evolution", executor="inline", run_dir=run_dir)

    reference = search(tmp_path / "ref", 24).trials.to_pandas()
    failed = reference[reference.status == "failed"]
    assert len(reference) == 24 and len(failed) >= 1 and (reference.status == "complete").sum() >= 12
    assert failed.error.str.startswith("the space raised while building this proposal: ValueError").all()
    search(tmp_path / "run", 10)
    (tmp_path / "run" / "strategy_state.json").unlink()  # force a replay through the raising proposals
    run = archsearch.resume(tmp_path / "run", budget=24, space=space_raising_sometimes, evaluate=SlowEvaluate(0.0))
    assert run.trials.column("arch_id").to_pylist() == reference.arch_id.tolist()


def test_constraints_that_reject_everything_say_so_and_exit_1(tmp_path):
    proc = archsearch_cli("run", "constraints.max_params=10", "budget=1", "executor=inline", "latency.repeats=1",
                          "latency.warmup=0", "latency.large_batch=null", f"run_dir={tmp_path / 'r'}", "--quiet",
                          cwd=tmp_path, check=False)
    assert proc.returncode == 1, proc.stderr
    assert "archsearch: stopped: the constraints rejected 50 candidates before training (max_params=10)" in proc.stderr


def reports_acc(arch):
    return {"acc": 0.5 + arch["x"] / 100, "cost": 1.0}


def test_a_function_that_never_reports_an_objective_stops_the_run_and_keeps_its_trials(tmp_path):
    """A typo in the returned keys would otherwise fail every trial of the budget, one by one."""
    run_dir = tmp_path / "r"
    objectives = {"score": "maximize", "cost": "minimize"}
    with pytest.raises(archsearch.ArchsearchError) as caught:
        archsearch.search(space=numbered_space, evaluate=reports_acc, objectives=objectives, budget=30,
                          executor="inline", run_dir=run_dir)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("run stopped: 5 trials in a row did not report objective 'score' (they reported: "
                              "acc, cost, eval_time_s); return it from evaluate (or measure=)"), message
    assert str(run_dir) in message
    run = archsearch.load_run(run_dir)
    assert len(run.trials) == 5 and run.stop_reason == "objectives"
    assert "returned no value for an objective" in archsearch_cli("show", str(run_dir), cwd=tmp_path).stdout
    # Nothing is lost: resumed with the function fixed, the run goes on from its five trials.
    fixed = archsearch.resume(run_dir, space=numbered_space, evaluate=omits_nothing, budget=8)
    trials = fixed.trials.to_pandas()
    assert len(trials) == 8 and (trials.status == "complete").sum() == 3


def omits_nothing(arch):
    return {"score": 0.5 + arch["x"] / 100, "cost": 1.0}


def test_an_objective_some_trials_report_never_stops_the_run(tmp_path):
    """Only an objective no result has reported stops the run: trials that omit one now and then fail alone."""
    def late_cost(arch, calls=[0]):  # noqa: B006 - counts calls across trials
        calls[0] += 1
        return {"score": 1.0, **({"cost": 1.0} if calls[0] == 1 else {})}

    run = archsearch.search(space=numbered_space, evaluate=late_cost, objectives=OBJECTIVES, budget=12,
                            executor="inline", run_dir=tmp_path / "r")
    assert len(run.trials) == 12 and run.stop_reason == "budget"
