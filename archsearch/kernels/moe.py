"""``moe_topk`` without the Python loop over experts: grouped expert matmuls.

Routed slots are sorted by expert and packed into an (experts, capacity, dim) tensor, capacity being the
largest number of slots any expert received (so no token is dropped and the result equals the eager
block's); the experts' weights, stacked from the same parameters the eager block owns, run as two
batched matmuls; outputs go back to their tokens weighted by the gates. The work is the routed tokens'
only (k / experts of a dense layer of the same size, times the load imbalance), in a constant number of
operations whatever the number of experts.

Experts of kind ``mlp`` and ``glu`` (without dropout in training, with an activation that has no
parameters of its own) take this path; other experts run the eager loop.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from archsearch.blocks.mlp import GLUBlock, MLPBlock
from archsearch.blocks.moe import TopKMoE


def _groupable(expert: Any, training: bool) -> bool:
    if type(expert) not in (MLPBlock, GLUBlock):
        return False
    if any(True for _ in expert.act.parameters()):
        return False
    return not (training and isinstance(expert.drop, nn.Dropout))


class FusedTopKMoE(TopKMoE):
    """:class:`~archsearch.blocks.moe.TopKMoE` with grouped expert matmuls (same parameters).

    ``dense=False`` (the default) packs the routed tokens per expert first: k / experts of a dense
    layer's arithmetic. ``dense=True`` runs every expert on every token and weights each expert's hidden
    units by its gate, zero where the token was not routed to it (the two matmuls of a dense layer of
    the same total size plus one scaling; the same result for finite activations). Measured on this
    CPU (32 x 16 tokens of width 64, top-2; ``benchmarks/kernels.py``) the routed path was the faster at
    4, 8 and 16 experts, so it is the default.
    """

    dense = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not _groupable(self.experts[0], self.training):
            return super().forward(x)
        tokens = x.reshape(-1, x.shape[-1])
        n_experts = len(self.experts)
        probs = torch.softmax(self.router(tokens), dim=-1)
        top_p, top_i = probs.topk(self.k, dim=-1)
        gates = top_p / top_p.sum(-1, keepdim=True) if self.k > 1 else top_p
        counts = torch.bincount(top_i.reshape(-1), minlength=n_experts)
        out = self._every_expert(tokens, top_i, gates) if self.dense else self._routed(tokens, top_i, gates, counts)
        self.last_routing = top_i.detach()
        self.aux_loss = self.load_balancing_loss(probs, top_i, counts)
        return out.reshape(x.shape)

    def _expert_hidden(self, hidden: torch.Tensor) -> torch.Tensor:
        first: Any = self.experts[0]
        if isinstance(first, GLUBlock):
            gate, value = hidden.chunk(2, dim=-1)
            return first.act(gate) * value
        return first.act(hidden)

    def _every_expert(self, tokens: torch.Tensor, top_i: torch.Tensor, gates: torch.Tensor) -> torch.Tensor:
        """sum_e G[t, e] (W2_e h_e(t) + b2_e) with G the gates scattered to a (tokens, experts) matrix,
        zero where an expert was not chosen: the dense layer's two matmuls plus one scaling."""
        experts: list[Any] = list(self.experts)
        n_experts = len(experts)
        g = gates.new_zeros(len(tokens), n_experts).scatter(1, top_i, gates)
        w1 = torch.cat([e.fc1.weight for e in experts])  # (experts * hidden, dim): nn.Linear's layout
        b1 = torch.cat([e.fc1.bias for e in experts])
        w2 = torch.cat([e.fc2.weight for e in experts], dim=1)  # (dim, experts * hidden)
        b2 = torch.stack([e.fc2.bias for e in experts])
        hidden = self._expert_hidden(F.linear(tokens, w1, b1).unflatten(-1, (n_experts, -1)))
        scaled = (hidden * g.unsqueeze(-1)).flatten(1)
        return torch.addmm(g @ b2, scaled, w2.t())

    def _routed(self, tokens: torch.Tensor, top_i: torch.Tensor, gates: torch.Tensor,
                counts: torch.Tensor) -> torch.Tensor:
        """Pack each expert's slots into rows of an (experts, capacity, dim) tensor, two batched matmuls,
        and read each slot's output back in token order.

        The packing is integer bookkeeping outside autograd; what autograd sees is one row gather in,
        the two matmuls, one row gather out and the gate-weighted sum, so the backward is as short.
        Padding rows read token 0; their outputs are never read, so they add nothing to any gradient.
        """
        experts: list[Any] = list(self.experts)
        n_experts, n_slots = len(experts), top_i.numel()
        capacity = int(counts.max())
        slot_expert = top_i.reshape(-1)
        order = torch.argsort(slot_expert, stable=True)
        sorted_expert = slot_expert[order]
        first_of_expert = counts.cumsum(0) - counts
        packed_row = sorted_expert * capacity + torch.arange(n_slots, device=tokens.device) - first_of_expert[sorted_expert]
        source = torch.zeros(n_experts * capacity, dtype=torch.long, device=tokens.device)
        source[packed_row] = order // self.k
        row_of_slot = torch.empty_like(packed_row)
        row_of_slot[order] = packed_row
        packed = tokens.index_select(0, source).view(n_experts, capacity, -1)
        w1 = torch.stack([e.fc1.weight for e in experts]).transpose(1, 2)  # (experts, dim, hidden)
        b1 = torch.stack([e.fc1.bias for e in experts]).unsqueeze(1)
        w2 = torch.stack([e.fc2.weight for e in experts]).transpose(1, 2)  # (experts, hidden, dim)
        b2 = torch.stack([e.fc2.bias for e in experts]).unsqueeze(1)
        expert_out = torch.baddbmm(b2, self._expert_hidden(torch.baddbmm(b1, packed, w1)), w2)
        per_slot = expert_out.view(n_experts * capacity, -1).index_select(0, row_of_slot)
        return (per_slot.view(len(tokens), self.k, -1) * gates.unsqueeze(-1)).sum(1)
