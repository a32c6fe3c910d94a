"""BlockGraphSpace: the space family the YAML files in ``search_spaces/`` instantiate.

A genome from this family is a chain of ``depth`` *stages* at a common ``width``. Each stage is wired
one of three ways (chosen per stage):

- ``sequential``: one block ``b{i}``;
- ``residual``: one block ``b{i}`` whose input is added to its output;
- ``parallel``: two branch blocks ``b{i}`` and ``b{i}p`` on the same input, merged with the stage's
  input at an ``identity`` node ``b{i}m`` by ``sum`` (``x + f(x) + g(x)``, the parallel transformer
  layer) or ``concat`` (a linear projection of ``[x, f(x), g(x)]``, Branchformer-style).

Every block has its own kind, parameters, activation and normalization placement. Every option is a
*domain*: a list is a categorical choice, ``{low, high}`` an integer (or float) range, a scalar a
fixed value. That keeps the YAML readable and makes every field overridable
(``space.depth.high=6``).

Decision labels are ``depth``, ``width``, ``norm``, per stage and node ``b{i}.wiring``,
``b{i}.merge``, ``<node>.kind``, ``<node>.<kind>.<param>``, ``<node>.activation``,
``<node>.norm_placement``, and last ``tokenize``, which is decided only for genomes without a token
mixer: one that has attention or token mixing gets ``features`` whenever the space allows it, since
on vector inputs a single token would leave it nothing to mix. Mutation and crossover
(:mod:`archsearch.spaces.variation`) edit these decisions and rebuild, so their results always replay.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import networkx as nx
import numpy as np

from archsearch.genome import (
    INPUT,
    MERGES,
    NORM_PLACEMENTS,
    OUTPUT,
    TOKENIZATIONS,
    WIRINGS,
    BlockSpec,
    Genome,
)
from archsearch.space import Chooser, RandomChooser, ReplayChooser, SearchSpace, SpaceError

Domain = Any  # list (categorical) | {"low", "high", "step"?, "log"?} (range) | scalar (fixed)


def choose(chooser: Chooser, label: str, domain: Domain) -> Any:
    """Ask ``chooser`` for ``label`` over ``domain``; a fixed value or one-element list asks nothing."""
    if isinstance(domain, Mapping):
        low, high = domain["low"], domain["high"]
        step, log = domain.get("step"), bool(domain.get("log", False))
        if low == high:
            return low
        if isinstance(low, int) and isinstance(high, int) and not isinstance(step, float):
            return chooser.suggest_int(label, low, high, step=int(step or 1), log=log)
        return chooser.suggest_float(label, float(low), float(high), step=step, log=log)
    if isinstance(domain, Sequence) and not isinstance(domain, str):
        options = list(domain)
        return options[0] if len(options) == 1 else chooser.suggest_categorical(label, options)
    return domain


def check_domain(label: str, domain: Domain, allowed: Sequence[Any] | None = None, integer: bool = False) -> None:
    """Raise :class:`SpaceError` naming ``label`` if ``domain`` is empty, inverted or not allowed.

    ``allowed`` makes the option categorical (a list or one value of those names); ``integer`` requires
    whole numbers (a list of them or an integer range).
    """
    if isinstance(domain, Mapping) and allowed is not None:
        raise SpaceError(f"space option {label!r} is a choice among names; give a list such as "
                         f"[{', '.join(map(str, list(allowed)[:2]))}], not a range")
    if isinstance(domain, Mapping):
        missing = {"low", "high"} - set(domain)
        if missing:
            raise SpaceError(f"space option {label!r} is a range but lacks {sorted(missing)}")
        low, high = domain["low"], domain["high"]
        if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (low, high)):
            raise SpaceError(f"space option {label!r}: low and high must be numbers, got {low!r}, {high!r}")
        if low > high:
            raise SpaceError(f"space option {label!r}: low={low} is above high={high}")
        values: list[Any] = []
    elif isinstance(domain, Sequence) and not isinstance(domain, str):
        values = list(domain)
        if not values:
            raise SpaceError(f"space option {label!r} is an empty list; give at least one choice")
    else:
        values = [domain]
    if integer:
        numbers = [domain.get("low"), domain.get("high"), *([domain["step"]] if "step" in domain else [])] \
            if isinstance(domain, Mapping) else values
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in numbers):
            raise SpaceError(f"space option {label!r} takes whole numbers, got {domain!r}")
    if allowed is not None:
        unknown = [v for v in values if not isinstance(v, str) or v not in allowed]
        if unknown:
            raise SpaceError(f"space option {label!r} has unknown value(s) {unknown}; valid: {', '.join(map(str, allowed))}")


def _positive_range(label: str, domain: Domain, minimum: int) -> None:
    lows = [domain["low"]] if isinstance(domain, Mapping) else (
        list(domain) if isinstance(domain, Sequence) and not isinstance(domain, str) else [domain])
    if any(not isinstance(v, int | float) or v < minimum for v in lows):
        raise SpaceError(f"space option {label!r} must be at least {minimum}, got {domain!r}")


class BlockGraphSpace(SearchSpace):
    """Chains of stages of blocks with per-block kind, activation and norm placement.

    Args:
        name: the space's name (recorded in runs).
        blocks: block kinds (registry names) a block may take.
        depth: number of stages.
        width: model width shared by all blocks.
        wiring: ``sequential``, ``residual`` and/or ``parallel``, chosen per stage.
        merge: ``sum`` and/or ``concat``: how a parallel stage merges its branches.
        norm: normalization layer type(s), chosen once per network.
        norm_placement: ``pre``, ``post``, ``peri``, ``mix`` and/or ``none``, chosen per block.
        activation: activation(s), chosen per block that has one.
        block_params: per block kind, domains of its own parameters (``{"mlp": {"expansion": [1, 2]}}``).
        final_norm: normalization before the head.
        tokenize: ``none`` and/or ``features``: on vector inputs, whether each feature becomes a token;
            forced to ``features`` (where listed) for genomes with a token mixer.
        description: one line for ``archsearch list spaces``.
    """

    def __init__(
        self,
        name: str = "blocks",
        blocks: Domain = ("mlp",),
        depth: Domain = None,
        width: Domain = (64,),
        wiring: Domain = ("sequential", "residual"),
        merge: Domain = MERGES,
        norm: Domain = ("layernorm",),
        norm_placement: Domain = ("pre", "post", "none"),
        activation: Domain = ("relu", "gelu", "silu", "tanh"),
        block_params: Mapping[str, Mapping[str, Domain]] | None = None,
        final_norm: str = "layernorm",
        tokenize: Domain = "none",
        description: str = "",
    ) -> None:
        self.name = name
        self.blocks = blocks
        self.depth = depth if depth is not None else {"low": 1, "high": 4}
        self.width = width
        self.wiring = wiring
        self.merge = merge
        self.norm = norm
        self.norm_placement = norm_placement
        self.activation = activation
        self.block_params = block_params or {}
        self.final_norm = final_norm
        self.tokenize = tokenize
        self.description = description

    def check(self) -> None:
        """Validate every option against the registries; called before a run starts."""
        from archsearch.blocks import ACTIVATIONS, BLOCKS, NORMS

        check_domain("blocks", self.blocks, BLOCKS.names())
        check_domain("depth", self.depth, integer=True)
        _positive_range("depth", self.depth, 1)
        check_domain("width", self.width, integer=True)
        _positive_range("width", self.width, 1)
        check_domain("wiring", self.wiring, WIRINGS)
        check_domain("merge", self.merge, MERGES)
        check_domain("norm", self.norm, NORMS.names())
        check_domain("norm_placement", self.norm_placement, NORM_PLACEMENTS)
        check_domain("activation", self.activation, ACTIVATIONS.names())
        check_domain("final_norm", self.final_norm, NORMS.names())
        check_domain("tokenize", self.tokenize, TOKENIZATIONS)
        if not isinstance(self.block_params, Mapping) or not all(
                isinstance(p, Mapping) for p in self.block_params.values()):
            raise SpaceError("space option 'block_params' maps block kinds to their parameters' domains, "
                             "e.g. {mlp: {expansion: [1, 2]}}")
        if not isinstance(self.final_norm, str):
            raise SpaceError(f"space option 'final_norm' is one norm name, got {self.final_norm!r}")
        for kind, params in self.block_params.items():
            if kind not in BLOCKS:
                raise SpaceError(f"block_params names unknown block {kind!r}; valid: {', '.join(BLOCKS.names())}")
            for param, domain in params.items():
                check_domain(f"block_params.{kind}.{param}", domain)

    def build(self, chooser: Chooser) -> Genome:
        depth = int(choose(chooser, "depth", self.depth))
        width = int(choose(chooser, "width", self.width))
        norm = choose(chooser, "norm", self.norm)
        graph = nx.DiGraph()
        graph.add_nodes_from([INPUT, OUTPUT])
        previous = INPUT
        for i in range(depth):
            node = f"b{i}"
            wiring = choose(chooser, f"{node}.wiring", self.wiring)
            graph.add_node(node, spec=self._block(chooser, node, norm, residual=wiring == "residual"))
            graph.add_edge(previous, node)
            if wiring != "parallel":
                previous = node
                continue
            partner, merged = f"{node}p", f"{node}m"
            graph.add_node(partner, spec=self._block(chooser, partner, norm, residual=False))
            merge = choose(chooser, f"{node}.merge", self.merge)
            graph.add_node(merged, spec=BlockSpec("identity", activation="identity", norm="none",
                                                  norm_placement="none", merge=merge))
            graph.add_edges_from([(previous, partner), (previous, merged), (node, merged), (partner, merged)])
            previous = merged
        graph.add_edge(previous, OUTPUT)
        tokenize = "features" if self._forces_feature_tokens(graph) else choose(chooser, "tokenize", self.tokenize)
        meta: dict[str, Any] = {"width": width, "final_norm": self.final_norm}
        if tokenize != "none":
            meta["tokenize"] = tokenize
        return Genome(graph, meta, decisions_of(chooser))

    def _forces_feature_tokens(self, graph: nx.DiGraph) -> bool:
        """Whether the graph has a token mixer and the space allows feature tokens to give it some."""
        allowed = self.tokenize if isinstance(self.tokenize, Sequence) and not isinstance(self.tokenize, str) \
            else [self.tokenize]
        from archsearch.blocks import mixes_tokens

        specs = [data["spec"] for _, data in graph.nodes(data=True) if "spec" in data]
        return "features" in allowed and any(mixes_tokens(spec.kind) for spec in specs)

    def _block(self, chooser: Chooser, node: str, norm: str, residual: bool) -> BlockSpec:
        from archsearch.blocks import uses_activation

        kind = choose(chooser, f"{node}.kind", self.blocks)
        params = {
            param: choose(chooser, f"{node}.{kind}.{param}", domain)
            for param, domain in sorted(self.block_params.get(kind, {}).items())
        }
        activation = choose(chooser, f"{node}.activation", self.activation) if uses_activation(kind) else "identity"
        placement = choose(chooser, f"{node}.norm_placement", self.norm_placement)
        return BlockSpec(kind=kind, params=params, activation=activation, norm=norm, norm_placement=placement,
                         residual=residual)

    def rebuild(self, decisions: Mapping[str, Any], rng: np.random.Generator) -> Genome:
        """The genome ``decisions`` describe, sampling any decision they lack or the space no longer allows."""
        return self.build(ReplayChooser(decisions, fallback=RandomChooser(rng)))

    def mutate(self, genome: Genome, rng: np.random.Generator, operator: str | None = None) -> Genome:
        """A valid genome one graph edit away from ``genome`` (see :data:`~archsearch.spaces.variation.MUTATIONS`).

        ``operator`` forces one kind of edit; by default one applicable edit is drawn at random. The
        result differs from ``genome`` unless the space leaves nothing to change.
        """
        from archsearch.spaces.variation import mutate

        return mutate(self, genome, rng, operator)

    def crossover(self, a: Genome, b: Genome, rng: np.random.Generator) -> Genome:
        """A child taking each global decision and each whole stage from one parent or the other."""
        from archsearch.spaces.variation import crossover

        return crossover(self, a, b, rng)


def decisions_of(chooser: Chooser) -> dict[str, Any]:
    """The decisions a chooser made so far (``RecordingChooser.decisions`` or ``optuna.Trial.params``)."""
    decisions = getattr(chooser, "decisions", None)
    if decisions is None:
        decisions = getattr(chooser, "params", {})
    return dict(decisions)
