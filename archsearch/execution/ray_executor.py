"""Evaluation on Ray: persistent evaluator actors, asynchronous scheduling, recovery from lost workers.

Each worker is a long-lived actor holding the evaluator, so torch is imported once per worker, not
once per candidate; the evaluator, with the task's data the driver already loaded, is put in Ray's
object store once and shared by every actor. A free worker gets the next candidate as soon as its
previous result arrives. A worker (or its whole node) that dies has its candidate resubmitted to a
fresh worker, up to ``max_retries`` times; a candidate past ``trial_timeout_s`` has its worker killed
and is recorded as failed. Nothing here blocks on a single worker, so a lost one cannot hang the driver.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from archsearch.errors import ConfigError, one_line
from archsearch.execution._base import Evaluator, Job, run_group
from archsearch.trial import Candidate, EvalResult

MAX_FAILED_STARTS = 5


class _EvaluatorWorker:
    """The body of one Ray actor: one torch thread and the evaluator, with its task's data."""

    def __init__(self, evaluator: Evaluator, threads: int) -> None:
        os.environ["OMP_NUM_THREADS"] = str(threads)
        # Unpickling a torch evaluator has imported torch already; a user's function evaluator need not
        # pay the second or so that importing it costs.
        if "torch" in sys.modules:
            sys.modules["torch"].set_num_threads(threads)
        self.evaluator = evaluator
        evaluator.warm_up()
        import ray

        context = ray.get_runtime_context()
        self.node_id = context.get_node_id()
        self.worker = f"ray:{ray.util.get_node_ip_address()}:{os.getpid()}"

    def run(self, candidates: list[Candidate],
            checkpoints: list[bytes | None]) -> list[tuple[dict[str, Any], bytes | None, bytes | None]]:
        """One job (a trial, or a group of them: ``run_group``), one result each."""
        try:
            results = run_group(self.evaluator, candidates, checkpoints)
        except BaseException as exc:  # an evaluator bug, sys.exit() or a stray Ctrl-C costs the trials, never the worker
            results = [EvalResult.crashed(exc) for _ in candidates]
        for result in results:
            result.info.update(worker=self.worker, node=self.node_id)
        return [(result.to_dict(), result.weights, result.checkpoint) for result in results]

    def ping(self) -> str:
        return self.worker


@dataclass
class _Running:
    job: Job
    worker: int
    started: float
    attempt: int


@contextlib.contextmanager
def _quiet_ray_notices() -> Iterator[None]:
    """Keep Ray's start-up notices (the token-authentication one) out of the user's terminal.

    Only what Ray logs while ``ray.init`` runs is raised to ERROR; the security setting itself is left
    as Ray chose it.
    """
    loggers = [logging.getLogger(name) for name in ("ray._private.authentication", "ray._private.worker", "ray")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def describe_cluster(ray: Any) -> str:
    """``the Ray cluster at 10.0.0.5:6379 (3 nodes, 48 CPUs, 2 GPUs)``."""
    address = ray.get_runtime_context().gcs_address
    nodes = sum(1 for node in ray.nodes() if node.get("Alive"))
    resources = ray.cluster_resources()
    gpus = f", {resources['GPU']:g} GPUs" if resources.get("GPU") else ""
    return f"the Ray cluster at {address} ({nodes} node{'s' if nodes != 1 else ''}, {resources.get('CPU', 0):g} CPUs{gpus})"


class RayExecutor:
    """Runs evaluations on Ray actors; starts a local Ray unless ``address`` names a cluster.

    Args:
        address: ``None`` starts a fresh local Ray inside the run (never an existing cluster); ``"auto"`` or
            ``"host:port"`` joins a running cluster (``ray start --head`` on one machine, ``ray start --address=...`` on the others).
        workers: number of evaluator actors; default: the CPUs Ray reports divided by ``cpus_per_worker``.
        cpus_per_worker: CPUs reserved per actor (and torch threads it uses).
        gpus_per_worker: GPUs (or a fraction) reserved per actor.
        max_retries: resubmissions of a candidate whose worker died before it is recorded as failed.
        trial_timeout_s: wall-clock limit per candidate (a job of k stacked trials gets k times it);
            ``None`` for none.
        py_modules: your own packages or modules (local paths) that workers must import, e.g. the module
            defining your evaluate function; Ray ships them to every worker. Nothing else from the
            working directory reaches the workers.
    """

    def __init__(
        self,
        address: str | None = None,
        workers: int | None = None,
        cpus_per_worker: float = 1,
        gpus_per_worker: float = 0,
        max_retries: int = 2,
        trial_timeout_s: float | None = None,
        py_modules: list[str] | None = None,
    ) -> None:
        self.address = address
        self.py_modules = py_modules
        self.workers = workers
        self.cpus_per_worker = cpus_per_worker
        self.gpus_per_worker = gpus_per_worker
        self.max_retries = max_retries
        self.trial_timeout_s = trial_timeout_s
        self.capacity = 0
        self._actors: list[Any] = []  # one slot per worker; None once retired
        self._idle: deque[int] = deque()
        self._running: dict[Any, _Running] = {}  # ObjectRef -> what it computes
        self._starting: dict[Any, int] = {}  # ping ObjectRef -> worker slot whose actor is starting
        self._failed_starts = 0  # consecutive actors that died before answering
        self._queue: deque[tuple[Job, int]] = deque()  # a job and its attempt
        self._ready: list[tuple[int, EvalResult]] = []
        self._started_ray = False
        self._reaper: Any = None  # the process that stops this run's Ray if the driver dies (reaper.py)
        self._empty_dir: str | None = None
        self._evaluator_ref: Any = None  # the evaluator in Ray's object store, shared by every actor

    # -- lifecycle --------------------------------------------------------------------------------

    def start(self, evaluator: Evaluator) -> None:
        import ray

        if self.workers is not None and self.workers < 1:
            raise ConfigError(f"executor.workers must be at least 1, got {self.workers}")
        if not ray.is_initialized():
            self._init_ray(ray)
        if self.address is not None:
            print(f"archsearch: joined {describe_cluster(ray)}", file=sys.stderr)
        # Put once, not pickled into each actor's creation: evaluators that carry their task's data
        # (``for_workers``) would otherwise copy it once per actor and per replacement.
        shipped = evaluator.for_workers()
        self._evaluator_ref = ray.put(shipped)
        n_workers = self.workers or max(1, int(ray.cluster_resources().get("CPU", 1) // self.cpus_per_worker))
        self.capacity = n_workers
        self._actors = [None] * n_workers
        for worker in range(n_workers):
            self._start_actor(worker)

    def _init_ray(self, ray: Any) -> None:
        kwargs: dict[str, Any] = {"include_dashboard": False, "configure_logging": False, "log_to_driver": True}
        # Workers get archsearch's own code and the modules named in py_modules, never the driver's
        # working directory: Ray would put it first on their import path (a stray sitecustomize.py or a
        # module named like a dependency would run there). An empty working_dir is what turns that off.
        self._empty_dir = tempfile.mkdtemp(prefix="archsearch-ray-")
        env = {"OMP_NUM_THREADS": "1"}
        if self.address is None:  # a cluster's machines import their own installed archsearch
            env["PYTHONPATH"] = _package_path()
        runtime_env: dict[str, Any] = {"working_dir": self._empty_dir, "env_vars": env}
        if self.py_modules:
            runtime_env["py_modules"] = [os.path.abspath(os.path.expanduser(m)) for m in self.py_modules]
        kwargs["runtime_env"] = runtime_env
        if self.address is None:
            self._reaper = start_reaper()  # before Ray starts: a kill during ray.init is covered too
            # "local": always a fresh Ray of this run's own, never a cluster found in Ray's temp directory
            # or RAY_ADDRESS; joining one is asked for with executor.address=auto (or host:port).
            kwargs["address"] = "local"
            if self.workers is not None:
                kwargs["num_cpus"] = max(1, int(self.workers * self.cpus_per_worker + 0.999))
            self._started_ray = True
        else:
            kwargs["address"] = self.address
        try:
            with _quiet_ray_notices():
                ray.init(**kwargs)
        except (ConnectionError, ValueError, RuntimeError) as exc:
            self.close()
            where = "start a local Ray" if self.address is None else f"reach a Ray cluster at {self.address!r}"
            raise ConfigError(f"cannot {where}: {one_line(str(exc).strip(), 300)}; start one with "
                              "`ray start --head` or leave executor.address unset for a local Ray") from None

    def _start_actor(self, worker: int) -> None:
        """Start an actor in slot ``worker``; it takes candidates once it answers (torch and data loaded),
        so its start-up never counts against a candidate's time limit."""
        import ray

        actor_cls: Any = ray.remote(_EvaluatorWorker)  # an actor class; its typing is Ray's, not ours
        threads = max(1, int(self.cpus_per_worker))
        actor = actor_cls.options(
            num_cpus=self.cpus_per_worker, num_gpus=self.gpus_per_worker, max_restarts=0, max_task_retries=0
        ).remote(self._evaluator_ref, threads)
        self._actors[worker] = actor
        self._starting[actor.ping.remote()] = worker

    def close(self) -> None:
        import ray

        for actor in self._actors:
            if actor is None:
                continue
            with contextlib.suppress(Exception):  # already gone with its node
                ray.kill(actor)
        self._actors, self._running, self._starting, self._queue = [], {}, {}, deque()
        self._evaluator_ref = None
        if self._started_ray and ray.is_initialized():
            ray.shutdown()
            self._started_ray = False
        if self._reaper is not None:
            with contextlib.suppress(OSError):
                self._reaper.stdin.write(b"done\n")
                self._reaper.stdin.close()
            self._reaper.wait()
            self._reaper = None
        if self._empty_dir is not None:
            shutil.rmtree(self._empty_dir, ignore_errors=True)
            self._empty_dir = None

    # -- scheduling -------------------------------------------------------------------------------

    def submit(self, trial_id: int, candidate: Candidate, checkpoint: bytes | None = None) -> None:
        self._queue.append(([(trial_id, candidate, checkpoint)], 0))
        self._dispatch()

    def submit_group(self, work: Job) -> None:
        self._queue.append((list(work), 0))
        self._dispatch()

    def _dispatch(self) -> None:
        while self._queue and self._idle:
            job, attempt = self._queue.popleft()
            worker = self._idle.popleft()
            ref = self._actors[worker].run.remote([c for _, c, _ in job], [ckpt for _, _, ckpt in job])
            self._running[ref] = _Running(job, worker, time.monotonic(), attempt)

    def _fail_job(self, job: Job, reason: str, attempts: int) -> None:
        for trial_id, _, _ in job:
            self._ready.append((trial_id, EvalResult.failed(reason, attempts=attempts)))

    def collect(self, timeout: float | None = None) -> list[tuple[int, EvalResult]]:
        import ray

        if self._queue and not any(actor is not None for actor in self._actors):
            while self._queue:  # every worker slot was retired with its node: nothing can run these
                job, attempt = self._queue.popleft()
                self._fail_job(job, "no Ray workers left in the cluster", attempt + 1)
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._ready and (self._running or self._queue):
            if not (self._running or self._starting):
                break
            wait_s = 0.5 if deadline is None else max(0.0, min(0.5, deadline - time.monotonic()))
            done, _ = ray.wait([*self._running, *self._starting], num_returns=1, timeout=wait_s)
            for ref in done:
                if ref in self._starting:
                    self._started(ref, ray)
                else:
                    self._finish(ref, ray)
            self._enforce_time_limit(ray)
            self._dispatch()
            if deadline is not None and time.monotonic() >= deadline:
                break
        ready, self._ready = self._ready, []
        return ready

    def _started(self, ref: Any, ray: Any) -> None:
        worker = self._starting.pop(ref)
        try:
            ray.get(ref)
        except _lost_worker_errors(ray) + (ray.exceptions.RayTaskError,) as exc:
            self._failed_starts += 1
            if self._failed_starts > MAX_FAILED_STARTS:  # e.g. the evaluator cannot be unpickled there
                self._actors[worker] = None
                reason = f"Ray workers fail to start: {str(exc).strip().splitlines()[-1][:300]}"
                while self._queue:
                    job, attempt = self._queue.popleft()
                    self._fail_job(job, reason, attempt + 1)
                return
            self._replace_worker(worker)  # died while starting (a lost node, say)
            return
        self._failed_starts = 0
        self._idle.append(worker)

    def _finish(self, ref: Any, ray: Any) -> None:
        running = self._running.pop(ref)
        try:
            results = []
            for data, weights, checkpoint in ray.get(ref):
                result = EvalResult.from_dict(data)
                result.weights, result.checkpoint = weights, checkpoint
                results.append(result)
        except _lost_worker_errors(ray) as exc:
            self._replace_worker(running.worker)
            if running.attempt < self.max_retries:
                self._queue.appendleft((running.job, running.attempt + 1))
                return
            reason = f"worker lost {running.attempt + 1} times ({type(exc).__name__})"
            results = [EvalResult.failed(reason) for _ in running.job]
        except ray.exceptions.RayTaskError as exc:
            self._idle.append(running.worker)
            reason = "evaluation raised on the worker: " + one_line(str(exc), 300)
            results = [EvalResult.failed(reason) for _ in running.job]
        else:
            self._idle.append(running.worker)
        for (trial_id, _, _), result in zip(running.job, results, strict=True):
            result.info["attempts"] = running.attempt + 1
            self._ready.append((trial_id, result))

    def _enforce_time_limit(self, ray: Any) -> None:
        if self.trial_timeout_s is None:
            return
        now = time.monotonic()
        for ref, running in list(self._running.items()):
            if now - running.started > self.trial_timeout_s * len(running.job):  # the limit is per trial
                del self._running[ref]
                ray.kill(self._actors[running.worker])
                self._replace_worker(running.worker)
                self._fail_job(running.job, f"time limit of {self.trial_timeout_s:g} s exceeded; cancelled",
                               running.attempt + 1)

    def _replace_worker(self, worker: int) -> None:
        """A fresh actor in the dead one's slot, or retire the slot if the cluster lost the room for it."""
        import ray

        live = sum(actor is not None for actor in self._actors) - 1
        room = ray.cluster_resources().get("CPU", 0) // self.cpus_per_worker if self.cpus_per_worker else live + 1
        if live >= 1 and live + 1 > room:
            self._actors[worker] = None
            self.capacity = live
            return
        self._start_actor(worker)


def _package_path() -> str:
    """The directory holding the archsearch package, for the workers' PYTHONPATH."""
    import archsearch

    return os.path.dirname(os.path.dirname(os.path.abspath(archsearch.__file__)))


def start_reaper() -> Any:
    """Start :mod:`archsearch.execution.reaper` over the Ray processes this driver starts (Linux)."""
    if not sys.platform.startswith("linux"):
        return None
    return subprocess.Popen([sys.executable, "-m", "archsearch.execution.reaper", str(os.getpid())],
                            stdin=subprocess.PIPE, env={**os.environ, "PYTHONPATH": _package_path()},
                            start_new_session=True)


def _lost_worker_errors(ray: Any) -> tuple[type[BaseException], ...]:
    """Exceptions meaning the worker (process or node) is gone, as this Ray version names them."""
    names = ("RayActorError", "WorkerCrashedError", "ObjectLostError", "NodeDiedError", "OwnerDiedError")
    return tuple(getattr(ray.exceptions, n) for n in names if hasattr(ray.exceptions, n))
