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
    CPU (32 x 16 tokens of width 64, top-2) the routed path was as fast as the loop at 4 experts and
    faster than the dense one at 4, 8 and 16 experts, so routing is the default.
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

        experts: list[Any] = list(self.experts)
        first = experts[0]
        w1 = torch.cat([e.fc1.weight for e in experts]).t()  # (dim, experts * hidden)
        b1 = torch.cat([e.fc1.bias for e in experts])
        w2 = torch.stack([e.fc2.weight for e in experts]).transpose(1, 2)  # (experts, hidden, dim)
        b2 = torch.stack([e.fc2.bias for e in experts]).unsqueeze(1)
        if self.dense:
            out = self._every_expert(tokens, top_i, gates, first, w1, b1, w2, b2)
        else:
            out = self._routed(tokens, top_i, gates, first, w1, b1, w2, b2)
        self.last_routing = top_i.detach()
        if self.training and torch.is_grad_enabled():
            fraction = F.one_hot(top_i, n_experts).sum(1).float().mean(0) / self.k
            self.aux_loss = self.aux_weight * n_experts * (fraction * probs.mean(0)).sum()
        else:
            self.aux_loss = None
        return out.reshape(x.shape)

    @staticmethod
    def _expert_hidden(first: Any, hidden: torch.Tensor) -> torch.Tensor:
        if isinstance(first, GLUBlock):
            gate, value = hidden.chunk(2, dim=-1)
            return first.act(gate) * value
        return first.act(hidden)

    def _every_expert(self, tokens, top_i, gates, first, w1, b1, w2, b2) -> torch.Tensor:  # noqa: ANN001
        """sum_e G[t, e] (W2_e h_e(t) + b2_e) with G the gates scattered to a (tokens, experts) matrix,
        zero where an expert was not chosen: the dense layer's two matmuls plus one scaling."""
        n_experts = len(self.experts)
        scatter = torch.zeros(len(tokens), n_experts, dtype=gates.dtype, device=gates.device)
        g = scatter.scatter(1, top_i, gates)
        hidden = self._expert_hidden(first, torch.addmm(b1, tokens, w1).unflatten(-1, (n_experts, -1)))
        scaled = (hidden * g.unsqueeze(-1)).flatten(1)  # (tokens, experts * hidden)
        return torch.addmm(g @ b2.squeeze(1), scaled, w2.flatten(0, 1))

    def _routed(self, tokens, top_i, gates, first, w1, b1, w2, b2) -> torch.Tensor:  # noqa: ANN001
        n_experts = len(self.experts)
        slot_expert = top_i.reshape(-1)
        order = torch.argsort(slot_expert, stable=True)
        sorted_expert = slot_expert[order]
        counts = torch.bincount(slot_expert, minlength=n_experts)
        position = torch.arange(len(order), device=tokens.device) - (torch.cumsum(counts, 0) - counts)[sorted_expert]
        token = order // self.k
        packed = tokens.new_zeros(n_experts, int(counts.max()), tokens.shape[1])
        packed[sorted_expert, position] = tokens[token]
        w1e = w1.unflatten(-1, (n_experts, -1)).transpose(0, 1)  # (E, dim, h)
        hidden = torch.baddbmm(b1.unflatten(0, (n_experts, 1, -1)), packed, w1e)
        expert_out = torch.baddbmm(b2, self._expert_hidden(first, hidden), w2)
        routed = expert_out[sorted_expert, position] * gates.reshape(-1)[order].unsqueeze(-1)
        return torch.zeros_like(tokens).index_add(0, token, routed)
