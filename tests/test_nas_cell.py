"""The cell-like NAS benchmark's space builds the cells it describes, and its committed table matches it
(``benchmarks/nas_cell.py``)."""

from __future__ import annotations

import json

import pytest

pd = pytest.importorskip("pandas")
EXPECTED_COUNT = 2 * 4**3 * (1 * 3 * 7)  # widths x operations per node x input subsets of nodes 1, 2, 3


@pytest.fixture(scope="module")
def nas(import_benchmark) -> object:
    return import_benchmark("nas_cell")


@pytest.fixture(scope="module")
def architectures(nas, import_benchmark) -> dict:
    return {genome.arch_id: genome for genome in import_benchmark("nas_table").enumerate_space(nas.nas_space())}


def test_every_cell_is_a_distinct_architecture(architectures) -> None:
    assert len(architectures) == EXPECTED_COUNT


def test_a_cell_wires_its_nodes_as_its_decisions_say(nas) -> None:
    from archsearch.builder import build_model, param_count
    from archsearch.genome import INPUT, OUTPUT
    from archsearch.space import ReplayChooser
    from archsearch.tasks import DataSpec

    decisions = {"width": 32, "n1.op": "glu", "n1.inputs": "input", "n2.op": "identity", "n2.inputs": "input+n1",
                 "n3.op": "mlp", "n3.inputs": "n1"}
    genome = nas.nas_space().build(ReplayChooser(decisions))
    graph = genome.graph
    assert sorted(graph.predecessors("n2")) == [INPUT, "n1"] and list(graph.predecessors("n3")) == ["n1"]
    assert sorted(graph.predecessors(OUTPUT)) == ["n2", "n3"]  # the nodes nothing reads
    data = DataSpec(input_kind="vector", n_features=40, n_outputs=10)
    model = build_model(genome, data)
    assert param_count(genome, data) == sum(p.numel() for p in model.parameters())


def test_table_rows_rebuild_to_their_arch_ids(nas, architectures) -> None:
    if not nas.TABLE.exists():
        pytest.skip(f"{nas.TABLE} not generated")
    from archsearch.space import ReplayChooser

    table = nas.load_cell_table()
    everything = pd.read_parquet(nas.TABLE)
    assert set(everything["arch_id"]) == set(architectures) and len(everything) == EXPECTED_COUNT
    assert len(table) > 0.99 * EXPECTED_COUNT
    space = nas.nas_space()
    for arch_id, decisions in zip(table["arch_id"][::25], table["decisions"][::25], strict=True):
        assert space.build(ReplayChooser(json.loads(decisions))).arch_id == arch_id
