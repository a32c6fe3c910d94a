"""The training loop of one candidate: mini-batch steps in segments that continue each other exactly.

:class:`TrainingRun` trains one model; :class:`StackedRun` trains several seeds of one architecture as
one stacked model (:mod:`archsearch.kernels.stacking`) through the same loop, so both count steps,
schedule the learning rate, record learning curves and checkpoint alike.
"""

from __future__ import annotations

import math
import time
from dataclasses import replace
from functools import partial

import numpy as np
import torch
import torch.nn.functional as F

from archsearch.evaluation.checkpoint import Checkpoint, LoopState, restore
from archsearch.evaluation.checkpoint import encode as encode_checkpoint
from archsearch.evaluation.optimizers import make_optimizer, take_step
from archsearch.evaluation.recipe import TrainingRecipe, lr_factor
from archsearch.tasks import Task


class Diverged(RuntimeError):
    """Training produced a non-finite loss or output."""


class OverTime(RuntimeError):
    """Training went past the recipe's time limit."""


class TrainingRun:
    """One candidate's mini-batch training, in segments that continue each other exactly.

    Steps are counted against the schedule's horizon, the recipe's epochs (the run's maximum
    fidelity) or a larger requested fidelity, never against the segment's own end, so training to 3
    epochs and continuing to 9 takes the same steps at the same learning rates as 9 straight.
    """

    def __init__(self, recipe: TrainingRecipe, model, task: Task, shuffle: torch.Generator,
                 saved: Checkpoint | None) -> None:
        self.recipe, self.model, self.task, self.shuffle = recipe, model, task, shuffle
        self.x, self.y = tensors(task, task.x_train, task.y_train, next(model.parameters(), torch.empty(0)).device)
        self.n = len(self.x)
        self.batch = self.n if recipe.full_batch else min(recipe.batch_size, self.n)
        self.steps_per_epoch = math.ceil(self.n / self.batch)
        self.optimizer = make_optimizer(model.parameters(), recipe)
        self.loop = LoopState()
        self.best: dict[str, torch.Tensor] | None = None
        if saved is not None:
            restore(saved, model, self.optimizer, shuffle)
            self.loop, self.best = saved.loop, saved.best
        self.horizon = self._steps(None)

    def _steps(self, fidelity: float | None) -> int:
        if self.recipe.steps is not None:
            return max(1, int(fidelity) if fidelity is not None else self.recipe.steps)
        return max(1, round((self.recipe.epochs if fidelity is None else fidelity) * self.steps_per_epoch))

    def epochs_trained(self) -> float:
        return self.loop.step / self.steps_per_epoch

    def can_continue(self) -> bool:
        return self.loop.step < self.horizon and not self.loop.stopped_early

    def train_to(self, fidelity: float | None, epoch_end) -> list[dict[str, float]]:
        """Train until ``fidelity`` (epochs, or steps); returns a learning-curve point per completed epoch."""
        recipe, loop = self.recipe, self.loop
        target = self._steps(fidelity)
        horizon = max(self.horizon, target)
        patience = recipe.early_stopping_patience
        curve: list[dict[str, float]] = []
        start = time.perf_counter()
        self._train_mode()
        while loop.step < target and not loop.stopped_early:
            loss = self._take_step(self._batch_indices(), lr_factor(loop.step, horizon, recipe))
            if not torch.isfinite(loss):
                raise Diverged(f"loss became {loss.item()} at step {loop.step + 1} of {target}")
            loop.step += 1
            loop.position += self.batch
            loop.loss_sum += loss.item()
            loop.batches += 1
            if recipe.time_limit_s is not None and loop.train_time_s + time.perf_counter() - start > recipe.time_limit_s:
                raise OverTime(f"training time limit of {recipe.time_limit_s:g} s exceeded at step "
                               f"{loop.step} of {target}")
            if loop.position >= self.n:
                curve.append(self._end_epoch(epoch_end, patience))
        loop.train_time_s += time.perf_counter() - start
        return curve

    def _train_mode(self) -> None:
        self.model.train()

    def _batch_indices(self) -> torch.Tensor:
        """The next batch's rows (a new permutation at each epoch's start)."""
        loop = self.loop
        if loop.position == 0 or loop.order is None:
            loop.order = torch.randperm(self.n, generator=self.shuffle)
        return loop.order[loop.position:loop.position + self.batch].to(self.x.device)

    def _take_step(self, idx: torch.Tensor, factor: float) -> torch.Tensor:
        """One optimizer step on rows ``idx`` at ``factor`` times the peak learning rate; returns the loss."""
        for group in self.optimizer.param_groups:
            group["lr"] = self.recipe.lr * factor
        return take_step(self.optimizer, partial(batch_loss, self.model, self.x[idx], self.y[idx], self.task))

    def _epoch_scores(self, epoch_end) -> dict[str, float]:
        return epoch_end(self.model, self.task)

    def _end_epoch(self, epoch_end, patience: int | None) -> dict[str, float]:
        loop = self.loop
        loop.epoch += 1
        point = {"epoch": float(loop.epoch), "train_loss": loop.loss_sum / max(1, loop.batches),
                 **self._epoch_scores(epoch_end)}
        loop.position, loop.loss_sum, loop.batches, loop.order = 0, 0.0, 0, None
        if patience is not None:
            metric = point[self.task.metric]
            score = metric if self.task.metric_direction == "maximize" else -metric
            if score > loop.best_score:
                loop.best_score, loop.best_epoch, loop.stale = score, loop.epoch, 0
                self.best = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
            else:
                loop.stale += 1
                loop.stopped_early = loop.stale >= patience
        return point

    def checkpoints(self) -> list[bytes]:
        """Where training stands, one checkpoint per model trained (here one)."""
        return [encode_checkpoint(self.model, self.optimizer, self.loop, self.shuffle, self.best)]

    def trained_models(self) -> list[torch.nn.Module]:
        """The trained models, with the best epoch's weights where early stopping kept them (take the
        checkpoints first: they keep the current weights)."""
        if self.best is not None:
            self.model.load_state_dict(self.best)
        return [self.model]


class StackedRun(TrainingRun):
    """Several seeds of one architecture trained as one stacked model through :class:`TrainingRun`'s loop.

    Each seed keeps its own initialization and shuffling; one forward and backward serves all of them
    (:class:`~archsearch.kernels.stacking.StackedTrainer` in grouped mode), and each gets the update it
    would get alone, up to floating-point summation order. A learning-curve point averages the seeds.
    Checkpoints are one per seed in the single run's format, so either kind of run continues the other.
    See :func:`stack_refusal` for what can be stacked.
    """

    def __init__(self, recipe: TrainingRecipe, models: list[torch.nn.Module], task: Task,
                 shuffles: list[torch.Generator], saved: list[Checkpoint | None],
                 lrs: list[float] | None = None) -> None:
        from archsearch.kernels.stacking import StackedTrainer

        if recipe.time_limit_s is not None:  # the limit is per seed, and here every seed's time is one
            recipe = replace(recipe, time_limit_s=recipe.time_limit_s * len(models))
        lrs = lrs or [recipe.lr] * len(models)
        super().__init__(replace(recipe, lr=lrs[0]), models[0], task, shuffles[0], saved[0])
        self.models, self.shuffles = models, shuffles
        self.optimizers = [self.optimizer, *(make_optimizer(m.parameters(), replace(recipe, lr=lr))
                                             for m, lr in zip(models[1:], lrs[1:], strict=True))]
        self.orders = [self.loop.order]
        for model, optimizer, shuffle, ckpt in zip(models[1:], self.optimizers[1:], shuffles[1:], saved[1:],
                                                   strict=True):
            if ckpt is not None:
                restore(ckpt, model, optimizer, shuffle)
            self.orders.append(ckpt.loop.order if ckpt is not None else None)
        self.trainer = StackedTrainer(models, lrs, recipe.optimizer, recipe.weight_decay, mode="grouped")
        self.trainer.load_optimizer_states([o.state_dict()["state"] for o in self.optimizers])
        self._loss = partial(task_loss, task=task)

    def _train_mode(self) -> None:
        for model in self.models:
            model.train()

    def _batch_indices(self) -> torch.Tensor:
        loop = self.loop
        if loop.position == 0 or loop.order is None:
            self.orders = [torch.randperm(self.n, generator=shuffle) for shuffle in self.shuffles]
            loop.order = self.orders[0]
        end = loop.position + self.batch
        rows = [order[loop.position:end] for order in self.orders if order is not None]
        assert len(rows) == len(self.orders), "a checkpoint in mid-epoch holds every seed's permutation"
        return torch.stack(rows).to(self.x.device)

    def _take_step(self, idx: torch.Tensor, factor: float) -> torch.Tensor:
        return self.trainer.step(self.x[idx], self.y[idx], self._loss, lr_factor=factor)

    def _loop_of(self, k: int) -> LoopState:
        """Model ``k``'s loop state, as its checkpoint holds it."""
        return replace(self.loop, order=self.orders[k])

    def _epoch_scores(self, epoch_end) -> dict[str, float]:
        scores = [epoch_end(model, self.task) for model in self.trained_models()]
        return {key: float(np.mean([score[key] for score in scores])) for key in scores[0]}

    def checkpoints(self) -> list[bytes]:
        states = self.trainer.optimizer_states()
        saved = []
        for k, (model, optimizer, shuffle, state) in enumerate(zip(self.trained_models(), self.optimizers,
                                                                   self.shuffles, states, strict=True)):
            optimizer.load_state_dict({**optimizer.state_dict(), "state": state})
            saved.append(encode_checkpoint(model, optimizer, self._loop_of(k), shuffle, None))
        return saved

    def trained_models(self) -> list[torch.nn.Module]:
        return self.trainer.unstack()


class GroupRun(StackedRun):
    """Separate trials of one network whose recipes differ only in learning rate, trained as one stacked
    model: each keeps its own learning curve, training loss included, as it would get alone (``curves``)."""

    def __init__(self, recipe: TrainingRecipe, models: list[torch.nn.Module], task: Task,
                 shuffles: list[torch.Generator], saved: list[Checkpoint | None], lrs: list[float]) -> None:
        super().__init__(recipe, models, task, shuffles, saved, lrs)
        self.curves: list[list[dict[str, float]]] = [[] for _ in models]
        # Each trial's share of the epoch's loss so far (a checkpoint in mid-epoch holds its own).
        self._loss_sums = torch.tensor([ckpt.loop.loss_sum if ckpt is not None else 0.0 for ckpt in saved],
                                       dtype=torch.float64)
        self.measured = [dict(ckpt.loop.measured) if ckpt is not None else {} for ckpt in saved]
        self._time_before = [ckpt.loop.train_time_s if ckpt is not None else 0.0 for ckpt in saved]
        self._group_time_before = self.loop.train_time_s

    def time_of(self, k: int) -> float:
        """Trial ``k``'s training time: its time before this group, and an even share of the group's."""
        return self._time_before[k] + (self.loop.train_time_s - self._group_time_before) / len(self.models)

    def _take_step(self, idx: torch.Tensor, factor: float) -> torch.Tensor:
        losses = self.trainer.step(self.x[idx], self.y[idx], self._loss, lr_factor=factor, per_model=True)
        self._loss_sums += losses.to(torch.float64)
        return losses.mean()

    def _epoch_scores(self, epoch_end) -> dict[str, float]:
        batches = max(1, self.loop.batches)
        for k, model in enumerate(self.trained_models()):
            self.curves[k].append({"epoch": float(self.loop.epoch), "train_loss": float(self._loss_sums[k]) / batches,
                                   **epoch_end(model, self.task)})
        self._loss_sums.zero_()
        return {}

    def _loop_of(self, k: int) -> LoopState:
        return replace(self.loop, order=self.orders[k], loss_sum=float(self._loss_sums[k]),
                       measured=self.measured[k], train_time_s=self.time_of(k))


def mean_curve(curves: list[list[dict[str, float]]]) -> list[dict[str, float]]:
    """The seeds' learning curves averaged epoch by epoch (where early stopping ended some, the others')."""
    if len(curves) == 1:
        return curves[0]
    merged = []
    for epoch in range(max(map(len, curves), default=0)):
        points = [curve[epoch] for curve in curves if epoch < len(curve)]
        merged.append({key: float(np.mean([p[key] for p in points])) for key in points[0]})
    return merged


CPU_STACK_MAX_STEP_FLOPS = 1e8
"""Forward FLOPs of one model's batch above which a CPU trains stacked seeds no faster than one after
another (measured on space=mlp architectures, ``benchmarks/kernels.py --sections seeds``: 2.6x at 2 M,
1.3x at 70 M, 0.8-0.96x from 120 M on): such steps are bound by arithmetic, not per-operation overhead."""


def stack_refusal(model: torch.nn.Module, recipe: TrainingRecipe, flops_per_example: float | None = None,
                  device: torch.device | None = None) -> str | None:
    """Why seeds of ``model`` should not train stacked under ``recipe`` (``None``: they should).

    Stacking folds the seeds' batches into one batch, so every parameter must sit in a linear layer or a
    layer or RMS norm (no batch statistics, no per-seed routing such as MoE capacity), and every seed must take
    the same steps with no random numbers of its own.
    """
    from archsearch.kernels.stacking import OPTIMIZERS, groupable

    if recipe.optimizer not in OPTIMIZERS:
        return f"{recipe.optimizer} is not stacked (only {', '.join(OPTIMIZERS)})"
    if recipe.early_stopping_patience is not None:
        return "early stopping would stop the seeds at different epochs"
    if recipe.dropout:
        return "dropout draws other random numbers per seed"
    if any(hasattr(module, "aux_loss") for module in model.modules()):
        return "a block routes rows or adds an auxiliary loss (MoE)"
    if not groupable(model):
        return "parameters outside linear layers and norms"
    step_flops = (flops_per_example or 0.0) * recipe.batch_size
    if (device is None or device.type == "cpu") and step_flops > CPU_STACK_MAX_STEP_FLOPS:
        return (f"{step_flops / 1e6:.0f} MFLOPs per batch: on a CPU a step this large is bound by arithmetic, "
                "and stacking saves nothing")
    return None


def tensors(task: Task, x: np.ndarray, y: np.ndarray,
            device: torch.device | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    dtype = np.int64 if task.input_kind == "tokens" else np.float32
    xt = torch.from_numpy(np.ascontiguousarray(x, dtype=dtype))
    if task.problem == "classification":
        yt = torch.from_numpy(y.astype(np.int64))
    else:
        yt = torch.from_numpy(((y - task.y_mean) / task.y_std).astype(np.float32))
    return (xt, yt) if device is None or device.type == "cpu" else (xt.to(device), yt.to(device))


def batch_loss(model, x: torch.Tensor, y: torch.Tensor, task: Task) -> torch.Tensor:
    """The training loss of one batch, with the auxiliary losses blocks add (MoE load balancing)."""
    loss = task_loss(model(x), y, task)
    aux = model.auxiliary_loss()
    return loss if aux is None else loss + aux


def task_loss(out: torch.Tensor, y: torch.Tensor, task: Task) -> torch.Tensor:
    if task.problem == "classification":
        return F.cross_entropy(out, y)
    return F.mse_loss(out.squeeze(1), y)
