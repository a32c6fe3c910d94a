"""Latency protocol: warm-up, many timed forward passes, median and spread, on a pinned thread count.

Small models on CPU are dominated by per-call overhead, so the protocol times single forward calls
(``perf_counter_ns``) and reports the median, which is robust to the occasional scheduler hiccup, with
the inter-quartile range beside it.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn


@dataclass(frozen=True)
class LatencyProtocol:
    batch_size: int = 1
    warmup: int = 10
    repeats: int = 50
    threads: int = 1


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Temporarily pin torch's intra-op threads (restored afterwards: inline runs share the process)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def measure_latency(model: nn.Module, example: torch.Tensor, protocol: LatencyProtocol) -> dict[str, float]:
    """Time ``model`` on ``protocol.batch_size`` rows like ``example``; returns milliseconds.

    Returns:
        ``{"latency_ms": median, "latency_iqr_ms": q75 - q25}``.
    """
    batch = example[:1].expand(protocol.batch_size, *example.shape[1:]).contiguous()
    was_training = model.training
    model.eval()
    samples = np.empty(protocol.repeats)
    with torch_threads(protocol.threads), torch.inference_mode():
        for _ in range(protocol.warmup):
            model(batch)
        for i in range(protocol.repeats):
            start = time.perf_counter_ns()
            model(batch)
            samples[i] = (time.perf_counter_ns() - start) / 1e6
    model.train(was_training)
    q25, q50, q75 = np.percentile(samples, [25, 50, 75])
    return {"latency_ms": float(q50), "latency_iqr_ms": float(q75 - q25)}
