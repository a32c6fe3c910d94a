"""Regularized (aging) evolution, Real et al. 2019, "Regularized Evolution for Image Classifier
Architecture Search", with NSGA-II selection (Deb et al. 2002) when there are several objectives.

The population is a queue: each complete result joins it and the oldest member leaves, so an
architecture that scored well once by luck cannot dominate the search for long. Parents are tournament
winners among ``sample_size`` random members, ranked by non-dominated front then crowding distance
(with one objective that is simply the best value). With ``screen > 1``, each proposal is the child a
surrogate of all past results likes best among ``screen`` candidates (predictor-guided evolution,
see :mod:`archsearch.strategies._surrogate`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from archsearch.space import SearchSpace, SpaceError
from archsearch.strategies._base import Strategy
from archsearch.strategies._common import (
    Archive,
    best_of_unseen,
    crossover,
    first_unseen,
    mutate,
    random_candidate,
    rank_and_crowding,
)
from archsearch.strategies._surrogate import pick_by_surrogate
from archsearch.trial import Candidate, EvalResult


class Evolution(Strategy):
    """Aging evolution with tournament selection; children mutate or cross over their parents' decisions.

    Args:
        population_size: members kept (the oldest leaves when a new one joins); also the number of
            random architectures proposed before evolution starts.
        sample_size: members per tournament; larger means greedier.
        n_mutations: decisions re-sampled per child (more on retries after duplicates).
        crossover_prob: chance a child mixes two tournament winners (``space.crossover`` where the space
            offers it, else a uniform crossover of their decisions); recombination is what lets good
            decisions found in different members meet.
        graph_mutation_prob: chance a child comes from ``space.mutate(genome, rng)`` where the space
            offers it (graph-level edits that decision re-sampling cannot express).
        screen: children generated per proposal; a surrogate (extra-trees on past results) picks the
            one to evaluate. 1 turns screening off (plain regularized evolution).
        allow_duplicates: propose architectures already evaluated or in flight.
        max_retries: children tried per ask before falling back to random samples, and random samples
            tried before concluding the space has nothing new (``ask`` returns ``None``).
    """

    name = "evolution"

    def __init__(
        self,
        space: SearchSpace,
        objectives: dict[str, str] | None = None,
        seed: int = 0,
        population_size: int = 20,
        sample_size: int = 5,
        n_mutations: int = 1,
        crossover_prob: float = 0.5,
        graph_mutation_prob: float = 0.3,
        screen: int = 16,
        allow_duplicates: bool = False,
        max_retries: int = 50,
    ) -> None:
        super().__init__(space, objectives, seed)
        self.population_size = population_size
        self.sample_size = sample_size
        self.n_mutations = n_mutations
        self.crossover_prob = crossover_prob
        self.graph_mutation_prob = graph_mutation_prob
        self.screen = screen
        self.allow_duplicates = allow_duplicates
        self.max_retries = max_retries
        self._population = Archive(self.objectives)  # oldest first
        self._history = Archive(self.objectives)  # every complete result: the surrogate's data
        self._keys: tuple[np.ndarray, np.ndarray] | None = None

    def options(self) -> dict[str, tuple[Any, str]]:
        return {**super().options(), "population_size": (self.population_size, "int>=2"),
                "sample_size": (self.sample_size, "int>=1"), "n_mutations": (self.n_mutations, "int>=1"),
                "crossover_prob": (self.crossover_prob, "0..1"),
                "graph_mutation_prob": (self.graph_mutation_prob, "0..1"), "screen": (self.screen, "int>=1"),
                "allow_duplicates": (self.allow_duplicates, "bool"), "max_retries": (self.max_retries, "int>=1")}

    def ask(self) -> Candidate | None:
        candidate = None
        if self._n_asked >= self.population_size and len(self._population):
            candidate = best_of_unseen(self._child, self._seen, max(self.max_retries, self.screen), self.screen,
                                       self._pick, self.allow_duplicates)
        if candidate is None:
            candidate = first_unseen(lambda _: random_candidate(self.space, self.rng), self._seen,
                                     self.max_retries, self.allow_duplicates)
        return self._propose(candidate)

    def _pick(self, children: list[Candidate]) -> int:
        return pick_by_surrogate(self._history, [c.decisions for c in children], self._derived_seed(len(self._history)))

    def _child(self, attempt: int) -> Candidate:
        parent = self._tournament()
        roll = self.rng.random()
        if roll < self.crossover_prob and len(self._population) > 1:
            other = self._tournament()
            child = self._space_op("crossover", parent, other)
            return child or crossover(self.space, self._population.decisions[parent],
                                      self._population.decisions[other], self.rng)
        if roll < self.crossover_prob + self.graph_mutation_prob:
            child = self._space_op("mutate", parent)
            if child is not None:
                return child
        n_changes = self.n_mutations + attempt // 10  # duplicates: step further away
        candidate = mutate(self.space, self._population.decisions[parent], self.rng, n_changes)
        candidate.origin = f"{candidate.origin} of {self._population.ids[parent]}"
        return candidate

    def _space_op(self, op: str, *members: int) -> Candidate | None:
        """A child from the space's own graph operator, or ``None`` if it has none (or cannot replay)."""
        fn = getattr(self.space, op, None)
        if not callable(fn):
            return None
        try:
            parents = [self.space.replay(self._population.decisions[m]) for m in members]
        except SpaceError:
            return None
        genome = fn(*parents, self.rng)
        origin = f"graph {op} of {', '.join(self._population.ids[m] for m in members)}"
        return Candidate(genome, dict(genome.decisions), origin=origin)

    def _tournament(self) -> int:
        """Index of the best of ``sample_size`` random members (front rank, then crowding)."""
        if self._keys is None:
            self._keys = rank_and_crowding(self._population.points())
        rank, crowd = self._keys
        n = len(self._population)
        entrants = self.rng.choice(n, size=min(self.sample_size, n), replace=False)
        return int(min(entrants, key=lambda i: (rank[i], -crowd[i])))

    def tell(self, candidate: Candidate, result: EvalResult) -> None:
        self._seen.add(candidate.arch_id)
        self._history.add(candidate, result)
        if self._population.add(candidate, result) is None:
            return
        if len(self._population) > self.population_size:
            self._population.pop_oldest()
        self._keys = None

    def _own_state(self) -> dict[str, Any]:
        return {"population": self._population.state_dict(), "history": self._history.state_dict()}

    def _load_own_state(self, state: Mapping[str, Any]) -> None:
        self._population.load_state_dict(state["population"])
        self._history.load_state_dict(state["history"])
        self._keys = None
