import pytest

from archsearch.space import as_space
from archsearch.strategies import MCTS, Bayes, Evolution, LocalSearch, ModelBased, RandomSearch
from archsearch.testing import StrategyContract, drive, toy_objectives, toy_space


class TestRandomSearchContract(StrategyContract):
    def make_strategy(self, space, objectives, seed):
        return RandomSearch(space, objectives, seed=seed)


class TestEvolutionContract(StrategyContract):
    n_candidates = 20  # past the random warm-up, so children are checked too (the block toy has 24)

    def make_strategy(self, space, objectives, seed):
        return Evolution(space, objectives, seed=seed, population_size=6, sample_size=3, crossover_prob=0.2)


class TestLocalSearchContract(StrategyContract):
    def make_strategy(self, space, objectives, seed):
        return LocalSearch(space, objectives, seed=seed, n_initial=4)


class TestMCTSContract(StrategyContract):
    def make_strategy(self, space, objectives, seed):
        return MCTS(space, objectives, seed=seed)


class TestBayesContract(StrategyContract):
    def make_strategy(self, space, objectives, seed):
        return Bayes(space, objectives, seed=seed, n_startup_trials=4)


class TestModelBasedContract(StrategyContract):
    def make_strategy(self, space, objectives, seed):
        return ModelBased(space, objectives, seed=seed, n_initial=4, pool_random=8, pool_mutations=8, pool_crossovers=4, n_trees=4)


class TestModelBasedForestContract(StrategyContract):
    """The forest surrogate the GP replaced as the default, kept as an option."""

    def make_strategy(self, space, objectives, seed):
        return ModelBased(space, objectives, seed=seed, n_initial=4, pool_random=8, pool_mutations=8, pool_crossovers=4, n_trees=4,
                          surrogate="forest")


class TestModelBasedGPContract(StrategyContract):
    """The GP alone (``auto`` may pick the forest on the toy problems)."""

    def make_strategy(self, space, objectives, seed):
        return ModelBased(space, objectives, seed=seed, n_initial=4, pool_random=8, pool_mutations=8, pool_crossovers=4, n_trees=4,
                          surrogate="gp")


class TestModelBasedWithMeasureContract(StrategyContract):
    """With ``measure`` giving one objective exactly (a cost that grows with the width)."""

    def make_strategy(self, space, objectives, seed):
        strategy = ModelBased(space, objectives, seed=seed, n_initial=4, pool_random=8, pool_mutations=8, pool_crossovers=4, n_trees=4)
        strategy.use_measure(measured_cost)
        return strategy


def measured_cost(architecture):
    if isinstance(architecture, dict):
        return {"cost": float(architecture["width"] * architecture["depth"])}
    return {"cost": float(len(architecture.blocks()))}


@pytest.mark.parametrize("cls", [RandomSearch, Evolution, LocalSearch, MCTS, Bayes, ModelBased])
def test_never_repeats_an_architecture(cls):
    strategy = cls(as_space(toy_space), toy_objectives(), seed=0)
    ids = [c.arch_id for c in drive(strategy, 40, in_flight=4)]
    assert len(ids) == len(set(ids)) == 40


def test_random_search_covers_the_categorical_choices():
    strategy = RandomSearch(as_space(toy_space), toy_objectives(), seed=1)
    kinds = {c.architecture["kind"] for c in drive(strategy, 40)}
    widths = {c.architecture["width"] for c in drive(strategy, 40)}
    assert kinds == {"mlp", "kan"} and widths == {8, 16, 32, 64}
