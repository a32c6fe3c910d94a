"""Stacked candidates (horizontal fusion): several same-shaped models trained as one batched model.

Small candidates on a CPU are bound by per-operation overhead, not arithmetic: training sixteen copies
of one architecture (other seeds, other learning rates, the same rung of successive halving) one after
another pays that overhead sixteen times. Here their parameters are stacked along a new leading axis
(``torch.func.stack_module_state``), one ``vmap``-ed forward and backward serves all of them, and the
optimizer update runs once on the stacked tensors with a learning rate per model. Each model sees its
own batches and gets exactly the update it would get alone: the result equals training them one by one
(``tests/test_stacking.py``), up to floating-point summation order.

Limits: blocks must be ``vmap``-able (plain torch operations; the custom autograd functions of the KAN
and rational blocks, eager and fused, are not yet), without dropout (each model would draw other
random numbers than alone) and without auxiliary losses (``moe_topk``).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence

import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

OPTIMIZERS = ("adam", "adamw", "sgd")


class StackedTrainer:
    """Train ``models`` (same architecture) together; ``lrs`` gives each its learning rate.

    The update rules are torch's ``Adam``, ``AdamW`` and ``SGD`` (Nesterov momentum 0.9), as
    :func:`archsearch.evaluation.recipe.make_optimizer` configures them, applied to stacked tensors.
    """

    def __init__(self, models: Sequence[nn.Module], lrs: Sequence[float], optimizer: str = "adam",
                 weight_decay: float = 0.0, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 momentum: float = 0.9) -> None:
        if len(models) != len(lrs) or not models:
            raise ValueError(f"give one learning rate per model: {len(models)} models, {len(lrs)} rates")
        if optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer {optimizer!r} is not one of {', '.join(OPTIMIZERS)}")
        shapes = [[tuple(p.shape) for p in m.parameters()] for m in models]
        if any(s != shapes[0] for s in shapes):
            raise ValueError("stacked models must share one architecture (their parameter shapes differ)")
        self.models = list(models)
        stacked, self.buffers = stack_module_state(self.models)
        # Every parameter is a view into one (models, total) tensor, so the optimizer update is a handful
        # of operations on it rather than a handful per parameter.
        self.flat = torch.cat([p.detach().flatten(1) for p in stacked.values()], dim=1).requires_grad_()
        self._layout = [(name, p.shape[1:]) for name, p in stacked.items()]
        self.template = copy.deepcopy(self.models[0]).to("meta")
        self.lr = torch.tensor(list(lrs), dtype=self.flat.dtype, device=self.flat.device).unsqueeze(1)
        self.optimizer, self.weight_decay, self.betas, self.eps, self.momentum = (
            optimizer, weight_decay, betas, eps, momentum)
        self.state: dict[str, torch.Tensor] = {}
        self.steps = 0

    @property
    def params(self) -> dict[str, torch.Tensor]:
        """Stacked parameters by name, (models, *shape), as views of the flat tensor."""
        views, offset = {}, 0
        for name, shape in self._layout:
            size = math.prod(shape)
            views[name] = self.flat[:, offset:offset + size].view(-1, *shape)
            offset += size
        return views

    def losses(self, x: torch.Tensor, y: torch.Tensor,
               loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> torch.Tensor:
        """Per-model losses, (models,), for per-model batches ``x`` (models, batch, ...) and ``y``."""
        def one(params, buffers, xb, yb):
            return loss_fn(functional_call(self.template, (params, buffers), (xb,)), yb)

        return vmap(one, randomness="error")(self.params, self.buffers, x, y)

    def step(self, x: torch.Tensor, y: torch.Tensor, loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
             lr_factor: float = 1.0) -> torch.Tensor:
        """One training step of every model on its own batch; returns the losses (detached)."""
        losses = self.losses(x, y, loss_fn)
        (grad,) = torch.autograd.grad(losses.sum(), [self.flat])
        self.steps += 1
        with torch.no_grad():
            self._update(self.flat, grad, lr_factor)
        return losses.detach()

    def _update(self, p: torch.Tensor, g: torch.Tensor, lr_factor: float) -> None:
        lr, wd, state = self.lr * lr_factor, self.weight_decay, self.state
        if self.optimizer == "sgd":
            if wd:
                g = g + wd * p
            buf = state.get("momentum")
            buf = g.clone() if buf is None else buf.mul_(self.momentum).add_(g)
            state["momentum"] = buf
            p.sub_(lr * (g + self.momentum * buf))
            return
        if self.optimizer == "adamw":
            p.mul_(1 - lr * wd)
        elif wd:
            g = g + wd * p
        b1, b2 = self.betas
        m = state.setdefault("exp_avg", torch.zeros_like(p)).lerp_(g, 1 - b1)
        v = state.setdefault("exp_avg_sq", torch.zeros_like(p)).mul_(b2).addcmul_(g, g, value=1 - b2)
        c1, c2 = 1 - b1 ** self.steps, 1 - b2 ** self.steps
        p.sub_((lr / c1) * m / (v.sqrt() / math.sqrt(c2) + self.eps))

    def unstack(self) -> list[nn.Module]:
        """The models with their trained weights (the modules given, updated in place)."""
        for k, model in enumerate(self.models):
            state = {name: value[k].detach().clone() for name, value in {**self.params, **self.buffers}.items()}
            model.load_state_dict(state, strict=False)
        return self.models


def train_stacked(models: Sequence[nn.Module], x: torch.Tensor, y: torch.Tensor,
                  loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], lrs: Sequence[float],
                  steps: int, batch_size: int, generators: Sequence[torch.Generator], optimizer: str = "adam",
                  weight_decay: float = 0.0) -> list[nn.Module]:
    """Mini-batch training of every model on (x, y), each shuffled by its own generator, all at once.

    Equals, model by model, ``steps`` steps of the same optimizer over batches drawn as
    ``torch.randperm(len(x), generator=generators[k])`` epoch after epoch (the evaluator's loop).
    """
    trainer = StackedTrainer(models, lrs, optimizer, weight_decay)
    n = len(x)
    orders = [torch.randperm(n, generator=g) for g in generators]
    begin = 0
    for _ in range(steps):
        if begin >= n:
            orders, begin = [torch.randperm(n, generator=g) for g in generators], 0
        idx = torch.stack([order[begin:begin + batch_size] for order in orders])
        trainer.step(x[idx], y[idx], loss_fn)
        begin += batch_size
    return trainer.unstack()
