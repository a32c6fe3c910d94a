"""The built-in evaluator: build the genome's network, train it for real, measure it.

Training uses fused Adam, shuffled mini-batches from a seeded generator and a fidelity in epochs.
Initialization and shuffling are seeded from the run seed and the architecture id, so the same
architecture trains identically whichever worker gets it and in whatever order.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from archsearch.builder import build_model, count_parameters
from archsearch.evaluation.latency import LatencyProtocol, measure_latency, torch_threads
from archsearch.genome import Genome
from archsearch.tasks import Task, load_task
from archsearch.trial import COMPLETE, EvalResult


class Diverged(RuntimeError):
    """Training produced a non-finite loss."""


@dataclass(frozen=True)
class TrainingRecipe:
    """How candidates are trained; recorded in the run's config."""

    epochs: float = 10
    batch_size: int = 64
    lr: float = 3e-3
    weight_decay: float = 0.0
    eval_batch_size: int = 1024


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
        recipe: the training recipe; ``Candidate.fidelity`` overrides ``recipe.epochs``.
        latency: the latency protocol.
        seed: run seed; combined with each architecture's id for its initialization.
        threads: torch threads used for training (one per worker keeps cores from thrashing).
    """

    def __init__(
        self,
        task: Task | TaskRef,
        recipe: TrainingRecipe | None = None,
        latency: LatencyProtocol | None = None,
        seed: int = 0,
        threads: int = 1,
    ) -> None:
        self.task = task
        self.recipe = recipe or TrainingRecipe()
        self.latency = latency or LatencyProtocol()
        self.seed = seed
        self.threads = threads
        self._loaded: Task | None = None

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_loaded"] = None  # ship the reference, not the arrays, when the task is built-in
        return state

    def load_task(self) -> Task:
        if self._loaded is None:
            self._loaded = self.task.load() if isinstance(self.task, TaskRef) else self.task
        return self._loaded

    def objectives_default(self) -> dict[str, str]:
        task = self.load_task()
        return {task.metric: task.metric_direction, "n_params": "minimize", "latency_ms": "minimize"}

    def evaluate(self, genome: Genome, fidelity: float | None = None) -> EvalResult:
        """Train ``genome`` for ``fidelity`` epochs and measure it; failures become ``failed`` results."""
        epochs = self.recipe.epochs if fidelity is None else fidelity
        metrics: dict[str, float] = {}
        try:
            with torch_threads(self.threads):
                self._train_and_measure(genome, epochs, metrics)
        except Diverged as exc:
            return EvalResult.failed(f"diverged: {exc}", metrics)
        except MemoryError:
            return EvalResult.failed("out of memory while training", metrics)
        except Exception as exc:  # a bad candidate must not stop the search
            return EvalResult.failed(f"{type(exc).__name__}: {exc}".splitlines()[0][:500], metrics)
        return EvalResult(COMPLETE, metrics)

    def _train_and_measure(self, genome: Genome, epochs: float, metrics: dict[str, float]) -> None:
        task = self.load_task()
        seed = stable_seed(self.seed, genome.arch_id)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = build_model(genome, task.data_spec)
        metrics["n_params"] = count_parameters(model)
        x_train, y_train = _tensors(task, task.x_train, task.y_train)
        start = time.perf_counter()
        self._train(model, x_train, y_train, epochs, task, torch.Generator().manual_seed(seed))
        metrics["train_time_s"] = time.perf_counter() - start
        metrics.update(self._score(model, task, "val", task.x_val, task.y_val))
        metrics.update(self._score(model, task, "test", task.x_test, task.y_test))
        metrics.update(measure_latency(model, x_train[:1], self.latency))

    def _train(self, model, x, y, epochs: float, task: Task, generator: torch.Generator) -> None:
        recipe = self.recipe
        optimizer = torch.optim.Adam(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay,
                                     fused=True)
        n = len(x)
        batch = min(recipe.batch_size, n)
        steps_per_epoch = math.ceil(n / batch)
        total_steps = max(1, round(epochs * steps_per_epoch))
        model.train()
        step = 0
        while step < total_steps:
            order = torch.randperm(n, generator=generator)
            for begin in range(0, n, batch):
                idx = order[begin:begin + batch]
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
                if step >= total_steps:
                    break

    def _score(self, model, task: Task, split: str, x_np: np.ndarray, y_np: np.ndarray) -> dict[str, float]:
        x, y = _tensors(task, x_np, y_np)
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
        return {"recipe": asdict(self.recipe), "latency": asdict(self.latency), "seed": self.seed}


def _tensors(task: Task, x: np.ndarray, y: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    dtype = np.int64 if task.input_kind == "tokens" else np.float32
    xt = torch.from_numpy(np.ascontiguousarray(x, dtype=dtype))
    if task.problem == "classification":
        return xt, torch.from_numpy(y.astype(np.int64))
    return xt, torch.from_numpy(((y - task.y_mean) / task.y_std).astype(np.float32))


def _loss(out: torch.Tensor, y: torch.Tensor, task: Task) -> torch.Tensor:
    if task.problem == "classification":
        return F.cross_entropy(out, y)
    return F.mse_loss(out.squeeze(1), y)
