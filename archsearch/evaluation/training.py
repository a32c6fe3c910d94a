"""The built-in evaluator: build the genome's network, measure it, check constraints, train it, score it.

Cheap metrics come first, so a candidate that breaks a constraint is rejected before it costs training
time: the counted ones (parameters, FLOPs), then the measured ones (memory, latency), which are skipped
when the counts alone break a constraint. Initialization and shuffling are seeded from the run seed
and the architecture id, so the same architecture trains identically whichever worker gets it.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable, Collection
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from archsearch.builder import build_model, count_parameters, fit_grids, param_count
from archsearch.devices import describe_device, resolve_device
from archsearch.evaluation.base import Evaluator
from archsearch.evaluation.checkpoint import Checkpoint
from archsearch.evaluation.checkpoint import pack as pack_checkpoints
from archsearch.evaluation.checkpoint import unpack as unpack_checkpoints
from archsearch.evaluation.constraints import Constraints
from archsearch.evaluation.latency import LatencyProtocol, measure_latency, torch_threads
from archsearch.evaluation.loop import (
    Diverged,
    OverTime,
    StackedRun,
    TrainingRun,
    mean_curve,
    stack_refusal,
    task_loss,
    tensors,
)
from archsearch.evaluation.measure import count_flops, training_memory_mb
from archsearch.evaluation.optimizers import make_optimizer, optimizer_summary
from archsearch.evaluation.recipe import TrainingRecipe
from archsearch.genome import Genome
from archsearch.tasks import Task, load_task
from archsearch.trial import COMPLETE, REJECTED, EvalResult
from archsearch.versions import RUN_SCHEMA_VERSION

COUNTED = ("n_params", "flops")  # metrics counted on the built model, before training

__all__ = ["Diverged", "TaskRef", "TrainingEvaluator", "TrainingRecipe", "stable_seed"]


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

    def measure(self, architecture: Any, metrics: Collection[str] = COUNTED) -> dict[str, float]:
        """Of ``n_params`` and ``flops``, those in ``metrics``, of the built model on the CPU with no
        training: what ``evaluate`` reports for them (latency and memory are left out: they are measured,
        not counted). A run's strategy asks only for those its objectives and constraints name
        (:meth:`measure_for`): the ``model`` strategy measures dozens of candidates a proposal, counting
        FLOPs runs the model under torch's dispatch-level counter, and ``n_params`` alone comes from its
        closed form (:func:`~archsearch.builder.param_count`) without building the model."""
        genome = architecture
        task = self.load_task()
        if "flops" not in metrics and (closed := param_count(genome, task.data_spec)) is not None:
            return {"n_params": float(closed)} if "n_params" in metrics else {}  # the count, without building
        with torch_threads(self.threads), torch.random.fork_rng(devices=[]):
            model = build_model(genome, task.data_spec, dropout=self.recipe.dropout)
            out = {"n_params": float(count_parameters(model))} if "n_params" in metrics else {}
            if "flops" in metrics:
                example, _ = tensors(task, task.x_train[:1], task.y_train[:1])
                out["flops"] = count_flops(model, example)
            return out

    def measure_for(self, needed: Collection[str]) -> Callable[[Any], dict[str, float]]:
        """:meth:`measure` of the counted metrics in ``needed`` (objectives, constrained metrics), and
        always ``n_params``, the cheapest: what a strategy is given as ``measure``."""
        return functools.partial(self.measure, metrics=tuple(m for m in COUNTED if m in needed or m == "n_params"))

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
        scores = [f"val_{score}", f"test_{score}"]
        if self.recipe.seeds > 1:
            scores += [f"val_{score}_std", f"test_{score}_std"]
        return ["n_params", "flops", "memory_mb", *latency, "train_time_s", "epochs_trained", *scores]

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

    def group_key(self, architecture: Any) -> str | None:
        """Trials of one network whose recipes differ only in learning rate train as one stacked group
        (:mod:`archsearch.evaluation.group`); this is what they share."""
        from archsearch.evaluation.group import group_key

        return group_key(self, architecture)

    def evaluate_group(self, architectures: list[Any], fidelity: float | None,
                       checkpoints: list[bytes | None]) -> list[EvalResult]:
        """Trials of one :meth:`group_key` trained as one stacked model where they can be; each result is
        :meth:`evaluate`'s alone (see :mod:`archsearch.evaluation.group` for the two things shared)."""
        from archsearch.evaluation.group import evaluate_group

        return evaluate_group(self, architectures, fidelity, checkpoints)

    def for_genome(self, genome: Genome, info: dict[str, Any]) -> TrainingEvaluator:
        """This evaluator with the recipe ``genome``'s recipe decisions resolve to (recorded in ``info``)."""
        recipe = self.recipe.with_overrides(genome.meta.get("recipe"))
        info["recipe"] = recipe.to_dict()
        if recipe == self.recipe:
            return self
        trainer = copy.copy(self)
        trainer.recipe = recipe
        return trainer

    def seeds_of(self, genome: Genome) -> list[int]:
        """The seeds ``genome`` trains with: the first is the one a single-seed run uses."""
        first = stable_seed(self.seed, genome.arch_id)
        return [first, *(stable_seed(self.seed, genome.arch_id, j) for j in range(1, self.recipe.seeds))]

    def _evaluate(self, genome: Genome, fidelity: float | None, checkpoint: bytes | None,
                  metrics: dict[str, float], info: dict[str, Any]) -> EvalResult:
        task = self.load_task()
        seeds = self.seeds_of(genome)
        device = resolve_device(self.recipe.device)
        info.update(describe_device(device))
        model = build_model(genome, task.data_spec, dropout=self.recipe.dropout).to(device)
        x_train, y_train = tensors(task, task.x_train, task.y_train, device)
        saved: list[Checkpoint | None] = [None] * len(seeds)
        if checkpoint is not None:
            saved = list(unpack_checkpoints(checkpoint, len(seeds)))
        if saved[0] is None:
            fit_grids(model, x_train)  # a restored model's grids come back with its state dict
            rejected = self._measure_untrained(model, x_train, y_train, metrics, info)
            if rejected is not None:
                return rejected
        else:
            metrics.update(saved[0].loop.measured)  # measured before the first segment; not measured again

        runs, curves = self._train(genome, model, seeds, saved, fidelity, x_train, metrics, info)
        metrics["train_time_s"] = sum(run.loop.train_time_s for run in runs)
        metrics["epochs_trained"] = max(run.epochs_trained() for run in runs)
        info.update(best_epoch=runs[0].loop.best_epoch or None, stopped_early=runs[0].loop.stopped_early,
                    **optimizer_summary(runs[0].optimizer))
        can_continue = any(run.can_continue() for run in runs)
        next_checkpoint = pack_checkpoints([c for run in runs for c in run.checkpoints()]) if can_continue else None
        metrics.update(self._seed_scores([m for run in runs for m in run.trained_models()], task, info))
        return EvalResult(COMPLETE, metrics, info=info, weights=weights_to_bytes(model), curve=mean_curve(curves),
                          checkpoint=next_checkpoint)

    def _measure_untrained(self, model: torch.nn.Module, x_train: torch.Tensor, y_train: torch.Tensor,
                           metrics: dict[str, float], info: dict[str, Any]) -> EvalResult | None:
        """The cheap metrics, counted then measured, into ``metrics``; the rejection where they break a
        constraint (counted ones first: latency and memory would take longer than the verdict)."""
        task = self.load_task()
        metrics["n_params"] = count_parameters(model)
        metrics["flops"] = count_flops(model, x_train[:1])
        violations = self.constraints.violations(metrics)
        if not violations:
            batch = slice(0, len(x_train) if self.recipe.full_batch else min(self.recipe.batch_size, len(x_train)))
            metrics["memory_mb"] = training_memory_mb(model, x_train[batch],
                                                      lambda out: task_loss(out, y_train[batch], task))
            metrics.update(measure_latency(model, x_train[:1], self.latency))
            violations = self.constraints.violations(metrics)
        return EvalResult(REJECTED, metrics, "violates " + "; ".join(violations), info) if violations else None

    def _train(self, genome: Genome, model: torch.nn.Module, seeds: list[int], saved: list[Checkpoint | None],
               fidelity: float | None, x_train: torch.Tensor, metrics: dict[str, float],
               info: dict[str, Any]) -> tuple[list[TrainingRun], list[list[dict[str, float]]]]:
        """Train ``model`` (the first seed's) and the other seeds' models to ``fidelity``: stacked into one
        model where :func:`stack_refusal` allows, else one after another. Returns the runs and their curves."""
        task = self.load_task()
        shuffles = [torch.Generator().manual_seed(seed) for seed in seeds]
        refusal = "stacking is off" if not self.recipe.stack else stack_refusal(model, self.recipe, metrics.get("flops"),
                                                                                 x_train.device)
        if len(seeds) > 1:
            info.update(seeds=len(seeds), stacked=refusal is None, **({"not_stacked": refusal} if refusal else {}))
        if len(seeds) > 1 and refusal is None:
            models = [model, *(self._seed_model(genome, seed, x_train, ckpt is None)
                               for seed, ckpt in zip(seeds[1:], saved[1:], strict=True))]
            runs: list[TrainingRun] = [StackedRun(self.recipe, models, task, shuffles, saved)]
            if self.recipe.hot:  # stacking takes linear layers and norms alone, none of which has a fused kernel
                info["hot"] = "nothing to fuse; the seeds trained stacked"
            if saved[0] is None:
                runs[0].loop.measured = dict(metrics)
            return runs, [runs[0].train_to(fidelity, self._epoch_end)]
        runs, curves = [], []
        for j, (seed, shuffle, ckpt) in enumerate(zip(seeds, shuffles, saved, strict=True)):
            seed_model = model if j == 0 else self._seed_model(genome, seed, x_train, ckpt is None)
            if self.recipe.hot:
                seed_model = self._hot(seed_model, x_train if self.recipe.full_batch else x_train[:self.recipe.batch_size])
            run = TrainingRun(self.recipe, seed_model, task, shuffle, ckpt)
            if ckpt is None:
                run.loop.measured = dict(metrics)
            passes = _passes(run)
            try:
                curves.append(run.train_to(fidelity, self._epoch_end))
            except Diverged as exc:
                if len(seeds) == 1:
                    raise
                raise Diverged(f"seed {j + 1} of {len(seeds)}: {exc}") from None
            runs.append(run)
            if self.recipe.hot:
                _record_hot(seed_model.hot_report, _passes(run) - passes, info)
        return runs, curves

    def _seed_model(self, genome: Genome, seed: int, x_train: torch.Tensor, fresh: bool) -> torch.nn.Module:
        """Another seed's model of ``genome``, initialized from ``seed`` (its grids fitted unless restored)."""
        torch.manual_seed(seed)
        model = build_model(genome, self.load_task().data_spec, dropout=self.recipe.dropout).to(x_train.device)
        if fresh:
            fit_grids(model, x_train)
        return model

    def _seed_scores(self, models: list[torch.nn.Module], task: Task, info: dict[str, Any]) -> dict[str, float]:
        """Validation and test metrics: of the one model, or the seeds' mean with ``<metric>_std`` beside
        it (sample standard deviation) and every seed's value in ``info["per_seed"]``."""
        scores = [{**self._score(m, task, "val", task.x_val, task.y_val),
                   **self._score(m, task, "test", task.x_test, task.y_test)} for m in models]
        if len(scores) == 1:
            return scores[0]
        info["per_seed"] = {key: [score[key] for score in scores] for key in scores[0]}
        merged: dict[str, float] = {}
        for key, values in info["per_seed"].items():
            merged[key] = float(np.mean(values))
            merged[f"{key}_std"] = float(np.std(values, ddof=1))
        return merged

    def _epoch_end(self, model, task: Task) -> dict[str, float]:
        """The validation metric after an epoch (a learning-curve point, and what early stopping reads)."""
        return self._score(model, task, "val", task.x_val, task.y_val)

    def _hot(self, model, batch: torch.Tensor):
        """``model`` with its fused blocks switched in place (``training.hot``); the decision is in its
        ``hot_report``, timed on ``batch`` (what a training step sees).

        A fixed rule (:func:`archsearch.kernels.hot.fusion_pays`) picks the blocks to fuse, whatever the
        timing, and nothing is compiled: both choices would otherwise depend on the machine's load, and with
        them the trained weights (same seed, same result). :func:`archsearch.kernels.make_hot` offers the timed and compiled choices outside runs.
        """
        from archsearch.kernels.hot import make_hot

        return make_hot(model, batch, inplace=True, compile="never", by_timing=False)

    def _score(self, model, task: Task, split: str, x_np: np.ndarray, y_np: np.ndarray) -> dict[str, float]:
        x, y = tensors(task, x_np, y_np, next(model.parameters(), torch.empty(0)).device)
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


def _passes(run: TrainingRun) -> int:
    """Forward + backward passes a run has made: one per step, or every function evaluation of L-BFGS."""
    return int(optimizer_summary(run.optimizer).get("lbfgs_evaluations", run.loop.step))


def _record_hot(report: Any, passes: int, info: dict[str, Any]) -> None:
    """The hot decision in the trial's ``hot`` column, with the time it saved (summed over seeds): the
    timed eager-minus-fused step times these passes, an estimate since each pass was run one way only."""
    saved = info.get("hot_saved_s", 0.0)
    if report.kept_fused and report.eager_ms is not None and report.fused_ms is not None:
        saved += (report.eager_ms - report.fused_ms) * passes / 1e3
    info["hot_saved_s"] = saved
    info["hot"] = f"{report.summary()}; about {saved:.3g} s saved ({passes} passes per seed)"


def weights_to_bytes(model: torch.nn.Module) -> bytes:
    """The model's state dict in safetensors format (no pickle, so a run directory never runs code)."""
    from safetensors.torch import save

    return save({name: tensor.detach().cpu().contiguous() for name, tensor in model.state_dict().items()},
                metadata={"archsearch.schema_version": str(RUN_SCHEMA_VERSION)})
