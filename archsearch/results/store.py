"""The run directory: an append-only journal as the source of truth, Parquet tables derived from it.

Layout of ``RUN_DIR``::

    run.lock              held by the one process that writes the run (see results/lock.py)
    run.json              what the run is: schema version, space, strategy, task, objectives, seed, budget
    config.yaml           the fully resolved configuration
    journal.jsonl         one JSON record per line, appended and fsync'd, never rewritten
    strategy_state.json   the strategy's state after the last ask or tell, with how many journal
                          records it has seen (atomic replace)
    weights/              trial_<id>.safetensors for the trials on the Pareto front (kept_weights=front)
    checkpoints/          trial_<id>.ckpt: where a trial paused at a rung continues from (removed once
                          the trial stops); safetensors with the loop state as JSON in its header
    trials.parquet        one row per trial, rebuilt from the journal (atomic replace)
    pareto.parquet        the non-dominated complete trials over the run's objectives
    pareto.json           hypervolume of that front with its normalization and reference point
    curves.parquet        one row per trial and epoch: the learning curves

Every write that replaces a file goes through a temporary file and ``os.replace``, so a reader (or a
crash) never sees half a table.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from archsearch.errors import ArchsearchError
from archsearch.results import journal
from archsearch.results.lock import LOCK_FILE, RunLock
from archsearch.trial import Candidate, EvalResult
from archsearch.versions import RUN_SCHEMA_VERSION

RUN_FILE = "run.json"
CONFIG_FILE = "config.yaml"
JOURNAL_FILE = "journal.jsonl"
STATE_FILE = "strategy_state.json"
TRIALS_FILE = "trials.parquet"
PARETO_FILE = "pareto.parquet"
PARETO_SUMMARY_FILE = "pareto.json"
WEIGHTS_DIR = "weights"
CHECKPOINTS_DIR = "checkpoints"
CURVES_FILE = "curves.parquet"


class RunDirError(ArchsearchError):
    """A run directory that cannot be created or read; the message says why and what to do."""


def atomic_write_text(path: Path, text: str, durable: bool = True) -> None:
    """Write via a temporary file and ``os.replace``: readers see the old or the new file, never half."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        if durable:
            os.fsync(f.fileno())
    os.replace(tmp, path)


def atomic_write_json(path: Path, data: Any, durable: bool = True) -> None:
    # No sort_keys: key order carries meaning (the objectives' order).
    atomic_write_text(path, json.dumps(data, indent=2) + "\n", durable)


def journal_line(record: Mapping[str, Any]) -> str:
    """One journal record as written. No sort_keys: a candidate's decisions keep the order they were
    made in, which strategies read (mutation picks a decision by position, encoders add columns as labels
    appear); a journal that reordered them would make a resumed run propose other architectures than an
    uninterrupted one."""
    return json.dumps(record)


class RunStore:
    """Reads and appends to one run directory.

    Use :meth:`create` for a new run (refuses a directory that already holds anything) and
    :meth:`open` for an existing one (checks the schema version).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.lock = RunLock(self.path)
        self._repaired: str | None = None

    def acquire(self, what: str = "run") -> RunStore:
        """Become the run directory's one writer (see :mod:`archsearch.results.lock`)."""
        self.lock.acquire(what)
        return self

    def release(self) -> None:
        self.lock.release()

    # -- creation and opening -------------------------------------------------------------------

    @classmethod
    def create(cls, path: str | os.PathLike[str], run_info: Mapping[str, Any], config_yaml: str) -> RunStore:
        store = cls(path)
        if store.path.exists() and not store.path.is_dir():
            raise RunDirError(f"run_dir {store.path} exists and is not a directory")
        if (store.path / RUN_FILE).exists():
            raise RunDirError(f"run_dir {store.path} already holds a run; choose another run_dir "
                              f"(or continue that run with `archsearch resume {store.path}`)")
        store.path.mkdir(parents=True, exist_ok=True)
        had_lock_file = (store.path / LOCK_FILE).exists()
        store.acquire("run")  # then look again: two runs started on one run_dir must not both pass
        try:
            present = {p.name for p in store.path.iterdir()} - {LOCK_FILE}
            if RUN_FILE in present:
                raise RunDirError(f"run_dir {store.path} already holds a run; choose another run_dir")
            if present and present <= {CONFIG_FILE, JOURNAL_FILE}:
                raise RunDirError(f"run_dir {store.path} holds a run whose creation was interrupted "
                                  "(no run.json); delete it or choose another run_dir")
            if present:
                raise RunDirError(f"run_dir {store.path} is not empty; choose a new or empty directory")
            info = {"schema_version": RUN_SCHEMA_VERSION, "created": time.time(), **run_info}
            atomic_write_text(store.path / CONFIG_FILE, config_yaml)
            store.append({"event": "run_created", "schema_version": RUN_SCHEMA_VERSION})
            atomic_write_json(store.path / RUN_FILE, info)  # last: its presence marks a complete run directory
        except BaseException:
            if not had_lock_file and not (store.path / RUN_FILE).exists():
                (store.path / LOCK_FILE).unlink(missing_ok=True)  # leave a refused directory as it was
            store.release()
            raise
        return store

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> RunStore:
        store = cls(path)
        run_file = store.path / RUN_FILE
        if not run_file.exists():
            raise RunDirError(f"{store.path} is not an archsearch run directory (no {RUN_FILE})")
        version = store.info().get("schema_version")
        if version != RUN_SCHEMA_VERSION:
            raise RunDirError(
                f"{run_file} has schema_version {version!r}; this archsearch reads {RUN_SCHEMA_VERSION}. "
                "Use the archsearch version that wrote it, or upgrade."
            )
        return store

    def info(self) -> dict[str, Any]:
        path = self.path / RUN_FILE
        try:
            info = json.loads(path.read_bytes().decode("utf-8"))
        except (OSError, ValueError, RecursionError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 JSON" if isinstance(
                exc, UnicodeDecodeError) else "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
            raise RunDirError(f"cannot read {path}: {reason}") from None
        objectives = info.get("objectives") if isinstance(info, dict) else None
        if not isinstance(objectives, dict) or not objectives or not all(
                isinstance(k, str) and v in ("maximize", "minimize") for k, v in objectives.items()):
            raise RunDirError(f"{path} is corrupted: expected a JSON object with the run's schema_version, "
                              "space, strategy and objectives ({metric: maximize|minimize})")
        return info

    def config_yaml(self) -> str:
        try:
            return (self.path / CONFIG_FILE).read_bytes().decode("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise RunDirError(f"cannot read {self.path / CONFIG_FILE}: "
                              f"{exc.strerror if isinstance(exc, OSError) else 'not UTF-8 text'}") from None

    # -- the journal ----------------------------------------------------------------------------

    def append(self, record: Mapping[str, Any], durable: bool = True) -> None:
        """Append one record; with ``durable`` it is fsync'd, so once this returns it survives a crash.

        A non-durable record reaches the disk with the next durable one (fsync flushes the whole file).
        """
        if not self.lock.held:
            raise RunDirError(f"{self.path}: appending to the journal needs the run's lock (RunStore.acquire)")
        line = journal_line({"time": time.time(), **record})
        with open(self.path / JOURNAL_FILE, "a", encoding="utf-8") as f:
            f.write(line + "\n")
            f.flush()
            if durable:
                os.fsync(f.fileno())

    def trial_started(self, trial_id: int, candidate: Candidate, fidelity: float | None = None) -> None:
        """``fidelity``: what the trial is first trained to, when a scheduler decides (``None``: full)."""
        # Not fsync'd: a start lost in a crash only means the candidate is proposed again on resume.
        record = {"event": "trial_started", "trial_id": trial_id, "candidate": candidate.to_dict()}
        if fidelity is not None:
            record["fidelity"] = fidelity
        self.append(record, durable=False)

    def trial_reported(self, trial_id: int, rung: int, fidelity: float | None, next_fidelity: float,
                       result: EvalResult) -> None:
        """A trial reached ``rung`` and goes on to ``next_fidelity`` (its checkpoint is saved before this)."""
        self.append({"event": "trial_reported", "trial_id": trial_id, "rung": rung, "fidelity": fidelity,
                     "next_fidelity": next_fidelity, "result": result.to_dict()})

    def trial_finished(self, trial_id: int, result: EvalResult) -> None:
        self.append({"event": "trial_finished", "trial_id": trial_id, "result": result.to_dict()})

    def records(self) -> Iterator[dict[str, Any]]:
        """Journal records in order; a torn tail (a crash mid-write) is skipped, damage is an error."""
        try:
            yield from journal.scan(self.path / JOURNAL_FILE).records
        except journal.JournalError as exc:
            raise RunDirError(str(exc)) from None

    def check_journal(self) -> None:
        """Read the whole journal once, so that damage is refused when a run is opened, not later inside
        a table builder or a plot."""
        for _ in self.records():
            pass

    def trials(self) -> list[dict[str, Any]]:
        """One dict per trial (started ones included), merged from the journal, ordered by trial id."""
        trials: dict[int, dict[str, Any]] = {}
        for record in self.records():
            event = record.get("event")
            if event == "trial_started":
                trials[record["trial_id"]] = {
                    "trial_id": record["trial_id"],
                    "candidate": record["candidate"],
                    "started_at": record["time"],
                    "fidelity": record.get("fidelity"),
                    "reports": [],
                    "result": None,
                    "finished_at": None,
                }
            elif event == "trial_reported" and record["trial_id"] in trials:
                trials[record["trial_id"]]["reports"].append(
                    {k: record.get(k) for k in ("rung", "fidelity", "next_fidelity", "result", "time")})
            elif event == "trial_finished" and record["trial_id"] in trials:
                trials[record["trial_id"]].update(result=record["result"], finished_at=record["time"])
        return [trials[k] for k in sorted(trials)]

    def strategy_ops(self) -> list[tuple[str, int, Candidate, EvalResult | None]]:
        """The strategy's history as the journal saw it: ``("ask", ...)`` per start, ``("tell", ...)`` per finish."""
        ops: list[tuple[str, int, Candidate, EvalResult | None]] = []
        candidates: dict[int, Candidate] = {}
        for record in self.records():
            event = record.get("event")
            if event == "trial_started":
                try:
                    candidate = Candidate.from_dict(record["candidate"])
                except (KeyError, TypeError, ValueError) as exc:
                    raise RunDirError(f"{self.path / JOURNAL_FILE}: the candidate of trial {record.get('trial_id')!r} "
                                      f"is malformed ({exc!r})") from None
                candidates[record["trial_id"]] = candidate
                ops.append(("ask", record["trial_id"], candidate, None))
            elif event == "trial_finished" and record["trial_id"] in candidates:
                result = EvalResult.from_dict(record["result"])
                ops.append(("tell", record["trial_id"], candidates[record["trial_id"]], result))
        return ops

    def check_not_emptied(self) -> None:
        """Refuse a journal that lost its trials while ``trials.parquet`` still holds some.

        The journal is the record of the run: resuming over an emptied one would train everything again
        and overwrite the table, the last copy of the results.
        """
        path = self.path / JOURNAL_FILE
        with open(path, "rb") if path.exists() else open(os.devnull, "rb") as f:
            if any(b'"event": "trial_' in line for line in f):  # records are written with this spacing
                return
        table = self.path / TRIALS_FILE
        try:
            import pyarrow.parquet as pq

            rows = pq.ParquetFile(table).metadata.num_rows if table.exists() else 0
        except Exception:  # an unreadable table: not evidence of lost trials
            rows = 0
        if rows:
            state = "is missing" if not (self.path / JOURNAL_FILE).exists() else "holds no trials"
            raise RunDirError(
                f"{self.path / JOURNAL_FILE} {state} but {table} holds {rows} trials; restore the journal from a "
                f"backup, or copy {TRIALS_FILE} elsewhere and start a new run (resuming would overwrite it)")

    # -- strategy state -------------------------------------------------------------------------

    def save_strategy_state(self, state: Mapping[str, Any], durable: bool = False) -> None:
        """Replace the state file atomically; fsync only when asked (the engine does at the end)."""
        atomic_write_json(self.path / STATE_FILE, state, durable)

    def load_strategy_state(self) -> dict[str, Any] | None:
        """The saved state, or ``None`` if there is none or it cannot be read (the engine then rebuilds it)."""
        path = self.path / STATE_FILE
        try:
            state = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            return None
        if not isinstance(state, dict) or not {"journal_ops", "strategy"} <= set(state):
            return None
        return state

    def repair_journal(self) -> str | None:
        """Make the journal end in a complete record before anything is appended (see ``journal.repair``).

        Returns what this store's repairs did so far (a resume repairs before its first append, and the
        engine reports it later), or ``None`` if the journal was intact.
        """
        try:
            done = journal.repair(self.path / JOURNAL_FILE)
        except journal.JournalError as exc:
            raise RunDirError(str(exc)) from None
        self._repaired = done or self._repaired
        return self._repaired

    # -- weights --------------------------------------------------------------------------------

    def weights_path(self, trial_id: int) -> Path:
        return self.path / WEIGHTS_DIR / f"trial_{trial_id}.safetensors"

    def save_weights(self, trial_id: int, data: bytes) -> None:
        _write_atomically(self.weights_path(trial_id), data, durable=False)

    def drop_weights(self, trial_id: int) -> None:
        self.weights_path(trial_id).unlink(missing_ok=True)

    def kept_weights(self) -> list[int]:
        return _trial_ids(self.path / WEIGHTS_DIR, ".safetensors")

    # -- checkpoints ----------------------------------------------------------------------------

    def checkpoint_path(self, trial_id: int) -> Path:
        return self.path / CHECKPOINTS_DIR / f"trial_{trial_id}.ckpt"

    def save_checkpoint(self, trial_id: int, data: bytes) -> None:
        """Atomically and durably: the ``trial_reported`` record that follows promises it exists."""
        _write_atomically(self.checkpoint_path(trial_id), data, durable=True)

    def load_checkpoint(self, trial_id: int) -> bytes | None:
        path = self.checkpoint_path(trial_id)
        return path.read_bytes() if path.exists() else None

    def drop_checkpoint(self, trial_id: int) -> None:
        """A trial that stopped can no longer be continued: its checkpoint goes."""
        self.checkpoint_path(trial_id).unlink(missing_ok=True)

    def kept_checkpoints(self) -> list[int]:
        return _trial_ids(self.path / CHECKPOINTS_DIR, ".ckpt")

    # -- tables ---------------------------------------------------------------------------------

    def write_tables(self) -> dict[str, Any]:
        """Rebuild ``trials.parquet``, ``pareto.parquet``, ``pareto.json`` and ``curves.parquet`` from the journal."""
        from archsearch.results.curves import curves_table
        from archsearch.results.tables import pareto_summary, pareto_table, trials_table, write_parquet

        objectives = self.info()["objectives"]
        trials = self.trials()
        write_parquet(curves_table(trials), self.path / CURVES_FILE)
        table = trials_table(trials, objectives)
        write_parquet(table, self.path / TRIALS_FILE)
        front = pareto_table(table, objectives)
        write_parquet(front, self.path / PARETO_FILE)
        summary = pareto_summary(table, objectives)
        atomic_write_json(self.path / PARETO_SUMMARY_FILE, summary)
        return summary


def _write_atomically(path: Path, data: bytes, durable: bool) -> None:
    """Write, then rename: a reader sees the old file or the new one, never half of one; ``durable``
    also survives a power loss (fsync before the rename)."""
    path.parent.mkdir(exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        if durable:
            f.flush()
            os.fsync(f.fileno())
    os.replace(tmp, path)


def _trial_ids(folder: Path, suffix: str) -> list[int]:
    """The trial ids of the ``trial_<id><suffix>`` files in ``folder``."""
    if not folder.is_dir():
        return []
    return sorted(int(p.name.removeprefix("trial_").removesuffix(suffix)) for p in folder.glob(f"trial_*{suffix}"))
