"""Genome -> ``torch.nn.Module``.

The network is stem -> blocks in topological order -> head. The stem turns the task's input into
tokens of the genome's width: a vector (batch, features) becomes one token, or with genome meta
``tokenize: features`` one token per feature (FT-Transformer's feature tokenizer, so attention and
experts see a real set of tokens on tabular data); a sequence (batch, length, channels) or token ids
(batch, length) one token per position with a learned position embedding. The head averages tokens
and projects to the task's outputs.

Normalization placements are applied here, around the block (see :class:`WrappedBlock`); ``mix`` is
resolved from the block's position in the network, as Mix-LN defines it by depth.
"""

from __future__ import annotations

import torch
from torch import nn

from archsearch.blocks import create_block, create_norm
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

    def __init__(self, spec: BlockSpec, dim: int, n_tokens: int = 1, position: int = 0, n_blocks: int = 1) -> None:
        super().__init__()
        self.placement = resolve_placement(spec.norm_placement, position, n_blocks)
        self.residual = spec.residual
        self.block = create_block(spec.kind, dim, n_tokens=n_tokens, activation=spec.activation, **spec.params)
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


class GenomeNetwork(nn.Module):
    """The module a genome describes; ``forward(x) -> (batch, n_outputs)``."""

    def __init__(self, genome: Genome, data: DataSpec) -> None:
        super().__init__()
        dim = int(genome.meta.get("width", 64))
        graph = genome.graph
        self.order = [node for node, _ in genome.blocks()]
        self.predecessors = {node: sorted(graph.predecessors(node)) for node in [*self.order, OUTPUT]}
        self.stem = Stem(data, dim, str(genome.meta.get("tokenize", "none")))
        n_blocks = len(self.order)
        self.blocks = nn.ModuleDict({
            node: WrappedBlock(spec, dim, self.stem.n_tokens, position, n_blocks)
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
        losses = [m.aux_loss for m in self.modules() if isinstance(getattr(m, "aux_loss", None), torch.Tensor)]
        return torch.stack(losses).sum() if losses else None


def build_model(genome: Genome, data: DataSpec) -> GenomeNetwork:
    """Build the network for ``genome`` on a task whose inputs and outputs ``data`` describes."""
    return GenomeNetwork(genome, data)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
