"""Reading ``journal.jsonl`` back: which bytes are records, which are a torn tail, which are damage.

A crash (or a power loss) can leave anything after the last complete record: half a line, a run of NUL
bytes (a file system that extended the file before the data reached the disk), bytes that are not
UTF-8, or a garbage line that happens to end in a newline. All of those are a *torn tail*: the bytes
from the first line that does not parse to the end of the file, provided no valid record follows.
Readers skip a torn tail; :func:`repair` moves it to ``journal.jsonl.torn`` before anything is
appended, so an append never turns a skippable tail into damage in the middle of the file.

A line that does not parse *followed by* a valid record is not a tail: it is damage in the middle of
the journal, and reading stops with a one-line error naming the line (nothing is dropped silently).
A valid last record lacking only its newline is a complete record: it is kept, and repair adds the
newline.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from archsearch.errors import ArchsearchError
from archsearch.trial import STATUSES

TORN_SUFFIX = ".torn"
TRIAL_EVENTS = ("trial_started", "trial_finished", "trial_reported")
MAX_RECORD_BYTES = 64 * 1024 * 1024  # a line longer than this is damage, not a record


class JournalError(ArchsearchError):
    """A journal damaged in a way that cannot be read around; the message names the file and line."""


@dataclass
class JournalScan:
    """The readable records of a journal and where its torn tail (if any) starts.

    Attributes:
        records: the parsed records, in order.
        keep: bytes of the file that hold records (the torn tail starts here).
        size: the file's size in bytes.
        unterminated: the last kept record lacks its final newline.
    """

    records: list[dict[str, Any]] = field(default_factory=list)
    keep: int = 0
    size: int = 0
    unterminated: bool = False

    @property
    def torn(self) -> int:
        """Bytes in the torn tail."""
        return self.size - self.keep


def _parse(line: bytes) -> Any:
    """The JSON value of one line, or ``None`` when the line does not parse (a torn tail candidate)."""
    if not line.strip() or b"\x00" in line or len(line) > MAX_RECORD_BYTES:
        return None
    try:
        return json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def record_problem(record: Any) -> str:
    """Why a parsed line is not a usable record ('' when it is).

    Trial events are checked down to the fields the readers use, so a damaged record is refused here,
    with its line, rather than failing later inside a table builder.
    """
    if not isinstance(record, dict):
        return f"a record must be a JSON object, got {type(record).__name__}"
    event = record.get("event")
    if not isinstance(event, str):
        return "a record without an 'event' name"
    if event not in TRIAL_EVENTS:
        return ""
    trial_id = record.get("trial_id")
    if not isinstance(trial_id, int) or isinstance(trial_id, bool) or trial_id < 0:
        return f"{event} record without a valid 'trial_id'"
    if not _is_number(record.get("time")):
        return f"{event} record without a valid 'time'"
    if event == "trial_started":
        candidate = record.get("candidate")
        if not isinstance(candidate, dict):
            return "trial_started record without a valid 'candidate'"
        if "architecture" not in candidate or not isinstance(candidate.get("decisions", {}), dict):
            return "trial_started record whose candidate lacks its architecture or decisions"
        if not isinstance(candidate.get("arch_id"), str):
            return "trial_started record whose candidate lacks its arch_id"
        if candidate.get("fidelity") is not None and not _is_number(candidate["fidelity"]):
            return "trial_started record whose candidate has a non-numeric fidelity"
        return ""
    if event == "trial_reported":  # a rung reached: the trial goes on from its checkpoint
        rung = record.get("rung")
        if not isinstance(rung, int) or isinstance(rung, bool) or rung < 0:
            return "trial_reported record without a valid 'rung'"
    result = record.get("result")
    if not isinstance(result, dict):
        return f"{event} record without a valid 'result'"
    if result.get("status") not in STATUSES:
        return f"{event} record whose result status is not one of {', '.join(STATUSES)}"
    metrics = result.get("metrics", {})
    if not isinstance(metrics, dict) or not all(isinstance(k, str) and _is_number(v) for k, v in metrics.items()):
        return f"{event} record whose metrics are not a mapping of names to numbers"
    if not isinstance(result.get("info", {}), dict):
        return f"{event} record whose info is not a mapping"
    if result.get("error") is not None and not isinstance(result["error"], str):
        return f"{event} record whose error is not text"
    return ""


def scan(path: Path) -> JournalScan:
    """Parse the journal at ``path``: its records, and where a torn tail starts (see the module doc)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return JournalScan()
    except OSError as exc:
        raise JournalError(f"cannot read {path}: {exc.strerror or exc}") from None
    found = JournalScan(size=len(data))
    offset, number, bad_line = 0, 0, 0
    while offset < len(data):
        end = data.find(b"\n", offset)
        line_end = len(data) if end < 0 else end + 1
        number += 1
        value = _parse(data[offset:line_end])
        if value is None:
            bad_line = bad_line or number
        else:
            problem = record_problem(value)
            if problem:
                raise JournalError(f"{path} is corrupted at line {number}: {problem}")
            if bad_line:
                raise JournalError(f"{path} is corrupted at line {bad_line}: it does not parse, and valid "
                                   f"records follow it (line {number}); restore the file from a backup")
            found.records.append(value)
            found.keep = line_end
            found.unterminated = end < 0
        offset = line_end
    return found


def repair(path: Path) -> str | None:
    """Make the journal end in a complete record before anything appends to it; say what was done.

    A torn tail is appended to ``journal.jsonl.torn`` (kept for inspection, fsync'd) before the journal
    is cut back; a last record missing only its newline gets one.
    """
    found = scan(path)
    if found.torn:
        with open(path, "rb") as f:
            f.seek(found.keep)
            tail = f.read()
        with open(path.with_name(path.name + TORN_SUFFIX), "ab") as f:
            f.write(tail)
            f.flush()
            os.fsync(f.fileno())
    if not found.torn and not found.unterminated:
        return None
    with open(path, "r+b") as f:
        f.truncate(found.keep)
        if found.unterminated:
            f.seek(found.keep)
            f.write(b"\n")
        f.flush()
        os.fsync(f.fileno())
    if found.torn:
        return (f"cut a torn last journal record of {found.torn} bytes (kept in {path.name}{TORN_SUFFIX})"
                + ("; completed the last record's line" if found.unterminated else ""))
    return "completed the last record's line (it lacked only its newline)"
