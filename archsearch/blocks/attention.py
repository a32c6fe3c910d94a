"""Token mixers: blocks that exchange information across the tokens of (batch, tokens, dim).

- ``attention``: multi-head softmax attention (Vaswani et al. 2017, "Attention Is All You Need") through
  ``torch.nn.functional.scaled_dot_product_attention``, which picks a fused kernel where one exists.
  ``position="relative"`` adds a learned bias per head and token offset to the attention logits (Shaw et
  al. 2018; the unbucketed form of T5's and Swin's relative position bias): attention can then prefer
  near tokens wherever they are, the shift-equivariant prior that absolute position embeddings lack.
- ``linear_attention``: Katharopoulos et al. 2020, "Transformers are RNNs": softmax replaced by the
  feature map ``elu(x) + 1`` so attention costs O(tokens) instead of O(tokens^2).
- ``token_mixer``: the token-mixing MLP of Tolstikhin et al. 2021, "MLP-Mixer": an MLP applied across
  the token axis, shared by all channels. Its weights depend on the token count, so its registry
  entry says ``needs_tokens`` and the builder passes ``n_tokens``.

Attention blocks have no activation: their registry entries say ``uses_activation=False`` so spaces do
not spend a decision on it (``create_block`` still passes one, which they ignore).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from archsearch.blocks.activations import create_activation
from archsearch.blocks.catalog import check_attention_position, hidden_width


def _check_heads(dim: int, heads: int) -> None:
    if heads < 1 or dim % heads:
        raise ValueError(f"width {dim} is not divisible into {heads} heads")


class AttentionBlock(nn.Module):
    """Multi-head self-attention: fused QKV projection, SDPA, output projection.

    ``position="relative"`` learns ``heads x (2 * n_tokens - 1)`` logit biases, one per head and offset
    ``j - i``; it starts at zero, so the block starts as plain attention.

    Args:
        heads: attention heads; the width must divide by it.
        dropout: dropout on the attention weights while training.
        position: none (order comes only from the stem's position embedding) or relative (a learned
            logit bias per head and token offset).
    """

    def __init__(self, dim: int, heads: int = 4, dropout: float = 0.0, position: str = "none",
                 activation: str | None = None, n_tokens: int | None = None) -> None:
        super().__init__()
        _check_heads(dim, heads)
        check_attention_position(position, n_tokens)
        self.heads = heads
        self.dropout = dropout
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)
        self.relative_bias = (nn.Parameter(torch.zeros(heads, 2 * n_tokens - 1))
                              if position == "relative" and n_tokens else None)

    def position_bias(self, n: int) -> torch.Tensor | None:
        """(heads, n, n) logit biases ``relative_bias[h, j - i]`` for ``n`` tokens, or None."""
        if self.relative_bias is None:
            return None
        span = (self.relative_bias.shape[1] + 1) // 2
        if n > span:
            raise ValueError(f"relative position bias was built for {span} tokens, got {n}")
        index = torch.arange(n, device=self.relative_bias.device)
        return self.relative_bias[:, index[None, :] - index[:, None] + span - 1]

    def split_heads(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(batch, tokens, dim) -> q, k, v each (batch, heads, tokens, head_dim)."""
        q, k, v = self.qkv(x).unflatten(-1, (3, self.heads, -1)).permute(2, 0, 3, 1, 4)
        return q, k, v

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self.split_heads(x)
        bias = self.position_bias(x.shape[1])
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=None if bias is None else bias.to(q.dtype),
                                           dropout_p=self.dropout if self.training else 0.0)
        return self.out(y.transpose(1, 2).flatten(-2))


class LinearAttentionBlock(AttentionBlock):
    """Non-causal linear attention: ``phi(Q) (phi(K)^T V) / (phi(Q) sum_n phi(K_n))``, phi = elu + 1.

    No logit matrix exists, so it takes no position bias.
    """

    def __init__(self, dim: int, heads: int = 4, dropout: float = 0.0, activation: str | None = None) -> None:
        super().__init__(dim, heads=heads, dropout=dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self.split_heads(x)
        q, k = F.elu(q) + 1, F.elu(k) + 1
        context = k.transpose(-2, -1) @ v  # (batch, heads, head_dim, head_dim)
        normalizer = q @ k.sum(dim=-2, keepdim=True).transpose(-2, -1)  # (batch, heads, tokens, 1)
        y = (q @ context) / normalizer.clamp_min(1e-6)
        return self.out(y.transpose(1, 2).flatten(-2))


class TokenMixerBlock(nn.Module):
    """MLP across tokens: (b, t, d) -> transpose -> Linear(t, h) -> act -> Linear(h, t) -> transpose back.

    ``expansion`` sets the hidden width relative to the token count (MLP-Mixer's D_S).
    """

    def __init__(self, dim: int, n_tokens: int, expansion: float = 2.0, activation: str = "gelu") -> None:
        super().__init__()
        hidden = hidden_width(n_tokens, expansion)
        self.fc1 = nn.Linear(n_tokens, hidden)
        self.act = create_activation(activation, hidden)
        self.fc2 = nn.Linear(hidden, n_tokens)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x.transpose(1, 2)))).transpose(1, 2)
