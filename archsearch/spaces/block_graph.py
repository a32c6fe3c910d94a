"""BlockGraphSpace: the space family the YAML files in ``search_spaces/`` instantiate.

A genome from this family is a stack of ``depth`` blocks at a common ``width``, each with its own
kind, activation and normalization placement, wired sequentially or residually. Every option is a
*domain*: a list is a categorical choice, ``{low, high}`` an integer (or float) range, a scalar a
fixed value. That keeps the YAML readable and makes every field overridable
(``space.depth.high=6``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from archsearch.genome import NORM_PLACEMENTS, WIRINGS, BlockSpec, Genome
from archsearch.space import Chooser, SearchSpace, SpaceError

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
    """Stacks of blocks with per-block activation and norm placement.

    Args:
        name: the space's name (recorded in runs).
        blocks: block kinds (registry names) a block may take.
        depth: number of blocks.
        width: model width shared by all blocks.
        wiring: ``sequential`` and/or ``residual``.
        norm: normalization layer type(s), chosen once per network.
        norm_placement: ``pre``, ``post`` and/or ``none``, chosen per block.
        activation: activation(s), chosen per block.
        block_params: per block kind, domains of its own parameters (``{"mlp": {"expansion": [1, 2]}}``).
        final_norm: normalization before the head.
        description: one line for ``archsearch list spaces``.
    """

    def __init__(
        self,
        name: str = "blocks",
        blocks: Domain = ("mlp",),
        depth: Domain = None,
        width: Domain = (64,),
        wiring: Domain = WIRINGS,
        norm: Domain = ("layernorm",),
        norm_placement: Domain = NORM_PLACEMENTS,
        activation: Domain = ("relu", "gelu", "silu", "tanh"),
        block_params: Mapping[str, Mapping[str, Domain]] | None = None,
        final_norm: str = "layernorm",
        description: str = "",
    ) -> None:
        self.name = name
        self.blocks = blocks
        self.depth = depth if depth is not None else {"low": 1, "high": 4}
        self.width = width
        self.wiring = wiring
        self.norm = norm
        self.norm_placement = norm_placement
        self.activation = activation
        self.block_params = block_params or {}
        self.final_norm = final_norm
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
        check_domain("norm", self.norm, NORMS.names())
        check_domain("norm_placement", self.norm_placement, NORM_PLACEMENTS)
        check_domain("activation", self.activation, ACTIVATIONS.names())
        check_domain("final_norm", self.final_norm, NORMS.names())
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
        wiring = choose(chooser, "wiring", self.wiring)
        norm = choose(chooser, "norm", self.norm)
        specs = []
        for i in range(depth):
            kind = choose(chooser, f"b{i}.kind", self.blocks)
            params = {
                param: choose(chooser, f"b{i}.{kind}.{param}", domain)
                for param, domain in sorted(self.block_params.get(kind, {}).items())
            }
            specs.append(BlockSpec(
                kind=kind,
                params=params,
                activation=choose(chooser, f"b{i}.activation", self.activation),
                norm=norm,
                norm_placement=choose(chooser, f"b{i}.norm_placement", self.norm_placement),
                residual=wiring == "residual",
            ))
        meta = {"width": width, "final_norm": self.final_norm}
        return Genome.sequential(specs, meta, decisions_of(chooser))


def decisions_of(chooser: Chooser) -> dict[str, Any]:
    """The decisions a chooser made so far (``RecordingChooser.decisions`` or ``optuna.Trial.params``)."""
    decisions = getattr(chooser, "decisions", None)
    if decisions is None:
        decisions = getattr(chooser, "params", {})
    return dict(decisions)
