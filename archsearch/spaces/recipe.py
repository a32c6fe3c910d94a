"""Training-recipe decisions: the ``recipe:`` section of a space.

An AutoML search judges an architecture through the recipe that trains it, so the recipe is searched
with it. A space's ``recipe:`` maps training options to domains, written like every other space option
(a list is a choice, ``{low, high, log}`` a range, a scalar a fixed value)::

    recipe:
      optimizer: [adam, adamw, lbfgs]
      lr: {low: 1.0e-4, high: 3.0e-2, log: true}
      batch_size: [32, 64, 128]
      lbfgs: {lr: 1.0}          # per-optimizer domains, used when that optimizer is chosen

Every decision goes through the chooser under ``recipe.<option>`` (``recipe.<optimizer>.<option>`` for
a per-optimizer domain), so evolution mutates them, Bayes samples them and a trial's decisions replay
to the same recipe. ``batch_size`` is not asked when the optimizer is full-batch (L-BFGS). The chosen
values override the run's ``training.*`` for that trial; a callable space calls :func:`choose_recipe`
itself and puts the result under ``meta["recipe"]`` of the genome it returns.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from archsearch.space import Chooser, SpaceError

OPTIONS = ("optimizer", "lr", "weight_decay", "batch_size", "schedule", "epochs", "warmup_steps", "dropout",
           "lbfgs_history", "lbfgs_max_iter")
"""Training options a space may decide, in the order they are asked."""
ALIASES = {"warmup": "warmup_steps"}
_INTEGER = ("batch_size", "warmup_steps", "lbfgs_history", "lbfgs_max_iter")
_LOWEST = {"lr": (0.0, False), "weight_decay": (0.0, True), "batch_size": (1, True), "epochs": (0.0, False),
           "warmup_steps": (0, True), "dropout": (0.0, True), "lbfgs_history": (1, True), "lbfgs_max_iter": (1, True)}


def _values(domain: Any) -> list[Any]:
    if isinstance(domain, Mapping):
        return [domain.get("low"), domain.get("high")]
    if isinstance(domain, list | tuple):
        return list(domain)
    return [domain]


def _normalized(recipe: Mapping[str, Any]) -> dict[str, Any]:
    return {ALIASES.get(str(k), str(k)): v for k, v in recipe.items()}


def check_recipe(recipe: Mapping[str, Any] | None) -> None:
    """Raise :class:`SpaceError` naming ``recipe.<option>`` for an unknown option or a value no recipe takes."""
    from archsearch.evaluation.recipe import OPTIMIZERS, SCHEDULES
    from archsearch.spaces.block_graph import check_domain

    if recipe is None:
        return
    if not isinstance(recipe, Mapping):
        raise SpaceError(f"space option 'recipe' maps training options to domains, got {recipe!r}")
    recipe = _normalized(recipe)
    optimizers = list(OPTIMIZERS)
    for key, domain in recipe.items():
        if key in optimizers:
            if not isinstance(domain, Mapping):
                raise SpaceError(f"space option 'recipe.{key}' maps options to domains for the {key} optimizer, "
                                 f"e.g. {{lr: 1.0}}")
            unknown_inner = sorted(set(_normalized(domain)) - set(OPTIONS) - {"optimizer"})
            if "optimizer" in _normalized(domain) or unknown_inner:
                raise SpaceError(f"space option 'recipe.{key}' has unknown option(s) "
                                 f"{unknown_inner or ['optimizer']}; valid: {', '.join(o for o in OPTIONS if o != 'optimizer')}")
            for inner, inner_domain in _normalized(domain).items():
                _check_option(f"recipe.{key}.{inner}", inner, inner_domain, check_domain)
            continue
        if key not in OPTIONS:
            raise SpaceError(f"space option 'recipe' has unknown option {key!r}; valid: {', '.join(OPTIONS)} "
                             f"(or an optimizer name with its own domains)")
        if key == "optimizer":
            check_domain("recipe.optimizer", domain, OPTIMIZERS)
        elif key == "schedule":
            check_domain("recipe.schedule", domain, SCHEDULES)
        else:
            _check_option(f"recipe.{key}", key, domain, check_domain)


def _check_option(label: str, key: str, domain: Any, check_domain: Any) -> None:
    from archsearch.evaluation.recipe import SCHEDULES

    if key == "schedule":
        check_domain(label, domain, SCHEDULES)
        return
    if key == "optimizer":
        raise SpaceError(f"space option {label!r}: the optimizer is chosen once, under recipe.optimizer")
    check_domain(label, domain, integer=key in _INTEGER)
    lowest, inclusive = _LOWEST[key]
    for value in _values(domain):
        if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
            raise SpaceError(f"space option {label!r} takes numbers, got {domain!r}")
        if value < lowest or (value == lowest and not inclusive):
            bound = f">= {lowest}" if inclusive else f"> {lowest}"
            raise SpaceError(f"space option {label!r} must be {bound}, got {domain!r}")
        if key == "dropout" and value >= 1:
            raise SpaceError(f"space option {label!r} must be below 1, got {domain!r}")


def choose_recipe(chooser: Chooser, recipe: Mapping[str, Any] | None) -> dict[str, Any]:
    """Ask ``chooser`` the recipe decisions ``recipe`` describes; returns ``{option: value}`` (only the
    options the section names, so the run's ``training.*`` fills in the rest)."""
    from archsearch.evaluation.recipe import FULL_BATCH_OPTIMIZERS, OPTIMIZERS
    from archsearch.spaces.block_graph import choose

    if not recipe:
        return {}
    recipe = _normalized(recipe)
    chosen: dict[str, Any] = {}
    if "optimizer" in recipe:
        chosen["optimizer"] = choose(chooser, "recipe.optimizer", recipe["optimizer"])
    optimizer = chosen.get("optimizer")
    specific = _normalized(recipe.get(optimizer, {})) if optimizer in OPTIMIZERS else {}
    for key in OPTIONS[1:]:
        if key == "batch_size" and optimizer in FULL_BATCH_OPTIMIZERS:
            continue
        if key.startswith("lbfgs_") and optimizer is not None and optimizer != "lbfgs":
            continue
        if key in specific:
            value = choose(chooser, f"recipe.{optimizer}.{key}", specific[key])
        elif key in recipe:
            value = choose(chooser, f"recipe.{key}", recipe[key])
        else:
            continue
        chosen[key] = int(value) if key in _INTEGER else value
    return chosen
