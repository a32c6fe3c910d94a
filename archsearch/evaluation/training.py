"""The built-in evaluator: build the genome's network, measure it, check constraints, train it, score it.

Cheap metrics (parameters, FLOPs, latency, memory) come first, so a candidate that breaks a constraint
is rejected before it costs training time. Initialization and shuffling are seeded from the run seed
and the architecture id, so the same architecture trains identically whichever worker gets it.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict, dataclass, field
from functools import partial
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from archsearch.builder import build_model, count_parameters, fit_grids
from archsearch.devices import describe_device, resolve_device
from archsearch.evaluation.base import Evaluator
from archsearch.evaluation.checkpoint import Checkpoint, LoopState, restore
from archsearch.evaluation.checkpoint import decode as decode_checkpoint
from archsearch.evaluation.checkpoint import encode as encode_checkpoint
from archsearch.evaluation.constraints import Constraints
from archsearch.evaluation.latency import LatencyProtocol, measure_latency, torch_threads
from archsearch.evaluation.measure import count_flops, training_memory_mb
from archsearch.evaluation.optimizers import make_optimizer, optimizer_summary, take_step
from archsearch.evaluation.recipe import TrainingRecipe, lr_factor
from archsearch.genome import Genome
from archsearch.tasks import Task, load_task
from archsearch.trial import COMPLETE, REJECTED, EvalResult
from archsearch.versions import RUN_SCHEMA_VERSION

__all__ = ["Diverged", "TaskRef", "TrainingEvaluator", "TrainingRecipe", "stable_seed"]


class Diverged(RuntimeError):
    """Training produced a non-finite loss or output."""


class OverTime(RuntimeError):
    """Training went past the recipe's time limit."""


@dataclass
class TaskRef:
    """A built-in task by name, loaded lazily once per process (workers get the name, not the data)."""

    name: str
    seed: int = 0
    options: dict[str, Any] = field(default_factory=dict)

    def load(self) -> Task:
        return load_task(self.name, seed=self.seed, **self.options)


def stable_seed(*parts: Any) -> int:
    """A 63-bit seed from hashable parts that does not depend on PYTHONHASHSEED."""
    import hashlib

    digest = hashlib.sha256(repr(parts).encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


class TrainingEvaluator(Evaluator):
    """Trains and measures genomes on a task.

    Args:
        task: a :class:`Task` (the user's data) or a :class:`TaskRef` to a built-in task.
        recipe: the training recipe; ``Candidate.fidelity`` overrides its epochs (or steps).
        latency: the latency protocol.
        seed: run seed; combined with each architecture's id for its initialization.
        threads: torch threads used for training (one per worker keeps cores from thrashing).
        constraints: bounds on cheap metrics, checked before training.
    """

    def __init__(
        self,
        task: Task | TaskRef,
        recipe: TrainingRecipe | None = None,
        latency: LatencyProtocol | None = None,
        seed: int = 0,
        threads: int = 1,
        constraints: Constraints | None = None,
    ) -> None:
        self.task = task
        self.recipe = recipe or TrainingRecipe()
        self.latency = latency or LatencyProtocol()
        self.seed = seed
        self.threads = threads
        self.constraints = constraints or Constraints()
        self._loaded: Task | None = None
        self._ships_data = False

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        if not state.get("_ships_data"):
            state["_loaded"] = None  # ship the reference, not the arrays, when the task is built-in
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.__dict__.setdefault("_ships_data", False)
        if self._loaded is not None:
            self._loaded = self._loaded.writable()

    def for_workers(self) -> TrainingEvaluator:
        """A copy that carries the loaded task's arrays when pickled.

        The Ray executor puts it in the object store once for all workers, so a worker neither imports
        the task's libraries nor regenerates or re-reads its data (a table file need not exist on the
        cluster's other machines), and every worker trains on exactly the driver's split.
        """
        shipped = copy.copy(self)
        shipped._loaded = self.load_task()
        shipped._ships_data = True
        return shipped

    def load_task(self) -> Task:
        if self._loaded is None:
            self._loaded = self.task.load() if isinstance(self.task, TaskRef) else self.task
        return self._loaded

    def warm_up(self) -> None:
        """Pay a worker's one-time costs before its first candidate: the task's data, and torch's first
        optimizer and FLOP counter, which import its compiler stack (seconds on a small CPU) and must not
        count against a candidate's time limit or its ``train_time_s``."""
        self.load_task()
        with torch_threads(self.threads):
            model = torch.nn.Linear(2, 2)
            make_optimizer(model.parameters(), self.recipe)
            count_flops(model, torch.zeros(1, 2))

    def measure(self, architecture: Any) -> dict[str, float]:
        """``n_params`` and ``flops`` of the built model, on the CPU with no training: what ``evaluate``
        reports for them (latency and memory are left out: they are measured, not counted)."""
        genome = architecture
        task = self.load_task()
        with torch_threads(self.threads), torch.random.fork_rng(devices=[]):
            model = build_model(genome, task.data_spec, dropout=self.recipe.dropout)
            example, _ = _tensors(task, task.x_train[:1], task.y_train[:1])
            return {"n_params": float(count_parameters(model)), "flops": count_flops(model, example)}

    def use_loaded(self, task: Task) -> None:
        """Reuse a task the caller already loaded (the driver validates data before a run starts)."""
        self._loaded = task

    def objectives_default(self) -> dict[str, str]:
        task = self.load_task()
        return {task.metric: task.metric_direction, "n_params": "minimize", "latency_ms": "minimize"}

    def metric_names(self) -> list[str]:
        """Every metric a complete result of this evaluator holds (objectives are checked against it
        before a run starts); keep it in step with ``_evaluate`` and ``_score``."""
        task = self.load_task()
        score = "accuracy" if task.problem == "classification" else "rmse"
        latency = ["latency_ms", "latency_iqr_ms"]
        if self.latency.large_batch:
            latency += [f"latency_b{self.latency.large_batch}_ms", f"latency_b{self.latency.large_batch}_iqr_ms"]
        return ["n_params", "flops", "memory_mb", *latency, "train_time_s", "epochs_trained",
                f"val_{score}", f"test_{score}"]

    def evaluate(self, genome: Genome, fidelity: float | None = None, checkpoint: bytes | None = None) -> EvalResult:
        """Measure, check constraints, train to ``fidelity`` epochs (from ``checkpoint`` if given) and score.

        The result carries the per-epoch learning curve of this segment and, when the trial can still be
        trained further (below the recipe's epochs, the run's maximum), a checkpoint to continue from.
        Any failure becomes a ``failed`` result with its reason and the metrics measured so far.
        """
        metrics: dict[str, float] = {}
        info: dict[str, Any] = {}
        try:
            # One seed for initialization, dropout and shuffling; the caller's RNG state is restored.
            trainer = self.for_genome(genome, info)
            with torch_threads(self.threads), torch.random.fork_rng(devices=[]):
                torch.manual_seed(stable_seed(self.seed, genome.arch_id))
                return trainer._evaluate(genome, fidelity, checkpoint, metrics, info)
        except Diverged as exc:
            return EvalResult.failed(f"diverged: {exc}", metrics, **info)
        except OverTime as exc:
            return EvalResult.failed(str(exc), metrics, **info)
        except MemoryError:
            return EvalResult.failed("out of memory while training", metrics, **info)
        except Exception as exc:  # a bad candidate must not stop the search
            return EvalResult.crashed(exc, metrics, **info)

    def for_genome(self, genome: Genome, info: dict[str, Any]) -> TrainingEvaluator:
        """This evaluator with the recipe ``genome``'s recipe decisions resolve to (recorded in ``info``)."""
        recipe = self.recipe.with_overrides(genome.meta.get("recipe"))
        info["recipe"] = recipe.to_dict()
        if recipe == self.recipe:
            return self
        trainer = copy.copy(self)
        trainer.recipe = recipe
        return trainer

    def _evaluate(self, genome: Genome, fidelity: float | None, checkpoint: bytes | None,
                  metrics: dict[str, float], info: dict[str, Any]) -> EvalResult:
        task = self.load_task()
        seed = stable_seed(self.seed, genome.arch_id)
        device = resolve_device(self.recipe.device)
        info.update(describe_device(device))
        model = build_model(genome, task.data_spec, dropout=self.recipe.dropout).to(device)
        x_train, y_train = _tensors(task, task.x_train, task.y_train, device)
        saved = decode_checkpoint(checkpoint) if checkpoint is not None else None
        if saved is None:
            fit_grids(model, x_train)  # a restored model's grids come back with its state dict
            metrics["n_params"] = count_parameters(model)
            metrics["flops"] = count_flops(model, x_train[:1])
            batch = slice(0, len(x_train) if self.recipe.full_batch else min(self.recipe.batch_size, len(x_train)))
            metrics["memory_mb"] = training_memory_mb(model, x_train[batch],
                                                      lambda out: _loss(out, y_train[batch], task))
            metrics.update(measure_latency(model, x_train[:1], self.latency))
            violations = self.constraints.violations(metrics)
            if violations:
                return EvalResult(REJECTED, metrics, "violates " + "; ".join(violations), info)
        else:
            metrics.update(saved.loop.measured)  # measured before the first segment; not measured again

        trained = model
        if self.recipe.hot:
            trained = self._hot(model, x_train[:min(self.recipe.batch_size, len(x_train))], info)
        run = _TrainingRun(self.recipe, trained, task, torch.Generator().manual_seed(seed), saved)
        run.loop.measured = dict(metrics) if saved is None else run.loop.measured
        curve = run.train_to(fidelity, self._epoch_end)
        metrics["train_time_s"] = run.loop.train_time_s
        metrics["epochs_trained"] = run.epochs_trained()
        info.update(best_epoch=run.loop.best_epoch or None, stopped_early=run.loop.stopped_early,
                    **optimizer_summary(run.optimizer))
        next_checkpoint = run.checkpoint() if run.can_continue() else None
        run.keep_best()
        metrics.update(self._score(trained, task, "val", task.x_val, task.y_val))
        metrics.update(self._score(trained, task, "test", task.x_test, task.y_test))
        return EvalResult(COMPLETE, metrics, info=info, weights=weights_to_bytes(model), curve=curve,
                          checkpoint=next_checkpoint)

    def _epoch_end(self, model, task: Task) -> dict[str, float]:
        """The validation metric after an epoch (a learning-curve point, and what early stopping reads)."""
        return self._score(model, task, "val", task.x_val, task.y_val)

    def _hot(self, model, batch: torch.Tensor, info: dict[str, Any]):
        """``model`` with its fused blocks switched in place (``training.hot``); the decision goes to info.

        Fused wherever a fused implementation runs, whatever the timing, and never compiled: both choices
        would otherwise depend on the machine's load, and with them the trained weights (same seed, same
        result). :func:`archsearch.kernels.make_hot` offers the timed and compiled choices outside runs.
        """
        from archsearch.kernels.hot import make_hot

        hot = make_hot(model, batch, inplace=True, compile="never", by_timing=False)
        report: Any = hot.hot_report
        info["hot"] = report.summary()
        return hot

    def _score(self, model, task: Task, split: str, x_np: np.ndarray, y_np: np.ndarray) -> dict[str, float]:
        x, y = _tensors(task, x_np, y_np, next(model.parameters(), torch.empty(0)).device)
        model.eval()
        with torch.inference_mode():
            out = torch.cat([model(x[i:i + self.recipe.eval_batch_size])
                             for i in range(0, len(x), self.recipe.eval_batch_size)])
        model.train()
        if not torch.isfinite(out).all():
            raise Diverged(f"the model outputs non-finite values on the {split} split")
        if task.problem == "classification":
            return {f"{split}_accuracy": (out.argmax(1) == y).float().mean().item()}
        rmse = torch.sqrt(F.mse_loss(out.squeeze(1), y)).item() * task.y_std
        return {f"{split}_rmse": rmse}

    def describe(self) -> dict[str, Any]:
        return {"recipe": asdict(self.recipe), "latency": asdict(self.latency), "seed": self.seed,
                "constraints": self.constraints.to_dict()}


class _TrainingRun:
    """One candidate's mini-batch training, in segments that continue each other exactly.

    Steps are counted against the schedule's horizon, the recipe's epochs (the run's maximum
    fidelity) or a larger requested fidelity, never against the segment's own end, so training to 3
    epochs and continuing to 9 takes the same steps at the same learning rates as 9 straight.
    """

    def __init__(self, recipe: TrainingRecipe, model, task: Task, shuffle: torch.Generator,
                 saved: Checkpoint | None) -> None:
        self.recipe, self.model, self.task, self.shuffle = recipe, model, task, shuffle
        self.x, self.y = _tensors(task, task.x_train, task.y_train, next(model.parameters(), torch.empty(0)).device)
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
        recipe, loop, model = self.recipe, self.loop, self.model
        target = self._steps(fidelity)
        horizon = max(self.horizon, target)
        patience = recipe.early_stopping_patience
        curve: list[dict[str, float]] = []
        start = time.perf_counter()
        model.train()
        while loop.step < target and not loop.stopped_early:
            if loop.position == 0 or loop.order is None:
                loop.order = torch.randperm(self.n, generator=self.shuffle)
            for group in self.optimizer.param_groups:
                group["lr"] = recipe.lr * lr_factor(loop.step, horizon, recipe)
            idx = loop.order[loop.position:loop.position + self.batch].to(self.x.device)
            loss = take_step(self.optimizer, partial(_batch_loss, model, self.x[idx], self.y[idx], self.task))
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

    def _end_epoch(self, epoch_end, patience: int | None) -> dict[str, float]:
        loop = self.loop
        loop.epoch += 1
        point = {"epoch": float(loop.epoch), "train_loss": loop.loss_sum / max(1, loop.batches),
                 **epoch_end(self.model, self.task)}
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

    def checkpoint(self) -> bytes:
        return encode_checkpoint(self.model, self.optimizer, self.loop, self.shuffle, self.best)

    def keep_best(self) -> None:
        """Early stopping keeps the best epoch's weights (after the checkpoint kept the current ones)."""
        if self.best is not None:
            self.model.load_state_dict(self.best)


def weights_to_bytes(model: torch.nn.Module) -> bytes:
    """The model's state dict in safetensors format (no pickle, so a run directory never runs code)."""
    from safetensors.torch import save

    return save({name: tensor.detach().cpu().contiguous() for name, tensor in model.state_dict().items()},
                metadata={"archsearch.schema_version": str(RUN_SCHEMA_VERSION)})


def _tensors(task: Task, x: np.ndarray, y: np.ndarray,
             device: torch.device | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    dtype = np.int64 if task.input_kind == "tokens" else np.float32
    xt = torch.from_numpy(np.ascontiguousarray(x, dtype=dtype))
    if task.problem == "classification":
        yt = torch.from_numpy(y.astype(np.int64))
    else:
        yt = torch.from_numpy(((y - task.y_mean) / task.y_std).astype(np.float32))
    return (xt, yt) if device is None or device.type == "cpu" else (xt.to(device), yt.to(device))


def _batch_loss(model, x: torch.Tensor, y: torch.Tensor, task: Task) -> torch.Tensor:
    """The training loss of one batch, with the auxiliary losses blocks add (MoE load balancing)."""
    loss = _loss(model(x), y, task)
    aux = model.auxiliary_loss()
    return loss if aux is None else loss + aux


def _loss(out: torch.Tensor, y: torch.Tensor, task: Task) -> torch.Tensor:
    if task.problem == "classification":
        return F.cross_entropy(out, y)
    return F.mse_loss(out.squeeze(1), y)
