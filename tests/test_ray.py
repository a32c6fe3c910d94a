"""The Ray executor on real Ray: local workers, a two-node cluster losing a node, killed and hung workers."""

import json
import threading
import time

import pytest

import archsearch
from archsearch.api import plan_run
from archsearch.testing.faults import CrashOnce, HangOn, SlowEvaluate, numbered_space

pytestmark = pytest.mark.ray
OBJECTIVES = {"score": "maximize", "cost": "minimize"}


def search(run_dir, evaluate, budget, **executor):
    overrides = [f"executor.{k}={'null' if v is None else v}" for k, v in executor.items()]
    return archsearch.search(space=numbered_space, evaluate=evaluate, objectives=OBJECTIVES, budget=budget,
                             seed=0, executor="ray", run_dir=run_dir, overrides=overrides)


def test_two_local_workers_train_digits(tmp_path):
    run = archsearch.search(space="mlp", budget=4, seed=0, executor="ray", run_dir=tmp_path / "run",
                            overrides=["executor.workers=2", "training.epochs=1"])
    trials = run.trials.to_pandas()
    assert len(trials) == 4 and (trials.status == "complete").all()
    assert trials.worker.str.startswith("ray:").all() and trials.node.str.len().gt(0).all()
    assert (trials.val_accuracy > 0.5).all() and (trials.attempts == 1).all()


def test_two_local_workers_share_the_work(tmp_path):
    """Candidates of one second each: whichever worker is ready first cannot take them all."""
    trials = search(tmp_path / "run", SlowEvaluate(1.0), budget=6, workers=2).trials.to_pandas()
    assert len(trials) == 6 and (trials.status == "complete").all()
    assert trials.worker.nunique() == 2 and trials.worker.value_counts().min() >= 2


def test_workers_train_on_the_drivers_data_without_the_table_file(tmp_path):
    """The driver loads the task once and Ray shares it with the workers, so a table file need not
    exist where they run (a cluster's other machines): here it is gone before the run starts."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq
    from sklearn.datasets import load_wine

    x, y = load_wine(return_X_y=True)
    path = tmp_path / "wine.parquet"
    pq.write_table(pa.table({**{f"f{i}": x[:, i] for i in range(x.shape[1])}, "label": y.astype(np.int64)}), path)
    plan = plan_run(["task=table", f"task.path={path}", "task.target=label", "space=mlp",
                                    "budget=2", "executor=ray", "executor.workers=2", "training.epochs=2",
                                    f"run_dir={tmp_path / 'run'}"])
    path.unlink()
    trials = plan.execute().trials.to_pandas()
    assert len(trials) == 2 and (trials.status == "complete").all(), trials.error.tolist()
    assert (trials.val_accuracy > 1 / 3).all()


def test_killed_worker_is_replaced_and_its_candidate_retried(tmp_path):
    (tmp_path / "markers").mkdir()
    run = search(tmp_path / "run", CrashOnce(tmp_path / "markers", n_crashes=2), budget=6, workers=2)
    trials = run.trials.to_pandas()
    assert len(trials) == 6 and (trials.status == "complete").all()
    assert sorted(trials.attempts.tolist()) == [1, 1, 1, 1, 2, 2]
    assert trials.trial_id.is_unique and trials.arch_id.is_unique


def test_candidate_that_always_kills_its_worker_fails_after_retries(tmp_path):
    run = search(tmp_path / "run", CrashOnce(tmp_path, always=True), budget=6, workers=2, max_retries=1)
    trials = run.trials.to_pandas()
    assert len(trials) == 6
    crashed = trials[trials.status == "failed"]
    assert len(crashed) >= 1 and crashed.error.str.contains("worker lost 2 times").all()
    assert (trials.status == "complete").any()


def test_candidate_past_its_time_limit_is_cancelled(tmp_path):
    start = time.monotonic()
    run = search(tmp_path / "run", HangOn(), budget=6, workers=2, trial_timeout_s=3)
    assert time.monotonic() - start < 120
    trials = run.trials.to_pandas()
    hung = trials[[(__import__("json").loads(g)["x"] % 2 == 0) for g in trials.genome_json]]
    assert len(hung) >= 1 and (hung.status == "failed").all()
    assert hung.error.str.contains("time limit of 3 s exceeded").all()
    assert (trials[~trials.index.isin(hung.index)].status == "complete").all()


def test_cluster_losing_a_node_still_evaluates_every_candidate_once(tmp_path, capfd):
    import ray
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    worker_node = cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, include_dashboard=False)
    run_dir = tmp_path / "run"
    removed = threading.Event()

    def remove_worker_node_mid_run():
        journal = run_dir / "journal.jsonl"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # once both nodes have finished work, remove the non-head one
            finished = [json.loads(line) for line in journal.read_text().splitlines()
                        if '"trial_finished"' in line] if journal.exists() else []
            if len({r["result"]["info"].get("node") for r in finished}) >= 2:
                cluster.remove_node(worker_node)
                removed.set()
                return
            time.sleep(0.1)

    remover = threading.Thread(target=remove_worker_node_mid_run, daemon=True)
    remover.start()
    try:
        run = search(run_dir, SlowEvaluate(0.5), budget=16, address=cluster.address, workers=2)
    finally:
        remover.join(timeout=5)
        ray.shutdown()
        cluster.shutdown()
    assert removed.is_set()
    joined = [line for line in capfd.readouterr().err.splitlines() if line.startswith("archsearch: joined")]
    assert joined and "the Ray cluster at " in joined[0] and "(2 nodes, 2 CPUs)" in joined[0]
    trials = run.trials.to_pandas()
    assert len(trials) == 16 and (trials.status == "complete").all()
    assert trials.trial_id.tolist() == list(range(16)) and trials.arch_id.is_unique
    assert trials.node.nunique() == 2  # both nodes worked before one was removed
