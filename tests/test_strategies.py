from archsearch.space import as_space
from archsearch.strategies import RandomSearch
from archsearch.testing import StrategyContract, drive, toy_objectives, toy_space


class TestRandomSearchContract(StrategyContract):
    def make_strategy(self, space, objectives, seed):
        return RandomSearch(space, objectives, seed=seed)


def test_random_search_never_repeats_an_architecture():
    strategy = RandomSearch(as_space(toy_space), toy_objectives(), seed=0)
    ids = [c.arch_id for c in drive(strategy, 60, in_flight=4)]
    assert len(ids) == len(set(ids)) == 60


def test_random_search_covers_the_categorical_choices():
    strategy = RandomSearch(as_space(toy_space), toy_objectives(), seed=1)
    kinds = {c.architecture["kind"] for c in drive(strategy, 40)}
    widths = {c.architecture["width"] for c in drive(strategy, 40)}
    assert kinds == {"mlp", "kan"} and widths == {8, 16, 32, 64}
