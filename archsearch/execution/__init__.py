"""Where evaluations run: ``ray`` (local or a cluster, the default) or ``inline`` (in the driver)."""

from __future__ import annotations

from typing import Any

from archsearch.errors import ConfigError
from archsearch.execution.inline import InlineExecutor
from archsearch.execution.ray_executor import RayExecutor

EXECUTORS = {"inline": InlineExecutor, "ray": RayExecutor}


def make_executor(name: str, **options: Any) -> Any:
    if name not in EXECUTORS:
        raise ConfigError(f"unknown executor {name!r}; valid: {', '.join(sorted(EXECUTORS))}")
    try:
        return EXECUTORS[name](**options)
    except TypeError as exc:
        raise ConfigError(f"executor {name!r} does not take options {sorted(options)}: {exc}") from None


__all__ = ["EXECUTORS", "InlineExecutor", "RayExecutor", "make_executor"]
