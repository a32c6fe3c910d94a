"""Latency protocol: warm-up, many timed forward passes, median and spread, on a pinned thread count.

Small models on CPU are dominated by per-call overhead, so the protocol times single forward calls
(``perf_counter_ns``) and reports the median, which is robust to the occasional scheduler hiccup, with
the inter-quartile range beside it. The calls run on the example's device, synchronised on CUDA.
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
    """How ``latency_ms`` is measured: ``batch_size`` rows per call (1: one example, as served),
    plus ``latency_b<N>_ms`` at ``large_batch`` rows when set (throughput-bound use)."""

    batch_size: int = 1
    large_batch: int | None = 64
    warmup: int = 10
    repeats: int = 50
    threads: int = 1

    def __post_init__(self) -> None:
        from archsearch.evaluation.recipe import check_types

        check_types(self, "latency")
        if min(self.batch_size, self.repeats, self.threads) < 1 or self.warmup < 0:
            from archsearch.errors import ConfigError

            raise ConfigError("latency: batch_size, repeats and threads must be at least 1, warmup at least 0")


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
    """Time ``model`` per the protocol on rows like ``example``; returns milliseconds.

    Returns:
        ``{"latency_ms": median, "latency_iqr_ms": q75 - q25}`` at ``batch_size``, and
        ``latency_b<N>_ms`` with ``latency_b<N>_iqr_ms`` at ``large_batch`` rows when that is set.
    """
    metrics = _time_calls(model, example, protocol.batch_size, protocol)
    if protocol.large_batch and protocol.large_batch != protocol.batch_size:
        large = _time_calls(model, example, protocol.large_batch, protocol)
        metrics[f"latency_b{protocol.large_batch}_ms"] = large["latency_ms"]
        metrics[f"latency_b{protocol.large_batch}_iqr_ms"] = large["latency_iqr_ms"]
    return metrics


def _time_calls(model: nn.Module, example: torch.Tensor, rows: int, protocol: LatencyProtocol) -> dict[str, float]:
    from archsearch.devices import synchronize

    batch = example[:1].expand(rows, *example.shape[1:]).contiguous()
    was_training = model.training
    model.eval()
    samples = np.empty(protocol.repeats)
    with torch_threads(protocol.threads), torch.inference_mode():
        for _ in range(protocol.warmup):
            model(batch)
        synchronize(batch.device)
        for i in range(protocol.repeats):
            start = time.perf_counter_ns()
            model(batch)
            synchronize(batch.device)  # CUDA kernels run asynchronously: wait before reading the clock
            samples[i] = (time.perf_counter_ns() - start) / 1e6
    model.train(was_training)
    q25, q50, q75 = np.percentile(samples, [25, 50, 75])
    return {"latency_ms": float(q50), "latency_iqr_ms": float(q75 - q25)}
