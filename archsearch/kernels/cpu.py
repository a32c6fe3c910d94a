"""The fused CPU kernels (``csrc/kan_cpu.cpp``): compiled at first use, cached, or absent with a notice.

The extension is built with ``torch.utils.cpp_extension.load`` (g++ and ninja) into a cache directory
keyed by the source's hash, the torch version and the CPU, so later processes and Ray workers on the
same machine load it in milliseconds. ``ARCHSEARCH_KERNEL_CACHE`` moves the cache;
``ARCHSEARCH_NO_FUSED=1`` turns the fused kernels off. Where the build fails (no compiler), the fused
implementations report themselves unavailable, the registry falls back to the eager blocks, and one
line on the ``archsearch`` logger says why.
"""

from __future__ import annotations

import hashlib
import logging
import os
import platform
import threading
from pathlib import Path
from types import ModuleType

SOURCE = Path(__file__).with_name("csrc") / "kan_cpu.cpp"
_LOCK = threading.Lock()
_STATE: dict[str, ModuleType | str | None] = {}
log = logging.getLogger("archsearch")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("model name", "flags")):
                return line
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cache_dir() -> Path:
    """Where the compiled extension lives: one folder per source, torch version and CPU."""
    import torch

    key = hashlib.sha256(SOURCE.read_bytes() + torch.__version__.encode() + _cpu_model().encode()).hexdigest()[:16]
    root = os.environ.get("ARCHSEARCH_KERNEL_CACHE") or Path.home() / ".cache" / "archsearch" / "kernels"
    return Path(root) / key


def _build() -> ModuleType:
    from torch.utils.cpp_extension import load

    folder = cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    flags = ["-O3", "-fopenmp-simd", "-march=native" if platform.machine() in ("x86_64", "AMD64") else "-mcpu=native"]
    return load(name=f"archsearch_kan_cpu_{folder.name}", sources=[str(SOURCE)], extra_cflags=flags,
                build_directory=str(folder), verbose=False)


def _cause(exc: Exception) -> str:
    """The line of a failed build that says what went wrong (a compiler's error, a missing program), not
    the command line the build failure starts with; the full output is in the exception."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    telling = [line for line in lines if "error:" in line.lower() or line.endswith("not found")]
    return (telling or lines or [type(exc).__name__])[0][:200]


def extension() -> ModuleType | None:
    """The compiled module, building it on first call; ``None`` (once noticed) where it cannot be built."""
    with _LOCK:
        if "module" not in _STATE:
            if os.environ.get("ARCHSEARCH_NO_FUSED") == "1":
                _STATE["module"], _STATE["reason"] = None, "ARCHSEARCH_NO_FUSED=1"
            else:
                try:
                    _STATE["module"], _STATE["reason"] = _build(), None
                except Exception as exc:  # no compiler, no ninja, a failed build: fall back, say why once
                    _STATE["module"], _STATE["reason"] = None, f"fused CPU kernels unavailable ({_cause(exc)})"
                    log.warning("archsearch: %s; using the eager blocks", _STATE["reason"])
        module = _STATE["module"]
        return module if isinstance(module, ModuleType) else None


def warm() -> None:
    """Load the extension, building it first (with a one-line notice) where this machine has none cached:
    a run calls this before its first trial, so the build is not timed as part of one (nor cut off by a
    trial's time limit), and Ray workers on this machine load the cached build."""
    if "module" in _STATE or os.environ.get("ARCHSEARCH_NO_FUSED") == "1":
        return
    folder = cache_dir()
    if not any(folder.glob("*.so")) and not any(folder.glob("*.pyd")):
        log.warning("archsearch: building the fused CPU kernels for this machine (once, about 25 s)")
    extension()


def unavailable_reason() -> str | None:
    """``None`` when the fused CPU kernels run here, else why not (builds them on first call)."""
    extension()
    reason = _STATE.get("reason")
    return reason if isinstance(reason, str) else None
