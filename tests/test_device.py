"""training.device: validation, resolution, and the device recorded beside each trial's figures."""

import pytest
import torch

from archsearch.devices import NoDevice, describe_device, resolve_device
from archsearch.errors import ConfigError
from archsearch.evaluation.latency import LatencyProtocol, measure_latency
from archsearch.evaluation.training import TrainingEvaluator, TrainingRecipe
from archsearch.genome import BlockSpec, Genome

GENOME = Genome.sequential([BlockSpec("kan_bspline", {"grid_size": 3}, "silu", residual=True)], {"width": 16})


@pytest.mark.parametrize("value, message", [("tpu", "device must be one of auto, cpu, cuda"),
                                            ("cuda:x", "device must be one of"), (3, "training.device must be str")])
def test_bad_device_is_one_clear_error(value, message):
    with pytest.raises(ConfigError, match=message):
        TrainingRecipe(device=value)


def test_auto_takes_a_gpu_only_where_one_is_visible():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    assert resolve_device("cpu").type == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(NoDevice, match="gpus_per_worker"):
            resolve_device("cuda")


def test_a_trial_records_the_device_it_trained_on(digits):
    result = TrainingEvaluator(digits, TrainingRecipe(epochs=0.2, device="cpu")).evaluate(GENOME)
    assert result.status == "complete", result.error
    assert result.info["device_kind"] == "cpu" and result.info["device"]


def test_cuda_without_a_gpu_fails_the_candidate_with_the_reason(digits):
    if torch.cuda.is_available():
        pytest.skip("a GPU is visible here")
    result = TrainingEvaluator(digits, TrainingRecipe(epochs=0.2, device="cuda")).evaluate(GENOME)
    assert result.status == "failed" and "sees no CUDA device" in result.error


@pytest.mark.gpu
def test_training_and_latency_on_the_gpu(digits):
    result = TrainingEvaluator(digits, TrainingRecipe(epochs=1, device="cuda")).evaluate(GENOME)
    assert result.status == "complete", result.error
    assert result.info["device_kind"] == "cuda"
    assert result.metrics["val_accuracy"] > 0.3
    model = torch.nn.Linear(8, 8).cuda()
    latency = measure_latency(model, torch.randn(4, 8, device="cuda"), LatencyProtocol(repeats=5, warmup=2))
    assert latency["latency_ms"] > 0 and describe_device(torch.device("cuda"))["device_kind"] == "cuda"


def test_hot_training_records_its_decision_and_keeps_the_eager_metrics(digits):
    plain = TrainingEvaluator(digits, TrainingRecipe(epochs=0.5, device="cpu", hot=False)).evaluate(GENOME)
    hot = TrainingEvaluator(digits, TrainingRecipe(epochs=0.5, device="cpu")).evaluate(GENOME)  # on by default
    assert plain.status == hot.status == "complete", hot.error
    assert "hot" not in plain.info and "not compiled" in hot.info["hot"]
    assert "s saved" in hot.info["hot"] and isinstance(hot.info["hot_saved_s"], float)
    assert hot.metrics["n_params"] == plain.metrics["n_params"] and hot.metrics["flops"] == plain.metrics["flops"]
    assert abs(hot.metrics["val_accuracy"] - plain.metrics["val_accuracy"]) < 0.05  # same function, float rounding


@pytest.mark.gpu
def test_hot_training_on_the_gpu_runs_the_triton_kernels(digits):
    plain = TrainingEvaluator(digits, TrainingRecipe(epochs=1, device="cuda", hot=False)).evaluate(GENOME)
    hot = TrainingEvaluator(digits, TrainingRecipe(epochs=1, device="cuda")).evaluate(GENOME)
    assert plain.status == hot.status == "complete", hot.error
    assert hot.info["device_kind"] == "cuda" and hot.info["hot"].startswith("fused 1 kept")
    assert abs(hot.metrics["val_accuracy"] - plain.metrics["val_accuracy"]) < 0.05  # same function, float rounding


@pytest.mark.gpu
def test_a_search_on_the_gpu_records_the_device_of_every_trial(tmp_path):
    import archsearch

    run = archsearch.search(space="mlp", task="digits", budget=2, executor="inline", run_dir=tmp_path / "run",
                            overrides=["training.device=cuda", "training.epochs=1"])
    assert set(run.trials["device_kind"].to_pylist()) == {"cuda"}
    assert set(run.trials["status"].to_pylist()) == {"complete"}


@pytest.mark.parametrize("executor, message", [("ray", "executor.gpus_per_worker=1"), ("inline", "no CUDA device")])
def test_a_cuda_run_no_worker_can_see_is_refused_before_it_starts(tmp_path, executor, message):
    import archsearch

    if executor == "inline" and torch.cuda.is_available():
        pytest.skip("a GPU is visible here")
    with pytest.raises(ConfigError, match=message):
        archsearch.search(space="mlp", task="digits", budget=1, executor=executor, run_dir=tmp_path / "run",
                          overrides=["training.device=cuda"])
    assert not (tmp_path / "run").exists()
