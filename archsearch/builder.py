"""Genome -> ``torch.nn.Module``.

The network is stem -> blocks in topological order -> head. The stem turns the task's input into
tokens of the genome's width: a vector (batch, features) becomes one token, a sequence
(batch, length, channels) or token ids (batch, length) one token per position with a learned
position embedding. The head
averages tokens and projects to the task's outputs.
"""

from __future__ import annotations

import torch
from torch import nn

from archsearch.blocks import create_block, create_norm
from archsearch.genome import INPUT, OUTPUT, BlockSpec, Genome
from archsearch.tasks._base import DataSpec


class WrappedBlock(nn.Module):
    """A block with its normalization placement and optional residual connection."""

    def __init__(self, spec: BlockSpec, dim: int) -> None:
        super().__init__()
        self.placement = spec.norm_placement
        self.residual = spec.residual
        self.block = create_block(spec.kind, dim, activation=spec.activation, **spec.params)
        norm_name = spec.norm if spec.norm_placement != "none" else "none"
        self.norm = create_norm(norm_name, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.placement == "pre":
            y = self.block(self.norm(x))
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


class Stem(nn.Module):
    """Inputs -> (batch, tokens, dim): linear projection (vector, sequence) or embedding (token ids)."""

    def __init__(self, data: DataSpec, dim: int) -> None:
        super().__init__()
        self.input_kind = data.input_kind
        self.position: nn.Parameter | None = None
        if data.input_kind == "vector":
            self.proj: nn.Module = nn.Linear(data.n_features, dim)
            return
        if data.input_kind == "tokens":
            self.proj = nn.Embedding(data.vocab_size, dim)
        else:
            self.proj = nn.Linear(data.n_channels, dim)
        self.position = nn.Parameter(torch.zeros(data.seq_len, dim))
        nn.init.normal_(self.position, std=0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.input_kind == "vector":
            return self.proj(x).unsqueeze(1)
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
        self.stem = Stem(data, dim)
        self.blocks = nn.ModuleDict({node: WrappedBlock(spec, dim) for node, spec in genome.blocks()})
        self.merges = nn.ModuleDict({
            node: Merge(self._merge_mode(genome, node), len(self.predecessors[node]), dim)
            for node in [*self.order, OUTPUT]
        })
        self.final_norm = create_norm(str(genome.meta.get("final_norm", "layernorm")), dim)
        self.head = nn.Linear(dim, data.n_outputs)

    @staticmethod
    def _merge_mode(genome: Genome, node: str) -> str:
        if node == OUTPUT:
            return str(genome.meta.get("output_merge", "sum"))
        return genome.graph.nodes[node]["spec"].merge

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
