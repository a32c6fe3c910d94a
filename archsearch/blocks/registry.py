"""The block registry: torch-free metadata per block kind, and its implementations per device.

Spaces, MoE experts, benchmarks and tests read what a block *is* from :class:`BlockInfo` (does it take
an activation gene, does it mix tokens, may it be an expert, how many parameters it has), so building a
genome never imports torch. What a block *runs* is a list of :class:`Implementation` s: the eager
``nn.Module`` (the reference), and fused or compiled variants that compute the same function and are
chosen per device (:meth:`BlockRegistry.resolve`). An implementation is named by import path and
loaded on first use.

Built-in blocks are declared in :mod:`archsearch.blocks.catalog`; a user block registers itself with
the decorator on its class (``@BLOCKS.register("my_block", "...", can_be_expert=True)``), which reads
``uses_activation`` / ``needs_tokens`` / ``param_count`` from class attributes when not given.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from archsearch._registry import Registry, load_target

DEVICE_KINDS = ("cpu", "cuda")
VARIANTS = ("eager", "fused", "compiled")


@dataclass(frozen=True)
class BlockInfo:
    """What a block kind is, without building it.

    Attributes:
        name: registry name, as genomes store it.
        params: the block's own parameter names with their defaults (not ``dim``, ``activation`` or
            ``n_tokens``); spaces' ``block_params`` may set these.
        uses_activation: the block takes the activation gene (attention does not).
        needs_tokens: its weights depend on the token count; the builder passes ``n_tokens``.
        mixes_tokens: it exchanges information across tokens (on vector inputs it needs feature tokens).
        can_be_expert: a per-token block that ``moe_topk`` may use as its experts.
        param_count: ``f(dim, **params) -> int``, its size in closed form (tests check it against the
            built module); ``activation`` and ``n_tokens`` are passed where the block has them.
        rectangular: it takes ``out_dim`` (``dim -> out_dim``), so it can be a layer of a KAN network
            ``[n_in, w1, ..., n_out]``.
        admissible: ``f(dim, params) -> bool``, whether these parameters build at width ``dim``, for blocks
            that constrain them (``kan_rational``: ``groups`` divides both widths); ``None``: all do.
        adjusts: the parameters a space may change to make a choice admissible.
    """

    name: str
    params: Mapping[str, Any] = field(default_factory=dict)
    uses_activation: bool = True
    needs_tokens: bool = False
    mixes_tokens: bool = False
    can_be_expert: bool = False
    param_count: Callable[..., int] | None = None
    rectangular: bool = False
    admissible: Callable[[int, Mapping[str, Any]], bool] | None = None
    adjusts: tuple[str, ...] = ()


@dataclass(frozen=True)
class Implementation:
    """One way to run a block: ``target`` builds an ``nn.Module`` with the eager block's signature.

    ``available`` (optional; a function of the device kind, or its import path, called on first use)
    returns ``None`` when the implementation can run here, otherwise the reason it cannot (no compiler, no
    Triton); ``resolve`` then falls back.
    """

    variant: str
    target: str | Callable[..., Any]
    devices: tuple[str, ...] = DEVICE_KINDS
    available: str | Callable[[str], str | None] | None = None

    def unavailable_reason(self, device_kind: str = "cpu") -> str | None:
        if device_kind not in self.devices:
            return f"{self.variant} implementation does not run on {device_kind}"
        if self.available is None:
            return None
        check = load_target(self.available) if isinstance(self.available, str) else self.available
        return check(device_kind)

    def load(self) -> Callable[..., Any]:
        return load_target(self.target) if isinstance(self.target, str) else self.target


class BlockRegistry(Registry[Callable[..., Any]]):
    """Blocks by name: :class:`BlockInfo` metadata plus implementations per variant and device."""

    def __init__(self) -> None:
        super().__init__("block")
        self._implementations: dict[str, dict[str, Implementation]] = {}
        self._unavailable: dict[tuple[str, str, str], str | None] = {}

    def declare_block(self, info: BlockInfo, target: str, description: str) -> None:
        """Register a built-in block by the import path of its eager class (torch-free)."""
        self.declare(info.name, target, description, info)
        self._implementations[info.name] = {"eager": Implementation("eager", target)}

    def register(self, name: str, description: str = "", meta: Any = None, **fields: Any):
        """Decorator on a block class; metadata defaults come from its class attributes and signature."""
        parent = super().register

        def decorator(cls: Any) -> Any:
            info = meta or BlockInfo(
                name=name,
                params=fields.pop("params", None) or own_params(cls),
                uses_activation=fields.pop("uses_activation", getattr(cls, "uses_activation", True)),
                needs_tokens=fields.pop("needs_tokens", getattr(cls, "needs_tokens", False)),
                param_count=fields.pop("param_count", getattr(cls, "param_count", None)),
                **fields,
            )
            parent(name, description, info)(cls)
            self._implementations[name] = {"eager": Implementation("eager", cls)}
            return cls

        return decorator

    def info(self, name: str) -> BlockInfo:
        info = self.meta(name)
        return info if isinstance(info, BlockInfo) else BlockInfo(name)

    def add_implementation(self, name: str, implementation: Implementation) -> None:
        """Add a fused or compiled variant of block ``name`` (one per variant)."""
        self._check(name)
        if implementation.variant not in VARIANTS or implementation.variant == "eager":
            raise ValueError(f"implementation variant must be one of {VARIANTS[1:]}, got {implementation.variant!r}")
        self._implementations[name][implementation.variant] = implementation

    def implementations(self, name: str) -> dict[str, Implementation]:
        self._check(name)
        return dict(self._implementations[name])

    def unavailable_reason(self, name: str, variant: str, device: str = "cpu") -> str | None:
        """Why variant ``variant`` of ``name`` cannot run on ``device`` here (``None``: it can); checked once."""
        kind = device.split(":")[0]
        key = (name, variant, kind)
        if key not in self._unavailable:
            impl = self.implementations(name).get(variant)
            if impl is None:
                self._unavailable[key] = f"block {name!r} has no {variant} implementation"
            else:
                self._unavailable[key] = impl.unavailable_reason(kind)
        return self._unavailable[key]

    def resolve(self, name: str, device: str = "cpu", prefer: tuple[str, ...] = ("fused", "eager")) -> Implementation:
        """The first variant in ``prefer`` that exists for ``device`` and can run here (eager at worst)."""
        kind = device.split(":")[0]
        impls = self.implementations(name)
        for variant in prefer:
            impl = impls.get(variant)
            if impl is not None and self.unavailable_reason(name, variant, kind) is None:
                return impl
        return impls["eager"]


def own_params(cls: Any) -> dict[str, Any]:
    """A block class's own constructor parameters and defaults (``dim``, ``activation``, ``n_tokens`` aside)."""
    skip = {"self", "dim", "activation", "n_tokens"}
    return {n: p.default for n, p in inspect.signature(cls).parameters.items()
            if n not in skip and p.kind is p.POSITIONAL_OR_KEYWORD and p.default is not p.empty}
