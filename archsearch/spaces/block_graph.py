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
``<node>.norm_placement`` (``norm_placement`` once, with ``placement_scope: network``), and last ``tokenize``, which is decided only for genomes without a token
mixer: one that has attention or token mixing gets ``features`` whenever the space allows it, since
on vector inputs a single token would leave it nothing to mix. Mutation and crossover
(:mod:`archsearch.spaces.variation`) edit these decisions and rebuild, so their results always replay.

``form`` (decided first, if the space offers both) chooses between that shape (``blocks``) and the KAN
papers' ``layers``: a chain of ``depth`` rectangular layers ``[n_in, w1, ..., n_out]`` with no stem,
head or norm, hidden widths ``b{i}.width`` drawn from ``layer_width`` and kinds ``b{i}.layer_kind``
from the rectangular blocks of ``blocks``. The ``recipe`` section adds training decisions
``recipe.*`` (see :mod:`archsearch.spaces.recipe`), recorded in the genome's meta.
"""

from __future__ import annotations

from collections import OrderedDict
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
    canonical_json,
)
from archsearch.space import Chooser, RandomChooser, ReplayChooser, SearchSpace, SpaceError

FORMS = ("blocks", "layers")
PLACEMENT_SCOPES = ("block", "network")
GENOME_MEMO = 2048  # genomes a space keeps by their decisions (``BlockGraphSpace._genome``): ~25 MB

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


def _check_block_param(kind: str, param: str, domain: Domain) -> None:
    """A block parameter's domain holds values of the type the block takes (numbers for expansion, ...)."""
    import inspect

    from archsearch.blocks import BLOCKS

    try:
        accepted = inspect.signature(BLOCKS.get(kind)).parameters
    except (TypeError, ValueError):
        return
    if param not in accepted or param == "dim":
        names = ", ".join(p for p in accepted if p not in ("self", "dim"))
        raise SpaceError(f"space option 'block_params.{kind}.{param}': block {kind} has no parameter {param!r}; "
                         f"its parameters: {names}")
    default = accepted[param].default
    if default is inspect.Parameter.empty or default is None:
        return
    values = [domain.get("low"), domain.get("high")] if isinstance(domain, Mapping) else (
        list(domain) if isinstance(domain, Sequence) and not isinstance(domain, str) else [domain])
    numeric = isinstance(default, int | float) and not isinstance(default, bool)
    takes_text = "str" in str(accepted[param].annotation)  # e.g. grid_range: a bound, or "data"
    wrong = [v for v in values if not (takes_text and isinstance(v, str))
             and ((isinstance(v, bool) or not isinstance(v, int | float)) == numeric
                  or isinstance(v, bool) != isinstance(default, bool))]
    if wrong:
        kind_text = "numbers" if numeric else f"{type(default).__name__} values"
        raise SpaceError(f"space option 'block_params.{kind}.{param}' takes {kind_text} (default {default!r}), "
                         f"got {wrong[0]!r}")


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
        placement_scope: ``block`` (each block its own placement) or ``network``: one placement, decided
            once under the label ``norm_placement``, for every block, as the Pre-LN, Peri-LN and Mix-LN
            papers compare whole networks.
        activation: activation(s), chosen per block that has one.
        block_params: per block kind, domains of its own parameters (``{"mlp": {"expansion": [1, 2]}}``).
        final_norm: normalization before the head.
        tokenize: ``none`` and/or ``features``: on vector inputs, whether each feature becomes a token;
            forced to ``features`` (where listed) for genomes with a token mixer.
        description: one line for ``archsearch list spaces``.
        form: ``blocks`` (stem, blocks at one width, final norm, head) and/or ``layers`` (a chain of
            rectangular layers ``[n_in, w1, ..., n_out]`` and nothing else; vector inputs only).
        layer_width: hidden widths of the ``layers`` form, chosen per hidden layer (from 1).
        layer_depth: number of layers of the ``layers`` form (default: ``depth``); decided under ``depth``.
        recipe: training options decided per trial (``{lr: {low: 1e-4, high: 1e-2, log: true}}``);
            they override the run's ``training.*``.
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
        form: Domain = "blocks",
        layer_width: Domain = None,
        layer_depth: Domain = None,
        recipe: Mapping[str, Domain] | None = None,
        placement_scope: str = "block",
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
        self.form = form
        self.layer_width = layer_width if layer_width is not None else {"low": 1, "high": 8}
        self.layer_depth = layer_depth
        self.recipe = recipe
        self.placement_scope = placement_scope

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
        if self.placement_scope not in PLACEMENT_SCOPES:
            raise SpaceError(f"space option 'placement_scope' is one of {', '.join(PLACEMENT_SCOPES)}, "
                             f"got {self.placement_scope!r}")
        check_domain("activation", self.activation, ACTIVATIONS.names())
        check_domain("final_norm", self.final_norm, NORMS.names())
        check_domain("tokenize", self.tokenize, TOKENIZATIONS)
        check_domain("form", self.form, FORMS)
        check_domain("layer_width", self.layer_width, integer=True)
        _positive_range("layer_width", self.layer_width, 1)
        if self.layer_depth is not None:
            check_domain("layer_depth", self.layer_depth, integer=True)
            _positive_range("layer_depth", self.layer_depth, 1)
        if "layers" in _listed(self.form) and not self._layer_kinds():
            raise SpaceError("space option 'form' offers layers, but none of the space's blocks can be a "
                             "rectangular layer; add one of: " + ", ".join(
                                 n for n in BLOCKS.names() if BLOCKS.info(n).rectangular))
        from archsearch.spaces.recipe import check_recipe

        check_recipe(self.recipe)
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
                _check_block_param(kind, param, domain)

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "_memo"}  # a space sent to a worker travels light

    def _genome(self, graph: nx.DiGraph, meta: Mapping[str, Any], decisions: Mapping[str, Any]) -> Genome:
        """``Genome(graph, meta, decisions)``, the same object for the same graph, meta and decisions.

        A search draws the same decisions again and again (late in a run, most mutations of the front
        are ones drawn before), and a genome's checks and hash were half of building it; comparing the
        graph with the kept genome's is a tenth of that. The least recently used go first past ``GENOME_MEMO``."""
        memo: OrderedDict[str, Genome] = self.__dict__.setdefault("_memo", OrderedDict())
        try:
            key = canonical_json([meta, decisions])
        except (TypeError, ValueError):  # not JSON: Genome says what is wrong
            return Genome(graph, meta, decisions)
        known = memo.get(key)
        if known is not None and _same_graph(known.graph, graph):
            memo.move_to_end(key)  # now the newest
            return known
        genome = Genome(graph, meta, decisions)
        memo[key] = genome
        memo.move_to_end(key)
        if len(memo) > GENOME_MEMO:
            memo.popitem(last=False)  # a plain dict's first key is found by scanning what was deleted
        return genome

    def build(self, chooser: Chooser) -> Genome:
        from archsearch.spaces.recipe import choose_recipe

        form = choose(chooser, "form", self.form)
        genome = self._build_layers(chooser) if form == "layers" else self._build_blocks(chooser)
        recipe = choose_recipe(chooser, self.recipe)
        if not recipe:
            return genome
        return self._genome(genome.graph, {**genome.meta, "recipe": recipe}, decisions_of(chooser))

    def _layer_kinds(self) -> list[str]:
        from archsearch.blocks import BLOCKS

        return [k for k in _listed(self.blocks) if k in BLOCKS and BLOCKS.info(k).rectangular]

    def _build_layers(self, chooser: Chooser) -> Genome:
        """``depth`` rectangular layers with hidden widths ``b{i}.width``; the task fixes n_in and n_out."""
        depth = int(choose(chooser, "depth", self.depth if self.layer_depth is None else self.layer_depth))
        kinds = self._layer_kinds()
        specs, widths = [], []
        for i in range(depth):
            node = f"b{i}"
            if i < depth - 1:
                widths.append(int(choose(chooser, f"{node}.width", self.layer_width)))
            kind = choose(chooser, f"{node}.layer_kind", kinds)
            params = {param: choose(chooser, f"{node}.{kind}.{param}", domain)
                      for param, domain in sorted(self.block_params.get(kind, {}).items())}
            activation = choose(chooser, f"{node}.activation", self.activation)
            specs.append(BlockSpec(kind=kind, params=params, activation=activation, norm="none",
                                   norm_placement="none"))
        return Genome.sequential(specs, {"form": "layers", "widths": widths}, decisions_of(chooser))

    def _build_blocks(self, chooser: Chooser) -> Genome:
        depth = int(choose(chooser, "depth", self.depth))
        width = int(choose(chooser, "width", self.width))
        norm = choose(chooser, "norm", self.norm)
        placement = choose(chooser, "norm_placement", self.norm_placement) \
            if self.placement_scope == "network" else None
        graph = nx.DiGraph()
        graph.add_nodes_from([INPUT, OUTPUT])
        previous = INPUT
        for i in range(depth):
            node = f"b{i}"
            wiring = choose(chooser, f"{node}.wiring", self.wiring)
            graph.add_node(node, spec=self._block(chooser, node, norm, width, wiring == "residual", placement))
            graph.add_edge(previous, node)
            if wiring != "parallel":
                previous = node
                continue
            partner, merged = f"{node}p", f"{node}m"
            graph.add_node(partner, spec=self._block(chooser, partner, norm, width, False, placement))
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
        return self._genome(graph, meta, decisions_of(chooser))

    def _forces_feature_tokens(self, graph: nx.DiGraph) -> bool:
        """Whether the graph has a token mixer and the space allows feature tokens to give it some."""
        allowed = self.tokenize if isinstance(self.tokenize, Sequence) and not isinstance(self.tokenize, str) \
            else [self.tokenize]
        from archsearch.blocks import mixes_tokens

        specs = [data["spec"] for _, data in graph.nodes(data=True) if "spec" in data]
        return "features" in allowed and any(mixes_tokens(spec.kind) for spec in specs)

    def _block(self, chooser: Chooser, node: str, norm: str, width: int, residual: bool,
               placement: str | None) -> BlockSpec:
        from archsearch.blocks import uses_activation

        kind = choose(chooser, f"{node}.kind", self.blocks)
        params = {
            param: choose(chooser, f"{node}.{kind}.{param}", domain)
            for param, domain in sorted(self.block_params.get(kind, {}).items())
        }
        params = admissible_params(kind, width, params, self.block_params.get(kind, {}))
        activation = choose(chooser, f"{node}.activation", self.activation) if uses_activation(kind) else "identity"
        if placement is None:
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


def _same_graph(a: nx.DiGraph, b: nx.DiGraph) -> bool:
    """``nx.utils.graphs_equal`` on the dicts behind the views it compares: the same test (attributes,
    nodes, edges with their data, order aside) at a twentieth of the cost, which the genome memo pays
    on every hit."""
    return bool(a.graph == b.graph and a._node == b._node and a._succ == b._succ)


def _listed(domain: Domain) -> list[Any]:
    return list(domain) if isinstance(domain, Sequence) and not isinstance(domain, str) else [domain]


def admissible_params(kind: str, width: int, params: dict[str, Any], domains: Mapping[str, Domain]) -> dict[str, Any]:
    """``params`` with each value the block cannot take at ``width`` replaced by the nearest listed one it can.

    A block that constrains its parameters (``kan_rational``: ``groups`` must divide the width) says so in
    its registry entry (``admissible``, ``adjusts``). The decision keeps the value the chooser gave (so a
    sampler's distributions stay fixed) and the genome gets the nearest admissible choice, so no
    candidate is proposed that could only fail.
    """
    from archsearch.blocks import BLOCKS

    info = BLOCKS.info(kind)
    admissible = info.admissible
    if admissible is None or admissible(width, params):
        return params
    fixed = dict(params)
    for param in info.adjusts:
        domain = domains.get(param)
        if param not in fixed or admissible(width, fixed) or not isinstance(domain, list | tuple):
            continue
        options = [v for v in domain if admissible(width, {**fixed, param: v})]
        if options and isinstance(fixed[param], int | float):
            fixed[param] = min(options, key=lambda v: (abs(v - fixed[param]), v))
        elif options:
            fixed[param] = options[0]
    return fixed


def decisions_of(chooser: Chooser) -> dict[str, Any]:
    """The decisions a chooser made so far (``RecordingChooser.decisions`` or ``optuna.Trial.params``)."""
    decisions = getattr(chooser, "decisions", None)
    if decisions is None:
        decisions = getattr(chooser, "params", {})
    return dict(decisions)
