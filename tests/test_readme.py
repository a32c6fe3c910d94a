"""Every ``bash`` and ``python`` block of README.md, run in order in an empty directory, as a new user types
them (``sh`` blocks are set-up and cluster commands that need pip or several machines; they are not run).

The README is the source of this test: edit a command there and the test runs the new one. Each shell
line runs through bash, so quoting and brace expansion act as they would for the user.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def blocks() -> list[tuple[str, str]]:
    """(language, code) of every fenced block of the README, in order."""
    return re.findall(r"^```(\w+)\n(.*?)^```", README.read_text(), re.S | re.M)


def test_readme_blocks_are_run_or_marked():
    languages = {language for language, _ in blocks()}
    assert languages <= {"bash", "python", "sh"}, "a block this test would silently skip"
    assert [code for language, code in blocks() if language == "sh" and "archsearch run" in code] == [
        next(code for _, code in blocks() if "ray start --head" in code)]  # only the cluster lines are not run


@pytest.fixture
def shell_env(tmp_path):
    """PATH with an ``archsearch`` that runs this checkout with this interpreter, as the installed one would."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shim = bin_dir / "archsearch"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m archsearch.cli "$@"\n')
    shim.chmod(0o755)
    root = str(README.parent)
    return {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "OMP_NUM_THREADS": "1",
            "PYTHONPATH": os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p), "COLUMNS": "160"}


def test_every_readme_command_runs_as_typed_in_order(tmp_path, shell_env):
    work = tmp_path / "fresh"
    work.mkdir()
    ran = []
    for language, code in blocks():
        if language == "bash":
            for line in code.splitlines():
                if not line.strip():
                    continue
                proc = subprocess.run(["bash", "-c", line], cwd=work, env=shell_env, capture_output=True, text=True,
                                      timeout=600)
                assert proc.returncode == 0, f"{line}\nexit {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
                ran.append((line, proc))
        elif language == "python":
            proc = subprocess.run([sys.executable, "-c", code], cwd=work, env=shell_env, capture_output=True,
                                  text=True, timeout=600)
            assert proc.returncode == 0, f"{code}\n{proc.stderr[-3000:]}"
            ran.append((code, proc))
    outputs = {command.split("  #")[0].strip(): proc for command, proc in ran}
    first = outputs[next(c for c in outputs if c.startswith("archsearch run space=mlp task=digits"))]
    assert "task=digits" in first.stderr.splitlines()[0]  # the header names the task
    assert (work / "runs/demo/report.html").exists() and (work / "compare.html").exists()
    assert (work / "models/best/model.json").exists()
    exported = outputs["archsearch export runs/demo best models/best"].stdout
    assert "exported trial" in exported
    listing = outputs[next(c for c in outputs if c.startswith("archsearch list spaces kan"))].stdout
    assert "space.block_params.kan_bspline.grid_size" in listing and "3..10" in listing
    assert "runs/demo-py" in (work / "runs/demo-py/run.json").read_text() or (work / "runs/demo-py").is_dir()
    for line in ("ray start", "pip install"):
        assert not any(command.startswith(line) for command, _ in ran)
