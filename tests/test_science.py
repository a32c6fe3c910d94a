"""The science scripts (examples/science/) run end to end with tiny budgets: runs, figures, summaries.

Their full runs take minutes to an hour; docs/science.md records them. Here each script runs as a user
would start it, in a fresh process and an empty directory, and what it writes is checked for substance.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCIENCE = Path(__file__).resolve().parents[1] / "examples" / "science"


def run_script(name: str, tmp_path: Path) -> dict:
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, str(SCIENCE / f"{name}.py"), "--tiny", "--out", str(out)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["tiny"] and summary["command"].startswith("python ") and summary["wall_s"] > 0
    assert summary["machine"]["cores"] >= 1
    return summary


def png(path: Path) -> None:
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5000


@pytest.mark.slow
def test_kan_or_mlp(tmp_path):
    summary = run_script("kan_or_mlp", tmp_path)
    result = summary["results"]["exp_sin"]["any"]
    assert result["kan"]["mean"] > 0 and result["mlp"]["mean"] > 0 and result["mlp_over_kan"] > 0
    assert result["verdict"] in ("KAN", "MLP", "tie")
    assert sum(summary["verdicts"]["any"].values()) == 1
    png(tmp_path / "out" / "fronts.png")
    assert (tmp_path / "out" / "exp_sin-kan-seed0" / "trials.parquet").exists()


@pytest.mark.slow
def test_activations(tmp_path):
    summary = run_script("activations", tmp_path)
    result = summary["results"]["wine"]
    assert set(result["hypervolume"]) == {"searched", "relu", "gain"}
    assert result["hypervolume"]["gain"]["n"] == 1
    shares = result["front_activations"]
    assert shares and abs(sum(s["front_share"] for s in shares.values()) - 1) < 0.01
    assert set(shares) <= set(summary["arms"]["searched"])
    png(tmp_path / "out" / "fronts.png")


@pytest.mark.slow
def test_parallel_or_sequential(tmp_path):
    summary = run_script("parallel_or_sequential", tmp_path)
    assert summary["trials"]["sequential"] and summary["trials"]["parallel"]
    assert all(t["latency_ms"] > 0 for arm in summary["trials"].values() for t in arm)
    assert summary["best_test_accuracy"]["parallel"]["n"] == 1
    png(tmp_path / "out" / "fronts.png")


@pytest.mark.slow
def test_norm_placement(tmp_path):
    summary = run_script("norm_placement", tmp_path)
    result = summary["results"]["associative_recall"]["2"]
    assert result["winners"][0] in ("pre", "post", "peri", "mix")
    assert sum(p["trials"] for p in result["placements"].values()) == 2
    png(tmp_path / "out" / "placements.png")


@pytest.mark.slow
def test_mnist1d_hour(tmp_path):
    summary = run_script("mnist1d_hour", tmp_path)
    search = summary["searches"][0]
    assert search["best"]["n_params"] <= 50_000 and 0 < search["best"]["test_accuracy"] <= 1
    assert search["minutes"] == sorted(search["minutes"]) and len(search["val"]) == len(search["minutes"])
    assert "pruned" in search["statuses"]  # successive halving stopped some
    references = summary["reference"]
    assert set(references) == {"relative", "none"}  # the hand-written network, with and without the bias
    assert references["relative"]["n_params"] == references["none"]["n_params"] + 3 * 4 * 79  # heads x offsets
    png(tmp_path / "out" / "best_vs_minutes.png")
    png(tmp_path / "out" / "trials.png")
