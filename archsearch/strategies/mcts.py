"""Monte Carlo tree search over the define-by-run decision sequence.

The tree's levels are the space's decisions in the order the space asks them, so a conditional
decision simply lives below the choice that made it exist: any space works, a user's callable one
included. Selection is UCT (Kocsis and Szepesvári 2006) blended with RAVE / all-moves-as-first
statistics (Gelly and Silver 2007): how well a value of a decision did anywhere in the tree, which is
what lets deep levels, visited a handful of times each, choose well. Children grow by progressive
widening (Couëtoule et al. 2011), at most ``ceil(widening * visits ** widening_exponent)``, and a new
child is the untried value with the best RAVE statistics. Every proposal adds its whole path to the
tree (the "rollout" is kept), which makes exhaustion exact: a fully expanded node whose children are all exhausted is exhausted.

The reward of a result is its domination quantile against every result told before it (1 when nothing
dominates it), a scale-free multi-objective reward that needs no reference point. A proposal in
flight counts as a visit with reward 0 until its result comes back (a "virtual loss"), which is what
spreads several workers over different branches.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from archsearch.genome import canonical_json
from archsearch.space import RandomChooser, RecordingChooser, SearchSpace
from archsearch.strategies._base import Strategy
from archsearch.strategies._common import Archive, domination_quantile, first_unseen, random_candidate
from archsearch.trial import Candidate, EvalResult

Node = dict[str, Any]  # parent, value, label, size, n (visits), w (reward sum), children {key: index}, done


class _TreeWalk(RecordingChooser):
    """The chooser of one proposal: selects (and extends) a path down the tree, one decision per level.

    If the space asks a different decision at a node than it did before (a space that is not a pure
    function of its decisions), the walk leaves the tree and samples the rest uniformly.
    """

    def __init__(self, search: MCTS) -> None:
        super().__init__()
        self.search = search
        self.node = 0
        self.path = [0]
        self.on_tree = True

    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any:
        options = {canonical_json(c): c for c in choices}
        return self._step(name, len(options), lambda: self._draw().suggest_categorical(name, list(choices)),
                          lambda tried: [options[k] for k in options if k not in tried], resolve=options)

    def suggest_int(self, name: str, low: int, high: int, step: int = 1, log: bool = False) -> int:
        size = max(0, (high - low) // step + 1) if step >= 1 else 1

        def untried(tried: set[str]) -> list[int] | None:
            return None if size > 256 else [v for v in range(low, high + 1, step) if canonical_json(v) not in tried]

        return int(self._step(name, size, lambda: self._draw().suggest_int(name, low, high, step, log), untried))

    def suggest_float(
        self, name: str, low: float, high: float, step: float | None = None, log: bool = False
    ) -> float:
        size = 1 if low == high else (int(math.floor((high - low) / step + 1e-9)) + 1 if step else None)
        return float(self._step(name, size, lambda: self._draw().suggest_float(name, low, high, step, log), None))

    def _draw(self) -> RandomChooser:
        return RandomChooser(self.search.rng)

    def _step(
        self,
        name: str,
        size: int | None,
        draw: Callable[[], Any],
        untried: Callable[[set[str]], list[Any] | None] | None,
        resolve: Mapping[str, Any] | None = None,
    ) -> Any:
        nodes = self.search._nodes
        node = nodes[self.node] if self.on_tree else None
        if node is not None and node["label"] is None:
            node["label"], node["size"] = name, size
        if node is None or node["label"] != name or node["size"] != size:
            self.on_tree = False
            return self._record(name, draw())
        key, value = self.search._select(node, draw, untried)
        value = resolve.get(key, value) if resolve is not None else value
        child = node["children"].get(key)
        if child is None:
            child = len(nodes)
            nodes.append({"parent": self.node, "value": value, "label": None, "size": None,
                          "n": 0, "w": 0.0, "children": {}, "done": False})
            node["children"][key] = child
        self.node = child
        self.path.append(child)
        return self._record(name, value)


class MCTS(Strategy):
    """UCT + RAVE over the decision sequence with progressive widening and a domination-quantile reward.

    Args:
        exploration: UCT constant; rewards lie in [0, 1].
        rave_equivalence: visits of a node at which its own mean and the RAVE mean weigh the same
            (Silver's schedule); 0 turns RAVE off.
        widening: progressive-widening coefficient.
        widening_exponent: progressive-widening exponent (0.5: children grow with the root of visits).
        max_retries: walks tried per ask when they end on architectures already proposed, then random
            samples tried before ``ask`` returns ``None``.
    """

    name = "mcts"

    def __init__(
        self,
        space: SearchSpace,
        objectives: dict[str, str] | None = None,
        seed: int = 0,
        exploration: float = 0.5,
        rave_equivalence: float = 50.0,
        widening: float = 1.0,
        widening_exponent: float = 0.5,
        max_retries: int = 50,
    ) -> None:
        super().__init__(space, objectives, seed)
        self.exploration = exploration
        self.rave_equivalence = rave_equivalence
        self.widening = widening
        self.widening_exponent = widening_exponent
        self.max_retries = max_retries
        self._nodes: list[Node] = [_root()]
        self._pending: dict[str, list[int]] = {}
        self._rave: dict[str, dict[str, list[float]]] = {}  # label -> value key -> [count, reward sum]
        self._archive = Archive(self.objectives)

    def options(self) -> dict[str, tuple[Any, str]]:
        return {**super().options(), "exploration": (self.exploration, "float>=0"),
                "rave_equivalence": (self.rave_equivalence, "float>=0"), "widening": (self.widening, "float>0"),
                "widening_exponent": (self.widening_exponent, "0..1"), "max_retries": (self.max_retries, "int>=1")}

    def ask(self) -> Candidate | None:
        candidate = first_unseen(self._walk, self._seen, self.max_retries)
        if candidate is None and not self._nodes[0]["done"]:
            candidate = first_unseen(lambda _: random_candidate(self.space, self.rng), self._seen, self.max_retries)
        return self._propose(candidate)

    def _walk(self, attempt: int) -> Candidate | None:
        if self._nodes[0]["done"]:
            return None
        walk = _TreeWalk(self)
        candidate = Candidate(self.space.build(walk), dict(walk.decisions), origin="mcts")
        if walk.on_tree:
            self._mark_done(walk.node)  # this exact path is spent, whether new or a duplicate
        if candidate.arch_id not in self._seen:
            for index in walk.path:
                self._nodes[index]["n"] += 1  # virtual loss until the result comes back
            self._pending[candidate.arch_id] = walk.path
        return candidate

    def _select(
        self, node: Node, draw: Callable[[], Any], untried: Callable[[set[str]], list[Any] | None] | None
    ) -> tuple[str, Any]:
        """Key and value of the child to follow: a new value while widening allows, else the best score."""
        children: dict[str, int] = node["children"]
        open_children = [c for c in children.values() if not self._nodes[c]["done"]]
        full = node["size"] is not None and len(children) >= node["size"]
        allowed = math.ceil(self.widening * (node["n"] + 1) ** self.widening_exponent)
        rave = self._rave.get(node["label"], {})
        if not full and (len(children) < allowed or not open_children):
            fresh = untried(set(children)) if untried is not None else None
            if fresh:
                keys = [canonical_json(v) for v in fresh]
                i = self._argmax([self._score(None, rave.get(k), node["n"]) for k in keys])
                return keys[i], fresh[i]
            if fresh is None:
                for _ in range(32):
                    value = draw()
                    if canonical_json(value) not in children:
                        return canonical_json(value), value
        if not open_children:
            value = draw()
            return canonical_json(value), value
        scores = [self._score(self._nodes[c], rave.get(canonical_json(self._nodes[c]["value"])), node["n"])
                  for c in open_children]
        child = self._nodes[open_children[self._argmax(scores)]]
        return canonical_json(child["value"]), child["value"]

    def _score(self, child: Node | None, rave: list[float] | None, parent_n: int) -> float:
        """UCT on the child's mean blended with its value's RAVE mean; unvisited first."""
        n = child["n"] if child is not None else 0
        n_rave = rave[0] if rave and self.rave_equivalence > 0 else 0
        if n == 0 and n_rave == 0:
            return math.inf
        beta = math.sqrt(self.rave_equivalence / (3 * n + self.rave_equivalence)) if n_rave else 0.0
        mean = (1 - beta) * (child["w"] / n if n else 0.0) + beta * (rave[1] / n_rave if n_rave else 0.0)
        return mean + self.exploration * math.sqrt(math.log(max(2, parent_n)) / (n or n_rave))

    def _argmax(self, scores: list[float]) -> int:
        values = np.array(scores)
        best = np.flatnonzero(values == values.max())
        return int(best[int(self.rng.integers(len(best)))])

    def _mark_done(self, index: int) -> None:
        """Mark a leaf exhausted, and every ancestor whose children are then all known and exhausted."""
        self._nodes[index]["done"] = True
        parent = self._nodes[index]["parent"]
        while parent >= 0:
            node = self._nodes[parent]
            children = node["children"].values()
            if node["size"] is None or len(children) < node["size"] or not all(self._nodes[c]["done"] for c in children):
                return
            node["done"] = True
            parent = node["parent"]

    def tell(self, candidate: Candidate, result: EvalResult) -> None:
        self._seen.add(candidate.arch_id)
        values = self._archive.minimized(result)
        reward = 0.0 if values is None else domination_quantile(values, self._archive.points())
        self._archive.add(candidate, result)
        for index in self._pending.pop(candidate.arch_id, []):
            self._nodes[index]["w"] += reward
        for label, value in candidate.decisions.items():
            stats = self._rave.setdefault(label, {}).setdefault(canonical_json(value), [0, 0.0])
            stats[0] += 1
            stats[1] += reward

    def _own_state(self) -> dict[str, Any]:
        return {
            "nodes": [dict(node, children=dict(node["children"])) for node in self._nodes],
            "pending": {k: list(v) for k, v in self._pending.items()},
            "rave": {label: {k: list(v) for k, v in stats.items()} for label, stats in self._rave.items()},
            "archive": self._archive.state_dict(),
        }

    def _load_own_state(self, state: Mapping[str, Any]) -> None:
        self._nodes = [dict(node, children=dict(node["children"])) for node in state["nodes"]]
        self._pending = {k: list(v) for k, v in state["pending"].items()}
        self._rave = {label: {k: list(v) for k, v in stats.items()} for label, stats in state["rave"].items()}
        self._archive.load_state_dict(state["archive"])


def _root() -> Node:
    return {"parent": -1, "value": None, "label": None, "size": None, "n": 0, "w": 0.0, "children": {}, "done": False}
