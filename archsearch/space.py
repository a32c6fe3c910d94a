"""Search spaces and choosers.

Every architectural decision goes through a *chooser* whose surface is ``optuna.Trial``'s
(``suggest_categorical``, ``suggest_int``, ``suggest_float``), define-by-run: a space is code that asks
questions, so conditional decisions (a block's parameters exist only if that block does) need nothing
special. Each strategy brings its own chooser: random sampling, replay of a parent's decisions with a
few re-sampled, an Optuna trial, a tree path.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from archsearch.errors import ArchsearchError
from archsearch.genome import Genome, canonical_json, content_hash


class SpaceError(ArchsearchError):
    """A space definition or a decision that the space cannot honour."""


@runtime_checkable
class Chooser(Protocol):
    """What a space may ask. Labels must be unique within one build."""

    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any: ...

    def suggest_int(self, name: str, low: int, high: int, step: int = 1, log: bool = False) -> int: ...

    def suggest_float(
        self, name: str, low: float, high: float, step: float | None = None, log: bool = False
    ) -> float: ...


def _check_int_range(name: str, low: int, high: int, step: int) -> None:
    if low > high:
        raise SpaceError(f"decision {name!r}: low={low} is above high={high}")
    if step < 1:
        raise SpaceError(f"decision {name!r}: step must be >= 1, got {step}")


def _check_float_range(name: str, low: float, high: float, log: bool) -> None:
    if not (math.isfinite(low) and math.isfinite(high)) or low > high:
        raise SpaceError(f"decision {name!r}: need finite low <= high, got [{low}, {high}]")
    if log and low <= 0:
        raise SpaceError(f"decision {name!r}: log scale needs low > 0, got {low}")


def _check_choices(name: str, choices: Sequence[Any]) -> list[Any]:
    choices = list(choices)
    if not choices:
        raise SpaceError(f"decision {name!r} has no choices")
    return choices


class RecordingChooser:
    """Base for choosers: keeps the decisions made so far, in order, and refuses reused labels."""

    def __init__(self) -> None:
        self.decisions: dict[str, Any] = {}

    def _record(self, name: str, value: Any) -> Any:
        if name in self.decisions:
            raise SpaceError(f"decision label {name!r} was asked twice in one build; labels must be unique")
        self.decisions[name] = value
        return value


class RandomChooser(RecordingChooser):
    """Samples every decision uniformly (log-uniformly where asked) from a numpy Generator."""

    def __init__(self, rng: np.random.Generator | int | None = None) -> None:
        super().__init__()
        self.rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)

    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any:
        options = _check_choices(name, choices)
        return self._record(name, options[int(self.rng.integers(len(options)))])

    def suggest_int(self, name: str, low: int, high: int, step: int = 1, log: bool = False) -> int:
        _check_int_range(name, low, high, step)
        if log:
            if low < 1:
                raise SpaceError(f"decision {name!r}: log scale needs low >= 1, got {low}")
            value = math.exp(self.rng.uniform(math.log(low), math.log(high + 1)))
            value = min(high, low + int((int(value) - low) // step) * step)
        else:
            value = low + step * int(self.rng.integers((high - low) // step + 1))
        return self._record(name, int(value))

    def suggest_float(
        self, name: str, low: float, high: float, step: float | None = None, log: bool = False
    ) -> float:
        _check_float_range(name, low, high, log)
        if log:
            value = math.exp(self.rng.uniform(math.log(low), math.log(high)))
        else:
            value = float(self.rng.uniform(low, high))
        if step is not None:
            value = min(high, low + round((value - low) / step) * step)
        return self._record(name, float(value))


def choice_key(value: Any) -> Any:
    """A categorical value as a key equal for the same choice, as its JSON says (1, 1.0, True and "1"
    differ; so do 0.0 and -0.0). Scalars skip the JSON: it was a tenth of a model-based proposal,
    which replays and encodes decisions hundreds of times."""
    if type(value) in (str, int, bool):
        return type(value), value
    if type(value) is float:
        return float, repr(value)  # what JSON writes for a float
    return canonical_json(value)


def same_choice(a: Any, b: Any) -> bool:
    """Whether two categorical values are the same choice (see :func:`choice_key`)."""
    return bool(choice_key(a) == choice_key(b))


class ReplayChooser(RecordingChooser):
    """Replays recorded decisions; a label it has no (valid) value for goes to ``fallback``.

    This is how evolution builds a child (a parent's decisions with some removed, re-sampled by the
    fallback) and how a saved genome is rebuilt from its decisions. Without a fallback, a missing or
    out-of-range decision is an error, which makes replay a strict check.
    """

    def __init__(self, decisions: Mapping[str, Any], fallback: Chooser | None = None) -> None:
        super().__init__()
        self.recorded = dict(decisions)
        self.fallback = fallback

    def _replay(self, name: str, valid: Callable[[Any], bool], ask_fallback: Callable[[], Any]) -> Any:
        if name in self.recorded and valid(self.recorded[name]):
            return self._record(name, self.recorded[name])
        if self.fallback is None:
            problem = "has no recorded value" if name not in self.recorded else (
                f"has recorded value {self.recorded[name]!r}, which the space no longer allows"
            )
            raise SpaceError(f"cannot replay decision {name!r}: it {problem}")
        return self._record(name, ask_fallback())

    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any:
        options = _check_choices(name, choices)
        return self._replay(
            name,
            lambda v: any(same_choice(v, c) for c in options),
            lambda: self.fallback.suggest_categorical(name, options),  # type: ignore[union-attr]
        )

    def suggest_int(self, name: str, low: int, high: int, step: int = 1, log: bool = False) -> int:
        _check_int_range(name, low, high, step)
        return int(self._replay(
            name,
            lambda v: bool(isinstance(v, int | np.integer) and low <= v <= high and (v - low) % step == 0),
            lambda: self.fallback.suggest_int(name, low, high, step, log),  # type: ignore[union-attr]
        ))

    def suggest_float(
        self, name: str, low: float, high: float, step: float | None = None, log: bool = False
    ) -> float:
        _check_float_range(name, low, high, log)
        return float(self._replay(
            name,
            lambda v: isinstance(v, int | float) and low <= v <= high,
            lambda: self.fallback.suggest_float(name, low, high, step, log),  # type: ignore[union-attr]
        ))


class SearchSpace:
    """A family of architectures; :meth:`build` asks the chooser every decision and returns the result.

    Subclasses (see :mod:`archsearch.spaces`) return a :class:`Genome`. The result of a user's callable
    space is any JSON-able value.
    """

    name: str = "space"

    def build(self, chooser: Chooser) -> Any:
        raise NotImplementedError

    def sample(self, rng: np.random.Generator | int | None = None) -> Any:
        """One random architecture (with its decisions recorded on a Genome)."""
        return self.build(RandomChooser(rng))

    def replay(self, decisions: Mapping[str, Any]) -> Any:
        """Rebuild the architecture that ``decisions`` describe; strict, raises on a mismatch."""
        return self.build(ReplayChooser(decisions))


class CallableSpace(SearchSpace):
    """Adapts a user's function ``fn(chooser) -> JSON-able architecture`` to a :class:`SearchSpace`."""

    def __init__(self, fn: Callable[[Chooser], Any], name: str | None = None) -> None:
        self.fn = fn
        self.name = name or str(getattr(fn, "__name__", "callable"))

    def build(self, chooser: Chooser) -> Any:
        return self.fn(chooser)


def as_space(space: SearchSpace | Callable[[Chooser], Any]) -> SearchSpace:
    if isinstance(space, SearchSpace):
        return space
    if callable(space):
        return CallableSpace(space)
    raise SpaceError(f"a space must be a SearchSpace or a callable taking a chooser, got {space!r}")


def architecture_to_json(architecture: Any) -> Any:
    """JSON-able form of what a space built: a genome's dict, or the user's value itself."""
    if isinstance(architecture, Genome):
        return architecture.to_dict()
    try:
        canonical_json(architecture)
    except (TypeError, ValueError) as exc:
        raise SpaceError(f"a space must return a Genome or a JSON-able value: {exc}") from None
    return architecture


def architecture_id(architecture: Any) -> str:
    """Identity of an architecture: a genome's ``arch_id``, else the hash of the canonical JSON."""
    if isinstance(architecture, Genome):
        return architecture.arch_id
    return content_hash(architecture_to_json(architecture))
