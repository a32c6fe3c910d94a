"""Random search: every decision sampled uniformly; the baseline every other strategy must beat."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from archsearch.space import RandomChooser, SearchSpace
from archsearch.strategies._base import Strategy
from archsearch.trial import Candidate, EvalResult


class RandomSearch(Strategy):
    """Samples architectures independently, skipping ones already proposed.

    Args:
        dedupe: skip architectures (by ``arch_id``) already proposed in this run.
        max_retries: samples tried per ask before concluding the space has nothing new; ``ask`` then
            returns ``None``, which ends the run early instead of re-evaluating duplicates.
    """

    name = "random"

    def __init__(
        self,
        space: SearchSpace,
        objectives: dict[str, str] | None = None,
        seed: int = 0,
        dedupe: bool = True,
        max_retries: int = 100,
    ) -> None:
        super().__init__(space, objectives, seed)
        self.dedupe = dedupe
        self.max_retries = max_retries
        self._n_told = 0

    def options(self) -> dict[str, tuple[Any, str]]:
        return {**super().options(), "dedupe": (self.dedupe, "bool"), "max_retries": (self.max_retries, "int>=1")}

    def ask(self) -> Candidate | None:
        for _ in range(self.max_retries if self.dedupe else 1):
            chooser = RandomChooser(self.rng)
            candidate = Candidate(self.space.build(chooser), dict(chooser.decisions), origin="random")
            if not self.dedupe or candidate.arch_id not in self._seen:
                return self._propose(candidate)
        return None

    def tell(self, candidate: Candidate, result: EvalResult) -> None:
        self._seen.add(candidate.arch_id)
        self._n_told += 1

    def _own_state(self) -> dict[str, Any]:
        return {"n_told": self._n_told}

    def _load_own_state(self, state: Mapping[str, Any]) -> None:
        self._n_told = int(state["n_told"])
