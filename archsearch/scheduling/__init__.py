"""Fidelity policies between the engine and the executor: ``full`` (one shot) and ``asha``."""

from __future__ import annotations

from typing import Any

from archsearch.errors import ConfigError
from archsearch.scheduling._base import Decision, Scheduler
from archsearch.scheduling.asha import SuccessiveHalving, rung_levels
from archsearch.scheduling.full import FullFidelity

SCHEDULERS = {"full": FullFidelity, "asha": SuccessiveHalving}


def make_scheduler(name: str, objectives: dict[str, str], **options: Any) -> Scheduler:
    """The scheduler ``fidelity=name`` names, with its options checked (one-line errors)."""
    if name not in SCHEDULERS:
        raise ConfigError(f"unknown fidelity {name!r}; valid: {', '.join(sorted(SCHEDULERS))}")
    if name == "full":
        return FullFidelity(options.get("max_epochs"))
    scheduler = SuccessiveHalving(objectives, **options)
    scheduler.check()
    return scheduler


__all__ = ["SCHEDULERS", "Decision", "FullFidelity", "Scheduler", "SuccessiveHalving", "make_scheduler",
           "rung_levels"]
