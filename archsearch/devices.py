"""Which device a candidate trains and is measured on, and how that device is named in the results.

``training.device``: ``auto`` (the default) takes CUDA where the process sees a GPU (on Ray, a worker
sees one when ``executor.gpus_per_worker`` reserves it; Ray hides GPUs from workers that reserved none)
and the CPU otherwise; ``cpu`` and ``cuda`` (or ``cuda:N``) force one. Timings on CUDA synchronise the
device before the clock is read, since kernels launch asynchronously.
"""

from __future__ import annotations

import platform
from functools import cache

import torch

DEVICE_CHOICES = ("auto", "cpu", "cuda")


def device_problem(value: object) -> str | None:
    """Why ``value`` is not a valid ``training.device`` (``None`` when it is)."""
    if isinstance(value, str):
        kind, _, index = value.partition(":")
        if value in DEVICE_CHOICES or (kind == "cuda" and index.isdigit()):
            return None
    return f"device must be one of {', '.join(DEVICE_CHOICES)} (or cuda:N), got {value!r}"


class NoDevice(RuntimeError):
    """``training.device`` asks for CUDA where this process sees no GPU."""


def resolve_device(requested: str = "auto") -> torch.device:
    """The torch device for a ``training.device`` value, in this process."""
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(requested)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise NoDevice(f"training.device={requested} but this process sees no CUDA device (on Ray, reserve "
                           "one with executor.gpus_per_worker=1; or use training.device=auto)")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise NoDevice(f"training.device={requested} but only {torch.cuda.device_count()} CUDA device(s) are visible")
    return device


@cache
def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def describe_device(device: torch.device) -> dict[str, str]:
    """``{"device": name, "device_kind": "cpu" | "cuda"}``, recorded beside every trial's figures."""
    if device.type == "cuda":
        return {"device": torch.cuda.get_device_name(device), "device_kind": "cuda"}
    return {"device": _cpu_name(), "device_kind": device.type}


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work (a no-op on CPU), before reading a clock."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def check_device_plan(device: str, executor: str, gpus_per_worker: float = 0) -> None:
    """Refuse, before a run starts, a CUDA device that no worker will see.

    Ray hides GPUs from workers that reserved none (``CUDA_VISIBLE_DEVICES`` is set empty), so on Ray
    ``training.device=cuda`` needs ``executor.gpus_per_worker``; inline, this process must see a GPU.
    """
    from archsearch.errors import ConfigError

    if not device.startswith("cuda"):
        return
    if executor == "ray" and not gpus_per_worker:
        raise ConfigError(f"training.device={device} needs a GPU per Ray worker: set executor.gpus_per_worker=1 "
                          "(or a fraction such as 0.25 to share one), or use training.device=auto")
    if executor == "inline" and not torch.cuda.is_available():
        raise ConfigError(f"training.device={device} but no CUDA device is visible here; use training.device=auto")
