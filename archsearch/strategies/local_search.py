"""Pareto local search (Paquete, Chiarandini and Stützle 2004), the baseline that White et al. 2021,
"Local Search is State of the Art for Neural Architecture Search Benchmarks", found hard to beat.

Neighbours of the current Pareto front are proposed, least-explored member first; the neighbourhood of
a member is sampled (a few decisions re-sampled), since spaces with float decisions have no finite one.
When every front member has been explored, the search restarts from random samples. With
``screen > 1`` each proposal is the neighbour a surrogate of past results likes best among ``screen``
(see :mod:`archsearch.strategies._surrogate`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from archsearch.space import SearchSpace
from archsearch.strategies._base import Strategy
from archsearch.strategies._common import Archive, best_of_unseen, first_unseen, mutate, random_candidate
from archsearch.strategies._surrogate import pick_by_surrogate
from archsearch.trial import Candidate, EvalResult


class LocalSearch(Strategy):
    """Mutates members of the current front; random samples while the front is empty or explored.

    Args:
        n_initial: random architectures proposed before the local search starts.
        n_mutations: decisions re-sampled per neighbour.
        neighbours_per_decision: a member counts as explored after this many neighbours per decision
            it has (a duplicate neighbour counts too).
        screen: neighbours generated per proposal; a surrogate (extra-trees on past results) picks the
            one to evaluate. 1 turns screening off (plain Pareto local search).
        allow_duplicates: propose architectures already evaluated or in flight.
        max_retries: neighbours tried per ask, and random samples tried before concluding the space
            has nothing new (``ask`` returns ``None``).
    """

    name = "local"

    def __init__(
        self,
        space: SearchSpace,
        objectives: dict[str, str] | None = None,
        seed: int = 0,
        n_initial: int = 10,
        n_mutations: int = 1,
        neighbours_per_decision: float = 2.0,
        screen: int = 16,
        allow_duplicates: bool = False,
        max_retries: int = 50,
    ) -> None:
        super().__init__(space, objectives, seed)
        self.n_initial = n_initial
        self.n_mutations = n_mutations
        self.neighbours_per_decision = neighbours_per_decision
        self.screen = screen
        self.allow_duplicates = allow_duplicates
        self.max_retries = max_retries
        self._archive = Archive(self.objectives)
        self._expanded: dict[str, int] = {}
        self._parent: dict[str, str] = {}  # neighbour -> the member it came from, during one ask

    def options(self) -> dict[str, tuple[Any, str]]:
        return {**super().options(), "n_initial": (self.n_initial, "int>=1"),
                "n_mutations": (self.n_mutations, "int>=1"),
                "neighbours_per_decision": (self.neighbours_per_decision, "float>0"),
                "screen": (self.screen, "int>=1"), "allow_duplicates": (self.allow_duplicates, "bool"),
                "max_retries": (self.max_retries, "int>=1")}

    def ask(self) -> Candidate | None:
        candidate = None
        if self._n_asked >= self.n_initial:
            self._parent = {}
            candidate = best_of_unseen(self._neighbour, self._seen, max(self.max_retries, self.screen), self.screen,
                                       self._pick, self.allow_duplicates)
            if candidate is not None:
                self._count(self._parent[candidate.arch_id])
        if candidate is None:
            candidate = first_unseen(lambda _: random_candidate(self.space, self.rng), self._seen,
                                     self.max_retries, self.allow_duplicates)
        return self._propose(candidate)

    def _neighbour(self, attempt: int) -> Candidate | None:
        """A mutation of the least-explored unexplored front member; ``None`` when all are explored."""
        open_members = [
            i for i in self._archive.front().tolist()
            if self._expanded.get(self._archive.ids[i], 0) < self._limit(i)
        ]
        if not open_members:
            return None
        fewest = min(self._expanded.get(self._archive.ids[i], 0) for i in open_members)
        ties = [i for i in open_members if self._expanded.get(self._archive.ids[i], 0) == fewest]
        member = ties[int(self.rng.integers(len(ties)))]
        arch_id = self._archive.ids[member]
        candidate = mutate(self.space, self._archive.decisions[member], self.rng, self.n_mutations)
        candidate.origin = f"{candidate.origin} of {arch_id}"
        if candidate.arch_id in self._seen and not self.allow_duplicates:
            self._count(arch_id)  # a known neighbour: evidence the neighbourhood is running out
        self._parent.setdefault(candidate.arch_id, arch_id)
        return candidate

    def _count(self, arch_id: str) -> None:
        self._expanded[arch_id] = self._expanded.get(arch_id, 0) + 1

    def _pick(self, neighbours: list[Candidate]) -> int:
        return pick_by_surrogate(self._archive, [c.decisions for c in neighbours], self._derived_seed(len(self._archive)))

    def _limit(self, member: int) -> float:
        return max(1.0, self.neighbours_per_decision * len(self._archive.decisions[member]))

    def tell(self, candidate: Candidate, result: EvalResult) -> None:
        self._seen.add(candidate.arch_id)
        self._archive.add(candidate, result)

    def _own_state(self) -> dict[str, Any]:
        return {"archive": self._archive.state_dict(), "expanded": self._expanded}

    def _load_own_state(self, state: Mapping[str, Any]) -> None:
        self._archive.load_state_dict(state["archive"])
        self._expanded = {k: int(v) for k, v in state["expanded"].items()}
