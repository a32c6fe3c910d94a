"""Optimizers of the training recipe, and one training step for each kind.

First-order optimizers (Adam, AdamW, SGD) take one gradient step per mini-batch. L-BFGS re-evaluates the
loss several times per step (its line search), so it takes a closure and the whole training split: that
is how the KAN paper (and pykan's ``fit``) fits functions, and on small regression problems it reaches
errors that Adam needs thousands of epochs for. Here one L-BFGS step is ``lbfgs_max_iter`` iterations,
each with a strong Wolfe line search, over ``lbfgs_history`` curvature pairs.

Checkpointing L-BFGS: its ``state_dict()`` holds tensors (``d``, ``t``, ``H_diag``, ``prev_flat_grad``,
``prev_loss``), lists of tensors (``old_dirs``, ``old_stps``, ``ro``, ``al``) and counters (``n_iter``,
``func_evals``) under ``state[0]``; saving it means flattening those lists into numbered safetensors
entries and the counters into the JSON beside them. The extra ``weight_decay`` this module puts in the
param group is a plain number and goes with the group's other options.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch

from archsearch.evaluation.recipe import TrainingRecipe

# pykan's fit sets every L-BFGS tolerance to ~0 so that a step always runs its iterations; a fit that
# has converged then only costs time, never accuracy.
_TOLERANCE = 1e-32


def make_optimizer(params: Iterable[torch.nn.Parameter], recipe: TrainingRecipe) -> torch.optim.Optimizer:
    """The recipe's optimizer over ``params`` at its peak learning rate."""
    params = list(params)
    if recipe.optimizer == "adam":
        return torch.optim.Adam(params, lr=recipe.lr, weight_decay=recipe.weight_decay, fused=True)
    if recipe.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=recipe.lr, weight_decay=recipe.weight_decay, fused=True)
    if recipe.optimizer == "lbfgs":
        optimizer = torch.optim.LBFGS(params, lr=recipe.lr, max_iter=recipe.lbfgs_max_iter,
                                      history_size=recipe.lbfgs_history, line_search_fn="strong_wolfe",
                                      tolerance_grad=_TOLERANCE, tolerance_change=_TOLERANCE)
        optimizer.param_groups[0]["weight_decay"] = recipe.weight_decay  # applied in the closure
        return optimizer
    if recipe.optimizer == "sgd":
        return torch.optim.SGD(params, lr=recipe.lr, weight_decay=recipe.weight_decay, momentum=0.9,
                               nesterov=True)
    raise ValueError(f"unknown optimizer {recipe.optimizer!r}")


def take_step(optimizer: torch.optim.Optimizer, batch_loss: Callable[[], torch.Tensor]) -> torch.Tensor:
    """One optimizer step on the loss ``batch_loss()`` computes; returns that loss at the step's start.

    A non-finite loss is returned without stepping (first-order) or without a gradient (inside an L-BFGS
    line search, which then backs off), so the caller can call the run diverged.
    """
    if isinstance(optimizer, torch.optim.LBFGS):
        return _lbfgs_step(optimizer, batch_loss)
    loss = batch_loss()
    if not torch.isfinite(loss):
        return loss.detach()
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.detach()


def _lbfgs_step(optimizer: torch.optim.LBFGS, batch_loss: Callable[[], torch.Tensor]) -> torch.Tensor:
    group = optimizer.param_groups[0]
    decay = float(group.get("weight_decay", 0.0))
    first: list[torch.Tensor] = []

    def closure() -> torch.Tensor:
        optimizer.zero_grad(set_to_none=False)
        loss = batch_loss()
        if decay:
            loss = loss + 0.5 * decay * sum(p.square().sum() for p in group["params"])
        if not first:
            first.append(loss.detach())
        if torch.isfinite(loss):
            loss.backward()
        return loss

    optimizer.step(closure)
    return first[0]


def optimizer_summary(optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """What an L-BFGS step did (function evaluations so far), for the trial's info; empty otherwise."""
    if not isinstance(optimizer, torch.optim.LBFGS):
        return {}
    state = optimizer.state[optimizer.param_groups[0]["params"][0]]
    return {"lbfgs_evaluations": int(state.get("func_evals", 0))}
