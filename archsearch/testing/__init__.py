"""Contract suites and toy fixtures for people who write strategies, spaces or stores."""

from archsearch.testing.strategy_contract import StrategyContract, drive
from archsearch.testing.toys import (
    tiny_block_space,
    toy_evaluate,
    toy_objectives,
    toy_space,
    zdt1_evaluate,
    zdt1_space,
)

__all__ = ["StrategyContract", "drive", "tiny_block_space", "toy_evaluate", "toy_objectives", "toy_space",
           "zdt1_evaluate", "zdt1_space"]
