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
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from archsearch.builder import build_model, count_parameters
from archsearch.evaluation.constraints import Constraints
from archsearch.evaluation.device import describe_device, resolve_device
from archsearch.evaluation.latency import LatencyProtocol, measure_latency, torch_threads
from archsearch.evaluation.measure import count_flops, training_memory_mb
from archsearch.evaluation.recipe import TrainingRecipe, lr_factor, make_optimizer
from archsearch.genome import Genome
from archsearch.tasks import Task, load_task
from archsearch.trial import COMPLETE, REJECTED, EvalResult

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


class TrainingEvaluator:
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
        """Pay a worker's one-time costs before its first candidate: torch's first optimizer and FLOP
        counter import its compiler stack (seconds on a small CPU), which must not count against a
        candidate's time limit or its ``train_time_s``."""
        with torch_threads(self.threads):
            model = torch.nn.Linear(2, 2)
            make_optimizer(model.parameters(), self.recipe)
            count_flops(model, torch.zeros(1, 2))

    def use_loaded(self, task: Task) -> None:
        """Reuse a task the caller already loaded (the driver validates data before a run starts)."""
        self._loaded = task

    def objectives_default(self) -> dict[str, str]:
        task = self.load_task()
        return {task.metric: task.metric_direction, "n_params": "minimize", "latency_ms": "minimize"}

    def evaluate(self, genome: Genome, fidelity: float | None = None) -> EvalResult:
        """Measure, check constraints, train for ``fidelity`` and score ``genome``.

        Any failure becomes a ``failed`` result with its reason and the metrics measured so far.
        """
        metrics: dict[str, float] = {}
        info: dict[str, Any] = {}
        try:
            # One seed for initialization, dropout and shuffling; the caller's RNG state is restored.
            with torch_threads(self.threads), torch.random.fork_rng(devices=[]):
                torch.manual_seed(stable_seed(self.seed, genome.arch_id))
                return self._evaluate(genome, fidelity, metrics, info)
        except Diverged as exc:
            return EvalResult.failed(f"diverged: {exc}", metrics, **info)
        except OverTime as exc:
            return EvalResult.failed(str(exc), metrics, **info)
        except MemoryError:
            return EvalResult.failed("out of memory while training", metrics, **info)
        except Exception as exc:  # a bad candidate must not stop the search
            return EvalResult.failed(f"{type(exc).__name__}: {exc}".splitlines()[0][:500], metrics, **info)

    def _evaluate(self, genome: Genome, fidelity: float | None, metrics: dict[str, float],
                  info: dict[str, Any]) -> EvalResult:
        task = self.load_task()
        seed = stable_seed(self.seed, genome.arch_id)
        device = resolve_device(self.recipe.device)
        info.update(describe_device(device))
        model = build_model(genome, task.data_spec).to(device)
        x_train, y_train = _tensors(task, task.x_train, task.y_train, device)
        metrics["n_params"] = count_parameters(model)
        metrics["flops"] = count_flops(model, x_train[:1])
        batch = slice(0, min(self.recipe.batch_size, len(x_train)))
        metrics["memory_mb"] = training_memory_mb(model, x_train[batch], lambda out: _loss(out, y_train[batch], task))
        metrics.update(measure_latency(model, x_train[:1], self.latency))
        violations = self.constraints.violations(metrics)
        if violations:
            return EvalResult(REJECTED, metrics, "violates " + "; ".join(violations))

        start = time.perf_counter()
        trained = self._hot(model, x_train[batch], info) if self.recipe.hot else model
        info.update(self._train(trained, task, fidelity, torch.Generator().manual_seed(seed)))
        metrics["train_time_s"] = time.perf_counter() - start
        metrics["epochs_trained"] = info.pop("epochs_trained")
        metrics.update(self._score(trained, task, "val", task.x_val, task.y_val))
        metrics.update(self._score(trained, task, "test", task.x_test, task.y_test))
        return EvalResult(COMPLETE, metrics, info=info, weights=weights_to_bytes(model))

    def _hot(self, model, batch: torch.Tensor, info: dict[str, Any]):
        """``model`` with its fused blocks switched in place (``training.hot``); the decision goes to info.

        Fused wherever a fused implementation runs, whatever the timing, and never compiled: both choices
        would otherwise depend on the machine's load, and with them the trained weights (same seed, same
        result). :func:`archsearch.kernels.make_hot` offers the timed and compiled choices outside runs.
        """
        from archsearch.kernels.hot import make_hot

        hot = make_hot(model, batch, inplace=True, compile="never", by_timing=False)
        info["hot"] = hot.hot_report.summary()
        return hot

    def _train(self, model, task: Task, fidelity: float | None, generator: torch.Generator) -> dict[str, Any]:
        """Mini-batch training to the fidelity; returns what happened (epochs, best epoch, stop reason)."""
        recipe = self.recipe
        device = next(model.parameters(), torch.empty(0)).device
        x, y = _tensors(task, task.x_train, task.y_train, device)
        n = len(x)
        batch = min(recipe.batch_size, n)
        steps_per_epoch = math.ceil(n / batch)
        if recipe.steps is not None:
            total_steps = int(fidelity) if fidelity is not None else recipe.steps
        else:
            total_steps = round((recipe.epochs if fidelity is None else fidelity) * steps_per_epoch)
        total_steps = max(1, total_steps)
        optimizer = make_optimizer(model.parameters(), recipe)
        patience = recipe.early_stopping_patience
        best_score, best_state, best_epoch, stale = -math.inf, None, 0, 0
        start = time.perf_counter()
        model.train()
        step = epoch = 0
        while step < total_steps:
            order = torch.randperm(n, generator=generator)
            for begin in range(0, n, batch):
                for group in optimizer.param_groups:
                    group["lr"] = recipe.lr * lr_factor(step, total_steps, recipe)
                idx = order[begin:begin + batch].to(device)
                loss = _loss(model(x[idx]), y[idx], task)
                aux = model.auxiliary_loss()
                if aux is not None:
                    loss = loss + aux
                if not torch.isfinite(loss):
                    raise Diverged(f"loss became {loss.item()} at step {step + 1} of {total_steps}")
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                step += 1
                if recipe.time_limit_s is not None and time.perf_counter() - start > recipe.time_limit_s:
                    raise OverTime(f"training time limit of {recipe.time_limit_s:g} s exceeded at step "
                                   f"{step} of {total_steps}")
                if step >= total_steps:
                    break
            epoch += 1
            if patience is not None:
                score = self._selection_score(model, task)
                if score > best_score:
                    best_score, best_epoch, stale = score, epoch, 0
                    best_state = copy.deepcopy(model.state_dict())
                else:
                    stale += 1
                    if stale >= patience:
                        break
        if best_state is not None:
            model.load_state_dict(best_state)
        trained = step / steps_per_epoch
        return {"epochs_trained": trained, "best_epoch": best_epoch or None,
                "stopped_early": patience is not None and step < total_steps}

    def _selection_score(self, model, task: Task) -> float:
        """The validation metric as higher-is-better, for early stopping."""
        metric = self._score(model, task, "val", task.x_val, task.y_val)[task.metric]
        return metric if task.metric_direction == "maximize" else -metric

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


def weights_to_bytes(model: torch.nn.Module) -> bytes:
    """The model's state dict in safetensors format (no pickle, so a run directory never runs code)."""
    from safetensors.torch import save

    from archsearch.results.store import SCHEMA_VERSION

    return save({name: tensor.detach().cpu().contiguous() for name, tensor in model.state_dict().items()},
                metadata={"archsearch.schema_version": str(SCHEMA_VERSION)})


def _tensors(task: Task, x: np.ndarray, y: np.ndarray,
             device: torch.device | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    dtype = np.int64 if task.input_kind == "tokens" else np.float32
    xt = torch.from_numpy(np.ascontiguousarray(x, dtype=dtype))
    if task.problem == "classification":
        yt = torch.from_numpy(y.astype(np.int64))
    else:
        yt = torch.from_numpy(((y - task.y_mean) / task.y_std).astype(np.float32))
    return (xt, yt) if device is None or device.type == "cpu" else (xt.to(device), yt.to(device))


def _loss(out: torch.Tensor, y: torch.Tensor, task: Task) -> torch.Tensor:
    if task.problem == "classification":
        return F.cross_entropy(out, y)
    return F.mse_loss(out.squeeze(1), y)
