"""Ray Tune drives archsearch's strategy through ArchsearchSearcher, with a real Tuner.fit()."""

import pytest

pytestmark = pytest.mark.ray


@pytest.fixture(scope="module")
def local_ray():
    import ray

    ray.init(num_cpus=2, include_dashboard=False, configure_logging=False)
    yield
    ray.shutdown()


def test_tuner_fit_with_a_callable_space(local_ray, tmp_path):
    from ray import tune

    from archsearch.integrations.tune import ArchsearchSearcher
    from archsearch.testing.faults import numbered_space, score

    def trainable(config):
        tune.report(score(config["architecture"]))

    searcher = ArchsearchSearcher(numbered_space, {"score": "maximize", "cost": "minimize"}, seed=0)
    tuner = tune.Tuner(trainable, tune_config=tune.TuneConfig(search_alg=searcher, num_samples=8),
                       run_config=tune.RunConfig(storage_path=str(tmp_path), verbose=0))
    results = tuner.fit()
    assert len(results) == 8 and not results.errors
    configs = [r.config["architecture"]["x"] for r in results]
    assert len(set(configs)) == 8
    assert searcher.strategy.state_dict()["n_told"] == 8


def test_tuner_trains_genomes_of_a_built_in_space(local_ray, tmp_path):
    from ray import tune

    from archsearch.evaluation.training import TaskRef, TrainingEvaluator, TrainingRecipe
    from archsearch.integrations.tune import ArchsearchSearcher, genome_from_config

    evaluator = TrainingEvaluator(TaskRef("digits"), TrainingRecipe(epochs=1))

    def trainable(config):
        result = evaluator.evaluate(genome_from_config(config))
        tune.report(result.metrics)

    searcher = ArchsearchSearcher("mlp", {"val_accuracy": "maximize", "n_params": "minimize"}, seed=1)
    results = tune.Tuner(trainable, tune_config=tune.TuneConfig(search_alg=searcher, num_samples=3),
                         run_config=tune.RunConfig(storage_path=str(tmp_path), verbose=0)).fit()
    assert not results.errors
    accuracies = [r.metrics["val_accuracy"] for r in results]
    assert len(accuracies) == 3 and min(accuracies) > 0.3
    best = results.get_best_result(metric="val_accuracy", mode="max")
    assert best.metrics["val_accuracy"] == max(accuracies)


def test_the_searcher_offers_learning_rate_siblings_as_trials_of_their_own():
    pytest.importorskip("ray.tune")
    from archsearch.integrations.tune import ArchsearchSearcher

    def space(chooser):
        return {"width": chooser.suggest_categorical("width", [8, 16]),
                "lr": chooser.suggest_float("recipe.lr", 1e-4, 1e-1, log=True)}

    searcher = ArchsearchSearcher(space, {"score": "maximize"}, seed=0, lr_siblings=3)
    configs = [searcher.suggest(str(i)) for i in range(3)]
    assert len({c["arch_id"] for c in configs}) == 3
    assert [c.origin for c in searcher._live.values()][1:] == ["learning-rate sibling"] * 2


def test_the_searcher_suggests_start_points_first():
    pytest.importorskip("ray.tune")
    from archsearch.integrations.tune import ArchsearchSearcher

    def space(chooser):
        return {"width": chooser.suggest_categorical("width", [8, 16, 32]), "depth": chooser.suggest_int("depth", 1, 3)}

    searcher = ArchsearchSearcher(space, {"score": "maximize"}, seed=0, start_with=[{"width": 32, "depth": 3}])
    assert searcher.suggest("0") is not None
    assert [c.decisions for c in searcher._live.values()] == [{"width": 32, "depth": 3}]
    assert [c.origin for c in searcher._live.values()] == ["given to start with"]
