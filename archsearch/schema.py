"""The typed schema of every configuration section: types, valid ranges and defaults in one place.

Each section is a dataclass whose fields say their type, default and valid range through
:func:`option`; :func:`validate` checks a composed config against them before anything is written,
with one-line errors that give the valid range (``executor.workers must be an integer >= 1 or null,
got 'abc'``). The YAML files under ``archsearch/conf/`` list the same keys so that Hydra's override
grammar accepts them; ``tests/test_schema.py`` keeps their values equal to the defaults here.

Adding a configuration key is one line in its section's dataclass, e.g. in :class:`Training`::

    device: str | None = option(None, choices=("cpu", "cuda", "auto"), doc="where candidates train")

plus the same key in the YAML (``training: device: null``). A new section is a dataclass here and one
entry in :data:`SECTIONS`. This module imports nothing heavy (no torch, no Hydra).
"""

from __future__ import annotations

import math
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import MISSING, dataclass, field, fields
from typing import Any

from archsearch.errors import ConfigError


def option(default: Any = None, *, ge: float | None = None, gt: float | None = None, le: float | None = None,
           lt: float | None = None, choices: Sequence[Any] | None = None, doc: str = "",
           factory: Callable[[], Any] | None = None) -> Any:
    """A schema field: its default, its valid range (``ge``/``gt``/``le``/``lt``) or ``choices``, a doc line."""
    meta = {"ge": ge, "gt": gt, "le": le, "lt": lt, "choices": tuple(choices) if choices else None, "doc": doc}
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


# -- the sections ---------------------------------------------------------------------------------


@dataclass
class Root:
    """Top-level keys (``budget``, ``seed``, ...); sections are checked by their own schema."""

    budget: int | float | str = option(20, doc="candidates to evaluate (>= 1), or a duration such as 10m")
    seed: int = option(0, ge=0, doc="seeds the split, the strategy and every initialization")
    run_dir: str | None = option(None, doc="where the run is written")
    objectives: Any = option(None, doc="{metric: maximize|minimize}")
    keep_weights: str = option("front", choices=("front", "all", "none"), doc="trained weights kept")
    allow_targets: list[str] = option(factory=list, doc="modules besides archsearch that _target_ may name")


@dataclass
class RayExecutor:
    name: str = "ray"
    address: str | None = option(None, doc='null: a fresh local Ray; "auto" or "host:port": join a cluster')
    workers: int | None = option(None, ge=1, doc="evaluator actors; null: one per CPU")
    cpus_per_worker: float = option(1, gt=0, doc="CPUs (and torch threads) per actor")
    gpus_per_worker: float = option(0, ge=0, doc="GPUs (or a fraction) per actor")
    max_retries: int = option(2, ge=0, doc="resubmissions of a candidate whose worker died")
    trial_timeout_s: float | None = option(None, gt=0, doc="wall-clock limit per candidate")
    py_modules: list[str] | None = option(None, doc="your own modules or package dirs the workers import")


@dataclass
class InlineExecutor:
    name: str = "inline"


EXECUTORS: dict[str, type] = {"ray": RayExecutor, "inline": InlineExecutor}


@dataclass
class Training:
    """The training recipe as configured; ``null`` keeps the task's or the built-in default
    (:class:`archsearch.evaluation.recipe.TrainingRecipe` holds those)."""

    epochs: float | None = option(None, gt=0, doc="fidelity in epochs (fractions allowed)")
    steps: int | None = option(None, ge=1, doc="fidelity in optimizer steps instead")
    batch_size: int | None = option(None, ge=1)
    optimizer: str | None = option(None, choices=("adam", "adamw", "sgd", "lbfgs"))
    lr: float | None = option(None, gt=0)
    weight_decay: float | None = option(None, ge=0)
    schedule: str | None = option(None, choices=("constant", "cosine"))
    warmup_steps: int | None = option(None, ge=0)
    early_stopping_patience: int | None = option(None, ge=1)
    time_limit_s: float | None = option(None, gt=0, doc="per candidate; past it the candidate is failed")
    eval_batch_size: int | None = option(None, ge=1)
    dropout: float | None = option(None, ge=0, lt=1, doc="in blocks that take a dropout rate")
    lbfgs_history: int | None = option(None, ge=1, doc="lbfgs: curvature pairs kept")
    lbfgs_max_iter: int | None = option(None, ge=1, doc="lbfgs: iterations per step (an epoch is one step)")
    device: str | None = option(None, doc="auto (cuda where the worker sees a GPU), cpu, cuda or cuda:N")
    seeds: int | None = option(None, ge=1, doc="trainings per candidate; metrics are their mean, with *_std")
    hot: bool | None = option(None, doc="fused kernels (and compilation where it repays) for training")
    stack: bool | None = option(None, doc="false: seeds and learning-rate siblings train one after another")


@dataclass
class FullFidelity:
    name: str = "full"


@dataclass
class AshaFidelity:
    name: str = "asha"
    min_epochs: float = option(1, gt=0, doc="the first rung")
    max_epochs: float | None = option(None, gt=0, doc="the last rung and the run's maximum; null: training.epochs")
    eta: float = option(3, gt=1, doc="about one trial in eta goes on from each rung")


FIDELITIES: dict[str, type] = {"full": FullFidelity, "asha": AshaFidelity}


@dataclass
class Latency:
    batch_size: int = option(1, ge=1, doc="rows per timed call for latency_ms")
    large_batch: int | None = option(64, ge=1, doc="also record latency_b<N>_ms; null to skip")
    warmup: int = option(10, ge=0)
    repeats: int = option(50, ge=1)
    threads: int = option(1, ge=1)


@dataclass
class Task:
    """Options several built-in tasks share; a task's other options are checked by the task itself."""

    name: str = "digits"
    val_fraction: float | None = option(None, gt=0, lt=1)
    test_fraction: float | None = option(None, ge=0, lt=1)
    train_fraction: float | None = option(None, gt=0, lt=1)
    n_samples: int | None = option(None, ge=10)
    num_samples: int | None = option(None, ge=10)
    noise: float | None = option(None, ge=0)
    data_seed: int | None = option(None, ge=0)
    path: str | None = option(None)
    target: str | None = option(None)


# Sections checked by validate(); ``open`` ones accept keys besides their fields (checked elsewhere).
SECTIONS: dict[str, tuple[type, bool]] = {"training": (Training, False), "latency": (Latency, False),
                                          "task": (Task, True)}


# -- validation -----------------------------------------------------------------------------------


def _allowed_types(hint: Any) -> tuple[list[Any], bool]:
    """The non-None members of a type hint, and whether ``None`` is allowed."""
    members = list(typing.get_args(hint)) if typing.get_origin(hint) in (typing.Union, types.UnionType) else [hint]
    optional = type(None) in members or Any in members
    return [m for m in members if m is not type(None)], optional


def _describe(meta: Mapping[str, Any], kinds: list[Any], optional: bool) -> str:
    if meta.get("choices"):
        text = "one of " + ", ".join(map(str, meta["choices"]))
    else:
        names = []
        for kind in kinds:
            origin = typing.get_origin(kind)
            if kind is int:
                names.append("an integer")
            elif kind is float:
                names.append("a number")
            elif kind is str:
                names.append("text")
            elif kind is bool:
                names.append("true or false")
            elif origin is list:
                names.append("a list")
            else:
                names.append("a value")
        text = " or ".join(dict.fromkeys(n for n in names if not (n == "an integer" and "a number" in names)))
        bounds = [f"{op} {meta[key]:g}" for key, op in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<"))
                  if meta.get(key) is not None]
        if bounds:
            text += " " + " and ".join(bounds)
    return text + (" or null" if optional else "")


def _fits(value: Any, kind: Any) -> bool:
    origin = typing.get_origin(kind)
    if kind is Any:
        return True
    if kind is bool:
        return isinstance(value, bool)
    if isinstance(value, bool):
        return False
    if kind is int:
        return isinstance(value, int)
    if kind is float:
        return isinstance(value, int | float) and math.isfinite(value)
    if kind is str:
        return isinstance(value, str)
    if origin is list:
        (item,) = typing.get_args(kind) or (Any,)
        return isinstance(value, list | tuple) and all(_fits(v, item) for v in value)
    return isinstance(value, kind)


def _in_range(value: Any, meta: Mapping[str, Any]) -> bool:
    if meta.get("choices") and value not in meta["choices"]:
        return False
    if not isinstance(value, int | float) or isinstance(value, bool):
        return True
    checks = {"ge": value >= (meta["ge"] or 0), "gt": value > (meta["gt"] or 0),
              "le": value <= (meta["le"] or 0), "lt": value < (meta["lt"] or 0)}
    return all(ok for key, ok in checks.items() if meta.get(key) is not None)


def check(schema: type, values: Mapping[str, Any], section: str, open_section: bool = False) -> dict[str, Any]:
    """Check ``values`` against ``schema``; returns them with the schema's defaults filled in.

    Raises :class:`ConfigError` (one line: the key, what it must be, what it was) on the first problem.
    """
    hints = typing.get_type_hints(schema)
    known = {f.name: f for f in fields(schema)}
    prefix = f"{section}." if section else ""
    if not open_section:
        unknown = sorted(k for k in values if k not in known)
        if unknown:
            raise ConfigError(f"unknown option {prefix}{unknown[0]}; {section or 'top-level'} options: "
                              f"{', '.join(known)}")
    checked = {}
    for name, f in known.items():
        if name in values:
            value = values[name]
        elif f.default is not MISSING:
            value = f.default
        elif f.default_factory is not MISSING:
            value = f.default_factory()
        else:
            value = None
        kinds, optional = _allowed_types(hints[name])
        ok = (value is None and optional) or (value is not None and any(_fits(value, k) for k in kinds)
                                               and _in_range(value, f.metadata))
        if not ok:
            raise ConfigError(f"{prefix}{name} must be {_describe(f.metadata, kinds, optional)}, got {value!r}")
        checked[name] = value
    if open_section:
        checked.update({k: v for k, v in values.items() if k not in known})
    return checked


def defaults(schema: type) -> dict[str, Any]:
    """The schema's defaults, as a config section holds them."""
    return check(schema, {}, "")


def validate(cfg: Mapping[str, Any]) -> None:
    """Check a composed config (as plain containers) against every section's schema."""
    root_keys = {f.name for f in fields(Root)}
    removed = sorted(k for k in root_keys if k not in cfg)
    if removed:
        raise ConfigError(f"{removed[0]} must be set (it was removed with ~{removed[0]}); "
                          f"default: {defaults(Root)[removed[0]]!r}")
    root = {k: v for k, v in cfg.items() if k in root_keys or not isinstance(v, Mapping)}
    for name in ("space", "strategy", "task", "executor", "training", "latency", "constraints"):
        if not isinstance(cfg.get(name), Mapping):
            raise ConfigError(f"{name} must be a section (it was removed or set to {cfg.get(name)!r})")
    if isinstance(root.get("run_dir"), int) and not isinstance(root["run_dir"], bool):
        root["run_dir"] = str(root["run_dir"])  # run_dir=2024 names a directory
    check(Root, root, "", open_section=True)
    executor = cfg["executor"]
    schema = EXECUTORS.get(str(executor.get("name")))
    if schema is None:
        raise ConfigError(f"executor.name must be one of {', '.join(EXECUTORS)}, got {executor.get('name')!r}")
    check(schema, {k: v for k, v in executor.items() if k != "description"}, "executor")
    fidelity = cfg.get("fidelity")
    if fidelity is not None:
        if not isinstance(fidelity, Mapping) or str(fidelity.get("name")) not in FIDELITIES:
            given = fidelity.get("name") if isinstance(fidelity, Mapping) else fidelity
            raise ConfigError(f"fidelity must be one of {', '.join(FIDELITIES)}, got {given!r}")
        check(FIDELITIES[str(fidelity["name"])], {k: v for k, v in fidelity.items() if k != "description"},
              "fidelity")
    for name, (section_schema, open_section) in SECTIONS.items():
        values = {k: v for k, v in cfg[name].items() if k not in ("description", "training")}
        check(section_schema, values, name, open_section)
    task_recipe = cfg["task"].get("training")
    if task_recipe is not None:
        if not isinstance(task_recipe, Mapping):
            raise ConfigError(f"task.training must be a section of training options, got {task_recipe!r}")
        check(Training, task_recipe, "task.training")
    for key, value in cfg["constraints"].items():
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)
                                  or not math.isfinite(value) or value < 0):
            raise ConfigError(f"constraints.{key} must be a number >= 0 or null, got {value!r}")
