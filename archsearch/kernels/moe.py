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

import torch
import torch.nn.functional as F
from torch import nn

from archsearch.blocks.mlp import GLUBlock, MLPBlock
from archsearch.blocks.moe import TopKMoE


def _groupable(expert: nn.Module, training: bool) -> bool:
    if type(expert) not in (MLPBlock, GLUBlock):
        return False
    if any(True for _ in expert.act.parameters()):
        return False
    return not (training and isinstance(expert.drop, nn.Dropout))


class FusedTopKMoE(TopKMoE):
    """:class:`~archsearch.blocks.moe.TopKMoE` with grouped expert matmuls (same parameters)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not _groupable(self.experts[0], self.training):
            return super().forward(x)
        tokens = x.reshape(-1, x.shape[-1])
        n_experts = len(self.experts)
        probs = torch.softmax(self.router(tokens), dim=-1)
        top_p, top_i = probs.topk(self.k, dim=-1)
        gates = top_p / top_p.sum(-1, keepdim=True) if self.k > 1 else top_p

        slot_expert = top_i.reshape(-1)
        order = torch.argsort(slot_expert, stable=True)
        sorted_expert = slot_expert[order]
        counts = torch.bincount(slot_expert, minlength=n_experts)
        position = torch.arange(len(order), device=x.device) - (torch.cumsum(counts, 0) - counts)[sorted_expert]
        token = order // self.k
        packed = tokens.new_zeros(n_experts, int(counts.max()), tokens.shape[1])
        packed[sorted_expert, position] = tokens[token]

        first = self.experts[0]
        w1 = torch.stack([e.fc1.weight for e in self.experts]).transpose(1, 2)
        b1 = torch.stack([e.fc1.bias for e in self.experts]).unsqueeze(1)
        w2 = torch.stack([e.fc2.weight for e in self.experts]).transpose(1, 2)
        b2 = torch.stack([e.fc2.bias for e in self.experts]).unsqueeze(1)
        hidden = torch.baddbmm(b1, packed, w1)
        if isinstance(first, GLUBlock):
            gate, value = hidden.chunk(2, dim=-1)
            hidden = first.act(gate) * value
        else:
            hidden = first.act(hidden)
        expert_out = torch.baddbmm(b2, hidden, w2)

        routed = expert_out[sorted_expert, position] * gates.reshape(-1)[order].unsqueeze(-1)
        out = torch.zeros_like(tokens).index_add(0, token, routed)
        self.last_routing = top_i.detach()
        if self.training and torch.is_grad_enabled():
            fraction = F.one_hot(top_i, n_experts).sum(1).float().mean(0) / self.k
            self.aux_loss = self.aux_weight * n_experts * (fraction * probs.mean(0)).sum()
        else:
            self.aux_loss = None
        return out.reshape(x.shape)
