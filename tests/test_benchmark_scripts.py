"""The GPU benchmark script runs end to end on CPU at tiny sizes (``--quick``): it is run on a borrowed
device within minutes, where a broken section would cost the figures it was lent for."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_gpu_benchmark_script_runs_every_section_on_cpu():
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1",
           "ARCHSEARCH_NO_FUSED": "1"}  # the C++ kernels' first build is not what this checks
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "kernels_gpu.py"), "--device", "cpu", "--quick",
                           "--deadline-s", "0"], capture_output=True, text=True, env=env, timeout=600, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    failures = [line for line in done.stdout.splitlines() if "failed" in line]
    assert not failures, failures
    for section in ("ceilings", "kan", "bases", "moe", "stack", "train"):
        assert f"(section {section}:" in done.stdout, section
