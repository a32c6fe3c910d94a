"""The training recipe: optimizer, schedule, batch size, fidelity, early stopping, time limit.

One frozen dataclass, recorded in the run's config, so a candidate can be re-trained exactly later. A
space's ``recipe:`` section (:mod:`archsearch.spaces.recipe`) overrides some fields per trial; the
resolved recipe of every trial is recorded in its result.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from archsearch.errors import ConfigError

OPTIMIZERS = ("adam", "adamw", "sgd", "lbfgs")
FULL_BATCH_OPTIMIZERS = ("lbfgs",)  # a line search needs the same loss at every evaluation of one step
SCHEDULES = ("constant", "cosine")
DEFAULT_LR = {"lbfgs": 1.0}  # the line search's first trial step; other optimizers use the field default


@dataclass(frozen=True)
class TrainingRecipe:
    """How every candidate is trained.

    Attributes:
        epochs: passes over the training split (fractions allowed); the default fidelity.
        steps: if set, fidelity is counted in optimizer steps instead of epochs.
        batch_size: mini-batch size (ignored by ``lbfgs``, which always takes the whole training split).
        optimizer: ``adam`` or ``adamw`` (both fused), ``sgd`` (Nesterov momentum 0.9) or ``lbfgs``
            (full batch, strong Wolfe line search, as the KAN paper fits functions); with ``lbfgs`` an
            epoch is one optimizer step of up to ``lbfgs_max_iter`` iterations.
        lr: peak learning rate (``lbfgs``: the initial step length of the line search; 1 is usual).
        weight_decay: L2 (adam, sgd; added to the loss for lbfgs) or decoupled (adamw) weight decay.
        schedule: ``constant`` or ``cosine`` (decay to zero over the run), after ``warmup_steps`` of
            linear warm-up.
        early_stopping_patience: stop after this many epochs without a better validation metric and
            keep the best epoch's weights; ``None`` trains the full fidelity.
        time_limit_s: training wall-clock limit per candidate; past it the candidate is ``failed``.
        eval_batch_size: batch size for validation and test passes.
        dropout: dropout rate inside the blocks that have dropout (MLP, GLU); 0 for none.
        lbfgs_history: ``lbfgs`` only: curvature pairs kept (history size).
        lbfgs_max_iter: ``lbfgs`` only: iterations (each with its line search) per optimizer step.
        device: ``auto`` (CUDA where this worker sees a GPU, else CPU), ``cpu`` or ``cuda[:N]``; see
            :mod:`archsearch.devices`.
        seeds: train each candidate this many times, from other initializations and shuffles, and score
            it by their mean (``val_accuracy``), with the spread beside it (``val_accuracy_std``); the
            first seed is the one a single-seed run uses. Seeds of small MLP-like candidates train
            stacked as one batched model (:mod:`archsearch.kernels.stacking`). ``time_limit_s``
            applies to each seed.
        stack: train what can be stacked (a trial's seeds, learning-rate siblings) as one batched model;
            ``False`` trains them one after another (a baseline, or to rule stacking out).
        hot: train each candidate with the fused implementations of its blocks where they pay
            (:func:`archsearch.kernels.hot.fusion_pays`); the decision is recorded in the trial's ``hot``
            column. On by default: the same function, faster (kan_toy searches 1.3-1.5x); ``False`` trains
            the eager reference blocks, whose float rounding fused kernels do not reproduce bit for bit.
            Cheap metrics (latency, FLOPs, memory) are measured on the eager reference either way.
    """

    epochs: float = 10
    steps: int | None = None
    batch_size: int = 64
    optimizer: str = "adam"
    lr: float = 3e-3
    weight_decay: float = 0.0
    schedule: str = "constant"
    warmup_steps: int = 0
    early_stopping_patience: int | None = None
    time_limit_s: float | None = None
    eval_batch_size: int = 1024
    dropout: float = 0.0
    lbfgs_history: int = 10
    lbfgs_max_iter: int = 20
    device: str = "auto"
    seeds: int = 1
    hot: bool = True
    stack: bool = True

    def __post_init__(self) -> None:
        check_types(self, "training")
        problems = []
        if self.optimizer not in OPTIMIZERS:
            problems.append(f"optimizer {self.optimizer!r} is not one of {', '.join(OPTIMIZERS)}")
        if self.schedule not in SCHEDULES:
            problems.append(f"schedule {self.schedule!r} is not one of {', '.join(SCHEDULES)}")
        if not (self.epochs > 0 and math.isfinite(self.epochs)):
            problems.append(f"epochs must be positive, got {self.epochs}")
        if self.steps is not None and self.steps < 1:
            problems.append(f"steps must be at least 1, got {self.steps}")
        if self.batch_size < 1 or self.eval_batch_size < 1:
            problems.append("batch sizes must be at least 1")
        if not self.lr > 0:
            problems.append(f"lr must be positive, got {self.lr}")
        if self.weight_decay < 0:
            problems.append(f"weight_decay must be >= 0, got {self.weight_decay}")
        if self.warmup_steps < 0:
            problems.append(f"warmup_steps must be >= 0, got {self.warmup_steps}")
        if not 0 <= self.dropout < 1:
            problems.append(f"dropout must be in [0, 1), got {self.dropout}")
        if self.seeds < 1:
            problems.append(f"seeds must be at least 1, got {self.seeds}")
        if self.lbfgs_history < 1 or self.lbfgs_max_iter < 1:
            problems.append("lbfgs_history and lbfgs_max_iter must be at least 1")
        from archsearch.devices import device_problem

        device_error = device_problem(self.device)
        if device_error:
            problems.append(device_error)
        for name in ("hot", "stack"):
            if not isinstance(getattr(self, name), bool):
                problems.append(f"{name} must be true or false, got {getattr(self, name)!r}")
        if self.early_stopping_patience is not None and self.early_stopping_patience < 1:
            problems.append("early_stopping_patience must be at least 1 (or null for none)")
        if problems:
            raise ConfigError("training recipe: " + "; ".join(problems))

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> TrainingRecipe:
        """From config values, ignoring ``None`` (which means: keep the default)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise ConfigError(f"training has no option(s) {', '.join(unknown)}; its options are: "
                              f"{', '.join(sorted(known))}")
        given = {k: v for k, v in options.items() if v is not None}
        if isinstance(given.get("optimizer"), str) and "lr" not in given and given["optimizer"] in DEFAULT_LR:
            given["lr"] = DEFAULT_LR[given["optimizer"]]
        return cls(**given)

    @property
    def full_batch(self) -> bool:
        return self.optimizer in FULL_BATCH_OPTIMIZERS

    def with_overrides(self, overrides: Mapping[str, Any] | None) -> TrainingRecipe:
        """This recipe with a trial's recipe decisions applied (validated like the run's own)."""
        if not overrides:
            return self
        unknown = sorted(set(overrides) - {f.name for f in fields(self)})
        if unknown:
            raise ConfigError(f"recipe decisions name unknown training option(s) {', '.join(unknown)}")
        if "seeds" in overrides and overrides["seeds"] != self.seeds:
            raise ConfigError("recipe decisions cannot change seeds: it is the run's training.seeds, the same "
                              "for every trial so that their metrics compare")
        changes = dict(overrides)
        if changes.get("optimizer", self.optimizer) != self.optimizer and "lr" not in changes:
            # an lr chosen for the run's optimizer means nothing to another one (L-BFGS steps ~1, Adam ~1e-3)
            changes["lr"] = DEFAULT_LR.get(str(changes["optimizer"]), TrainingRecipe.lr)
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_NUMBER = (int, float)
_EXPECTED: dict[str, tuple[type, ...]] = {
    "epochs": _NUMBER, "steps": (int, type(None)), "batch_size": (int,), "optimizer": (str,), "lr": _NUMBER,
    "weight_decay": _NUMBER, "schedule": (str,), "warmup_steps": (int,),
    "early_stopping_patience": (int, type(None)), "time_limit_s": (*_NUMBER, type(None)), "eval_batch_size": (int,),
    "dropout": _NUMBER, "lbfgs_history": (int,), "lbfgs_max_iter": (int,), "device": (str,), "seeds": (int,),
    "hot": (bool,),
    # latency protocol
    "large_batch": (int, type(None)), "warmup": (int,), "repeats": (int,), "threads": (int,),
}


def check_types(obj: Any, section: str) -> None:
    """Refuse values of the wrong type (``training.epochs=mlp``) with the field and the expected type."""
    for f in fields(obj):
        value = getattr(obj, f.name)
        expected = _EXPECTED.get(f.name)
        if expected and ((isinstance(value, bool) and bool not in expected) or not isinstance(value, expected)):
            names = " or ".join("null" if t is type(None) else "a number" if t is float else t.__name__
                                for t in expected if not (t is int and float in expected))
            raise ConfigError(f"{section}.{f.name} must be {names}, got {value!r}")


def lr_factor(step: int, total_steps: int, recipe: TrainingRecipe) -> float:
    """Multiplier of the peak learning rate at ``step`` (0-based)."""
    if step < recipe.warmup_steps:
        return (step + 1) / recipe.warmup_steps
    if recipe.schedule == "constant":
        return 1.0
    progress = (step - recipe.warmup_steps) / max(1, total_steps - recipe.warmup_steps)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def make_optimizer(params: Any, recipe: TrainingRecipe) -> Any:
    """Kept here for old imports; the optimizers live in :mod:`archsearch.evaluation.optimizers`."""
    from archsearch.evaluation.optimizers import make_optimizer as make

    return make(params, recipe)
