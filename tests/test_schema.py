"""One typed schema per configuration section (issue 11 item 3, issue 16 finding 7): every override is
checked before the run directory exists, with the valid range in a one-line error."""

import inspect
from dataclasses import fields

import pytest
from clitools import archsearch_cli
from omegaconf import OmegaConf

from archsearch import config, schema
from archsearch.api import plan_run
from archsearch.errors import ArchsearchError


def test_the_yaml_files_hold_the_schemas_defaults():
    root = OmegaConf.to_container(OmegaConf.load(config.PACKAGE_CONF / "config.yaml"))
    assert {k: root[k] for k in ("budget", "seed", "run_dir", "objectives", "keep_weights", "allow_targets")} == \
        schema.defaults(schema.Root)
    assert root["training"] == schema.defaults(schema.Training)
    assert root["latency"] == schema.defaults(schema.Latency)
    for name, section in schema.EXECUTORS.items():
        assert OmegaConf.to_container(OmegaConf.load(config.PACKAGE_CONF / "executor" / f"{name}.yaml")) == \
            schema.defaults(section)


def test_constructors_and_the_recipe_agree_with_the_schema():
    from archsearch.evaluation.latency import LatencyProtocol
    from archsearch.evaluation.recipe import TrainingRecipe
    from archsearch.execution import RayExecutor

    ray_defaults = {k: p.default for k, p in inspect.signature(RayExecutor).parameters.items()}
    assert ray_defaults == {k: v for k, v in schema.defaults(schema.RayExecutor).items() if k != "name"}
    assert [f.name for f in fields(TrainingRecipe)] == [f.name for f in fields(schema.Training)]
    assert {f.name: f.default for f in fields(LatencyProtocol)} == schema.defaults(schema.Latency)


@pytest.mark.parametrize("override, message", [
    ("task.val_fraction=lion", "task.val_fraction must be a number > 0 and < 1 or null, got 'lion'"),
    ("task.val_fraction=1.5", "task.val_fraction must be a number > 0 and < 1 or null, got 1.5"),
    ("executor.workers=abc", "executor.workers must be an integer >= 1 or null, got 'abc'"),
    ("executor.workers=0", "executor.workers must be an integer >= 1 or null, got 0"),
    ("executor.cpus_per_worker=0", "executor.cpus_per_worker must be a number > 0, got 0"),
    ("executor.trial_timeout_s=abc", "executor.trial_timeout_s must be a number > 0 or null, got 'abc'"),
    ("executor.max_retries=-1", "executor.max_retries must be an integer >= 0, got -1"),
    ("training.time_limit_s=-1", "training.time_limit_s must be a number > 0 or null, got -1"),
    ("training.batch_size=2.5", "training.batch_size must be an integer >= 1 or null, got 2.5"),
    ("latency.repeats=0", "latency.repeats must be an integer >= 1, got 0"),
    ("seed=-1", "seed must be an integer >= 0, got -1"),
    ("keep_weights=some", "keep_weights must be one of front, all, none, got 'some'"),
    ("constraints.max_params=-5", "constraints.max_params must be a number >= 0 or null, got -5"),
    ("space.block_params.mlp.expansion=mcts", "'block_params.mlp.expansion' takes numbers (default 2.0), got 'mcts'"),
    ("+space.block_params.mlp.width=[1,2]", "block mlp has no parameter 'width'; its parameters: expansion"),
])
def test_bad_values_are_refused_before_the_run_directory_exists(tmp_path, override, message):
    with pytest.raises(ArchsearchError, match=message.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
        plan_run([override, "executor=ray", f"run_dir={tmp_path / 'run'}"])
    assert not (tmp_path / "run").exists()


def test_a_numeric_run_dir_is_a_directory_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert str(plan_run(["run_dir=2024", "executor=inline"]).run_dir) == "2024"


def test_cli_overrides_after_an_option_and_a_bad_value_exit_2(tmp_path):
    proc = archsearch_cli("run", "executor=ray", "--quiet", "executor.workers=abc", f"run_dir={tmp_path / 'r'}",
                          cwd=tmp_path, check=False)
    assert proc.returncode == 2 and proc.stderr.strip() == \
        "archsearch: error: executor.workers must be an integer >= 1 or null, got 'abc'"
    assert not (tmp_path / "r").exists()


def test_adding_a_key_is_one_line(monkeypatch):
    """What the module doc promises the other sections' authors: a field is a key, checked and defaulted."""
    from dataclasses import make_dataclass

    extended = make_dataclass("Training", [(f.name, f.type, f) for f in fields(schema.Training)] + [
        ("precision", "str | None", schema.option(None, choices=("fp32", "bf16")))], bases=())
    monkeypatch.setitem(schema.SECTIONS, "training", (extended, False))
    cfg = config.to_container(config.compose(["+training.precision=fp8"]))
    with pytest.raises(ArchsearchError, match="training.precision must be one of fp32, bf16 or null, got 'fp8'"):
        schema.validate(cfg)
