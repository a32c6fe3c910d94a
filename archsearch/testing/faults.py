"""Picklable evaluate functions that misbehave on purpose, for fault-injection tests.

They live in the package (not in a test module) so that Ray workers on any node can import them.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any


def numbered_space(chooser: Any) -> dict[str, int]:
    """A callable space of one integer decision: every candidate is distinct and easy to recognise."""
    return {"x": chooser.suggest_int("x", 0, 10**9)}


def score(arch: dict[str, int]) -> dict[str, float]:
    return {"score": (arch["x"] % 1000) / 1000.0, "cost": float(arch["x"] % 7)}


class SlowEvaluate:
    """Takes ``seconds`` per candidate, then scores it; stands in for training."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def __call__(self, arch: dict[str, int]) -> dict[str, float]:
        time.sleep(self.seconds)
        return score(arch)


class InterruptAt:
    """``evaluate`` that raises KeyboardInterrupt (a Ctrl-C) at its ``n``-th call, mid-trial."""

    def __init__(self, n: int, evaluate: Any) -> None:
        self.n, self.evaluate, self.calls = n, evaluate, 0

    def __call__(self, arch: Any) -> dict[str, float]:
        self.calls += 1
        if self.calls == self.n:
            raise KeyboardInterrupt
        return self.evaluate(arch)


class CrashOnce:
    """Kills its own worker process the first time it sees each of the first ``n_crashes`` candidates.

    A marker file per crash (created exclusively in ``marker_dir``) makes the crash happen once across
    processes, so the retried candidate then completes.
    """

    def __init__(self, marker_dir: str | os.PathLike[str], n_crashes: int = 1, seconds: float = 0.0,
                 always: bool = False) -> None:
        self.marker_dir = os.fspath(marker_dir)
        self.n_crashes = n_crashes
        self.seconds = seconds
        self.always = always

    def __call__(self, arch: dict[str, int]) -> dict[str, float]:
        time.sleep(self.seconds)
        markers = Path(self.marker_dir)
        if self.always and arch["x"] % 2 == 0:
            os._exit(1)
        if len(list(markers.glob("crash-*"))) < self.n_crashes:
            try:
                fd = os.open(markers / f"crash-{arch['x']}", os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                return score(arch)
            os.close(fd)
            os._exit(1)
        return score(arch)


class HangOn:
    """Hangs for ``seconds`` on candidates with an even ``x``; scores the others at once."""

    def __init__(self, seconds: float = 3600.0) -> None:
        self.seconds = seconds

    def __call__(self, arch: dict[str, int]) -> dict[str, float]:
        if arch["x"] % 2 == 0:
            time.sleep(self.seconds)
        return score(arch)


def space_raising_sometimes(chooser: Any) -> dict[str, int]:
    """Like :func:`numbered_space`, but raises for one proposal in four (a user's space with a bug)."""
    x = chooser.suggest_int("x", 0, 10**9)
    if x % 4 == 0:
        raise ValueError(f"cannot build x={x}")
    return {"x": x}


class ExitOn:
    """Scores candidates, but raises ``SystemExit`` (``kind="exit"``) or ``KeyboardInterrupt``
    (``kind="interrupt"``) on those with ``x`` divisible by three, as a user's evaluate might."""

    def __init__(self, kind: str = "exit") -> None:
        self.kind = kind

    def __call__(self, arch: dict[str, int]) -> dict[str, float]:
        if arch["x"] % 3 == 0:
            if self.kind == "exit":
                raise SystemExit(3)
            raise KeyboardInterrupt
        return score(arch)
