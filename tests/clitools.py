"""Running the ``archsearch`` command as a user would, for the CLI tests."""

import os
import subprocess
import sys


def archsearch_cli(*args, cwd=None, check=True, timeout=600):
    """Run ``archsearch ARGS`` in a subprocess; with ``check``, fail with its output if it exits non-zero."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "200"}
    proc = subprocess.run([sys.executable, "-m", "archsearch.cli", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    return proc
