"""Mixtures of experts.

- ``moe_topk``: sparse token routing (Shazeer et al. 2017, "Outrageously Large Neural Networks"; Fedus
  et al. 2021, "Switch Transformers"). Each token goes to the k experts with the highest router
  probability; outputs are weighted by those probabilities (renormalized over the k chosen when k > 1,
  as in GShard; the raw probability when k = 1, as in Switch, so the router still gets a gradient from
  the task loss). The Switch load-balancing loss ``aux_weight * E * sum_e f_e P_e`` (f_e: fraction of
  routed slots that go to expert e, P_e: its mean router probability) is left in ``self.aux_loss``
  after each training forward pass; ``GenomeNetwork.auxiliary_loss()`` collects it into the loss.
  Experts are any block whose registry entry says ``can_be_expert`` (``mlp``, ``glu``, the KANs), chosen by
  the ``expert`` gene.
- ``moe_soft``: SMEAR (Muqeeth et al. 2023, "Soft Merging of Experts with Adaptive Routing"). Instead of
  routing, the router's probabilities (per example, from the mean token) average the experts'
  *parameters* into one merged MLP, which is then applied: dense, differentiable, one expert's compute.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from archsearch.blocks.activations import create_activation
from archsearch.blocks.catalog import expert_params, hidden_width


class TopKMoE(nn.Module):
    """Top-k routed mixture of ``experts`` experts, each a block of kind ``expert``."""

    def __init__(self, dim: int, experts: int = 4, k: int = 2, expert: str = "mlp", expansion: float = 1.0,
                 aux_weight: float = 0.01, activation: str = "gelu") -> None:
        super().__init__()
        from archsearch.blocks import create_block

        if not 1 <= k <= experts:
            raise ValueError(f"k={k} must be between 1 and the number of experts ({experts})")
        self.k = k
        self.aux_weight = aux_weight
        self.router = nn.Linear(dim, experts, bias=False)
        params = expert_params(expert, expansion)
        self.experts = nn.ModuleList(
            [create_block(expert, dim, activation=activation, **params) for _ in range(experts)])
        self.aux_loss: torch.Tensor | None = None
        self.last_routing: torch.Tensor | None = None  # (tokens, k) expert indices, for inspection

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = x.reshape(-1, x.shape[-1])
        probs = torch.softmax(self.router(tokens), dim=-1)
        top_p, top_i = probs.topk(self.k, dim=-1)
        gates = top_p / top_p.sum(-1, keepdim=True) if self.k > 1 else top_p
        out = torch.zeros_like(tokens)
        for e, expert in enumerate(self.experts):
            token_idx, slot = (top_i == e).nonzero(as_tuple=True)
            if token_idx.numel():
                y = expert(tokens[token_idx].unsqueeze(0)).squeeze(0)
                out = out.index_add(0, token_idx, y * gates[token_idx, slot].unsqueeze(-1))
        self.last_routing = top_i.detach()
        self.aux_loss = self.load_balancing_loss(probs, top_i)
        return out.reshape(x.shape)

    def load_balancing_loss(self, probs: torch.Tensor, top_i: torch.Tensor,
                            counts: torch.Tensor | None = None) -> torch.Tensor | None:
        """Switch's ``aux_weight * E * sum_e f_e P_e`` in training (None otherwise); ``counts``: slots
        per expert, when the caller has them already."""
        if not (self.training and torch.is_grad_enabled()):
            return None
        n_experts = len(self.experts)
        if counts is None:
            counts = torch.bincount(top_i.reshape(-1), minlength=n_experts)
        fraction = counts.to(probs.dtype) / top_i.numel()
        return self.aux_weight * n_experts * (fraction * probs.mean(0)).sum()


class SoftMergedMoE(nn.Module):
    """SMEAR: per-example weighted average of ``experts`` MLPs' parameters, then one MLP forward."""

    def __init__(self, dim: int, experts: int = 4, expansion: float = 1.0, activation: str = "gelu") -> None:
        super().__init__()
        hidden = hidden_width(dim, expansion)
        self.router = nn.Linear(dim, experts)
        self.w1 = nn.Parameter(torch.empty(experts, dim, hidden).uniform_(-1, 1) / math.sqrt(dim))
        self.b1 = nn.Parameter(torch.empty(experts, hidden).uniform_(-1, 1) / math.sqrt(dim))
        self.w2 = nn.Parameter(torch.empty(experts, hidden, dim).uniform_(-1, 1) / math.sqrt(hidden))
        self.b2 = nn.Parameter(torch.empty(experts, dim).uniform_(-1, 1) / math.sqrt(hidden))
        self.act = create_activation(activation, hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        probs = torch.softmax(self.router(x.mean(dim=1)), dim=-1)  # (batch, experts)
        w1 = torch.einsum("be,edh->bdh", probs, self.w1)
        w2 = torch.einsum("be,ehd->bhd", probs, self.w2)
        hidden = self.act(torch.baddbmm((probs @ self.b1).unsqueeze(1), x, w1))
        return torch.baddbmm((probs @ self.b2).unsqueeze(1), hidden, w2)
