"""YAML that archsearch loads names only archsearch's classes unless the user allows a module (issue 16,
finding 3): a working directory's search_spaces/, and a run directory received from someone else."""

import textwrap

import pytest
from clitools import archsearch_cli

import archsearch
from archsearch import config
from archsearch.api import plan_run
from archsearch.errors import ConfigError
from archsearch.testing.faults import SlowEvaluate, numbered_space

MLP = (config.SOURCE_ROOT / "search_spaces" / "mlp.yaml").read_text()


def local_space(tmp_path, name, text):
    (tmp_path / "search_spaces").mkdir(exist_ok=True)
    (tmp_path / "search_spaces" / f"{name}.yaml").write_text(text)


def test_a_local_space_shadowing_a_built_in_says_so(tmp_path, monkeypatch, capsys):
    local_space(tmp_path, "mlp", MLP)
    monkeypatch.chdir(tmp_path)
    config.compose(["space=mlp"])
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "space 'mlp' comes from" in err[0] and "replaces the built-in space" in err[0]
    local_space(tmp_path, "mine", MLP)
    config.compose(["space=mine", "strategy=evolution"])
    assert capsys.readouterr().err == ""  # a new name hides nothing


def test_a_nested_target_in_a_local_space_is_refused_before_anything_runs(tmp_path, monkeypatch):
    marker = tmp_path / "ran"
    local_space(tmp_path, "mlp", MLP + textwrap.dedent(f"""
        evil:
          _target_: pathlib.Path.touch
          self: {marker}
    """))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=r"evil._target_='pathlib.Path.touch' names code outside archsearch"):
        plan_run(["space=mlp", "executor=inline", f"run_dir={tmp_path / 'run'}"])
    assert not marker.exists() and not (tmp_path / "run").exists()


def test_a_users_own_space_class_needs_allow_targets(tmp_path, monkeypatch):
    (tmp_path / "mylab_spaces.py").write_text(textwrap.dedent("""
        from archsearch.spaces import BlockGraphSpace

        class MySpace(BlockGraphSpace):
            pass
    """))
    local_space(tmp_path, "mine", MLP.replace("archsearch.spaces.BlockGraphSpace", "mylab_spaces.MySpace"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ConfigError, match=r"allow its module with allow_targets=\[mylab_spaces\]"):
        plan_run(["space=mine", "executor=inline"])
    plan = plan_run(["space=mine", "executor=inline", "allow_targets=[mylab_spaces]"])
    assert type(plan.space).__name__ == "MySpace"


@pytest.mark.parametrize("section", ["strategy", "space"])
def test_resume_of_someone_elses_run_directory_runs_no_code_from_it(tmp_path, section):
    run_dir = tmp_path / "run"
    archsearch.search(space="mlp", budget=1, seed=0, executor="inline", run_dir=run_dir,
                      overrides=["training.epochs=0.1", "latency.repeats=1", "latency.warmup=0"])
    marker = tmp_path / "ran"
    text = (run_dir / "config.yaml").read_text()
    text = text.replace("allow_targets: []", "allow_targets:\n- pathlib\n- os")
    target = "archsearch.strategies.ModelBased" if section == "strategy" else "archsearch.spaces.BlockGraphSpace"
    text = text.replace(f"_target_: {target}", f"_target_: os.system\n  command: touch {marker}", 1)
    (run_dir / "config.yaml").write_text(text)
    proc = archsearch_cli("resume", str(run_dir), "budget=2", "--quiet", cwd=tmp_path, check=False)
    errors = [line for line in proc.stderr.splitlines() if line.startswith("archsearch: error")]
    assert proc.returncode == 2 and len(errors) == 1, proc.stderr
    assert "_target_='os.system' names code outside archsearch" in errors[0]
    assert not marker.exists()


def test_a_damaged_config_yaml_is_a_one_line_error_on_resume(tmp_path):
    run_dir = tmp_path / "run"
    archsearch.search(space=numbered_space, evaluate=SlowEvaluate(0.0), budget=1, seed=0,
                      objectives={"score": "max"}, executor="inline", run_dir=run_dir)
    (run_dir / "config.yaml").write_text("seed: [unclosed\n")
    with pytest.raises(ConfigError, match="cannot read .*config.yaml"):
        archsearch.resume(run_dir, budget=2, space=numbered_space, evaluate=SlowEvaluate(0.0))
