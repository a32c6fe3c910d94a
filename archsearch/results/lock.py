"""One writer per run directory: an operating-system lock on ``RUN_DIR/run.lock``.

``run`` and ``resume`` hold it from before their first write to after their last; a second writer is
refused with a one-line error naming the holder (pid, host, since). The lock is ``fcntl.flock`` on a
file that stays in the directory, so the kernel releases it when its holder exits by any path,
``kill -9`` and power loss included: a lock of a dead process on this host is never stale. The file's
text records the holder for the error message only.

On a file system without working locks (some network mounts) the text is the lock: a holder on this
host whose pid is gone is taken over; one on another host is refused, and the message says to delete
``run.lock`` once that host's process is known to be gone.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import socket
import time
from pathlib import Path
from typing import Any

from archsearch.errors import ArchsearchError

LOCK_FILE = "run.lock"


class RunLockedError(ArchsearchError):
    """Another process writes this run directory."""


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _holder_text(holder: dict[str, Any]) -> str:
    since = holder.get("since")
    when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(since)) if isinstance(since, int | float) else "?"
    return f"pid {holder.get('pid', '?')} on {holder.get('host', '?')} since {when}"


class RunLock:
    """The single-writer lock of one run directory; a context manager, re-entrant in one process."""

    def __init__(self, run_dir: str | os.PathLike[str]) -> None:
        self.path = Path(run_dir) / LOCK_FILE
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self, what: str = "run") -> RunLock:
        """Take the lock or raise :class:`RunLockedError` naming the holder; never waits."""
        if self._fd is not None:
            return self
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            if not self._flock(fd):
                raise RunLockedError(self._refusal(self._read(fd), what))
            self._write(fd, what)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        return self

    def _flock(self, fd: int) -> bool:
        """True when this process now holds the lock."""
        import fcntl

        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False
        except OSError as exc:
            if exc.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.EINVAL):
                raise
        # No locks on this file system: the recorded holder decides.
        holder = self._read(fd)
        if not holder or holder.get("pid") == os.getpid() and holder.get("host") == socket.gethostname():
            return True
        if holder.get("host") == socket.gethostname() and isinstance(holder.get("pid"), int):
            return not _pid_alive(holder["pid"])
        return False

    @staticmethod
    def _read(fd: int) -> dict[str, Any]:
        try:
            data = json.loads(os.pread(fd, 4096, 0).decode("utf-8") or "{}")
        except (ValueError, OSError):
            return {}
        return data if isinstance(data, dict) else {}

    @staticmethod
    def _write(fd: int, what: str) -> None:
        text = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": time.time(), "command": what})
        os.ftruncate(fd, 0)
        os.pwrite(fd, text.encode() + b"\n", 0)

    def _refusal(self, holder: dict[str, Any], what: str) -> str:
        run_dir = self.path.parent
        held_by = _holder_text(holder) if holder else "another process"
        doing = holder.get("command", "run")
        if holder.get("host") not in (None, socket.gethostname()):
            advice = (f"wait for it to finish, or, once that process is known to be gone, delete "
                      f"{self.path} and retry")
        else:
            advice = f"wait for it to finish or stop it (kill {holder.get('pid', 'PID')}), then retry"
        return f"cannot {what} {run_dir}: another archsearch {doing} writes it ({held_by}); {advice}"

    def release(self) -> None:
        """Give the lock up (the file stays: removing it would race with a process about to lock it)."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
        os.close(fd)  # closing the descriptor releases the flock

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
