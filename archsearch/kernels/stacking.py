"""Stacked candidates (horizontal fusion): several same-shaped models trained as one batched model.

Small candidates on a CPU are bound by per-operation overhead, not arithmetic: training sixteen copies
of one architecture (other seeds, other learning rates, the same rung of successive halving) one after
another pays that overhead sixteen times. Here their parameters are stacked along a new leading axis,
one forward and backward serves all of them, and the optimizer updates the stacked (models, *shape)
parameters with a learning rate per model (Adam and AdamW through torch's own fused kernel, one call per
distinct rate; SGD element-wise). Each model sees its own batches and gets exactly the update it
would get alone: the result equals training them one by one (``tests/test_stacking.py``), up to
floating-point summation order.

Two ways to run the stacked forward (``mode``):

- ``grouped`` (chosen when every parameter lives in a linear layer or a layer or RMS norm, or is added to
  a module's output like a sequence's position embedding): the models' batches are folded into one
  batch, the network's own forward runs once, and each linear layer or norm becomes one batched matmul
  (or scaling) with the models' weights: grouped layers, no transform.
- ``vmap``: ``torch.func.functional_call`` under ``vmap``, for any ``vmap``-able architecture.

Limits: blocks must be ``vmap``-able in the second mode (plain torch operations; the custom autograd
functions of the KAN and rational blocks, eager and fused, are not yet), without dropout (each model
would draw other random numbers than alone), without BatchNorm in the first, and without auxiliary
losses (``moe_topk``).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, vmap

OPTIMIZERS = ("adam", "adamw", "sgd")
MODES = ("auto", "grouped", "vmap")


GROUPED_LAYERS = (nn.Linear, nn.LayerNorm, nn.RMSNorm)  # layers whose parameters grouped mode stacks


def groupable(model: nn.Module) -> bool:
    """Whether every parameter of ``model`` lives in a linear layer or a norm (``GROUPED_LAYERS``), or is one a module
    names in ``additive_parameters`` (added to its output, the same for every row): grouped mode."""
    for module in model.modules():
        own = {name for name, _ in module.named_parameters(recurse=False)}
        if own and not isinstance(module, GROUPED_LAYERS) and not own <= set(
                getattr(module, "additive_parameters", ())):
            return False
        if isinstance(module, nn.modules.batchnorm._BatchNorm | nn.Dropout) and getattr(module, "p", 1) != 0:
            return False
    return True


class _GroupedLinear(nn.Module):
    """``nn.Linear`` for models folded into the batch: one batched matmul with each model's weights."""

    def __init__(self, trainer: StackedTrainer, prefix: str, has_bias: bool) -> None:
        super().__init__()
        self.trainer, self.prefix, self.has_bias = [trainer], prefix, has_bias  # a list: not a submodule

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        views, n = self.trainer[0].views, self.trainer[0].n_models
        weight_t = views[f"{self.prefix}weight"]  # stored (models, in, out): its gradient comes back contiguous
        grouped = x.reshape(n, -1, x.shape[-1])
        if self.has_bias:
            out = torch.baddbmm(views[f"{self.prefix}bias"].unsqueeze(1), grouped, weight_t)
        else:
            out = torch.bmm(grouped, weight_t)
        return out.reshape(*x.shape[:-1], weight_t.shape[2])


class _GroupedNorm(nn.Module):
    """``nn.LayerNorm`` or ``nn.RMSNorm`` for models folded into the batch: normalize, then each model's
    scale (and shift)."""

    def __init__(self, trainer: StackedTrainer, prefix: str, norm: nn.LayerNorm | nn.RMSNorm) -> None:
        super().__init__()
        self.trainer, self.prefix = [trainer], prefix
        self.shape, self.affine = norm.normalized_shape, norm.weight is not None
        self.normalize: Callable[..., torch.Tensor] = (
            partial(F.layer_norm, eps=norm.eps) if isinstance(norm, nn.LayerNorm) else partial(F.rms_norm, eps=norm.eps))
        self.has_bias = getattr(norm, "bias", None) is not None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        views, n = self.trainer[0].views, self.trainer[0].n_models
        y = self.normalize(x, self.shape)
        if not self.affine:
            return y
        grouped = y.reshape(n, -1, y.shape[-1]) * views[f"{self.prefix}weight"].unsqueeze(1)
        if self.has_bias:
            grouped = grouped + views[f"{self.prefix}bias"].unsqueeze(1)
        return grouped.reshape(y.shape)


def _group_additive(trainer: StackedTrainer, prefix: str, module: nn.Module) -> None:
    """Make ``module``'s additive parameters per model: zeros in its own forward, then each model's
    values added to its rows of the output by a forward hook."""
    own = dict(module.named_parameters(recurse=False))
    names = tuple(name for name in getattr(module, "additive_parameters", ()) if name in own)
    for name in names:
        value = getattr(module, name)
        delattr(module, name)
        module.register_buffer(name, torch.zeros_like(value, device=value.device), persistent=False)

    def add_per_model(_module: nn.Module, _args: object, out: torch.Tensor) -> torch.Tensor:
        views, n = trainer.views, trainer.n_models
        grouped = out.reshape(n, -1, *out.shape[1:])
        for name in names:
            grouped = grouped + views[f"{prefix}{name}"].unsqueeze(1)
        return grouped.reshape(out.shape)

    if names:
        module.register_forward_hook(add_per_model)


class StackedTrainer:
    """Train ``models`` (same architecture) together; ``lrs`` gives each its learning rate.

    The update rules are torch's ``Adam``, ``AdamW`` and ``SGD`` (Nesterov momentum 0.9), as
    :func:`archsearch.evaluation.recipe.make_optimizer` configures them, applied to stacked tensors.
    """

    def __init__(self, models: Sequence[nn.Module], lrs: Sequence[float], optimizer: str = "adam",
                 weight_decay: float = 0.0, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 momentum: float = 0.9, mode: str = "auto") -> None:
        if len(models) != len(lrs) or not models:
            raise ValueError(f"give one learning rate per model: {len(models)} models, {len(lrs)} rates")
        if optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer {optimizer!r} is not one of {', '.join(OPTIMIZERS)}")
        if mode not in MODES:
            raise ValueError(f"mode {mode!r} is not one of {', '.join(MODES)}")
        shapes = [[tuple(p.shape) for p in m.parameters()] for m in models]
        if any(s != shapes[0] for s in shapes):
            raise ValueError("stacked models must share one architecture (their parameter shapes differ)")
        self.models = list(models)
        self.n_models = len(self.models)
        # One (models, *shape) leaf per parameter, contiguous: batched matmuls read it as is, autograd hands
        # back one gradient per parameter (no concatenation, no view bookkeeping), and the optimizer updates
        # the list of them in one fused call per learning rate.
        self.mode = mode if mode != "auto" else ("grouped" if groupable(self.models[0]) else "vmap")
        # Grouped linear layers multiply by the transposed weight, so it is stored transposed, (models, in,
        # out): its gradient then comes back contiguous, where a transposed one would cost a slow copy.
        self._transposed = {f"{name}.weight" if name else "weight" for name, module in self.models[0].named_modules()
                            if isinstance(module, nn.Linear)} if self.mode == "grouped" else set()
        params = [dict(m.named_parameters()) for m in self.models]  # once per model: each walk visits every module
        buffers = [dict(m.named_buffers()) for m in self.models]
        with torch.no_grad():
            self.stacked = {name: torch.stack([self._stored(name, p[name].detach()) for p in params]).requires_grad_()
                            for name in params[0]}
        self.leaves = list(self.stacked.values())
        self.buffers = {name: torch.stack([b[name] for b in buffers]) for name in buffers[0]}
        self.template = self._grouped_template() if self.mode == "grouped" else copy.deepcopy(self.models[0]).to("meta")
        self.views: dict[str, torch.Tensor] = {}
        self.lrs = [float(rate) for rate in lrs]
        self._rows_by_rate: dict[float, list[int]] = {}  # models sharing a learning rate share an update call
        for k, rate in enumerate(self.lrs):
            self._rows_by_rate.setdefault(rate, []).append(k)
        self.optimizer, self.weight_decay, self.betas, self.eps, self.momentum = (
            optimizer, weight_decay, betas, eps, momentum)
        self.state: dict[str, list[torch.Tensor]] = {}  # per parameter, stacked like the leaves
        self._rate_rows: dict[float, list[list[torch.Tensor]]] | None = None  # see _fused_adam_rows
        self.steps = 0

    def _grouped_template(self) -> nn.Module:
        model = self.models[0]
        # The layers that hold parameters are all replaced below, so their parameters are shared, not copied.
        template = copy.deepcopy(model, memo={id(p): p for p in model.parameters()})
        for name, module in list(template.named_modules()):
            prefix = f"{name}." if name else ""
            if isinstance(module, nn.Linear):
                grouped: nn.Module = _GroupedLinear(self, prefix, module.bias is not None)
            elif isinstance(module, nn.LayerNorm | nn.RMSNorm):  # the norms of GROUPED_LAYERS
                grouped = _GroupedNorm(self, prefix, module)
            else:
                _group_additive(self, prefix, module)
                continue
            parent_name, _, attr = name.rpartition(".")
            setattr(template.get_submodule(parent_name) if parent_name else template, attr, grouped)
        return template

    def _stored(self, name: str, tensor: torch.Tensor) -> torch.Tensor:
        """One model's parameter (or optimizer state) as the trainer stores it; the same call undoes it."""
        return tensor.t().contiguous() if name in self._transposed else tensor

    @property
    def params(self) -> dict[str, torch.Tensor]:
        """The stacked parameters, (models, *shape) each (views of the stored ones)."""
        return {name: stored.transpose(1, 2) if name in self._transposed else stored
                for name, stored in self.stacked.items()}

    def losses(self, x: torch.Tensor, y: torch.Tensor,
               loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> torch.Tensor:
        """Per-model losses, (models,), for per-model batches ``x`` (models, batch, ...) and ``y``."""
        if self.mode == "grouped":
            self.views = self.stacked
            out = self.template(x.flatten(0, 1))
            return vmap(loss_fn)(out.unflatten(0, (self.n_models, -1)), y)

        def one(params, buffers, xb, yb):
            return loss_fn(functional_call(self.template, (params, buffers), (xb,)), yb)

        return vmap(one, randomness="error")(self.params, self.buffers, x, y)

    def step(self, x: torch.Tensor, y: torch.Tensor, loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
             lr_factor: float = 1.0, per_model: bool = False) -> torch.Tensor:
        """One training step of every model on its own batch; returns the loss averaged over the models,
        or with ``per_model`` each model's loss, (models,) (models that are separate trials report their own).

        ``loss_fn`` must average over the batch (torch's default reduction): in grouped mode the models'
        batches are one batch, whose mean loss times the number of models is the sum of their losses.
        """
        if self.mode == "grouped" and not per_model:
            self.views = self.stacked
            out = self.template(x.flatten(0, 1))
            reported = loss_fn(out, y.flatten(0, 1))  # the models' mean
            total = reported * self.n_models
        else:
            losses = self.losses(x, y, loss_fn)
            total = losses.sum()
            reported = losses if per_model else total / self.n_models
        self.steps += 1
        with torch.no_grad():
            self._update(self._gradients(total), lr_factor)
        self.views = {}
        return reported.detach()

    def _gradients(self, total: torch.Tensor) -> list[torch.Tensor]:
        """The stacked gradients. With several learning rates the update works on rows of them, picked once
        (``_fused_adam_rows``), so backward accumulates into the same zeroed tensors every step; with one,
        fresh gradients save those two passes (contiguous like the leaves, as the fused kernel needs; a copy
        only for a gradient that autograd hands back strided)."""
        if len(self._rows_by_rate) == 1:
            return [g.contiguous() for g in torch.autograd.grad(total, self.leaves)]
        for leaf in self.leaves:
            if leaf.grad is not None:
                leaf.grad.zero_()
        total.backward()
        return [leaf.grad if leaf.grad is not None else torch.zeros_like(leaf) for leaf in self.leaves]

    def _update(self, grads: list[torch.Tensor], lr_factor: float) -> None:
        if self.optimizer != "sgd" and hasattr(torch, "_fused_adam_") and self.leaves[0].device.type == "cpu":
            self._fused_adam_rows(grads, lr_factor)
            return
        wd, b1, b2 = self.weight_decay, *self.betas
        rates = torch.tensor(self.lrs, dtype=self.leaves[0].dtype, device=self.leaves[0].device) * lr_factor
        for i, (p, g) in enumerate(zip(self.leaves, grads, strict=True)):
            lr = rates.view(-1, *[1] * (p.dim() - 1))
            if self.optimizer == "sgd":
                if wd:
                    g = g + wd * p
                bufs = self.state.setdefault("momentum", [])
                if len(bufs) <= i:
                    bufs.append(g.clone())
                else:
                    bufs[i].mul_(self.momentum).add_(g)
                p.sub_(lr * (g + self.momentum * bufs[i]))
                continue
            if self.optimizer == "adamw":
                p.mul_(1 - lr * wd)
            elif wd:
                g = g + wd * p
            m, v = self._moments("exp_avg")[i], self._moments("exp_avg_sq")[i]
            m.lerp_(g, 1 - b1)
            v.mul_(b2).addcmul_(g, g, value=1 - b2)
            c1, c2 = 1 - b1 ** self.steps, 1 - b2 ** self.steps
            p.sub_(torch.div(m, v.sqrt().div_(math.sqrt(c2)).add_(self.eps)).mul_(lr / c1))

    def _moments(self, key: str) -> list[torch.Tensor]:
        """Adam's ``exp_avg`` or ``exp_avg_sq``, stacked like the leaves; zeros made on the first step only."""
        if key not in self.state:
            self.state[key] = [torch.zeros_like(p) for p in self.leaves]
        return self.state[key]

    def _fused_adam_rows(self, grads: list[torch.Tensor], lr_factor: float) -> None:
        """torch's own fused Adam(W) kernel (the one ``torch.optim.Adam(fused=True)`` runs) on the models'
        stacked parameters, one call per distinct learning rate (on the rows of the models that share it)."""
        m, v = self._moments("exp_avg"), self._moments("exp_avg_sq")
        step = self.state.setdefault("step", [torch.zeros((), dtype=torch.float32)])[0]
        step += 1
        kernel = torch._fused_adamw_ if self.optimizer == "adamw" else torch._fused_adam_

        def fused(params: list[torch.Tensor], grads: list[torch.Tensor], m: list[torch.Tensor],
                  v: list[torch.Tensor], lr: float) -> None:
            kernel(params, grads, m, v, [], [step] * len(params), lr=lr, beta1=self.betas[0], beta2=self.betas[1],
                   weight_decay=self.weight_decay, eps=self.eps, amsgrad=False, maximize=False)

        if len(self._rows_by_rate) == 1:
            fused(self.leaves, grads, m, v, self.lrs[0] * lr_factor)
            return
        if self._rate_rows is None:  # every tensor here persists (updated in place): their rows are picked once
            self._rate_rows = {rate: [_rows_of(tensors, rows) for tensors in (self.leaves, grads, m, v)]
                               for rate, rows in self._rows_by_rate.items()}
        for rate, (p_rows, g_rows, m_rows, v_rows) in self._rate_rows.items():
            fused(p_rows, g_rows, m_rows, v_rows, rate * lr_factor)

    def optimizer_states(self) -> list[dict[int, dict[str, torch.Tensor]]]:
        """Each model's optimizer state as torch's optimizer holds it (``state_dict()["state"]``, by
        parameter index): a stacked run checkpoints per model, and a model trained alone continues it."""
        states: list[dict[int, dict[str, torch.Tensor]]] = []
        names = list(self.stacked)
        for k in range(self.n_models):
            state: dict[int, dict[str, torch.Tensor]] = {}
            if self.optimizer == "sgd" and "momentum" in self.state:
                for i, buf in enumerate(self.state["momentum"]):
                    state[i] = {"momentum_buffer": self._stored(names[i], buf[k]).clone()}
            elif self.optimizer != "sgd" and self.steps:
                for i, (m, v) in enumerate(zip(self.state["exp_avg"], self.state["exp_avg_sq"], strict=True)):
                    state[i] = {"step": torch.tensor(float(self.steps)), "exp_avg": self._stored(names[i], m[k]).clone(),
                                "exp_avg_sq": self._stored(names[i], v[k]).clone()}
            states.append(state)
        return states

    def load_optimizer_states(self, states: Sequence[dict[int, dict[str, torch.Tensor]]]) -> None:
        """Continue from each model's torch optimizer state (:meth:`optimizer_states`' form); all empty
        (nothing trained yet) leaves the fresh state."""
        if len(states) != self.n_models:
            raise ValueError(f"give one optimizer state per model: {self.n_models} models, {len(states)} states")
        if not any(states):
            return
        n_params = len(self.leaves)
        if any(sorted(state) != list(range(n_params)) for state in states):
            raise ValueError("every model's optimizer state must cover all its parameters, or none")

        def stacked(key: str) -> list[torch.Tensor]:
            return [torch.stack([self._stored(name, state[i][key]) for state in states]).to(self.leaves[i])
                    for i, name in enumerate(self.stacked)]

        if self.optimizer == "sgd":
            self.state["momentum"] = stacked("momentum_buffer")
            return
        steps = {float(state[i]["step"]) for state in states for i in range(n_params)}
        if len(steps) != 1:
            raise ValueError(f"stacked models must have taken the same number of steps, got {sorted(steps)}")
        self.steps = int(steps.pop())
        self.state.update(exp_avg=stacked("exp_avg"), exp_avg_sq=stacked("exp_avg_sq"),
                          step=[torch.tensor(float(self.steps))])
        self._rate_rows = None

    def unstack(self) -> list[nn.Module]:
        """The models with their trained weights (the modules given, updated in place)."""
        stacked = {**self.params, **self.buffers}
        with torch.no_grad():
            for k, model in enumerate(self.models):
                for name, tensor in [*model.named_parameters(), *model.named_buffers()]:
                    tensor.copy_(stacked[name][k])
        return self.models


def _rows_of(tensors: list[torch.Tensor], rows: list[int]) -> list[torch.Tensor]:
    """Rows ``rows`` of every stacked tensor, as views (``unbind`` makes them in one call per tensor)."""
    unbound = [t.unbind(0) for t in tensors]
    return [u[k] for u in unbound for k in rows]


def train_stacked(models: Sequence[nn.Module], x: torch.Tensor, y: torch.Tensor,
                  loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], lrs: Sequence[float],
                  steps: int, batch_size: int, generators: Sequence[torch.Generator], optimizer: str = "adam",
                  weight_decay: float = 0.0, mode: str = "auto") -> list[nn.Module]:
    """Mini-batch training of every model on (x, y), each shuffled by its own generator, all at once.

    Equals, model by model, ``steps`` steps of the same optimizer over batches drawn as
    ``torch.randperm(len(x), generator=generators[k])`` epoch after epoch (the evaluator's loop).
    """
    trainer = StackedTrainer(models, lrs, optimizer, weight_decay, mode=mode)
    n = len(x)
    orders = torch.stack([torch.randperm(n, generator=g) for g in generators])
    begin = 0
    for _ in range(steps):
        if begin >= n:
            orders, begin = torch.stack([torch.randperm(n, generator=g) for g in generators]), 0
        idx = orders[:, begin:begin + batch_size]
        trainer.step(x[idx], y[idx], loss_fn)
        begin += batch_size
    return trainer.unstack()
