"""Plain configuration sections -> a :class:`TrainingEvaluator`.

Shared by the composition root (a new run) and by re-training a trial of a saved run, which reads the
run's resolved ``config.yaml`` as plain YAML: neither path goes through the other's layer.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from archsearch.errors import ConfigError

if TYPE_CHECKING:  # torch comes with these; a run of a user's evaluate function never needs it
    from archsearch.evaluation.recipe import TrainingRecipe
    from archsearch.evaluation.training import TaskRef, TrainingEvaluator
    from archsearch.tasks import Task

PLAIN_KEYS = ("name", "description")  # YAML fields that describe an option rather than configure it
TASK_RECIPE_KEY = "training"  # a task's own recipe defaults, inside its config section


def task_options(task_section: Mapping[str, Any]) -> dict[str, Any]:
    """A task section's loading options; a ``path`` becomes absolute (workers may run elsewhere)."""
    options = {k: v for k, v in task_section.items() if k not in (*PLAIN_KEYS, TASK_RECIPE_KEY)}
    if isinstance(options.get("path"), str):
        options["path"] = os.path.abspath(os.path.expanduser(options["path"]))
    return options


def training_evaluator(sections: Mapping[str, Any], task: Task | TaskRef, recipe: TrainingRecipe) -> TrainingEvaluator:
    """The evaluator for ``task`` and ``recipe`` with the ``seed``, ``latency`` and ``constraints`` sections."""
    from archsearch.evaluation.constraints import Constraints
    from archsearch.evaluation.latency import LatencyProtocol
    from archsearch.evaluation.training import TrainingEvaluator

    try:
        latency = LatencyProtocol(**dict(sections["latency"]))
    except TypeError as exc:
        raise ConfigError(f"latency config: {exc}") from None
    constraints = Constraints.parse(dict(sections["constraints"] or {}))
    return TrainingEvaluator(task, recipe, latency, seed=int(sections["seed"]), constraints=constraints)


def evaluator_for_saved_run(resolved: Mapping[str, Any]) -> TrainingEvaluator:
    """The evaluator a run used, from its saved config (whose ``training`` section is the final recipe)."""
    from archsearch.evaluation.recipe import TrainingRecipe
    from archsearch.evaluation.training import TaskRef

    seed = int(resolved["seed"])
    task = TaskRef(str(resolved["task"]["name"]), seed, task_options(resolved["task"]))
    return training_evaluator(resolved, task, TrainingRecipe.from_options(dict(resolved["training"])))
