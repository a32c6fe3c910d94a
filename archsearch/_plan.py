"""The composition root: a composed (or saved) config -> every part of a run, validated.

The one place that turns configuration into objects (space, strategy, evaluator, executor, store), so
``archsearch.search(...)``, ``archsearch run`` and ``resume`` build runs the same way. Nothing below
this layer imports it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from archsearch import config
from archsearch.budget import Budget, parse_budget
from archsearch.engine import KEEP_WEIGHTS, Engine, Progress, SilentProgress
from archsearch.errors import ArchsearchError, ConfigError
from archsearch.evaluation.assemble import PLAIN_KEYS
from archsearch.results.run import Run, load_run
from archsearch.results.store import RunStore
from archsearch.space import SearchSpace, as_space
from archsearch.strategies._base import Strategy


@dataclass
class RunPlan:
    """Everything a run needs, resolved and validated before anything is written to disk."""

    space: SearchSpace
    strategy: Strategy
    evaluator: Any
    executor: Any
    objectives: dict[str, str]
    budget: Budget
    run_dir: Path
    run_info: dict[str, Any]
    config_yaml: str
    keep_weights: str = "front"
    scheduler: Any = None  # the fidelity policy (archsearch.scheduling); None: full

    def execute(self, progress: Progress | None = None, store: RunStore | None = None) -> Run:
        """Run the search; with ``store`` (an existing run) it resumes that run instead of creating one."""
        if store is None:
            store = RunStore.create(self.run_dir, self.run_info, self.config_yaml)  # takes the run's lock
        if needs_cpu_kernels(self.space, self.evaluator):
            from archsearch.kernels.cpu import warm

            warm()
        engine = Engine(self.strategy, self.evaluator, self.executor, store, self.budget,
                        progress or SilentProgress(), self.keep_weights)
        if self.scheduler is not None:
            engine.scheduler = self.scheduler
        try:
            reason = engine.run()
        finally:
            store.release()
        if reason == "objectives":  # the evaluate function's bug, not an outcome of the search: say so loudly
            raise ArchsearchError(f"run stopped: {engine.stop_detail} (its trials are kept in {self.run_dir})")
        return load_run(self.run_dir)


def needs_cpu_kernels(space: Any, evaluator: Any) -> bool:
    """Whether the run's candidates may train on the fused CPU kernels: ``training.hot`` on, and a
    block-graph space listing a block (or MoE expert, or the PAU activation) that has them. Other spaces
    build the kernels in the first worker that needs them."""
    from archsearch.blocks import BLOCKS
    from archsearch.devices import resolve_device

    recipe = getattr(evaluator, "recipe", None)
    if recipe is None or not getattr(recipe, "hot", False) or str(recipe.device).startswith("cuda") or (
            resolve_device(str(recipe.device)).type != "cpu"):
        return False
    moe = (getattr(space, "block_params", None) or {}).get("moe_topk") or {}
    listed = [getattr(space, "blocks", None), getattr(space, "activation", None), moe.get("expert")]
    names = {str(v) for domain in listed if domain is not None
             for v in (domain if isinstance(domain, Sequence) and not isinstance(domain, str) else [domain])}
    kernels = {name for name in BLOCKS.names()
               if getattr(BLOCKS.implementations(name).get("fused"), "available", None) is not None}
    return bool(names & (kernels | {"pau"}))


def default_run_dir(space: str, strategy: str, base: Path = Path("runs")) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = base / f"{stamp}-{space}-{strategy}"
    suffix = 1
    while path.exists():
        suffix += 1
        path = base / f"{stamp}-{space}-{strategy}-{suffix}"
    return path


def plan_run(
    overrides: Sequence[str] = (),
    *,
    space: SearchSpace | Callable[..., Any] | None = None,
    task: Any = None,
    evaluate: Callable[..., dict[str, Any]] | None = None,
    objectives: dict[str, str] | None = None,
    measure: Callable[[Any], dict[str, Any]] | None = None,
    start_with: Sequence[Any] | None = None,
) -> RunPlan:
    """Compose the config for ``overrides`` and build every part of the run from it.

    Objects given here (a space, a task, an evaluate function, objectives, start points) take the place
    of the config's named ones.
    """
    return plan_from_config(config.compose(overrides), space=space, task=task, evaluate=evaluate,
                            objectives=objectives, measure=measure, start_with=start_with)


def plan_from_config(
    cfg: Any,
    *,
    space: SearchSpace | Callable[..., Any] | None = None,
    task: Any = None,
    evaluate: Callable[..., dict[str, Any]] | None = None,
    objectives: dict[str, str] | None = None,
    measure: Callable[[Any], dict[str, Any]] | None = None,
    start_with: Sequence[Any] | None = None,
) -> RunPlan:
    """Build a run from a composed (or saved) config; fills the config in with what it resolved."""
    config.validate(cfg)
    if measure is not None and not callable(measure):
        raise ConfigError(f"measure must be a function of the architecture returning {{metric: value}}, "
                          f"got {type(measure).__name__}")
    seed = int(cfg.seed)
    budget = parse_budget(cfg.budget)
    keep_weights = str(cfg.get("keep_weights", "front"))
    if keep_weights not in KEEP_WEIGHTS:
        raise ConfigError(f"keep_weights {keep_weights!r} is not one of {', '.join(KEEP_WEIGHTS)}")

    allow = [str(m) for m in (cfg.get("allow_targets") or [])]
    space_obj = as_space(space) if space is not None else config.instantiate(
        cfg.space, "space " + str(cfg.space.get("name", "")), allow)
    if hasattr(space_obj, "check"):
        space_obj.check()
    builds_genomes = space is None or not _is_callable_space(space) or _builds_genomes(space_obj, seed)

    data_spec = preprocessing = None
    if evaluate is not None:
        from archsearch.evaluation.function import FunctionEvaluator

        evaluator: Any = FunctionEvaluator(evaluate, measure=measure)
        objs = config.parse_objectives(objectives if objectives is not None else cfg.objectives)
        if objs is None:
            raise ConfigError("with evaluate=, say what to optimize: objectives={'metric': 'maximize', ...}")
        task_name = getattr(evaluate, "__name__", "evaluate")
    else:
        if not builds_genomes:
            raise ConfigError("a callable space returns your own architecture format: pass evaluate= to score it")
        evaluator, task_name = _training_evaluator(cfg, task, seed)
        objs = config.parse_objectives(objectives if objectives is not None else cfg.objectives)
        objs = objs or evaluator.objectives_default()
        data_spec = asdict(evaluator.load_task().data_spec)
        from archsearch.results.exported import preprocessing_of

        preprocessing = preprocessing_of(evaluator.load_task())

    from archsearch.results.outcomes import check_objectives

    check_objectives(objs, evaluator.metric_names(), task_name)
    strategy_cfg = {k: v for k, v in config.to_container(cfg.strategy).items() if k not in PLAIN_KEYS}
    strategy_name = str(cfg.strategy.get("name", "strategy"))
    lr_siblings = strategy_cfg.pop("lr_siblings", 1)
    configured_start = strategy_cfg.pop("start_with", None) or []
    strategy = config.instantiate(strategy_cfg, f"strategy {strategy_name}", allow, space=space_obj,
                                  objectives=objs, seed=seed)
    if hasattr(strategy, "check"):
        strategy.check()
    if lr_siblings != 1:
        _offer_siblings(strategy, strategy_name, lr_siblings, space_obj, seed)
    points = start_points(start_with if start_with is not None else configured_start)
    if points:
        if not hasattr(strategy, "start_with"):
            raise ConfigError(f"strategy {strategy_name} cannot start from given architectures (it is not built "
                              "on archsearch's Strategy); leave strategy.start_with empty")
        strategy.start_with(points)
        from omegaconf import open_dict

        with open_dict(cfg.strategy):  # a strategy section of the user's own may not declare the key
            cfg.strategy.start_with = points  # decisions, not paths: a resume rebuilds the same proposals
    if hasattr(strategy, "use_measure"):  # metrics known before training, for model-based strategies
        strategy.use_measure(measure if measure is not None else _measure_of(evaluator, objs))
    if hasattr(strategy, "use_constraints") and getattr(evaluator, "constraints", None):
        strategy.use_constraints(evaluator.constraints.violations)
    executor_cfg = {k: v for k, v in config.to_container(cfg.executor).items() if k not in PLAIN_KEYS}
    from archsearch.execution import make_executor

    executor = make_executor(str(cfg.executor.name), **executor_cfg)
    if evaluate is None:
        from archsearch.devices import check_device_plan

        check_device_plan(str(cfg.training.device), str(cfg.executor.name), executor_cfg.get("gpus_per_worker", 0))
    from archsearch.scheduling.plan import scheduler_from_config

    fidelity_cfg = config.to_container(cfg.fidelity) if cfg.get("fidelity") is not None else None
    scheduler = scheduler_from_config(fidelity_cfg, objs, evaluator, budget)
    if getattr(evaluator, "recipe", None) is not None and cfg.get("training") is not None:
        cfg.training.epochs = evaluator.recipe.epochs  # asha: the recipe spans the run's maximum fidelity

    run_dir = Path(str(cfg.run_dir)) if cfg.run_dir is not None else default_run_dir(space_obj.name, strategy_name)
    cfg.run_dir = os.fspath(run_dir)
    cfg.objectives = objs
    run_info = {
        "space": space_obj.name,
        "strategy": strategy_name,
        "task": task_name,
        "executor": str(cfg.executor.name),
        "objectives": objs,
        "seed": seed,
        "budget": budget.to_json(),
        "fidelity": scheduler.describe(),
        "user_space": space is not None,
        "user_task": task is not None,
        "user_evaluate": evaluate is not None,
        "user_measure": measure is not None,
        "data_spec": data_spec,
        "preprocessing": preprocessing,
        "archsearch_version": _version(),
    }
    return RunPlan(space_obj, strategy, evaluator, executor, objs, budget, run_dir, run_info,
                   config.to_yaml(cfg), keep_weights, scheduler)


def _measure_of(evaluator: Any, objectives: dict[str, str]) -> Callable[[Any], dict[str, float]]:
    """The evaluator's ``measure``, asked only for the metrics the run's objectives and constraints use
    (where it can be: the training evaluator counts FLOPs only when they matter)."""
    measure_for = getattr(evaluator, "measure_for", None)
    if measure_for is None:
        return evaluator.measure
    constraints = getattr(evaluator, "constraints", None)
    return measure_for({*objectives, *(constraints.bounds if constraints else ())})


def _is_callable_space(space: Any) -> bool:
    from archsearch.space import CallableSpace

    return isinstance(as_space(space), CallableSpace)


def _offer_siblings(strategy: Any, name: str, k: Any, space: SearchSpace, seed: int) -> None:
    """``strategy.lr_siblings``: refused, before anything is written, where it cannot work."""
    from archsearch.space import RandomChooser
    from archsearch.strategies._siblings import lr_label

    if not hasattr(strategy, "use_siblings"):
        raise ConfigError(f"strategy {name} cannot offer learning-rate siblings (it is not built on "
                          "archsearch's Strategy); leave strategy.lr_siblings at 1")
    strategy.use_siblings(k)
    if k > 1:
        chooser = RandomChooser(seed)
        try:
            space.build(chooser)
        except Exception:  # the user's function fails on its own: the run reports it per candidate
            return
        if lr_label(chooser.decisions) is None:
            raise ConfigError(f"strategy.lr_siblings={k} needs a space that searches the learning rate (a "
                              f"'recipe: {{lr: ...}}' section, decision recipe.lr); space {space.name} has none")


def start_points(items: Any) -> list[Any]:
    """``start_with`` as decisions: mappings as given, a run directory as its Pareto front's decisions
    (best first in its first objective). Read as data: a run directory never runs code."""
    if isinstance(items, str | bytes | os.PathLike) or not isinstance(items, Sequence):
        items = [items]
    points: list[Any] = []  # what is not a mapping, Strategy.start_with refuses in one line
    for item in items:
        if isinstance(item, str | os.PathLike):
            points += _front_decisions(item)
        else:
            points.append(dict(item) if isinstance(item, Mapping) else item)
    return points


def _front_decisions(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    import json

    front = load_run(path).pareto()
    if not front.num_rows:
        raise ConfigError(f"start_with: run {os.fspath(path)} has no complete trial to start from")
    return [json.loads(text) for text in front.column("decisions_json").to_pylist()]


def _builds_genomes(space: SearchSpace, seed: int) -> bool:
    """Whether a callable space returns :class:`Genome` objects (then the built-in evaluator trains them,
    with the recipe decisions the function put under ``meta["recipe"]``); one sample decides."""
    from archsearch.genome import Genome

    try:
        return isinstance(space.sample(seed), Genome)
    except Exception:  # the user's function fails on its own: the run reports it per candidate
        return False


def _training_evaluator(cfg: Any, task: Any, seed: int) -> tuple[Any, str]:
    from archsearch.evaluation.assemble import TASK_RECIPE_KEY, task_options, training_evaluator
    from archsearch.evaluation.training import TaskRef
    from archsearch.tasks import Task, task_from_arrays

    section = config.to_container(cfg.task) if task is None else {}
    task_recipe = section.get(TASK_RECIPE_KEY) or {}
    if task is None:
        options = task_options(section)
        if "path" in options:
            cfg.task.path = options["path"]
        task_obj: Any = TaskRef(str(cfg.task.name), seed, options)
        loaded = task_obj.load()  # fail on bad data now, before a run directory exists
    elif isinstance(task, Task):
        task_obj = loaded = task
    elif isinstance(task, tuple) and len(task) == 2:
        task_obj = loaded = task_from_arrays(*task, seed=seed)
    else:
        raise ConfigError(f"task must be a task name, a Task or an (x, y) pair of arrays, got {type(task).__name__}")
    recipe = resolve_recipe(cfg, task_recipe)
    sections = {"seed": seed, "latency": config.to_container(cfg.latency),
                "constraints": config.to_container(cfg.constraints)}
    evaluator = training_evaluator(sections, task_obj, recipe)
    evaluator.use_loaded(loaded)
    return evaluator, loaded.name


def resolve_recipe(cfg: Any, task_recipe: dict[str, Any]) -> Any:
    """Built-in defaults <- the task's recipe <- the user's ``training.*``; written back into ``cfg``."""
    from dataclasses import asdict

    from archsearch.evaluation.recipe import TrainingRecipe

    user = {k: v for k, v in config.to_container(cfg.training).items() if v is not None}
    if "optimizer" in user and "lr" not in user and user["optimizer"] != task_recipe.get("optimizer"):
        task_recipe = {k: v for k, v in task_recipe.items() if k != "lr"}  # the task's lr suits its optimizer
    recipe = TrainingRecipe.from_options({**task_recipe, **user})
    cfg.training = asdict(recipe)
    return recipe


def load_saved_config(store: RunStore) -> Any:
    """A run directory's ``config.yaml``, checked, with its ``allow_targets`` dropped.

    A run directory may come from someone else: it can name only archsearch's own classes, unless the
    person resuming it allows a module again (``allow_targets=`` on the resume command line).
    """
    from omegaconf import DictConfig, OmegaConf

    path = store.path / "config.yaml"
    try:
        cfg = OmegaConf.create(store.config_yaml())
    except Exception as exc:  # YAML syntax, OmegaConf grammar, nesting: all mean a damaged file
        raise ConfigError(f"cannot read {path}: {config._one_line(exc)}") from None
    if not isinstance(cfg, DictConfig):
        raise ConfigError(f"cannot read {path}: expected a mapping of configuration sections")
    cfg.allow_targets = []
    return cfg


def _version() -> str:
    from archsearch import __version__

    return __version__
