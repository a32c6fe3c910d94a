"""Torch-free toy spaces and evaluators so strategy tests run in milliseconds."""

from __future__ import annotations

import math
from typing import Any

from archsearch.space import Chooser, SearchSpace
from archsearch.spaces.block_graph import BlockGraphSpace
from archsearch.trial import COMPLETE, EvalResult


def toy_space(chooser: Chooser) -> dict[str, Any]:
    """A small conditional space in the shape of a user's callable space."""
    depth = chooser.suggest_int("depth", 1, 4)
    width = chooser.suggest_categorical("width", [8, 16, 32, 64])
    kind = chooser.suggest_categorical("kind", ["mlp", "kan"])
    arch: dict[str, Any] = {"depth": depth, "width": width, "kind": kind}
    if kind == "kan":
        arch["grid"] = chooser.suggest_int("grid", 3, 9, step=2)
    arch["lr"] = round(chooser.suggest_float("lr", 1e-4, 1e-1, log=True), 6)
    return arch


def toy_objectives() -> dict[str, str]:
    return {"score": "maximize", "cost": "minimize"}


def toy_evaluate(arch: dict[str, Any]) -> dict[str, float]:
    """A deterministic trade-off: bigger models score higher and cost more; lr has a sweet spot."""
    size = arch["depth"] * arch["width"] * (2 if arch["kind"] == "kan" else 1)
    lr_penalty = abs(math.log10(arch["lr"]) + 2.5) / 3
    return {"score": 1 - 1 / (1 + size / 64) - 0.2 * lr_penalty, "cost": float(size + arch.get("grid", 0))}


def toy_result(arch: dict[str, Any]) -> EvalResult:
    return EvalResult(COMPLETE, toy_evaluate(arch))


def tiny_block_space() -> SearchSpace:
    """A built-in-style block space small enough to exhaust (2 * 2 * 2 * ... architectures)."""
    return BlockGraphSpace(
        name="tiny", depth={"low": 1, "high": 2}, width=[8, 16], wiring=["sequential", "residual"],
        norm_placement=["pre"], activation=["relu", "tanh"],
    )


def zdt1_space(chooser: Chooser, n: int = 8) -> dict[str, Any]:
    """ZDT1 (Zitzler, Deb and Thiele 2000) on an 11-level grid: a trade-off random search converges on slowly."""
    return {"x": [chooser.suggest_int(f"x{i}", 0, 10) / 10 for i in range(n)]}


def zdt1_evaluate(arch: dict[str, Any]) -> dict[str, float]:
    """Both minimized; the front is x1.. = 0, where f2 = 1 - sqrt(f1)."""
    x = arch["x"]
    g = 1 + 9 * sum(x[1:]) / (len(x) - 1)
    return {"f1": x[0], "f2": g * (1 - math.sqrt(x[0] / g))}
