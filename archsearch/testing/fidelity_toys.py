"""A torch-free multi-fidelity evaluate function, for scheduler tests and examples.

It lives in the package so that Ray workers can import it. Each epoch "trains" by moving a score along
a saturating curve whose ceiling and speed depend on the candidate, so low-fidelity scores rank
candidates roughly, not exactly, as full ones do (as real training does).
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from typing import Any


def curve_score(x: int, epoch: float) -> float:
    ceiling = 0.5 + 0.5 * ((x * 7919) % 1000) / 1000.0
    speed = 1.0 + (x % 5)
    return ceiling * (1.0 - math.exp(-epoch / speed))


class EpochEvaluate:
    """``fn(architecture, fidelity, checkpoint, report)`` over :func:`~archsearch.testing.faults.numbered_space`.

    Continues from the epoch its checkpoint file names, reports every epoch, and (with ``log``) appends
    ``"<x> <epoch>"`` per epoch trained to that file, so a test can see what was trained twice.
    """

    def __init__(self, seconds_per_epoch: float = 0.0, log: str | os.PathLike[str] | None = None) -> None:
        self.seconds_per_epoch = seconds_per_epoch
        self.log = None if log is None else os.fspath(log)

    def __call__(self, arch: dict[str, int], fidelity: float | None, checkpoint: str,
                 report: Callable[..., None]) -> dict[str, Any]:
        x = arch["x"]
        start = 0
        if os.path.exists(checkpoint):
            with open(checkpoint) as f:
                start = int(json.load(f)["epoch"])
        end = int(round(fidelity if fidelity is not None else 9))
        for epoch in range(start + 1, end + 1):
            time.sleep(self.seconds_per_epoch)
            report(epoch, score=curve_score(x, epoch), train_loss=1.0 - curve_score(x, epoch))
            if self.log is not None:
                with open(self.log, "a") as f:
                    f.write(f"{x} {epoch}\n")
        with open(checkpoint, "w") as f:
            json.dump({"epoch": end}, f)
        return {"score": curve_score(x, end), "cost": float(x % 7), "epochs_trained": float(end)}
