"""Ray workers run archsearch's code, not the working directory's; the default Ray is the run's own
and goes away with its driver (issue 16, findings 3, 4 and 9)."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.ray

DRIVER = """
import sys
import archsearch
from mypkg import evaluate
overrides = ["executor.workers=1"] + sys.argv[2:]
run = archsearch.search(space=archsearch.testing.faults.numbered_space, evaluate=evaluate, budget=2, seed=0,
                        objectives={"score": "maximize"}, executor="ray", run_dir=sys.argv[1], overrides=overrides)
print(run.trials.column("status").to_pylist(), run.trials.column("error").to_pylist())
"""


def project(tmp_path):
    """A user's project directory: their own package, and a sitecustomize.py that must never run."""
    (tmp_path / "mypkg").mkdir()
    (tmp_path / "mypkg" / "__init__.py").write_text(textwrap.dedent("""
        def evaluate(arch):
            return {"score": arch["x"] % 1000 / 1000.0}
    """))
    marker = tmp_path / "sitecustomize-ran"
    (tmp_path / "sitecustomize.py").write_text(f"open({str(marker)!r}, 'a').write('ran')\n")
    return marker


def drive(tmp_path, *overrides, env=None):
    script = "import archsearch.testing.faults\n" + DRIVER
    return subprocess.run([sys.executable, "-c", script, str(tmp_path / f"run{len(overrides)}"), *overrides],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})})


def test_workers_import_no_code_from_the_working_directory_and_ignore_a_recorded_cluster(tmp_path):
    marker = project(tmp_path)
    # A cluster address left in the environment (a stale `ray start`) must not be joined by default.
    env = {"RAY_ADDRESS": "127.0.0.1:9"}
    proc = drive(tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "['failed', 'failed']" in proc.stdout and "mypkg" in proc.stdout  # the cwd's module is not there
    proc = drive(tmp_path, f"executor.py_modules=[{tmp_path / 'mypkg'}]", env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "['complete', 'complete']" in proc.stdout  # named explicitly, it is shipped
    assert not marker.exists(), "a sitecustomize.py in the working directory ran"


SLOW_DRIVER = """
import sys
import archsearch
from archsearch.testing.faults import SlowEvaluate, numbered_space
archsearch.search(space=numbered_space, evaluate=SlowEvaluate(30.0), budget=4, seed=0, objectives={"score": "max"},
                  executor="ray", run_dir=sys.argv[1], overrides=["executor.workers=1"])
"""


def _proc(pid, name):
    try:
        return Path(f"/proc/{pid}/{name}").read_bytes()
    except OSError:
        return b""


def _children(pid):
    found, todo = set(), [pid]
    stats = {}
    for entry in os.listdir("/proc"):
        try:
            stats[int(entry)] = int(_proc(entry, "stat").rsplit(b")", 1)[1].split()[1])
        except (ValueError, OSError, IndexError):
            continue
    while todo:
        parent = todo.pop()
        for child, ppid in stats.items():
            if ppid == parent and child not in found:
                found.add(child)
                todo.append(child)
    return found


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the reaper reads /proc")
def test_the_runs_ray_processes_are_gone_after_its_driver_is_killed(tmp_path):
    run_dir = tmp_path / "run"
    driver = subprocess.Popen([sys.executable, "-c", SLOW_DRIVER, str(run_dir)], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, env={**os.environ, "OMP_NUM_THREADS": "1"})
    journal = run_dir / "journal.jsonl"
    for _ in range(1200):  # wait for the first trial to be journaled: Ray and its worker are up
        if journal.exists() and any(json.loads(line).get("event") == "trial_started"
                                    for line in journal.read_text().splitlines()):
            break
        time.sleep(0.1)
    ray_processes = _children(driver.pid)
    reaper = [pid for pid in ray_processes if b"archsearch.execution.reaper" in _proc(pid, "cmdline")]
    assert reaper and len(ray_processes) >= 4  # gcs, raylet, agents, the worker; and the reaper
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    for _ in range(600):
        left = [pid for pid in ray_processes if _proc(pid, "stat").rsplit(b")", 1)[-1].split()[:1] not in ([], [b"Z"])]
        if not left:
            break
        time.sleep(0.1)
    names = {pid: _proc(pid, "cmdline")[:80] for pid in left}
    assert not left, f"Ray processes outlived their driver: {names}"
