"""The fidelity section of a config -> a scheduler, and the recipe's epochs set to its maximum.

Kept beside the schedulers so that the composition root only calls :func:`scheduler_from_config`.
"""

from __future__ import annotations

import sys
from dataclasses import replace
from typing import Any

from archsearch.budget import Budget
from archsearch.errors import ConfigError
from archsearch.scheduling import SCHEDULERS, Scheduler, make_scheduler

NOTE_NO_FIDELITY = ("archsearch: note: your evaluate function takes no `fidelity` argument, so every "
                    "candidate is evaluated at full fidelity (fidelity=full)")


def scheduler_from_config(section: dict[str, Any] | None, objectives: dict[str, str], evaluator: Any,
                          budget: Budget) -> Scheduler:
    """Build the scheduler ``fidelity=`` names; under ``asha`` the training recipe's epochs become the run's
    maximum fidelity, so the learning-rate schedule spans it. Errors are one line, before anything is written."""
    options = {k: v for k, v in (section or {}).items() if k not in ("name", "description")}
    name = str((section or {}).get("name", "full"))
    if name not in SCHEDULERS:
        raise ConfigError(f"unknown fidelity {name!r}; valid fidelity policies: {', '.join(sorted(SCHEDULERS))}")
    recipe = getattr(evaluator, "recipe", None)
    if name != "full" and hasattr(evaluator, "supports_fidelity") and not evaluator.supports_fidelity():
        print(NOTE_NO_FIDELITY, file=sys.stderr)
        name = "full"
    if name == "full":
        max_epochs = None if recipe is None or recipe.steps is not None else float(recipe.epochs)
        if budget.max_epochs is not None and max_epochs is None:
            raise ConfigError("budget in epochs needs a known number of epochs per candidate: use a candidates "
                              "or time budget, or fidelity=asha with fidelity.max_epochs")
        return make_scheduler("full", objectives, max_epochs=max_epochs)
    unknown = sorted(set(options) - {"min_epochs", "max_epochs", "eta"})
    if unknown:
        raise ConfigError(f"fidelity {name} has no option(s) {', '.join(unknown)}; its options are: "
                          "min_epochs, max_epochs, eta")
    if recipe is not None and recipe.steps is not None:
        raise ConfigError(f"fidelity={name} counts epochs; training.steps is set: unset it (training.steps=null)")
    if options.get("max_epochs") is None:
        if recipe is None:
            raise ConfigError(f"fidelity={name} with your own evaluate function needs fidelity.max_epochs")
        options["max_epochs"] = recipe.epochs
    scheduler = make_scheduler(name, objectives, **options)
    if recipe is not None and float(recipe.epochs) != float(options["max_epochs"]):
        evaluator.recipe = replace(recipe, epochs=options["max_epochs"])
    return scheduler
