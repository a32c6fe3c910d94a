"""Stacked candidates (horizontal fusion): several same-shaped models trained as one batched model.

Small candidates on a CPU are bound by per-operation overhead, not arithmetic: training sixteen copies
of one architecture (other seeds, other learning rates, the same rung of successive halving) one after
another pays that overhead sixteen times. Here their parameters are stacked along a new leading axis,
one forward and backward serves all of them, and the optimizer updates one (models, total) master
tensor, of which every stacked parameter is a view, with a learning rate per model (Adam and AdamW
through torch's own fused kernel, one call per distinct rate; SGD element-wise). Each model sees its own batches and gets exactly the update it
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
        weight = views[f"{self.prefix}weight"]
        grouped = x.reshape(n, -1, x.shape[-1])
        if self.has_bias:
            out = torch.baddbmm(views[f"{self.prefix}bias"].unsqueeze(1), grouped, weight.transpose(1, 2))
        else:
            out = torch.bmm(grouped, weight.transpose(1, 2))
        return out.reshape(*x.shape[:-1], weight.shape[1])


class _GroupedNorm(nn.Module):
    """``nn.LayerNorm`` or ``nn.RMSNorm`` for models folded into the batch: normalize, then each model's
    scale (and shift)."""

    def __init__(self, trainer: StackedTrainer, prefix: str, norm: nn.LayerNorm | nn.RMSNorm) -> None:
        super().__init__()
        self.trainer, self.prefix = [trainer], prefix
        self.shape, self.eps, self.affine = norm.normalized_shape, norm.eps, norm.weight is not None
        self.normalize = F.layer_norm if isinstance(norm, nn.LayerNorm) else F.rms_norm
        self.has_bias = getattr(norm, "bias", None) is not None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        views, n = self.trainer[0].views, self.trainer[0].n_models
        y = self.normalize(x, self.shape, eps=self.eps)
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
        # Every parameter is a view of one (models, total) master tensor, the only leaf: autograd hands back
        # one gradient tensor and the optimizer's update is a handful of operations on it, not per parameter.
        with torch.no_grad():
            self.flat = torch.stack([torch.cat([p.reshape(-1) for p in m.parameters()]) for m in self.models])
        self.flat.requires_grad_()
        self._shapes = {name: (self.n_models, *p.shape) for name, p in self.models[0].named_parameters()}
        self._sizes = [math.prod(shape[1:]) for shape in self._shapes.values()]
        self.buffers = {name: torch.stack([dict(m.named_buffers())[name] for m in self.models])
                        for name, _ in self.models[0].named_buffers()}
        self.mode = mode if mode != "auto" else ("grouped" if groupable(self.models[0]) else "vmap")
        self.template = self._grouped_template() if self.mode == "grouped" else copy.deepcopy(self.models[0]).to("meta")
        self.views: dict[str, torch.Tensor] = {}
        self.lr = torch.tensor(list(lrs), dtype=self.flat.dtype, device=self.flat.device).unsqueeze(1)
        self._rows_by_rate: dict[float, list[int]] = {}  # models sharing a learning rate share an update call
        for k, rate in enumerate(self.lr.squeeze(1).tolist()):
            self._rows_by_rate.setdefault(rate, []).append(k)
        self.optimizer, self.weight_decay, self.betas, self.eps, self.momentum = (
            optimizer, weight_decay, betas, eps, momentum)
        self.state: dict[str, torch.Tensor] = {}
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

    @property
    def params(self) -> dict[str, torch.Tensor]:
        """The stacked parameters, (models, *shape) each: views of the master tensor."""
        chunks = self.flat.split(self._sizes, dim=1)
        return {name: chunk.view(shape) for (name, shape), chunk in zip(self._shapes.items(), chunks, strict=True)}

    def losses(self, x: torch.Tensor, y: torch.Tensor,
               loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> torch.Tensor:
        """Per-model losses, (models,), for per-model batches ``x`` (models, batch, ...) and ``y``."""
        if self.mode == "grouped":
            self.views = self.params
            out = self.template(x.flatten(0, 1))
            return vmap(loss_fn)(out.unflatten(0, (self.n_models, -1)), y)

        def one(params, buffers, xb, yb):
            return loss_fn(functional_call(self.template, (params, buffers), (xb,)), yb)

        return vmap(one, randomness="error")(self.params, self.buffers, x, y)

    def step(self, x: torch.Tensor, y: torch.Tensor, loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
             lr_factor: float = 1.0) -> torch.Tensor:
        """One training step of every model on its own batch; returns the loss averaged over the models.

        ``loss_fn`` must average over the batch (torch's default reduction): in grouped mode the models'
        batches are one batch, whose mean loss times the number of models is the sum of their losses.
        """
        if self.mode == "grouped":
            self.views = self.params
            out = self.template(x.flatten(0, 1))
            mean = loss_fn(out, y.flatten(0, 1))
            total = mean * self.n_models
        else:
            total = self.losses(x, y, loss_fn).sum()
            mean = total / self.n_models
        (grad,) = torch.autograd.grad(total, [self.flat])
        self.steps += 1
        with torch.no_grad():
            self._update(self.flat, grad, lr_factor)
        self.views = {}
        return mean.detach()

    def _update(self, p: torch.Tensor, g: torch.Tensor, lr_factor: float) -> None:
        if self.optimizer != "sgd" and hasattr(torch, "_fused_adam_") and p.device.type == "cpu":
            self._fused_adam_rows(p, g, lr_factor)
            return
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
        denominator = v.sqrt().div_(math.sqrt(c2)).add_(self.eps)
        p.sub_(torch.div(m, denominator).mul_(lr / c1))

    def _fused_adam_rows(self, p: torch.Tensor, g: torch.Tensor, lr_factor: float) -> None:
        """torch's own fused Adam(W) kernel (the one ``torch.optim.Adam(fused=True)`` runs) on the models'
        rows, one call per distinct learning rate: its per-call cost is a few microseconds, where the
        element-wise update above is nine passes over the whole (models, total) tensor."""
        m = self.state.setdefault("exp_avg", torch.zeros_like(p))
        v = self.state.setdefault("exp_avg_sq", torch.zeros_like(p))
        step = self.state.setdefault("step", torch.zeros((), dtype=torch.float32))
        step += 1
        fused = torch._fused_adamw_ if self.optimizer == "adamw" else torch._fused_adam_
        for rate, rows in self._rows_by_rate.items():
            fused([p[k] for k in rows], [g[k] for k in rows], [m[k] for k in rows], [v[k] for k in rows], [],
                  [step] * len(rows), lr=rate * lr_factor, beta1=self.betas[0], beta2=self.betas[1],
                  weight_decay=self.weight_decay, eps=self.eps, amsgrad=False, maximize=False)

    def _per_parameter(self, row: torch.Tensor) -> list[torch.Tensor]:
        """One model's row of a (models, total) tensor as views shaped like its parameters."""
        return [chunk.view(shape[1:]) for chunk, shape in zip(row.split(self._sizes), self._shapes.values(),
                                                               strict=True)]

    def optimizer_states(self) -> list[dict[int, dict[str, torch.Tensor]]]:
        """Each model's optimizer state as torch's optimizer holds it (``state_dict()["state"]``, by
        parameter index): a stacked run checkpoints per model, and a model trained alone continues it."""
        states: list[dict[int, dict[str, torch.Tensor]]] = []
        for k in range(self.n_models):
            state: dict[int, dict[str, torch.Tensor]] = {}
            if self.optimizer == "sgd" and "momentum" in self.state:
                for i, buf in enumerate(self._per_parameter(self.state["momentum"][k])):
                    state[i] = {"momentum_buffer": buf.clone()}
            elif self.optimizer != "sgd" and self.steps:
                means = self._per_parameter(self.state["exp_avg"][k])
                squares = self._per_parameter(self.state["exp_avg_sq"][k])
                for i, (m, v) in enumerate(zip(means, squares, strict=True)):
                    state[i] = {"step": torch.tensor(float(self.steps)), "exp_avg": m.clone(), "exp_avg_sq": v.clone()}
            states.append(state)
        return states

    def load_optimizer_states(self, states: Sequence[dict[int, dict[str, torch.Tensor]]]) -> None:
        """Continue from each model's torch optimizer state (:meth:`optimizer_states`' form); all empty
        (nothing trained yet) leaves the fresh state."""
        if len(states) != self.n_models:
            raise ValueError(f"give one optimizer state per model: {self.n_models} models, {len(states)} states")
        if not any(states):
            return
        n_params = len(self._sizes)
        if any(sorted(state) != list(range(n_params)) for state in states):
            raise ValueError("every model's optimizer state must cover all its parameters, or none")

        def stacked(key: str) -> torch.Tensor:
            return torch.stack([torch.cat([state[i][key].reshape(-1) for i in range(n_params)])
                                for state in states]).to(self.flat)

        if self.optimizer == "sgd":
            self.state["momentum"] = stacked("momentum_buffer")
            return
        steps = {float(state[i]["step"]) for state in states for i in range(n_params)}
        if len(steps) != 1:
            raise ValueError(f"stacked models must have taken the same number of steps, got {sorted(steps)}")
        self.steps = int(steps.pop())
        self.state.update(exp_avg=stacked("exp_avg"), exp_avg_sq=stacked("exp_avg_sq"),
                          step=torch.tensor(float(self.steps)))

    def unstack(self) -> list[nn.Module]:
        """The models with their trained weights (the modules given, updated in place)."""
        stacked = {**self.params, **self.buffers}
        with torch.no_grad():
            for k, model in enumerate(self.models):
                for name, tensor in [*model.named_parameters(), *model.named_buffers()]:
                    tensor.copy_(stacked[name][k])
        return self.models


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
