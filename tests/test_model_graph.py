"""The ``model`` strategy's graph features: counts of block kinds and of edges between kinds, seen by
its surrogate beside the decisions."""

import json

import networkx as nx
import numpy as np

from archsearch.genome import INPUT, OUTPUT, BlockSpec, Genome
from archsearch.space import as_space
from archsearch.strategies import ModelBased
from archsearch.strategies.model_based import graph_counts, one_hot
from archsearch.trial import COMPLETE, EvalResult

KINDS = ("mlp", "glu", "identity")


def cell(chooser) -> Genome:
    """Two nodes, each an operation; the second reads the input, the first node, or both."""
    graph = nx.DiGraph()
    graph.add_node(INPUT)
    first, second = (chooser.suggest_categorical(f"n{k}.op", list(KINDS)) for k in (1, 2))
    reads = chooser.suggest_categorical("n2.inputs", ["input", "n1", "input+n1"])
    graph.add_node("n1", spec=BlockSpec(first))
    graph.add_node("n2", spec=BlockSpec(second))
    graph.add_edge(INPUT, "n1")
    for source in reads.split("+"):
        graph.add_edge(source, "n2")
    graph.add_edge("n2", OUTPUT)
    if "n1" not in reads:
        graph.add_edge("n1", OUTPUT)
    return Genome(graph)


def accuracy(genome: Genome) -> float:
    """A toy score that depends on the wiring: a `glu` reading the input helps."""
    counts = graph_counts(genome)
    return 0.5 + 0.2 * counts.get("input>glu", 0.0) + 0.05 * counts.get("mlp", 0.0)


def run(strategy: ModelBased, n: int) -> None:
    for _ in range(n):
        candidate = strategy.ask()
        strategy.tell(candidate, EvalResult(COMPLETE, {"val_accuracy": accuracy(candidate.architecture)}))


def test_graph_counts_counts_block_kinds_and_edges_between_kinds():
    space = as_space(cell)
    genome = space.replay({"n1.op": "glu", "n2.op": "glu", "n2.inputs": "input+n1"})
    assert graph_counts(genome) == {"input": 1, "output": 1, "glu": 2, "input>glu": 2, "glu>glu": 1,
                                    "glu>output": 1}
    assert graph_counts({"x": [0.1, 0.2]}) == {}  # not a genome: no graph to count


def test_the_surrogate_sees_the_graph_columns_that_vary_and_only_with_the_option():
    space = as_space(cell)
    on = ModelBased(space, {"val_accuracy": "maximize"}, seed=0, n_initial=3)
    off = ModelBased(space, {"val_accuracy": "maximize"}, seed=0, n_initial=3, graph_features=False)
    for strategy in (on, off):
        run(strategy, 6)
    pool = [c.decisions for c in on._pool()]
    x_on, _, asked_on = on._training_rows(pool, on._archive.points())
    x_off, _, asked_off = off._training_rows(pool, off._archive.points())
    decisions = one_hot([*on._archive.decisions, *pool])
    assert x_off.shape[1] == decisions.shape[1]
    assert x_on.shape[1] > decisions.shape[1], "the counts of a two-node cell vary between architectures"
    assert (np.ptp(x_on[:, decisions.shape[1]:], axis=0) > 0).all(), "columns constant over the results are left out"


def test_a_resumed_search_rebuilds_the_counts_and_proposes_what_an_uninterrupted_one_would():
    space = as_space(cell)
    straight = ModelBased(space, {"val_accuracy": "maximize"}, seed=3, n_initial=3)
    run(straight, 8)
    state = json.loads(json.dumps(straight.state_dict()))  # what a run directory keeps: no counts in it
    resumed = ModelBased(space, {"val_accuracy": "maximize"}, seed=3, n_initial=3)
    resumed.load_state_dict(state)
    assert resumed.ask().arch_id == straight.ask().arch_id
