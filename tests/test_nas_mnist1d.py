"""The committed MNIST-1D NAS table matches the space it claims to enumerate (``benchmarks/nas_mnist1d.py``)."""

from __future__ import annotations

import json

import pytest

pd = pytest.importorskip("pandas")
EXPECTED_COUNT = 2 * (12 + 12**2 + 12**3)  # widths x (options per stage, for depth 1, 2, 3)


@pytest.fixture(scope="module")
def nas(import_benchmark) -> object:
    return import_benchmark("nas_mnist1d")


@pytest.fixture(scope="module")
def architectures(nas, import_benchmark) -> dict:
    return {genome.arch_id: genome for genome in import_benchmark("nas_table").enumerate_space(nas.nas_space())}


def test_space_enumerates_every_architecture_once(architectures) -> None:
    assert len(architectures) == EXPECTED_COUNT
    depths = {genome.decisions["depth"] for genome in architectures.values()}
    assert depths == {1, 2, 3}
    deep = next(g for g in architectures.values() if g.decisions["depth"] == 3)
    shallow = next(g for g in architectures.values() if g.decisions["depth"] == 1)
    assert "b2.kind" in deep.decisions and "b2.kind" not in shallow.decisions  # later stages are conditional


def test_table_rows_rebuild_to_their_arch_ids(nas, architectures) -> None:
    """The committed table holds every architecture once, each row's decisions being its architecture's."""
    if not nas.TABLE.exists():
        pytest.skip(f"{nas.TABLE} not generated")
    from archsearch.space import ReplayChooser

    table = nas.load_table()
    everything = pd.read_parquet(nas.TABLE)
    assert set(everything["arch_id"]) == set(architectures) and len(everything) == EXPECTED_COUNT
    assert len(table) > 0.99 * EXPECTED_COUNT
    for arch_id, decisions, curve, epochs in zip(table["arch_id"], table["decisions"], table["curve"],
                                                 table["epochs_trained"], strict=True):
        assert json.loads(decisions) == dict(architectures[arch_id].decisions)
        assert len(json.loads(curve)) == round(epochs)
    space = nas.nas_space()
    for arch_id, decisions in zip(table["arch_id"][::25], table["decisions"][::25], strict=True):
        assert space.build(ReplayChooser(json.loads(decisions))).arch_id == arch_id  # replays strictly
