"""Budgets: a number of evaluated candidates, or wall-clock time (``"10m"``)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from archsearch.errors import ConfigError

_UNITS = {"s": 1, "m": 60, "h": 3600}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smh])\s*$")


@dataclass(frozen=True)
class Budget:
    """Stop proposing once ``max_trials`` were started or ``max_seconds`` have passed."""

    max_trials: int | None = None
    max_seconds: float | None = None

    def allows(self, n_started: int, elapsed_s: float) -> bool:
        if self.max_trials is not None and n_started >= self.max_trials:
            return False
        return not (self.max_seconds is not None and elapsed_s >= self.max_seconds)

    def describe(self) -> str:
        return f"{self.max_trials} candidates" if self.max_trials is not None else f"{self.max_seconds:g} s"

    def to_json(self) -> int | str:
        return self.max_trials if self.max_trials is not None else f"{self.max_seconds:g}s"


def parse_budget(value: int | float | str | Budget) -> Budget:
    """``20`` -> 20 candidates; ``"10m"``, ``"90s"``, ``"1.5h"`` -> wall-clock time."""
    if isinstance(value, Budget):
        return value
    if isinstance(value, bool):
        raise ConfigError(f"budget must be a number of candidates or a duration like 10m, got {value!r}")
    if isinstance(value, int) or (isinstance(value, str) and value.strip().isdigit()):
        n = int(value)
        if n <= 0:
            raise ConfigError(f"budget must be a positive number of candidates, got {n}")
        return Budget(max_trials=n)
    if isinstance(value, str) and (match := _DURATION.match(value)):
        seconds = float(match.group(1)) * _UNITS[match.group(2)]
        if seconds <= 0:
            raise ConfigError(f"budget duration must be positive, got {value!r}")
        return Budget(max_seconds=seconds)
    raise ConfigError(
        f"budget must be a positive number of candidates (budget=20) or a duration "
        f"(budget=90s, budget=10m, budget=2h), got {value!r}"
    )
