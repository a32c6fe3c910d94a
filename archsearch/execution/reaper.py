"""Stops the Ray processes a run started when its driver dies without closing them (``kill -9``).

Ray shares the fate of its head processes with the driver that started them, but the per-node agents
and idle workers they spawn can outlive it. The executor starts this module (``python -m
archsearch.execution.reaper DRIVER_PID``) just before it starts Ray, as a small process in a session of
its own that holds the read end of a pipe whose write end only the driver has. Every half second it
notes the driver's Ray processes (descendants whose command line is Ray's: ``gcs_server``, ``raylet``,
``ray::...``, Python under ``ray/``) and everything below them, with their start times, so a reused pid
is never touched and the driver's other children are left alone. When the pipe closes without the
driver having said ``done`` (it died), the reaper sends SIGTERM to those processes, then SIGKILL to
any left after a grace period. Linux only (it reads ``/proc``); elsewhere the executor does not start it.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import sys
import time
from pathlib import Path

GRACE_S = 3.0
POLL_S = 0.5
RAY_MARKERS = (b"site-packages/ray/", b"/ray/_private/", b"/ray/core/src/ray/", b"/ray/dashboard/", b"ray::")


def _stat(pid: int) -> tuple[int, int] | None:
    """(parent pid, start time) of a live process, or ``None``."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(fields[1]), int(fields[19])


def _is_ray(pid: int) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return any(marker in cmdline for marker in RAY_MARKERS)


def _table() -> tuple[dict[int, list[int]], dict[int, int]]:
    children: dict[int, list[int]] = {}
    starts: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            found = _stat(int(entry))
            if found is not None:
                children.setdefault(found[0], []).append(int(entry))
                starts[int(entry)] = found[1]
    return children, starts


def _below(roots: list[int], children: dict[int, list[int]], starts: dict[int, int]) -> dict[int, int]:
    tree: dict[int, int] = {}
    todo = [pid for pid in roots if pid in starts]
    while todo:
        pid = todo.pop()
        if pid not in tree:
            tree[pid] = starts[pid]
            todo.extend(children.get(pid, []))
    return tree


def ray_processes(driver: int, known: dict[int, int]) -> dict[int, int]:
    """The driver's Ray children and everything below them, and below the processes already known."""
    children, starts = _table()
    roots = [pid for pid in children.get(driver, []) if pid != os.getpid() and _is_ray(pid)]
    roots += [pid for pid, start in known.items() if starts.get(pid) == start]
    return _below(roots, children, starts)


def _alive(watched: dict[int, int]) -> list[int]:
    return [pid for pid, start in watched.items() if (_stat(pid) or (0, -1))[1] == start]


def stop(watched: dict[int, int]) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in _alive(watched):
            with contextlib.suppress(OSError):
                os.kill(pid, sig)
        deadline = time.monotonic() + GRACE_S
        while _alive(watched) and time.monotonic() < deadline:
            time.sleep(0.1)


def main(argv: list[str]) -> int:
    driver = int(argv[0])
    watched: dict[int, int] = {}
    while True:
        watched.update(ray_processes(driver, watched))
        ready, _, _ = select.select([sys.stdin.buffer], [], [], POLL_S)
        if ready:
            data = os.read(sys.stdin.fileno(), 64)
            if data.startswith(b"done"):
                return 0
            if not data:  # the driver died: its end of the pipe closed without a word
                watched.update(ray_processes(driver, watched))  # what the known ones started since
                stop(watched)
                return 0


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C meant for the driver is not for the reaper
    sys.exit(main(sys.argv[1:]))
