"""Name -> factory registries: genomes store names, builders look them up here.

A factory is registered either as the object itself (``@REG.register("name")`` on a class or function)
or *declared* by its import path, ``REG.declare("name", "package.module:attr", ...)``, which loads the
module only when the factory is first asked for. Declaring keeps a registry's names, descriptions and
metadata readable without importing what the factories need (torch, for blocks).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from archsearch.errors import ArchsearchError

F = TypeVar("F", bound=Callable[..., Any])


class UnknownNameError(ArchsearchError, KeyError):
    """A registry lookup of a name that is not registered; the message lists the valid names."""

    def __str__(self) -> str:  # KeyError would print the message quoted
        return str(self.args[0])


def load_target(target: str) -> Any:
    """``"package.module:attr.sub"`` -> the object, importing the module."""
    module, _, attr = target.partition(":")
    value: Any = importlib.import_module(module)
    for part in attr.split("."):
        value = getattr(value, part)
    return value


class Registry(Generic[F]):
    """A named collection of factories, each with a one-line description for `archsearch list`.

    ``meta(name)`` returns whatever metadata object the name was registered with (``None`` if none).
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._factories: dict[str, F | str] = {}
        self._descriptions: dict[str, str] = {}
        self._meta: dict[str, Any] = {}

    def _add(self, name: str, factory: F | str, description: str, meta: Any) -> None:
        if name in self._factories:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._factories[name] = factory
        self._descriptions[name] = description
        self._meta[name] = meta

    def register(self, name: str, description: str = "", meta: Any = None) -> Callable[[F], F]:
        def decorator(factory: F) -> F:
            doc = (factory.__doc__ or "").strip().splitlines()
            self._add(name, factory, description or (doc[0] if doc else ""), meta)
            return factory

        return decorator

    def declare(self, name: str, target: str, description: str, meta: Any = None) -> None:
        """Register ``name`` by the import path of its factory, loaded on first :meth:`get`."""
        self._add(name, target, description, meta)

    def _check(self, name: str) -> None:
        if name not in self._factories:
            valid = ", ".join(sorted(self._factories))
            raise UnknownNameError(f"unknown {self.kind} {name!r}; valid: {valid}")

    def get(self, name: str) -> F:
        self._check(name)
        factory = self._factories[name]
        if isinstance(factory, str):
            factory = self._factories[name] = load_target(factory)
        return factory

    def meta(self, name: str) -> Any:
        self._check(name)
        return self._meta[name]

    def names(self) -> list[str]:
        return sorted(self._factories)

    def describe(self) -> dict[str, str]:
        return {name: self._descriptions[name] for name in self.names()}

    def __contains__(self, name: object) -> bool:
        return name in self._factories
