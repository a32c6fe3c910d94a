"""Cheap measurements taken before training: FLOPs and a memory estimate (latency is in latency.py).

They need only the built model, so constraints on them reject a candidate before it costs training time.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
from torch import nn


def count_flops(model: nn.Module, example: torch.Tensor) -> float:
    """Forward FLOPs for one example, from torch's own counter.

    The counter counts matrix products and convolutions (2 per multiply-add) and not elementwise ops,
    which is the usual convention for comparing architectures.
    """
    from torch.utils.flop_counter import FlopCounterMode

    was_training = model.training
    model.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(example[:1])
    model.train(was_training)
    return float(counter.get_total_flops())


def training_memory_mb(model: nn.Module, batch: torch.Tensor, loss_of: Callable[[torch.Tensor], torch.Tensor]) -> float:
    """Bytes a training step holds, estimated from tensors rather than the process's resident size.

    Parameters count four times (weights, gradients and Adam's two moments); activations are the tensors
    autograd saves for the backward pass of one training batch. On CPU there is no allocator peak to read
    per candidate, so this is the figure that ranks architectures consistently.
    """
    saved = 0
    seen: set[int] = set()

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        nonlocal saved
        key = tensor.untyped_storage().data_ptr()
        if key not in seen:
            seen.add(key)
            saved += tensor.untyped_storage().nbytes()
        return tensor

    params = sum(p.numel() * p.element_size() for p in model.parameters() if p.requires_grad)
    state = copy.deepcopy(model.state_dict())  # the forward pass must not move BatchNorm statistics
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss_of(model(batch))
    model.load_state_dict(state)
    model.zero_grad(set_to_none=True)
    return (4 * params + saved) / 2**20
