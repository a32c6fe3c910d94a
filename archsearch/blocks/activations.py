"""Activation functions by registry name (timm's ``create_act`` idea): genomes store names."""

from __future__ import annotations

import torch
from torch import nn

from archsearch._registry import Registry

ACTIVATIONS: Registry = Registry("activation")

for _name, _module, _doc in [
    ("relu", nn.ReLU, "max(0, x)"),
    ("leaky_relu", nn.LeakyReLU, "max(0.01x, x)"),
    ("elu", nn.ELU, "exponential linear unit"),
    ("selu", nn.SELU, "scaled ELU (self-normalizing networks)"),
    ("gelu", nn.GELU, "Gaussian error linear unit"),
    ("silu", nn.SiLU, "x * sigmoid(x), a.k.a. swish"),
    ("mish", nn.Mish, "x * tanh(softplus(x))"),
    ("softplus", nn.Softplus, "log(1 + exp(x))"),
    ("tanh", nn.Tanh, "hyperbolic tangent"),
    ("hardswish", nn.Hardswish, "piecewise-linear swish (MobileNetV3)"),
]:
    ACTIVATIONS.register(_name, _doc)(_module)


class ChannelPReLU(nn.Module):
    """Leaky ReLU with a learnable negative slope per feature (He et al. 2015), on the last axis.

    ``nn.PReLU`` puts channels on axis 1, which is the token axis here.
    """

    def __init__(self, dim: int | None = None, init: float = 0.25) -> None:
        super().__init__()
        self.slope = nn.Parameter(torch.full((dim or 1,), init))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.where(x >= 0, x, self.slope * x)


ACTIVATIONS.register("prelu", "leaky ReLU with a learnable slope per feature")(ChannelPReLU)


class SquaredReLU(nn.Module):
    """relu(x)^2 (Primer, So et al. 2021)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x).square()


ACTIVATIONS.register("relu2", "squared ReLU (Primer)")(SquaredReLU)


def create_activation(name: str, dim: int | None = None) -> nn.Module:
    """An activation module by name; ``dim`` sizes learnable per-channel parameters where there are any."""
    factory = ACTIVATIONS.get(name)
    if name == "prelu":
        return factory(dim)
    return factory()
