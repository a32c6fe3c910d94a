"""Budgets: a number of evaluated candidates, training epochs spent (``"300 epochs"``), or wall-clock
time (``"10m"``). Epochs make runs with and without a fidelity scheduler comparable at equal compute."""

from __future__ import annotations

import re
from dataclasses import dataclass

from archsearch.errors import ConfigError

_UNITS = {"s": 1, "m": 60, "h": 3600}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smh])\s*$")
_EPOCHS = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(?:epochs?|ep)\s*$")


@dataclass(frozen=True)
class Budget:
    """Stop proposing once ``max_trials`` were started, ``max_epochs`` of training are spent or
    committed, or ``max_seconds`` have passed."""

    max_trials: int | None = None
    max_seconds: float | None = None
    max_epochs: float | None = None

    def allows(self, n_started: int, elapsed_s: float, epochs: float = 0.0) -> bool:
        """Whether new work may start; ``epochs``: spent, in flight, and what the new work would add."""
        if self.max_trials is not None and n_started >= self.max_trials:
            return False
        if self.max_epochs is not None and epochs > self.max_epochs * (1 + 1e-9):
            return False
        return not (self.max_seconds is not None and elapsed_s >= self.max_seconds)

    def allows_epochs(self, epochs: float) -> bool:
        return self.max_epochs is None or epochs <= self.max_epochs * (1 + 1e-9)

    def describe(self) -> str:
        if self.max_trials is not None:
            return f"{self.max_trials} candidates"
        if self.max_epochs is not None:
            return f"{self.max_epochs:g} epochs"
        return f"{self.max_seconds:g} s"

    def to_json(self) -> int | str:
        if self.max_trials is not None:
            return self.max_trials
        if self.max_epochs is not None:
            return f"{self.max_epochs:g} epochs"
        return f"{self.max_seconds:g}s"


def parse_budget(value: int | float | str | Budget) -> Budget:
    """``20`` -> 20 candidates; ``"300 epochs"`` -> training epochs; ``"10m"``, ``"90s"``, ``"1.5h"`` -> time."""
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
    if isinstance(value, str) and (match := _EPOCHS.match(value)):
        epochs = float(match.group(1))
        if epochs <= 0:
            raise ConfigError(f"budget in epochs must be positive, got {value!r}")
        return Budget(max_epochs=epochs)
    raise ConfigError(
        f"budget must be a positive number of candidates (budget=20), training epochs (budget=300epochs) "
        f"or a duration (budget=90s, budget=10m, budget=2h), got {value!r}"
    )
