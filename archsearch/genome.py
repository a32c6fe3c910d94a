"""Genome: the architecture as pure data.

A genome is a frozen networkx DAG whose nodes are ``"input"``, ``"output"`` and block nodes carrying a
:class:`BlockSpec`, plus the decisions that produced it and a few global settings (``meta``: model width,
how inputs are tokenized). It never imports torch, so strategies, stores and tests handle thousands of
genomes cheaply; :mod:`archsearch.builder` turns one into a module.
"""

from __future__ import annotations

import hashlib
import heapq
import json
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields
from types import MappingProxyType
from typing import Any

import networkx as nx

from archsearch.errors import ArchsearchError
from archsearch.versions import GENOME_SCHEMA_VERSION

INPUT = "input"
OUTPUT = "output"

WIRINGS = ("sequential", "residual", "parallel")
NORM_PLACEMENTS = ("pre", "post", "peri", "mix", "none")
TOKENIZATIONS = ("none", "features")
MERGES = ("sum", "concat")


class GenomeError(ArchsearchError):
    """A genome (or its JSON) that does not describe a valid architecture."""


def canonical_json(obj: Any) -> str:
    """JSON with sorted keys and no whitespace: equal data gives equal text, hence equal hashes."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False)


def content_hash(obj: Any, length: int = 16) -> str:
    """Short SHA-256 of the canonical JSON of ``obj``; used as the architecture id."""
    return hashlib.sha256(canonical_json(obj).encode()).hexdigest()[:length]


def _require_json_mapping(what: str, value: Any) -> None:
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise GenomeError(f"{what} must be an object with string keys, got {value!r}")
    try:
        canonical_json(dict(value))
    except (TypeError, ValueError) as exc:
        raise GenomeError(f"{what} must hold JSON values only: {exc}") from None


IDENTITY_FIELDS_V1 = ("kind", "params", "activation", "norm", "norm_placement", "residual", "merge")
"""The block spec fields of genome schema 1, hashed into ``arch_id`` whatever their value."""


def _plain(value: Any) -> Any:
    return dict(value) if isinstance(value, Mapping) else value


def _frozen(mapping: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(sorted((mapping or {}).items())))


@dataclass(frozen=True)
class BlockSpec:
    """One block of the network: what it computes and how it is wrapped.

    Attributes:
        kind: registry name of the block (``"mlp"``, ...), see :mod:`archsearch.blocks`.
        params: block-specific hyperparameters, e.g. ``{"expansion": 2}``.
        activation: registry name of the activation used inside the block.
        norm: registry name of the normalization layer (``"none"`` for no layer).
        norm_placement: ``"pre"`` (normalize the block's input), ``"post"`` (normalize its output, after
            the residual sum), ``"peri"`` (normalize the input and the block's output before the residual
            sum, Peri-LN), ``"mix"`` (Mix-LN: ``post`` in the first quarter of the network's blocks,
            ``pre`` after; the builder resolves it from the block's position) or ``"none"``.
        residual: whether the block's input is added to its output (``x + f(x)``).
        merge: how a block with several incoming edges combines them: ``"sum"`` or ``"concat"``
            (concatenation followed by a linear projection back to the model width).
    """

    kind: str
    params: Mapping[str, Any] = field(default_factory=dict)
    activation: str = "relu"
    norm: str = "layernorm"
    norm_placement: str = "pre"
    residual: bool = False
    merge: str = "sum"

    def __post_init__(self) -> None:
        for name in ("kind", "activation", "norm", "norm_placement", "merge"):
            if not isinstance(getattr(self, name), str):
                raise GenomeError(f"block spec field {name!r} must be a string, got {getattr(self, name)!r}")
        if not isinstance(self.residual, bool):
            raise GenomeError(f"block spec field 'residual' must be true or false, got {self.residual!r}")
        _require_json_mapping("block spec 'params'", self.params)
        object.__setattr__(self, "params", _frozen(self.params))
        if self.norm_placement not in NORM_PLACEMENTS:
            raise GenomeError(
                f"norm_placement {self.norm_placement!r} is not one of {', '.join(NORM_PLACEMENTS)}"
            )
        if self.merge not in MERGES:
            raise GenomeError(f"merge {self.merge!r} is not one of {', '.join(MERGES)}")

    def identity(self) -> dict[str, Any]:
        """What ``arch_id`` hashes: the fields genomes had at schema 1 always (so ids from then stay
        valid), and any field added since only where it differs from its default (so adding a field
        with a default changes no existing id)."""
        out = {name: value for name, value in self.to_dict().items() if name in IDENTITY_FIELDS_V1}
        for f in fields(self):
            if f.name not in IDENTITY_FIELDS_V1:
                default = f.default_factory() if f.default_factory is not MISSING else f.default
                if getattr(self, f.name) != default:
                    out[f.name] = _plain(getattr(self, f.name))
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "params": dict(self.params),
            "activation": self.activation,
            "norm": self.norm,
            "norm_placement": self.norm_placement,
            "residual": self.residual,
            "merge": self.merge,
        }

    def __reduce__(self) -> tuple[Any, tuple[dict[str, Any]]]:
        return BlockSpec.from_dict, (self.to_dict(),)  # read-only params do not pickle

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BlockSpec:
        unknown = set(data) - {f for f in cls.__dataclass_fields__}
        if unknown:
            raise GenomeError(f"block spec has unknown fields {sorted(unknown)}")
        if "kind" not in data:
            raise GenomeError("block spec has no 'kind'")
        return cls(**data)


class Genome:
    """Immutable architecture: a DAG from ``"input"`` to ``"output"`` through block nodes.

    Args:
        graph: directed acyclic graph; every node except ``input``/``output`` has a ``spec`` attribute
            holding a :class:`BlockSpec`. The graph is copied and frozen.
        meta: global, JSON-able settings of the network (e.g. ``{"width": 64}``).
        decisions: the chooser decisions (``{label: value}``) that built this genome; replaying them
            through the same space gives the same ``arch_id``.
    """

    def __init__(
        self,
        graph: nx.DiGraph,
        meta: Mapping[str, Any] | None = None,
        decisions: Mapping[str, Any] | None = None,
    ) -> None:
        graph = graph.copy() if type(graph) is nx.DiGraph else nx.DiGraph(graph)  # copy(): the cheaper path
        self._order = _validate(graph)
        _require_json_mapping("genome 'meta'", meta or {})
        _require_json_mapping("genome 'decisions'", decisions or {})
        self._graph = nx.freeze(graph)
        self._meta = _frozen(meta)
        self._decisions = MappingProxyType(dict(decisions or {}))
        self._arch_id = content_hash(self.architecture_dict(identity=True))

    @classmethod
    def sequential(
        cls,
        specs: list[BlockSpec],
        meta: Mapping[str, Any] | None = None,
        decisions: Mapping[str, Any] | None = None,
    ) -> Genome:
        """A chain ``input -> b0 -> b1 -> ... -> output``, the common case."""
        graph = nx.DiGraph()
        previous = INPUT
        graph.add_node(INPUT)
        for index, spec in enumerate(specs):
            node = f"b{index}"
            graph.add_node(node, spec=spec)
            graph.add_edge(previous, node)
            previous = node
        graph.add_edge(previous, OUTPUT)
        return cls(graph, meta, decisions)

    @property
    def graph(self) -> nx.DiGraph:
        return self._graph

    @property
    def meta(self) -> Mapping[str, Any]:
        return self._meta

    @property
    def decisions(self) -> Mapping[str, Any]:
        return self._decisions

    @property
    def arch_id(self) -> str:
        """Content hash of the architecture (graph + meta); the decisions are not part of it."""
        return self._arch_id

    def blocks(self) -> list[tuple[str, BlockSpec]]:
        """Block nodes with their specs in a deterministic topological order."""
        return [(n, self._graph.nodes[n]["spec"]) for n in self._order if n not in (INPUT, OUTPUT)]

    def architecture_dict(self, identity: bool = False) -> dict[str, Any]:
        """Graph and meta as JSON; with ``identity``, block specs as :meth:`BlockSpec.identity` (what
        ``arch_id`` hashes). Meta keys are hashed as they are: a space leaves a key out at its default."""
        nodes = [{"id": n, "spec": spec.identity() if identity else spec.to_dict()} for n, spec in self.blocks()]
        edges = sorted([list(e) for e in self._graph.edges])
        return {"nodes": nodes, "edges": edges, "meta": dict(self._meta)}

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form; :meth:`from_dict` inverts it exactly."""
        return {
            "schema_version": GENOME_SCHEMA_VERSION,
            **self.architecture_dict(),
            "decisions": dict(self._decisions),
        }

    def to_json(self) -> str:
        return canonical_json(self.to_dict())

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Genome:
        if not isinstance(data, Mapping):
            raise GenomeError(f"genome JSON must be an object, got {type(data).__name__}")
        version = data.get("schema_version", GENOME_SCHEMA_VERSION)
        if version != GENOME_SCHEMA_VERSION:
            raise GenomeError(
                f"genome schema_version {version!r} is not supported (this archsearch reads "
                f"{GENOME_SCHEMA_VERSION}); upgrade archsearch to read it"
            )
        for key in ("nodes", "edges"):
            if not isinstance(data.get(key), list):
                raise GenomeError(f"genome JSON needs a list under {key!r}")
        graph = nx.DiGraph()
        graph.add_nodes_from([INPUT, OUTPUT])
        for node in data["nodes"]:
            if not isinstance(node, Mapping) or "id" not in node or "spec" not in node:
                raise GenomeError(f"genome node must have 'id' and 'spec', got {node!r}")
            if not isinstance(node["id"], str) or not isinstance(node["spec"], Mapping):
                raise GenomeError(f"genome node needs a string 'id' and an object 'spec', got {node!r}")
            if node["id"] in (INPUT, OUTPUT):
                raise GenomeError(f"block node id {node['id']!r} is reserved")
            graph.add_node(str(node["id"]), spec=BlockSpec.from_dict(node["spec"]))
        for edge in data["edges"]:
            if not (isinstance(edge, list | tuple) and len(edge) == 2):
                raise GenomeError(f"genome edge must be a pair [from, to], got {edge!r}")
            if not all(isinstance(x, str) for x in edge):
                raise GenomeError(f"genome edge must name nodes by their string ids, got {edge!r}")
            u, v = edge
            if u not in graph or v not in graph:
                raise GenomeError(f"genome edge {u!r} -> {v!r} names an unknown node")
            graph.add_edge(u, v)
        meta, decisions = data.get("meta", {}), data.get("decisions", {})
        if meta is None or decisions is None:
            raise GenomeError("genome 'meta' and 'decisions' must be objects, not null")
        return cls(graph, meta, decisions)

    @classmethod
    def from_json(cls, text: str) -> Genome:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise GenomeError(f"genome is not valid JSON: {exc}") from None
        return cls.from_dict(data)

    def __reduce__(self) -> tuple[Any, tuple[dict[str, Any]]]:
        """Pickles as its dict (read-only mappings do not pickle): a genome crosses to
        ``multiprocessing`` workers as it does to Ray's."""
        return Genome.from_dict, (self.to_dict(),)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Genome) and self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash(self._arch_id)

    def __repr__(self) -> str:
        kinds = ", ".join(spec.kind for _, spec in self.blocks())
        return f"Genome({self._arch_id}: {kinds or 'no blocks'})"


def _validate(graph: nx.DiGraph) -> list[Any]:
    """Refuse graphs the builder could not turn into a network; the nodes in lexicographic topological order."""
    for required in (INPUT, OUTPUT):
        if required not in graph:
            raise GenomeError(f"genome graph has no {required!r} node")
    order = _lexicographic_topological_order(graph)
    if order is None:
        raise GenomeError("genome graph has a cycle; it must be a DAG")
    if graph.in_degree(INPUT) or graph.out_degree(OUTPUT):
        raise GenomeError("'input' must have no incoming and 'output' no outgoing edges")
    reached, reaching = nx.descendants(graph, INPUT), nx.ancestors(graph, OUTPUT)  # one pass each, not one per node
    for node in graph.nodes:
        if node in (INPUT, OUTPUT):
            continue
        if not isinstance(graph.nodes[node].get("spec"), BlockSpec):
            raise GenomeError(f"block node {node!r} has no BlockSpec under 'spec'")
        if node not in reached or node not in reaching:
            raise GenomeError(f"block node {node!r} is not on a path from 'input' to 'output'")
    if OUTPUT not in reached:
        raise GenomeError("genome graph has no path from 'input' to 'output'")
    return order


def _lexicographic_topological_order(graph: nx.DiGraph) -> list[Any] | None:
    """Kahn's algorithm taking the smallest ready node first: the order networkx's
    ``lexicographical_topological_sort`` gives (it is unique), at a third of its cost, which was half of
    building a genome (a search builds hundreds per proposal). ``None`` when the graph has a cycle."""
    waiting = {node: degree for node, degree in graph.in_degree()}
    ready = [node for node, degree in waiting.items() if degree == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        node = heapq.heappop(ready)
        order.append(node)
        for child in graph.successors(node):
            waiting[child] -= 1
            if not waiting[child]:
                heapq.heappush(ready, child)
    return order if len(order) == len(waiting) else None
