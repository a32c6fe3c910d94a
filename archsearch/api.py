"""``archsearch.search(...)`` and ``archsearch.resume(...)``: the Python entry points.

Both compose the same Hydra config as the CLI (through :mod:`archsearch._plan`), so
``search(space="mlp", budget=20)`` and ``archsearch run space=mlp budget=20`` do the same thing; the
Python API additionally takes objects (a callable space, a :class:`Task` or arrays, an ``evaluate``
function) where the CLI takes names.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from archsearch._plan import RunPlan, load_saved_config, plan_from_config, plan_run
from archsearch.engine import Progress
from archsearch.errors import ConfigError
from archsearch.results.run import Run
from archsearch.results.store import RunStore
from archsearch.space import SearchSpace


def search(
    space: str | SearchSpace | Callable[..., Any] = "mlp",
    task: Any = None,
    strategy: str = "model",
    budget: int | str = 20,
    seed: int = 0,
    executor: str = "ray",
    run_dir: str | os.PathLike[str] | None = None,
    *,
    evaluate: Callable[..., dict[str, Any]] | None = None,
    objectives: dict[str, str] | None = None,
    measure: Callable[[Any], dict[str, Any]] | None = None,
    start_with: Sequence[Mapping[str, Any] | str | os.PathLike[str]] | None = None,
    overrides: Sequence[str] = (),
    progress: bool | Progress | None = None,
    quiet: bool = False,
) -> Run:
    """Run a search and return the saved :class:`Run`.

    Args:
        space: a space name (``search_spaces/NAME.yaml``), a :class:`SearchSpace`, or a callable taking a
            chooser (``suggest_categorical`` / ``suggest_int`` / ``suggest_float``) and returning a
            JSON-able architecture (then ``evaluate`` is required).
        task: a built-in task name, a :class:`~archsearch.tasks.Task`, or an ``(x, y)`` pair of arrays;
            default: the space's ``default_task`` (``kan`` fits the ``kan_toy`` function), else ``digits``.
        strategy: a strategy name (``strategies/NAME.yaml``).
        budget: number of candidates to evaluate, training epochs (``"300 epochs"``), or a duration
            such as ``"10m"``. Choose a fidelity scheduler with ``overrides=["fidelity=asha"]``.
        seed: seeds the split, the strategy and every initialization.
        executor: ``"ray"`` (local Ray, or a cluster with ``overrides=["executor.address=auto"]``) or
            ``"inline"`` (in this process, for debugging).
        run_dir: where the run is written; default ``runs/<time>-<space>-<strategy>``.
        evaluate: ``fn(architecture) -> {metric: value}``, replacing training on ``task``.
        objectives: ``{metric: "maximize" | "minimize"}``; default: the task's metric, ``n_params``,
            ``latency_ms``.
        measure: ``fn(architecture) -> {metric: value}`` for metrics known without training (parameters,
            FLOPs). The ``model`` strategy uses them exactly for many proposals and trains only
            the one whose predicted gain is largest; results hold them unless ``evaluate`` returns the
            same metric. The built-in training evaluator measures ``n_params`` itself, and ``flops`` when
            an objective or a constraint names them.
        start_with: architectures to evaluate first, before the strategy's own proposals: each a mapping of
            decisions (labels as in the trials table's ``decisions_json``; labels left out are sampled), or
            a run directory, whose Pareto front's decisions are used (the run's config records them as
            decisions: ``strategy.start_with``). The strategy learns from them like from its own.
        overrides: further ``key=value`` config overrides, e.g. ``["space.depth.high=6"]``; one for a key
            that a keyword above also sets (``"task=mnist1d"``) takes its place.
        progress: ``None`` (default): a progress bar where stderr is a terminal, none in a Jupyter
            notebook, on CI or in a pipe; ``True`` / ``False`` forces it; or a
            :class:`~archsearch.engine.Progress` of your own.
        quiet: print nothing (no header line, no bar, no closing line).
    """
    words = [f"budget={budget}", f"seed={seed}", f"executor={executor}", f"strategy={strategy}"]
    if isinstance(space, str):
        words.append(f"space={space}")
    if isinstance(task, str):
        words.append(f"task={task}")
    if run_dir is not None:
        words.append(f"run_dir={_quote(os.fspath(run_dir))}")
    given = {o.partition("=")[0] for o in overrides}
    words = [w for w in words if w.partition("=")[0] not in given]  # an override is the more specific
    plan = plan_run(
        [*words, *overrides],
        space=None if isinstance(space, str) else space,
        task=None if isinstance(task, str) else task,
        evaluate=evaluate,
        objectives=objectives,
        measure=measure,
        start_with=start_with,
    )
    return _execute_announced(plan, progress, quiet)


def _execute_announced(plan: RunPlan, progress: bool | Progress | None, quiet: bool,
                       store: RunStore | None = None) -> Run:
    """Run ``plan`` with the Python API's terminal output: a header, the progress, where the run is."""
    from archsearch.console import announce_result, api_progress, console, run_header

    if not quiet:
        console.print(run_header(plan.run_info, plan.run_dir, verb="resume" if store is not None else "run"))
    run = plan.execute(api_progress(progress, quiet, plan.objectives), store=store)
    if not quiet:
        announce_result(run)
    return run


def _quote(value: str) -> str:
    """Quote a path for Hydra's override grammar (which reserves characters such as ``=`` and ``,``)."""
    escaped = value.replace("\\", "\\\\").replace("'", "\\'")
    return f"'{escaped}'"


RESUMABLE_KEYS = ("budget", "executor.", "keep_weights", "allow_targets")


def resume(
    run_dir: str | os.PathLike[str],
    budget: int | str | None = None,
    *,
    space: SearchSpace | Callable[..., Any] | None = None,
    task: Any = None,
    evaluate: Callable[..., dict[str, Any]] | None = None,
    measure: Callable[[Any], dict[str, Any]] | None = None,
    overrides: Sequence[str] = (),
    progress: bool | Progress | None = None,
    quiet: bool = False,
) -> Run:
    """Continue a stopped or finished run up to a new total ``budget``, in the same directory.

    The strategy continues from its saved state; trials in flight when the run stopped are evaluated
    again; completed ones are kept as they are. A run over your own space, task or evaluate function
    needs the same objects passed again (``measure`` included).

    Args:
        run_dir: the run directory.
        budget: the new total budget (candidates, or a duration counted from now); default: the old one.
        overrides: ``budget=``, ``executor.*`` or ``keep_weights=`` changes; nothing that would change
            what is searched.
        progress, quiet: as for :func:`search`.
    """
    from omegaconf import OmegaConf

    store = RunStore.open(run_dir)
    info = store.info()
    for flag, given, name in (("user_space", space, "space"), ("user_task", task, "task"),
                              ("user_evaluate", evaluate, "evaluate"), ("user_measure", measure, "measure")):
        if info.get(flag) and given is None:
            raise ConfigError(f"run {run_dir} searched with your own {name}; resume it from Python with "
                              f"archsearch.resume({os.fspath(run_dir)!r}, {name}=...)")
    cfg = load_saved_config(store)
    changes = list(overrides) + ([f"budget={budget}"] if budget is not None else [])
    for change in changes:
        key, sep, value = change.partition("=")
        if not sep or not key.startswith(RESUMABLE_KEYS):
            raise ConfigError(f"resume takes budget=, executor.* and keep_weights= only, got {change!r}; "
                              "start a new run to change what is searched")
        if key.startswith("executor.") and OmegaConf.select(cfg, key, default="__missing__") == "__missing__":
            raise ConfigError(f"unknown option {key!r}; executor options: {', '.join(cfg.executor)}")
        if key == "allow_targets":
            OmegaConf.update(cfg, key, [m.strip() for m in value.strip("[]").split(",") if m.strip()])
            continue
        OmegaConf.update(cfg, key, OmegaConf.create({"v": value}).v if value else None, force_add=False)
    plan = plan_from_config(cfg, space=space, task=task, evaluate=evaluate, objectives=dict(info["objectives"]),
                            measure=measure)
    plan.run_dir = store.path
    plan.run_info = {**plan.run_info, **{k: info.get(k) for k in ("space", "strategy", "task") if info.get(k)}}
    store.acquire("resume")
    try:  # repair before the first append: an append after a torn tail would bury it mid-file
        store.repair_journal()
        store.check_not_emptied()
        store.append({"event": "run_resumed", "budget": plan.budget.to_json(), "changes": changes})
    except BaseException:
        store.release()
        raise
    return _execute_announced(plan, progress, quiet, store)
