"""``archsearch.search(...)``: the Python entry point, and the plan the CLI shares with it.

Both paths compose the same Hydra config, so ``search(space="mlp", budget=20)`` and
``archsearch run space=mlp budget=20`` do the same thing; the Python API additionally takes objects
(a callable space, a :class:`Task` or arrays, an ``evaluate`` function) where the CLI takes names.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from archsearch import config
from archsearch.budget import Budget, parse_budget
from archsearch.engine import KEEP_WEIGHTS, Engine, Progress, SilentProgress
from archsearch.errors import ConfigError
from archsearch.results.run import Run, load_run
from archsearch.results.store import RunStore
from archsearch.space import SearchSpace, as_space
from archsearch.strategies._base import Strategy

PLAIN_KEYS = ("name", "description")  # YAML fields that describe an option rather than configure it


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

    def execute(self, progress: Progress | None = None, store: RunStore | None = None) -> Run:
        """Run the search; with ``store`` (an existing run) it resumes that run instead of creating one."""
        if store is None:
            store = RunStore.create(self.run_dir, self.run_info, self.config_yaml)
        engine = Engine(self.strategy, self.evaluator, self.executor, store, self.budget,
                        progress or SilentProgress(), self.keep_weights)
        engine.run()
        return load_run(self.run_dir)


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
) -> RunPlan:
    """Compose the config for ``overrides`` and build every part of the run from it.

    Objects given here (a space, a task, an evaluate function, objectives) take the place of the
    config's named ones.
    """
    return plan_from_config(config.compose(overrides), space=space, task=task, evaluate=evaluate,
                            objectives=objectives)


def plan_from_config(
    cfg: Any,
    *,
    space: SearchSpace | Callable[..., Any] | None = None,
    task: Any = None,
    evaluate: Callable[..., dict[str, Any]] | None = None,
    objectives: dict[str, str] | None = None,
) -> RunPlan:
    """Build a run from a composed (or saved) config; fills the config in with what it resolved."""
    config.validate(cfg)
    seed = int(cfg.seed)
    budget = parse_budget(cfg.budget)
    keep_weights = str(cfg.get("keep_weights", "front"))
    if keep_weights not in KEEP_WEIGHTS:
        raise ConfigError(f"keep_weights {keep_weights!r} is not one of {', '.join(KEEP_WEIGHTS)}")

    space_obj = as_space(space) if space is not None else config.instantiate(cfg.space, "space " + str(cfg.space.name))
    if hasattr(space_obj, "check"):
        space_obj.check()
    builds_genomes = space is None or not _is_callable_space(space)

    data_spec = None
    if evaluate is not None:
        from archsearch.evaluation.function import FunctionEvaluator

        evaluator: Any = FunctionEvaluator(evaluate)
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

    strategy_cfg = {k: v for k, v in config.to_container(cfg.strategy).items() if k not in PLAIN_KEYS}
    strategy_name = str(cfg.strategy.get("name", "strategy"))
    strategy = config.instantiate(strategy_cfg, f"strategy {strategy_name}", space=space_obj,
                                  objectives=objs, seed=seed)
    if hasattr(strategy, "check"):
        strategy.check()
    executor_cfg = {k: v for k, v in config.to_container(cfg.executor).items() if k not in PLAIN_KEYS}
    from archsearch.execution import make_executor

    executor = make_executor(str(cfg.executor.name), **executor_cfg)
    if evaluate is None:
        from archsearch.evaluation.device import check_device_plan

        check_device_plan(str(cfg.training.device), str(cfg.executor.name), executor_cfg.get("gpus_per_worker", 0))

    run_dir = Path(cfg.run_dir) if cfg.run_dir else default_run_dir(space_obj.name, strategy_name)
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
        "user_space": space is not None,
        "user_task": task is not None,
        "user_evaluate": evaluate is not None,
        "data_spec": data_spec,
        "archsearch_version": _version(),
    }
    return RunPlan(space_obj, strategy, evaluator, executor, objs, budget, run_dir, run_info,
                   config.to_yaml(cfg), keep_weights)


def _is_callable_space(space: Any) -> bool:
    from archsearch.space import CallableSpace

    return isinstance(as_space(space), CallableSpace)


def _training_evaluator(cfg: Any, task: Any, seed: int) -> tuple[Any, str]:
    from archsearch.evaluation.constraints import Constraints
    from archsearch.evaluation.latency import LatencyProtocol
    from archsearch.evaluation.training import TaskRef, TrainingEvaluator
    from archsearch.tasks import Task, task_from_arrays

    task_options = config.to_container(cfg.task) if task is None else {}
    task_recipe = task_options.pop("training", None) or {}
    if task is None:
        options = {k: v for k, v in task_options.items() if k not in PLAIN_KEYS}
        if isinstance(options.get("path"), str):  # workers may run elsewhere: never a relative path
            options["path"] = os.path.abspath(os.path.expanduser(options["path"]))
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
    try:
        latency = LatencyProtocol(**config.to_container(cfg.latency))
    except TypeError as exc:
        raise ConfigError(f"latency config: {exc}") from None
    constraints = Constraints.parse(config.to_container(cfg.constraints))
    evaluator = TrainingEvaluator(task_obj, recipe, latency, seed=seed, constraints=constraints)
    evaluator.use_loaded(loaded)
    return evaluator, loaded.name


def resolve_recipe(cfg: Any, task_recipe: dict[str, Any]) -> Any:
    """Built-in defaults <- the task's recipe <- the user's ``training.*``; written back into ``cfg``."""
    from dataclasses import asdict

    from archsearch.evaluation.recipe import TrainingRecipe

    user = {k: v for k, v in config.to_container(cfg.training).items() if v is not None}
    recipe = TrainingRecipe.from_options({**task_recipe, **user})
    cfg.training = asdict(recipe)
    return recipe


def _version() -> str:
    from archsearch import __version__

    return __version__


def search(
    space: str | SearchSpace | Callable[..., Any] = "mlp",
    task: Any = "digits",
    strategy: str = "random",
    budget: int | str = 20,
    seed: int = 0,
    executor: str = "ray",
    run_dir: str | os.PathLike[str] | None = None,
    *,
    evaluate: Callable[..., dict[str, Any]] | None = None,
    objectives: dict[str, str] | None = None,
    overrides: Sequence[str] = (),
    progress: bool | Progress = False,
) -> Run:
    """Run a search and return the saved :class:`Run`.

    Args:
        space: a space name (``search_spaces/NAME.yaml``), a :class:`SearchSpace`, or a callable taking a
            chooser (``suggest_categorical`` / ``suggest_int`` / ``suggest_float``) and returning a
            JSON-able architecture (then ``evaluate`` is required).
        task: a built-in task name, a :class:`~archsearch.tasks.Task`, or an ``(x, y)`` pair of arrays.
        strategy: a strategy name (``strategies/NAME.yaml``).
        budget: number of candidates to evaluate, or a duration such as ``"10m"``.
        seed: seeds the split, the strategy and every initialization.
        executor: ``"ray"`` (local Ray, or a cluster with ``overrides=["executor.address=auto"]``) or
            ``"inline"`` (in this process, for debugging).
        run_dir: where the run is written; default ``runs/<time>-<space>-<strategy>``.
        evaluate: ``fn(architecture) -> {metric: value}``, replacing training on ``task``.
        objectives: ``{metric: "maximize" | "minimize"}``; default: the task's metric, ``n_params``,
            ``latency_ms``.
        overrides: further ``key=value`` config overrides, e.g. ``["space.depth.high=6"]``.
        progress: show a progress bar (``True``) or report to a :class:`~archsearch.engine.Progress`.
    """
    words = [f"budget={budget}", f"seed={seed}", f"executor={executor}", f"strategy={strategy}"]
    if isinstance(space, str):
        words.append(f"space={space}")
    if isinstance(task, str):
        words.append(f"task={task}")
    if run_dir is not None:
        words.append(f"run_dir={_quote(os.fspath(run_dir))}")
    plan = plan_run(
        [*words, *overrides],
        space=None if isinstance(space, str) else space,
        task=None if isinstance(task, str) else task,
        evaluate=evaluate,
        objectives=objectives,
    )
    reporter: Progress | None
    if progress is True:
        from archsearch.console import RichProgress

        reporter = RichProgress(plan.objectives)
    else:
        reporter = progress or None
    return plan.execute(reporter)


def _quote(value: str) -> str:
    """Quote a path for Hydra's override grammar (which reserves characters such as ``=`` and ``,``)."""
    escaped = value.replace("\\", "\\\\").replace("'", "\\'")
    return f"'{escaped}'"


RESUMABLE_KEYS = ("budget", "executor.", "keep_weights")


def resume(
    run_dir: str | os.PathLike[str],
    budget: int | str | None = None,
    *,
    space: SearchSpace | Callable[..., Any] | None = None,
    task: Any = None,
    evaluate: Callable[..., dict[str, Any]] | None = None,
    overrides: Sequence[str] = (),
    progress: bool | Progress = False,
) -> Run:
    """Continue a stopped or finished run up to a new total ``budget``, in the same directory.

    The strategy continues from its saved state; trials in flight when the run stopped are evaluated
    again; completed ones are kept as they are. A run over your own space, task or evaluate function
    needs the same objects passed again.

    Args:
        run_dir: the run directory.
        budget: the new total budget (candidates, or a duration counted from now); default: the old one.
        overrides: ``budget=``, ``executor.*`` or ``keep_weights=`` changes; nothing that would change
            what is searched.
    """
    from omegaconf import OmegaConf

    store = RunStore.open(run_dir)
    info = store.info()
    for flag, given, name in (("user_space", space, "space"), ("user_task", task, "task"),
                              ("user_evaluate", evaluate, "evaluate")):
        if info.get(flag) and given is None:
            raise ConfigError(f"run {run_dir} searched with your own {name}; resume it from Python with "
                              f"archsearch.resume({os.fspath(run_dir)!r}, {name}=...)")
    cfg = OmegaConf.load(store.path / "config.yaml")
    changes = list(overrides) + ([f"budget={budget}"] if budget is not None else [])
    for change in changes:
        key, sep, value = change.partition("=")
        if not sep or not key.startswith(RESUMABLE_KEYS):
            raise ConfigError(f"resume takes budget=, executor.* and keep_weights= only, got {change!r}; "
                              "start a new run to change what is searched")
        if key.startswith("executor.") and OmegaConf.select(cfg, key, default="__missing__") == "__missing__":
            raise ConfigError(f"unknown option {key!r}; executor options: {', '.join(cfg.executor)}")
        OmegaConf.update(cfg, key, OmegaConf.create({"v": value}).v if value else None, force_add=False)
    plan = plan_from_config(cfg, space=space, task=task, evaluate=evaluate, objectives=dict(info["objectives"]))
    plan.run_dir = store.path
    store.append({"event": "run_resumed", "budget": plan.budget.to_json(), "changes": changes})
    reporter: Progress | None
    if progress is True:
        from archsearch.console import RichProgress

        reporter = RichProgress(plan.objectives)
    else:
        reporter = progress or None
    return plan.execute(reporter, store=store)
