import json

import numpy as np
import pytest

import archsearch
from archsearch.errors import ArchsearchError
from archsearch.pareto import non_dominated_mask, to_minimization


def assert_front_is_non_dominated(run):
    objectives = run.objectives
    trials = run.trials.to_pandas()
    complete = trials[trials.status == "complete"]
    points = to_minimization(complete[list(objectives)].to_numpy(), list(objectives.values()))
    expected = set(complete.trial_id[non_dominated_mask(points)])
    assert set(run.pareto().column("trial_id").to_pylist()) == expected


def test_search_on_digits_end_to_end(tmp_path):
    run = archsearch.search(space="mlp", task="digits", strategy="random", budget=4, seed=0,
                            executor="inline", run_dir=tmp_path / "run", overrides=["training.epochs=2"])
    trials = run.trials.to_pandas()
    assert len(trials) == 4 and set(trials.status) == {"complete"}
    assert trials.trial_id.tolist() == [0, 1, 2, 3]
    assert trials.arch_id.is_unique
    assert (trials.val_accuracy > 0.3).all()  # trained for real: chance is 0.1
    assert (trials.n_params > 0).all() and (trials.latency_ms > 0).all()
    assert list(run.objectives) == ["val_accuracy", "n_params", "latency_ms"]
    assert_front_is_non_dominated(run)
    for name in ("run.json", "config.yaml", "journal.jsonl", "trials.parquet", "pareto.parquet", "pareto.json",
                 "strategy_state.json"):
        assert (tmp_path / "run" / name).exists(), name
    again = archsearch.load_run(tmp_path / "run")
    assert again.trials.equals(run.trials)
    genome = archsearch.Genome.from_json(trials.genome_json[0])
    assert genome.arch_id == trials.arch_id[0]
    assert genome.decisions == json.loads(trials.decisions_json[0])


def test_same_seed_same_run(tmp_path):
    columns = ["arch_id", "val_accuracy", "n_params"]
    runs = [archsearch.search(budget=3, seed=7, executor="inline", run_dir=tmp_path / f"r{i}",
                              overrides=["training.epochs=1"])
            .trials.to_pandas()[columns] for i in range(2)]
    assert runs[0].equals(runs[1])


def test_callable_space_with_evaluate_function(tmp_path):
    def space(trial):
        n = trial.suggest_int("layers", 1, 6)
        return {"layers": n, "act": trial.suggest_categorical("act", ["relu", "gelu"]),
                "lr": trial.suggest_float("lr", 1e-4, 1e-1, log=True)}

    def evaluate(arch):
        if arch["layers"] == 6:
            raise RuntimeError("six layers are cursed")
        return {"score": arch["layers"] * 0.1 + (arch["act"] == "gelu") * 0.05, "cost": arch["layers"] ** 2}

    run = archsearch.search(space=space, evaluate=evaluate, objectives={"score": "maximize", "cost": "minimize"},
                            budget=30, seed=1, executor="inline", run_dir=tmp_path / "run")
    trials = run.trials.to_pandas()
    assert len(trials) == 30
    failed = trials[trials.status == "failed"]
    assert len(failed) > 0 and failed.error.str.contains("cursed").all()
    assert (trials[trials.status == "complete"].score > 0).all()
    assert_front_is_non_dominated(run)
    assert run.info["user_space"] and run.info["user_evaluate"]


def test_users_own_arrays(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 5))
    y = (x[:, 0] + x[:, 1] > 0).astype(int)
    run = archsearch.search(task=(x, y), budget=2, executor="inline", run_dir=tmp_path / "run",
                            overrides=["training.epochs=3"])
    trials = run.trials.to_pandas()
    assert (trials.status == "complete").all()
    assert (trials.val_accuracy > 0.6).all()


def test_bad_candidates_do_not_stop_the_run(tmp_path):
    from archsearch.blocks import BLOCKS
    from archsearch.genome import BlockSpec, Genome
    from archsearch.space import SearchSpace

    class SometimesBroken(SearchSpace):
        name = "sometimes_broken"

        def build(self, chooser):
            kind = chooser.suggest_categorical("kind", ["mlp", "missing_block"])
            width = chooser.suggest_categorical("width", [8, 16, 32, 64])
            return Genome.sequential([BlockSpec(kind)], {"width": width}, {"kind": kind, "width": width})

    assert "missing_block" not in BLOCKS
    run = archsearch.search(space=SometimesBroken(), budget=8, seed=0, executor="inline", run_dir=tmp_path / "run",
                            overrides=["training.epochs=1"])
    trials = run.trials.to_pandas()
    assert len(trials) == 8
    failed = trials[trials.status == "failed"]
    assert len(failed) > 0 and failed.error.str.contains("unknown block 'missing_block'").all()
    assert (trials.status == "complete").any()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"space": "nope"}, "unknown space 'nope'; valid spaces: hybrid, kan, mlp, moe, transformer"),
        ({"strategy": "genetic"}, "unknown strategy 'genetic'; valid strategies: bayes, evolution, local, mcts, model, random"),
        ({"task": "imagenet"}, "unknown task 'imagenet'; valid tasks: associative_recall, .*digits, .*wine"),
        ({"budget": 0}, "budget must be a positive number"),
        ({"budget": -3}, "budget must be a positive number"),
        ({"budget": "soon"}, "budget must be a positive number of candidates"),
        ({"overrides": ["space.depht.high=6"]}, "unknown option 'space.depht'; space options: blocks, depth"),
        ({"overrides": ["space.depht=6"]}, "unknown option 'space.depht'; space options: blocks, depth, width"),
        ({"overrides": ["space.depth.low=9"]}, "low=9 is above high=4"),
        ({"overrides": ["strategy.temperature=3"]}, "unknown option 'strategy.temperature'; strategy options: n_initial, pool_random"),
        ({"overrides": ["+strategy.temperature=3"]}, "strategy model has no option.*temperature.*n_initial"),
        ({"objectives": {"val_accuracy": "up"}}, "use maximize/max or minimize/min"),
        ({"space": lambda t: {"x": t.suggest_int("x", 0, 2)}}, "pass evaluate="),
    ],
)
def test_bad_input_is_one_clear_error(tmp_path, kwargs, message):
    with pytest.raises(ArchsearchError, match=message):
        archsearch.search(run_dir=tmp_path / "run", **kwargs)
    assert not (tmp_path / "run").exists()  # nothing written before the input was validated


def test_duration_budget(tmp_path):
    run = archsearch.search(space=lambda t: {"x": t.suggest_float("x", 0, 1)}, evaluate=lambda a: {"y": a["x"]},
                            objectives={"y": "maximize"}, budget="1s", executor="inline", run_dir=tmp_path / "run")
    assert run.trials.num_rows > 5
    assert run.info["budget"] == "1s"


def test_an_override_takes_the_place_of_the_keyword_for_the_same_key(tmp_path):
    run = archsearch.search(space="mlp", task="digits", budget=1, seed=0, executor="inline", run_dir=tmp_path / "run",
                            quiet=True, overrides=["space=kan", "task=kan_toy", "strategy=random",
                                                   "training.epochs=0.2"])
    assert (run.info["space"], run.info["task"], run.info["strategy"]) == ("kan", "kan_toy", "random")
