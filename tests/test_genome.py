import json
import pickle

import networkx as nx
import pytest

from archsearch.genome import INPUT, OUTPUT, BlockSpec, Genome, GenomeError


def chain(**meta):
    specs = [BlockSpec("mlp", {"expansion": 2}, "gelu"), BlockSpec("mlp", {"expansion": 1}, "relu", residual=True)]
    return Genome.sequential(specs, {"width": 32, **meta}, {"depth": 2})


def test_json_round_trip_is_exact():
    genome = chain()
    again = Genome.from_json(genome.to_json())
    assert again == genome
    assert again.arch_id == genome.arch_id
    assert again.decisions == {"depth": 2}
    assert json.loads(again.to_json()) == genome.to_dict()


def test_genomes_and_specs_pickle_for_process_pools():
    genome = chain()
    again = pickle.loads(pickle.dumps(genome))
    assert again == genome and again.arch_id == genome.arch_id and again.decisions == {"depth": 2}
    spec = genome.blocks()[0][1]
    assert pickle.loads(pickle.dumps(spec)) == spec


def test_arch_id_depends_on_architecture_not_decisions():
    a = chain()
    b = Genome(a.graph, a.meta, {"something": "else"})
    assert a.arch_id == b.arch_id
    assert chain(width=64).arch_id != a.arch_id
    other = Genome.sequential([BlockSpec("mlp", {"expansion": 2}, "tanh")], {"width": 32})
    assert other.arch_id != a.arch_id


def test_arch_id_is_independent_of_param_insertion_order():
    a = Genome.sequential([BlockSpec("mlp", {"a": 1, "b": 2})], {"width": 8, "x": 1})
    b = Genome.sequential([BlockSpec("mlp", {"b": 2, "a": 1})], {"x": 1, "width": 8})
    assert a.arch_id == b.arch_id


def test_genome_is_immutable():
    genome = chain()
    with pytest.raises(nx.NetworkXError):
        genome.graph.add_edge("b0", "b9")
    with pytest.raises(TypeError):
        genome.meta["width"] = 3  # type: ignore[index]
    with pytest.raises(TypeError):
        genome.blocks()[0][1].params["expansion"] = 9  # type: ignore[index]


def test_parallel_graph_round_trips():
    graph = nx.DiGraph()
    graph.add_node("a", spec=BlockSpec("mlp"))
    graph.add_node("b", spec=BlockSpec("mlp", activation="gelu"))
    graph.add_node("m", spec=BlockSpec("mlp", merge="concat"))
    graph.add_edges_from([(INPUT, "a"), (INPUT, "b"), ("a", "m"), ("b", "m"), ("m", OUTPUT)])
    genome = Genome(graph, {"width": 16})
    assert Genome.from_dict(genome.to_dict()) == genome
    assert [n for n, _ in genome.blocks()] == ["a", "b", "m"]


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda d: d.update(edges=d["edges"] + [["b1", "b0"]]), "cycle"),
        (lambda d: d.update(edges=[e for e in d["edges"] if e[1] != "output"]), "not on a path"),
        (lambda d: d["nodes"].append({"id": "input", "spec": {"kind": "mlp"}}), "reserved"),
        (lambda d: d.update(edges=d["edges"] + [["b0", "nowhere"]]), "unknown node"),
        (lambda d: d["nodes"][0]["spec"].update(norm_placement="sideways"), "norm_placement"),
        (lambda d: d["nodes"][0]["spec"].update(colour="red"), "unknown fields"),
        (lambda d: d.update(schema_version=99), "schema_version 99"),
        (lambda d: d.update(schema_version="2\n"), r"schema_version '2\\n' is not"),  # one line, as written
        (lambda d: d.pop("nodes"), "'nodes'"),
    ],
)
def test_invalid_genome_json_is_refused_with_a_reason(mutate, message):
    data = chain().to_dict()
    mutate(data)
    with pytest.raises(GenomeError, match=message):
        Genome.from_dict(data)


def test_from_json_rejects_garbage():
    with pytest.raises(GenomeError, match="not valid JSON"):
        Genome.from_json("{nope")
    with pytest.raises(GenomeError, match="must be an object"):
        Genome.from_json("[1, 2]")


PINNED_IDS = {  # computed when ids were first made stable; a change here invalidates every saved run
    "688ed6b88cde1ce7": lambda: Genome.sequential(
        [BlockSpec("mlp", {"expansion": 2}, "gelu", residual=True)], {"width": 64}),
    "9aa71ac17a0e73e7": lambda: Genome.sequential(
        [BlockSpec("kan_bspline", {"grid": 5, "order": 3}, "silu", "rmsnorm", "peri"),
         BlockSpec("attention", {"heads": 4}, norm_placement="post", merge="concat")],
        {"width": 32, "tokenize": "features"}),
}


@pytest.mark.parametrize("arch_id", sorted(PINNED_IDS))
def test_arch_ids_are_pinned(arch_id):
    assert PINNED_IDS[arch_id]().arch_id == arch_id


def test_a_block_spec_field_added_with_a_default_changes_no_id():
    from dataclasses import dataclass

    @dataclass(frozen=True)
    class SpecWithDropout(BlockSpec):
        dropout: float = 0.0

    plain = Genome.sequential([BlockSpec("mlp", {"expansion": 2})])
    assert Genome.sequential([SpecWithDropout("mlp", {"expansion": 2})]).arch_id == plain.arch_id
    assert Genome.sequential([SpecWithDropout("mlp", {"expansion": 2}, dropout=0.1)]).arch_id != plain.arch_id


def test_block_order_is_networkx_lexicographic_topological_order():
    """``blocks()`` orders nodes with its own sort (cheaper); ids hash that order, so it must be networkx's."""
    import random

    from archsearch.genome import _lexicographic_topological_order

    rng = random.Random(0)
    for _ in range(200):
        names = [f"b{i}" for i in range(rng.randint(1, 9))]
        rng.shuffle(names)  # a topological order unrelated to the names' order
        graph = nx.DiGraph()
        graph.add_nodes_from(names)
        graph.add_edges_from((a, b) for i, a in enumerate(names) for b in names[i + 1:] if rng.random() < 0.3)
        assert _lexicographic_topological_order(graph) == list(nx.lexicographical_topological_sort(graph))
    assert _lexicographic_topological_order(nx.DiGraph([("a", "b"), ("b", "a")])) is None
