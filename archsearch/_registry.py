"""Name -> factory registries: genomes store names, builders look them up here."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

from archsearch.errors import ArchsearchError

F = TypeVar("F", bound=Callable[..., Any])


class UnknownNameError(ArchsearchError, KeyError):
    """A registry lookup of a name that is not registered; the message lists the valid names."""

    def __str__(self) -> str:  # KeyError would print the message quoted
        return str(self.args[0])


class Registry(Generic[F]):
    """A named collection of factories, each with a one-line description for `archsearch list`."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._factories: dict[str, F] = {}
        self._descriptions: dict[str, str] = {}

    def register(self, name: str, description: str = "") -> Callable[[F], F]:
        def decorator(factory: F) -> F:
            if name in self._factories:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._factories[name] = factory
            doc = (factory.__doc__ or "").strip().splitlines()
            self._descriptions[name] = description or (doc[0] if doc else "")
            return factory

        return decorator

    def get(self, name: str) -> F:
        try:
            return self._factories[name]
        except KeyError:
            valid = ", ".join(sorted(self._factories))
            raise UnknownNameError(f"unknown {self.kind} {name!r}; valid: {valid}") from None

    def names(self) -> list[str]:
        return sorted(self._factories)

    def describe(self) -> dict[str, str]:
        return {name: self._descriptions[name] for name in self.names()}

    def __contains__(self, name: object) -> bool:
        return name in self._factories
