"""Who stopped where: one line per rung of a run's trials table (the CLI prints it after a run)."""

from __future__ import annotations

from collections import defaultdict

import pyarrow as pa


def rung_lines(trials: pa.Table, max_ids: int = 12) -> list[str]:
    """``"rung 0 (1 epoch): 20 pruned (trials 2, 3, ...)"`` per rung, ``[]`` when nothing was pruned."""
    if trials.num_rows == 0 or "rung" not in trials.column_names:
        return []
    rows = trials.select(["trial_id", "status", "rung", "fidelity"]).to_pylist()
    if not any(row["status"] == "pruned" for row in rows):
        return []
    groups: dict[tuple[int, str], list[int]] = defaultdict(list)
    fidelity: dict[int, float] = {}
    for row in rows:
        if row["rung"] is None or row["status"] not in ("pruned", "complete"):
            continue
        groups[(row["rung"], row["status"])].append(row["trial_id"])
        fidelity[row["rung"]] = row["fidelity"]
    lines = []
    for (rung, status), ids in sorted(groups.items()):
        shown = ", ".join(map(str, ids[:max_ids])) + (", ..." if len(ids) > max_ids else "")
        epochs = fidelity[rung]
        unit = "epoch" if epochs == 1 else "epochs"
        lines.append(f"rung {rung} ({epochs:g} {unit}): {len(ids)} {status} (trial{'s' if len(ids) > 1 else ''} "
                     f"{shown})")
    return lines
