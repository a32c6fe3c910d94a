"""Where evaluations run: ``inline`` (in the driver process)."""

from __future__ import annotations

from typing import Any

from archsearch.errors import ConfigError
from archsearch.execution.inline import InlineExecutor

EXECUTORS = {"inline": InlineExecutor}


def make_executor(name: str, **options: Any) -> Any:
    if name not in EXECUTORS:
        raise ConfigError(f"unknown executor {name!r}; valid: {', '.join(sorted(EXECUTORS))}")
    return EXECUTORS[name](**options)


__all__ = ["EXECUTORS", "InlineExecutor", "make_executor"]
