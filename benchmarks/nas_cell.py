"""Builds the cell-like tabular NAS benchmark: every cell of a NAS-Bench-101-style space on MNIST-1D.

The block-stack tables (``nas_table.py``, ``nas_mnist1d.py``) are chains; published NAS benchmarks are
mostly cells, a small DAG whose nodes each choose an operation and which earlier nodes feed them. This
space is one: three nodes, each an operation (``mlp``, ``glu``, ``kan_chebyshev`` or ``identity``, a skip)
fed by the sum of a nonempty subset of the cell's input and the nodes before it; the cell's output sums
the nodes nothing else reads. With the model width (32 or 64) that is 2 x 4**3 x (1 x 3 x 7) = 2,688
decision sets. Cells that compute the same graph (an identity node read by no one, say) share an
``arch_id`` and one row. Every architecture trains once for ``--epochs`` epochs with the project's
evaluator and seed 0, as in ``nas_mnist1d.py`` (whose table format, resume and checkpointing it uses).
Regenerate with

    PYTHONPATH=. OMP_NUM_THREADS=1 python benchmarks/nas_cell.py
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import networkx as nx
from nas_mnist1d import load_table, table_main  # beside this script

from archsearch.genome import INPUT, OUTPUT, BlockSpec, Genome
from archsearch.space import Chooser, SearchSpace
from archsearch.spaces.block_graph import decisions_of

TABLE = Path(__file__).parent / "data" / "nas_cell.parquet"
OPERATIONS = ("mlp", "glu", "kan_chebyshev", "identity")
NODES = 3
PARAMS = {"mlp": {"expansion": 2}, "glu": {"expansion": 2}, "kan_chebyshev": {"degree": 3}, "identity": {}}


def _subsets(sources: list[str]) -> list[str]:
    """Nonempty subsets of ``sources`` as '+'-joined names, in a fixed order."""
    return ["+".join(s for bit, s in enumerate(sources) if mask >> bit & 1) for mask in range(1, 2 ** len(sources))]


class CellSpace(SearchSpace):
    """A three-node cell: per node an operation and the subset of earlier nodes (and the input) it sums."""

    name = "nas_cell"

    def build(self, chooser: Chooser) -> Genome:
        width = chooser.suggest_categorical("width", [32, 64])
        graph = nx.DiGraph()
        graph.add_node(INPUT)
        read: set[str] = set()
        for k in range(1, NODES + 1):
            node = f"n{k}"
            operation = chooser.suggest_categorical(f"n{k}.op", list(OPERATIONS))
            inputs = chooser.suggest_categorical(f"n{k}.inputs", _subsets([INPUT, *(f"n{j}" for j in range(1, k))]))
            skip = operation == "identity"
            graph.add_node(node, spec=BlockSpec(operation, PARAMS[operation], activation="relu",
                                                norm="none" if skip else "layernorm",
                                                norm_placement="none" if skip else "pre"))
            for source in inputs.split("+"):
                graph.add_edge(source, node)
                read.add(source)
        for k in range(1, NODES + 1):
            if f"n{k}" not in read:
                graph.add_edge(f"n{k}", OUTPUT)
        return Genome(graph, {"width": width}, decisions_of(chooser))


def nas_space() -> CellSpace:
    return CellSpace()


def load_cell_table() -> Any:
    """The table's complete rows as a pandas DataFrame."""
    return load_table(TABLE)


def main() -> None:
    table_main(nas_space(), TABLE, __doc__)


if __name__ == "__main__":
    main()
