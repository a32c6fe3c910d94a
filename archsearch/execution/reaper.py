"""Stops the Ray processes a run started when its driver dies without closing them (``kill -9``).

Ray shares the fate of its head processes with the driver that started them, but the per-node agents
and idle workers they spawn can outlive it. The executor starts this module as a small separate
process (``python -m archsearch.execution.reaper ROOT_PID...``) that holds the read end of a pipe whose
write end only the driver has. While the driver lives, the reaper notes, every second, the Ray processes
the run started (the roots Ray reports and all their descendants, with their start times, so a reused
pid is never touched). When the pipe closes without the driver having said ``done`` (it died), the
reaper sends SIGTERM to those processes, then SIGKILL to any left after a grace period. Linux only (it
reads ``/proc``); elsewhere the executor does not start it.
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


def _stat(pid: int) -> tuple[int, int] | None:
    """(parent pid, start time) of a live process, or ``None``."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(fields[1]), int(fields[19])


def descendants(roots: set[int]) -> dict[int, int]:
    """``{pid: start time}`` of the roots and every process below them."""
    parents: dict[int, list[int]] = {}
    starts: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            found = _stat(int(entry))
            if found is not None:
                parents.setdefault(found[0], []).append(int(entry))
                starts[int(entry)] = found[1]
    tree: dict[int, int] = {}
    todo = [pid for pid in roots if pid in starts]
    while todo:
        pid = todo.pop()
        if pid not in tree:
            tree[pid] = starts[pid]
            todo.extend(parents.get(pid, []))
    return tree


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
    roots = {int(pid) for pid in argv}
    watched: dict[int, int] = {}
    me = os.getpid()
    while True:
        watched.update({pid: start for pid, start in descendants(roots).items() if pid != me})
        ready, _, _ = select.select([sys.stdin.buffer], [], [], 1.0)
        if ready:
            data = os.read(sys.stdin.fileno(), 64)
            if data.startswith(b"done"):
                return 0
            if not data:  # the driver died: its end of the pipe closed without a word
                stop(watched)
                return 0


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C meant for the driver is not for the reaper
    sys.exit(main(sys.argv[1:]))
