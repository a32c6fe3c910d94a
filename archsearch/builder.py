"""Genome -> ``torch.nn.Module``.

The network is stem -> blocks in topological order -> head. The stem turns the task's input into
tokens of the genome's width: a vector (batch, features) becomes one token, or with genome meta
``tokenize: features`` one token per feature (FT-Transformer's feature tokenizer, so attention and
experts see a real set of tokens on tabular data); a sequence (batch, length, channels) or token ids
(batch, length) one token per position with a learned position embedding. The head averages tokens
and projects to the task's outputs.

Normalization placements are applied here, around the block (see :class:`WrappedBlock`); ``mix`` is
resolved from the block's position in the network, as Mix-LN defines it by depth.

A genome with meta ``form: layers`` is the KAN papers' shape instead: a chain of rectangular layers
``[n_in, w1, ..., n_out]`` (hidden widths in meta ``widths``), with no stem, head or norm (see
:class:`LayerNetwork`).
"""

from __future__ import annotations

import inspect
from typing import Any

import torch
from torch import nn

from archsearch.blocks import BLOCKS, block_param_count, create_block, create_norm, norm_param_count
from archsearch.genome import INPUT, OUTPUT, TOKENIZATIONS, BlockSpec, Genome, GenomeError
from archsearch.tasks._base import DataSpec

MIX_LN_POST_FRACTION = 0.25  # Mix-LN (Li et al. 2024): post-norm in the first quarter of the layers


def resolve_placement(placement: str, position: int, n_blocks: int) -> str:
    """``mix`` -> ``post`` for the first floor(n_blocks / 4) blocks in topological order, ``pre`` after."""
    if placement != "mix":
        return placement
    return "post" if position < int(MIX_LN_POST_FRACTION * n_blocks) else "pre"


class WrappedBlock(nn.Module):
    """A block with its normalization placement and optional residual connection.

    ``pre``: ``x + f(norm(x))``; ``post``: ``norm(x + f(x))``; ``peri`` (Peri-LN, Kim et al. 2025):
    ``x + norm_out(f(norm(x)))``; without the residual the ``x +`` is dropped.
    """

    def __init__(self, spec: BlockSpec, dim: int, n_tokens: int = 1, position: int = 0, n_blocks: int = 1,
                 dropout: float = 0.0) -> None:
        super().__init__()
        self.placement = resolve_placement(spec.norm_placement, position, n_blocks)
        self.residual = spec.residual
        self.block = create_block(spec.kind, dim, n_tokens=n_tokens, activation=spec.activation,
                                  **spec.params, **_dropout_for(spec.kind, dropout))
        self.norm = create_norm(spec.norm if self.placement != "none" else "none", dim)
        self.norm_out = create_norm(spec.norm, dim) if self.placement == "peri" else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.placement in ("pre", "peri"):
            y = self.block(self.norm(x))
            if self.norm_out is not None:
                y = self.norm_out(y)
            return x + y if self.residual else y
        y = self.block(x)
        if self.residual:
            y = x + y
        return self.norm(y) if self.placement == "post" else y


class Merge(nn.Module):
    """Combines the outputs of several incoming edges: sum, or concatenation projected back to ``dim``."""

    def __init__(self, mode: str, n_inputs: int, dim: int) -> None:
        super().__init__()
        self.mode = mode
        self.proj = nn.Linear(n_inputs * dim, dim) if mode == "concat" and n_inputs > 1 else None

    def forward(self, inputs: list[torch.Tensor]) -> torch.Tensor:
        if len(inputs) == 1:
            return inputs[0]
        if self.proj is not None:
            return self.proj(torch.cat(inputs, dim=-1))
        return torch.stack(inputs).sum(0)


class FeatureTokenizer(nn.Module):
    """(batch, features) -> (batch, features, dim): token f is ``x_f * W_f + b_f`` (Gorishniy et al. 2021).

    Per-feature weights make tokens distinguishable without a position embedding.
    """

    def __init__(self, n_features: int, dim: int) -> None:
        super().__init__()
        bound = dim ** -0.5
        self.weight = nn.Parameter(torch.empty(n_features, dim).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(n_features, dim).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.unsqueeze(-1) * self.weight + self.bias


class Stem(nn.Module):
    """Inputs -> (batch, tokens, dim): linear projection (vector, sequence), per-feature tokens (vector
    with ``tokenize="features"``) or embedding (token ids). ``n_tokens`` is the resulting token count."""

    additive_parameters = ("position",)  # added to every row's output: stacked training groups it per model

    def __init__(self, data: DataSpec, dim: int, tokenize: str = "none") -> None:
        super().__init__()
        if tokenize not in TOKENIZATIONS:
            raise GenomeError(f"tokenize {tokenize!r} is not one of {', '.join(TOKENIZATIONS)}")
        self.input_kind = data.input_kind
        self.position: nn.Parameter | None = None
        if data.input_kind == "vector":
            self.tokenized = tokenize == "features"
            self.n_tokens = data.n_features if self.tokenized else 1
            self.proj: nn.Module = FeatureTokenizer(data.n_features, dim) if self.tokenized else nn.Linear(
                data.n_features, dim)
            return
        self.n_tokens = data.seq_len
        if data.input_kind == "tokens":
            self.proj = nn.Embedding(data.vocab_size, dim)
        else:
            self.proj = nn.Linear(data.n_channels, dim)
        self.position = nn.Parameter(torch.zeros(data.seq_len, dim))
        nn.init.normal_(self.position, std=0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.input_kind == "vector":
            return self.proj(x) if self.tokenized else self.proj(x).unsqueeze(1)
        if self.input_kind == "sequence" and x.dim() == 2:  # (batch, length): one channel per position
            x = x.unsqueeze(-1)
        return self.proj(x) + self.position


def _dropout_for(kind: str, dropout: float) -> dict[str, Any]:
    """``{"dropout": p}`` for blocks whose constructor takes a dropout rate, else nothing."""
    if not dropout:
        return {}
    return {"dropout": dropout} if "dropout" in inspect.signature(BLOCKS.get(kind)).parameters else {}


class GenomeNetwork(nn.Module):
    """The module a genome describes; ``forward(x) -> (batch, n_outputs)``."""

    def __init__(self, genome: Genome, data: DataSpec, dropout: float = 0.0) -> None:
        super().__init__()
        dim = int(genome.meta.get("width", 64))
        graph = genome.graph
        self.order = [node for node, _ in genome.blocks()]
        self.predecessors = {node: sorted(graph.predecessors(node)) for node in [*self.order, OUTPUT]}
        self.stem = Stem(data, dim, str(genome.meta.get("tokenize", "none")))
        n_blocks = len(self.order)
        self.blocks = nn.ModuleDict({
            node: WrappedBlock(spec, dim, self.stem.n_tokens, position, n_blocks, dropout)
            for position, (node, spec) in enumerate(genome.blocks())
        })
        self.merges = nn.ModuleDict({
            node: Merge(self._merge_mode(genome, node), len(self.predecessors[node]), dim)
            for node in [*self.order, OUTPUT]
        })
        self.final_norm = create_norm(str(genome.meta.get("final_norm", "layernorm")), dim)
        self.head = nn.Linear(dim, data.n_outputs)

    @staticmethod
    def _merge_mode(genome: Genome, node: str) -> str:
        """A block merges its inputs as its spec says; the output sums the branches that end there."""
        return "sum" if node == OUTPUT else genome.graph.nodes[node]["spec"].merge

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        values = {INPUT: self.stem(x)}
        for node in [*self.order, OUTPUT]:
            merged = self.merges[node]([values[p] for p in self.predecessors[node]])
            values[node] = self.blocks[node](merged) if node != OUTPUT else merged
        tokens = self.final_norm(values[OUTPUT])
        return self.head(tokens.mean(dim=1))

    def auxiliary_loss(self) -> torch.Tensor | None:
        """Sum of the auxiliary losses blocks left from the last forward pass (e.g. MoE load balancing)."""
        losses = [loss for m in self.modules() if isinstance(loss := getattr(m, "aux_loss", None), torch.Tensor)]
        return torch.stack(losses).sum() if losses else None


class LayerNetwork(nn.Module):
    """A chain of rectangular layers ``[n_in, *widths, n_out]`` with nothing around them (the KAN papers'
    networks, e.g. ``KAN([2, 5, 1])``); ``forward(x) -> (batch, n_outputs)``. A sequence input is
    flattened into ``seq_len * n_channels`` features; token ids have no such form."""

    def __init__(self, genome: Genome, data: DataSpec, dropout: float = 0.0) -> None:
        super().__init__()
        if data.input_kind == "tokens":
            raise GenomeError("a network of layers takes numbers, not token ids; use the blocks form")
        blocks = genome.blocks()
        widths = [int(w) for w in genome.meta.get("widths", [])]
        if len(widths) != len(blocks) - 1:
            raise GenomeError(f"a network of {len(blocks)} layers needs {len(blocks) - 1} hidden widths, "
                              f"got {widths}")
        n_in = data.n_features if data.input_kind == "vector" else data.seq_len * max(1, data.n_channels)
        dims = [n_in, *widths, data.n_outputs]
        layers = {}
        for i, (node, spec) in enumerate(blocks):
            if not BLOCKS.info(spec.kind).rectangular:
                raise GenomeError(f"block {spec.kind!r} cannot be a layer of a different input and output width")
            layers[node] = create_block(spec.kind, dims[i], activation=spec.activation, out_dim=dims[i + 1],
                                        **spec.params, **_dropout_for(spec.kind, dropout))
        self.blocks = nn.ModuleDict(layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(1)
        for layer in self.blocks.values():
            x = layer(x)
        return x

    def auxiliary_loss(self) -> torch.Tensor | None:
        return None


def build_model(genome: Genome, data: DataSpec, dropout: float = 0.0) -> nn.Module:
    """Build the network for ``genome`` on a task whose inputs and outputs ``data`` describes.

    ``dropout`` is the training recipe's rate, given to the blocks that take one (it changes no weights,
    so a model rebuilt for inference may leave it out).
    """
    if genome.meta.get("form") == "layers":
        return LayerNetwork(genome, data, dropout)
    return GenomeNetwork(genome, data, dropout)


@torch.no_grad()
def fit_grids(model: nn.Module, x: torch.Tensor, max_rows: int = 4096) -> None:
    """Fit the grid of every layer built with ``grid_range="data"`` to the inputs it sees on ``x``.

    One forward pass in eval mode; each such layer fits its grid just before it runs, so the layers after
    it see outputs computed on the fitted grid.
    """
    layers = [m for m in model.modules() if getattr(m, "fits_grid", False)]
    if not layers:
        return
    hooks = [m.register_forward_pre_hook(lambda module, args: module.fit_grid(args[0])) for m in layers]
    was_training = model.training
    model.eval()
    try:
        model(x[:max_rows])
    finally:
        for hook in hooks:
            hook.remove()
        model.train(was_training)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def param_count(genome: Genome, data: DataSpec) -> int | None:
    """:func:`count_parameters` of ``build_model(genome, data)`` in closed form, without building it; ``None``
    where a part (a norm or block registered without its count) has none.

    A model-based strategy measures dozens of candidates a proposal, and building each took 4-10 ms on a
    CPU core; this takes a few microseconds per block. ``tests/test_builder.py`` checks it against built
    models of every built-in space and input kind.
    """
    try:
        if genome.meta.get("form") == "layers":
            return _layers_param_count(genome, data)
        dim = int(genome.meta.get("width", 64))
        total, n_tokens = _stem_param_count(data, dim, str(genome.meta.get("tokenize", "none")))
        blocks = genome.blocks()
        for position, (node, spec) in enumerate(blocks):
            placement = resolve_placement(spec.norm_placement, position, len(blocks))
            total += block_param_count(spec.kind, dim, n_tokens, activation=spec.activation, **spec.params)
            total += norm_param_count(spec.norm, dim) if placement != "none" else 0
            total += norm_param_count(spec.norm, dim) if placement == "peri" else 0
            inputs = genome.graph.in_degree(node)
            total += inputs * dim * dim + dim if spec.merge == "concat" and inputs > 1 else 0
        total += norm_param_count(str(genome.meta.get("final_norm", "layernorm")), dim)
        return total + dim * data.n_outputs + data.n_outputs
    except (KeyError, ValueError, TypeError):
        return None


def _stem_param_count(data: DataSpec, dim: int, tokenize: str) -> tuple[int, int]:
    """Parameters of :class:`Stem` and the tokens it makes."""
    if data.input_kind == "vector":
        if tokenize == "features":
            return 2 * data.n_features * dim, data.n_features
        return data.n_features * dim + dim, 1
    proj = data.vocab_size * dim if data.input_kind == "tokens" else data.n_channels * dim + dim
    return proj + data.seq_len * dim, data.seq_len


def _layers_param_count(genome: Genome, data: DataSpec) -> int | None:
    blocks = genome.blocks()
    widths = [int(w) for w in genome.meta.get("widths", [])]
    if data.input_kind == "tokens" or len(widths) != len(blocks) - 1:
        return None  # the builder refuses it, and says why
    n_in = data.n_features if data.input_kind == "vector" else data.seq_len * max(1, data.n_channels)
    dims = [n_in, *widths, data.n_outputs]
    return sum(block_param_count(spec.kind, dims[i], activation=spec.activation, out_dim=dims[i + 1], **spec.params)
               for i, (_, spec) in enumerate(blocks))
