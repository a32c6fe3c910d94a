"""The ask/tell strategy interface.

A strategy proposes candidates and learns from their results; it never owns the loop, the disk or the
workers (the engine does), which is what lets resume, Ray and Pareto bookkeeping exist once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from archsearch.errors import ConfigError
from archsearch.space import SearchSpace
from archsearch.trial import Candidate, EvalResult


class Strategy:
    """Base class: ``ask`` proposes, ``tell`` reports back, ``state_dict`` saves everything needed to resume.

    Args:
        space: the search space (built-in or a user's callable wrapped in a space).
        objectives: ``{metric: "minimize" | "maximize"}``, in priority order.
        seed: seeds every random choice; the same seed gives the same proposals.

    Contract (checked by :mod:`archsearch.testing`): ``ask`` may be called several times before any
    ``tell`` (several workers), returns ``None`` when it has nothing to propose, and ``state_dict()`` is
    JSON-able and restores the strategy exactly, including its random state.
    """

    name = "strategy"

    def __init__(self, space: SearchSpace, objectives: dict[str, str] | None = None, seed: int = 0) -> None:
        self.space = space
        self.objectives = objectives or {}
        self.seed = seed

    def check(self) -> None:
        """Refuse option values that cannot work, with what would; called when a run is planned, so a
        bad ``strategy.*`` override stops before the run directory exists."""
        problems = option_problems(self.options())
        if problems:
            raise ConfigError(f"strategy {self.name}: " + "; ".join(problems))

    def options(self) -> dict[str, tuple[Any, str]]:
        """``{option: (value, rule)}`` for :meth:`check`; rules as :func:`option_problems` reads them."""
        return {"seed": (self.seed, "int")}

    def attach(self, run_dir: Path) -> None:
        """Called by the engine once, before the first ``ask``, with the run directory.

        Strategies that keep files of their own (Optuna's journal) put them there; the default keeps none.
        """

    def ask(self) -> Candidate | None:
        raise NotImplementedError

    def tell(self, candidate: Candidate, result: EvalResult) -> None:
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        raise NotImplementedError

    def load_state_dict(self, state: dict[str, Any]) -> None:
        raise NotImplementedError


def option_problems(options: dict[str, tuple[Any, str]]) -> list[str]:
    """What is wrong with each ``(value, rule)``; a rule is ``bool``, ``int``, ``int>=N``, ``float>=X``,
    ``float>X``, ``0..1`` (a probability) or ``one of a|b|c``."""
    problems = []
    for name, (value, rule) in options.items():
        if rule.startswith("one of "):
            choices = rule[len("one of "):].split("|")
            if value not in choices:
                problems.append(f"{name}={value!r} is not one of {', '.join(choices)}")
            continue
        if rule == "bool":
            if not isinstance(value, bool):
                problems.append(f"{name}={value!r} must be true or false")
            continue
        kind, _, bound = rule.partition(">")
        is_int = isinstance(value, int) and not isinstance(value, bool)
        is_number = is_int or isinstance(value, float)
        if (kind == "int" and not is_int) or (kind in ("float", "0..1") and not is_number):
            problems.append(f"{name}={value!r} must be {'an integer' if kind == 'int' else 'a number'}")
        elif kind == "0..1" and not 0 <= value <= 1:
            problems.append(f"{name}={value!r} must lie in [0, 1]")
        elif bound.startswith("=") and value < float(bound[1:]):
            problems.append(f"{name}={value!r} must be at least {bound[1:]}")
        elif bound and not bound.startswith("=") and value <= float(bound):
            problems.append(f"{name}={value!r} must be greater than {bound}")
    return problems
