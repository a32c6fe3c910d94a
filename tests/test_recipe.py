"""The training recipe as part of the search: recipe decisions, L-BFGS, data-fitted grids, KAN shapes."""

import json

import numpy as np
import pytest
import torch

import archsearch
from archsearch.builder import build_model, fit_grids
from archsearch.errors import ArchsearchError
from archsearch.evaluation.optimizers import make_optimizer, take_step
from archsearch.evaluation.recipe import OPTIMIZERS, TrainingRecipe
from archsearch.evaluation.training import TaskRef, TrainingEvaluator
from archsearch.genome import BlockSpec, Genome
from archsearch.space import RandomChooser
from archsearch.spaces import BlockGraphSpace
from archsearch.tasks._base import DataSpec

RECIPE = {"optimizer": ["adam", "sgd", "lbfgs"], "lr": {"low": 1e-4, "high": 1e-2, "log": True},
          "batch_size": [32, 64], "weight_decay": {"low": 0.0, "high": 1e-3}, "lbfgs": {"lr": 1.0},
          "schedule": ["constant", "cosine"], "dropout": [0.0, 0.1]}
SPACE = BlockGraphSpace(name="mlp_recipe", blocks=["mlp"], depth={"low": 1, "high": 2}, width=[8, 16],
                        activation=["relu", "gelu"], recipe=RECIPE)


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_each_optimizer_lowers_the_loss_on_a_fixed_problem(optimizer):
    torch.manual_seed(0)
    x = torch.randn(128, 3)
    y = (x[:, :1] * x[:, 1:2] + torch.sin(x[:, 2:])).detach()
    model = torch.nn.Sequential(torch.nn.Linear(3, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1))
    recipe = TrainingRecipe.from_options({"optimizer": optimizer, **({} if optimizer == "lbfgs" else {"lr": 0.03})})
    optimizer_ = make_optimizer(model.parameters(), recipe)
    losses = [take_step(optimizer_, lambda: torch.nn.functional.mse_loss(model(x), y)).item() for _ in range(40)]
    assert losses[-1] < 0.5 * losses[0]


def test_a_non_finite_loss_is_returned_without_a_step():
    model = torch.nn.Linear(2, 1)
    before = [p.clone() for p in model.parameters()]
    for optimizer in ("adam", "lbfgs"):
        opt = make_optimizer(model.parameters(), TrainingRecipe.from_options({"optimizer": optimizer}))
        loss = take_step(opt, lambda: model(torch.full((4, 2), float("nan"))).sum())
        assert not torch.isfinite(loss)
        assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


def test_recipe_decisions_replay_mutate_and_reach_the_genome():
    SPACE.check()
    rng = np.random.default_rng(0)
    genomes = [SPACE.sample(rng) for _ in range(30)]
    for genome in genomes:
        recipe = genome.meta["recipe"]
        assert SPACE.replay(genome.decisions).arch_id == genome.arch_id
        assert set(recipe) <= set(TrainingRecipe.__dataclass_fields__)
        if recipe["optimizer"] == "lbfgs":  # full batch: no batch size is asked; its own lr domain
            assert "batch_size" not in recipe and recipe["lr"] == 1.0
        else:
            assert 1e-4 <= recipe["lr"] <= 1e-2 and recipe["batch_size"] in (32, 64)
    assert {g.meta["recipe"]["optimizer"] for g in genomes} == {"adam", "sgd", "lbfgs"}
    parent = genomes[0]
    child = SPACE.mutate(parent, rng, operator="recipe")
    assert child.meta["recipe"] != parent.meta["recipe"]
    assert child.architecture_dict()["nodes"] == parent.architecture_dict()["nodes"]
    assert SPACE.replay(child.decisions).arch_id == child.arch_id


def test_bayes_samples_recipe_decisions():
    from archsearch.strategies.bayes import Bayes

    strategy = Bayes(SPACE, {"val_accuracy": "maximize"}, seed=0, sampler="tpe")
    candidates = [strategy.ask() for _ in range(4)]
    assert all(any(label.startswith("recipe.") for label in c.decisions) for c in candidates)
    assert all(SPACE.replay(c.decisions).arch_id == c.arch_id for c in candidates)


def test_the_trial_trains_with_its_recipe_and_records_it(digits):
    genome = SPACE.replay({"depth": 1, "width": 8, "norm": "layernorm", "b0.wiring": "sequential",
                           "b0.kind": "mlp", "b0.mlp.expansion": 0.5, "b0.activation": "relu",
                           "b0.norm_placement": "pre", "recipe.optimizer": "lbfgs", "recipe.weight_decay": 0.0,
                           "recipe.schedule": "constant", "recipe.dropout": 0.1})
    evaluator = TrainingEvaluator(digits, TrainingRecipe(epochs=2, early_stopping_patience=1))
    result = evaluator.evaluate(genome)
    assert result.status == "complete", result.error
    assert result.info["recipe"]["optimizer"] == "lbfgs" and result.info["recipe"]["lr"] == 1.0
    assert result.info["recipe"]["dropout"] == 0.1 and result.info["recipe"]["epochs"] == 2
    assert result.info["lbfgs_evaluations"] > 2 and result.info["best_epoch"] in (1, 2)
    over_time = TrainingEvaluator(digits, TrainingRecipe(epochs=50, time_limit_s=0.05)).evaluate(genome)
    assert over_time.status == "failed" and "time limit" in over_time.error


def test_a_run_records_each_trials_recipe(tmp_path):
    run = archsearch.search(space="mlp", task="wine", budget=3, seed=0, executor="inline", run_dir=tmp_path / "r",
                            overrides=["training.epochs=1", "space.width=[8]", "space.depth.high=1",
                                       "+space.recipe={optimizer: [adam, lbfgs], lr: {low: 0.001, high: 0.01}}"])
    rows = run.trials.to_pylist()
    recipes = [json.loads(row["recipe_json"]) for row in rows]
    for row, recipe in zip(rows, recipes, strict=True):
        assert recipe["optimizer"] == json.loads(row["decisions_json"])["recipe.optimizer"]
        assert recipe["epochs"] == 1  # the run's training.* fills in what the space does not decide
    from rich.console import Console

    from archsearch.console import front_table

    console = Console(record=True, width=250)
    console.print(front_table(run.trials, run.objectives))  # every trial, as `show` prints the front
    text = console.export_text()
    assert "recipe" in text and " lr=" in text and any(r["optimizer"] in text for r in recipes)


@pytest.mark.parametrize("override, message", [
    ("+space.recipe={lr: {low: -1, high: 0.1}}", "space option 'recipe.lr' must be > 0.0"),
    ("+space.recipe={optimizer: [adam, lion]}", "space option 'recipe.optimizer' has unknown value(s) ['lion']"),
    ("+space.recipe={momentum: [0.9]}", "space option 'recipe' has unknown option 'momentum'"),
    ("+space.recipe={batch_size: [0, 32]}", "space option 'recipe.batch_size' must be >= 1"),
])
def test_bad_recipe_values_are_one_line_errors_before_the_run(tmp_path, override, message):
    with pytest.raises(ArchsearchError) as info:
        archsearch.search(space="mlp", task="wine", budget=1, executor="inline", run_dir=tmp_path / "r",
                          overrides=[override])
    assert message in str(info.value) and "\n" not in str(info.value)
    assert not (tmp_path / "r").exists()


def test_the_grid_follows_the_input_range():
    spec = BlockSpec("kan_bspline", {"grid_size": 4, "grid_range": "data"}, "silu", "none", "none")
    genome = Genome.sequential([spec, spec], {"form": "layers", "widths": [3]})
    model = build_model(genome, DataSpec("vector", n_features=2, n_outputs=1))
    x = torch.rand(256, 2) * torch.tensor([4.0, 0.5]) + torch.tensor([3.0, -10.0])
    fit_grids(model, x)
    first, second = model.blocks["b0"], model.blocks["b1"]
    h = (x.max(0).values - x.min(0).values) / 4
    inner = first.knots[:, 3:-3]  # the G + 1 knots of the grid proper, k = 3 extension knots each side
    assert torch.allclose(inner[:, 0], x.min(0).values, atol=1e-5) and torch.allclose(inner[:, -1], x.max(0).values, atol=1e-5)
    assert torch.allclose(first.knots[:, 1] - first.knots[:, 0], h, atol=1e-5)
    hidden = first(x)  # the second layer's grid spans what the first layer outputs
    assert torch.allclose(second.knots[:, 3], hidden.min(0).values, atol=1e-4)
    assert torch.allclose(second.knots[:, -4], hidden.max(0).values, atol=1e-4)
    state = model.state_dict()  # the fitted grid is part of the trained model
    reloaded = build_model(genome, DataSpec("vector", n_features=2, n_outputs=1))
    reloaded.load_state_dict(state)
    assert torch.equal(reloaded.blocks["b0"].knots, first.knots)


def test_kan_layers_form_has_the_papers_shapes():
    space = BlockGraphSpace(name="k", blocks=["kan_bspline", "kan_rational"], form=["layers"],
                            depth={"low": 2, "high": 2}, layer_width=[5],
                            block_params={"kan_bspline": {"grid_size": [5], "spline_order": [3]}})
    space.check()
    genome = space.sample(0)
    assert genome.meta["widths"] == [5] and [s.kind for _, s in genome.blocks()] == ["kan_bspline"] * 2
    model = build_model(genome, DataSpec("vector", n_features=2, n_outputs=1))
    # KAN([2, 5, 1]), G=5, k=3: per edge 8 coefficients, a base and a spline scale; a bias per output node
    assert sum(p.numel() for p in model.parameters()) == 10 * 10 + 5 + 5 * 10 + 1
    assert model(torch.randn(7, 2)).shape == (7, 1)
    with pytest.raises(ArchsearchError, match="none of the space's blocks can be a rectangular layer"):
        BlockGraphSpace(name="k", blocks=["kan_rational"], form=["layers"]).check()


def test_kan_space_never_proposes_groups_that_do_not_divide_the_width():
    from archsearch.blocks.mlp import hidden_width

    space = BlockGraphSpace(name="r", blocks=["kan_rational"], width=[12, 20], depth={"low": 1, "high": 1},
                            block_params={"kan_rational": {"expansion": [1, 2], "groups": [1, 2, 4, 8]}})
    chooser_rng = np.random.default_rng(0)
    for _ in range(40):
        chooser = RandomChooser(chooser_rng)
        genome = space.build(chooser)
        (_, spec), = genome.blocks()
        width, groups = genome.meta["width"], spec.params["groups"]
        assert width % groups == 0 and hidden_width(width, spec.params["expansion"]) % groups == 0
        assert space.replay(genome.decisions).arch_id == genome.arch_id


def test_kan_toy_trains_full_batch_by_default():
    from archsearch.api import plan_run

    plan = plan_run(["space=kan", "task=kan_toy", "executor=inline"])
    assert plan.evaluator.recipe.optimizer == "lbfgs" and plan.evaluator.recipe.lr == 1.0
    adam = plan_run(["space=kan", "task=kan_toy", "executor=inline", "training.optimizer=adam"])
    assert adam.evaluator.recipe.lr == TrainingRecipe.lr  # the task's L-BFGS step length is not carried over
    assert isinstance(plan.evaluator.task, TaskRef)


def test_a_callable_space_decides_the_recipe_through_its_chooser(tmp_path):
    from archsearch.spaces.recipe import choose_recipe

    def space(chooser):
        width = chooser.suggest_categorical("width", [8, 16])
        recipe = choose_recipe(chooser, {"optimizer": ["adam", "lbfgs"], "epochs": [1, 2]})
        return Genome.sequential([BlockSpec("mlp", {"expansion": 1}, "relu")], {"width": width, "recipe": recipe})

    run = archsearch.search(space=space, task="wine", budget=3, seed=0, executor="inline", run_dir=tmp_path / "r")
    for row in run.trials.to_pylist():
        decisions, recipe = json.loads(row["decisions_json"]), json.loads(row["recipe_json"])
        assert recipe["optimizer"] == decisions["recipe.optimizer"] and recipe["epochs"] == decisions["recipe.epochs"]
        assert row["status"] == "complete"


def test_lbfgs_continued_from_a_checkpoint_equals_training_straight_through():
    """L-BFGS keeps lists of tensors and Python numbers as its state; a checkpoint gives them back exactly."""
    from archsearch.tasks import load_task

    genome = Genome.sequential([BlockSpec("kan_bspline", {"grid_size": 5})], {"width": 8})
    evaluator = TrainingEvaluator(load_task("kan_toy", seed=0), TrainingRecipe(epochs=6, optimizer="lbfgs", lr=1.0))
    first = evaluator.evaluate(genome, 2)
    assert first.status == "complete" and first.checkpoint is not None, first.error
    continued = evaluator.evaluate(genome, 6, first.checkpoint)
    straight = evaluator.evaluate(genome, 6)
    assert continued.metrics["val_rmse"] == straight.metrics["val_rmse"]
    assert continued.weights == straight.weights
