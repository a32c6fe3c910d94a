"""Explore a saved run with pandas: which genes the front favours, accuracy against size, the best per objective.

    python examples/explore_run.py runs/<run>

Everything here reads the run's tables (``archsearch.load_run`` gives them as Arrow; ``.to_pandas()``
turns them into DataFrames), so the same analysis works on any run directory.
"""

import argparse
import json

import numpy as np
import pandas as pd

import archsearch


def block_rows(trials: pd.DataFrame) -> pd.DataFrame:
    """One row per block of every genome: its kind, activation, norm placement, and the network's width."""
    rows = []
    for trial in trials.itertuples():
        genome = json.loads(trial.genome_json)
        for node in genome.get("nodes", []):
            spec = node["spec"]
            rows.append({"trial_id": trial.trial_id, "on_front": trial.on_front, "kind": spec["kind"],
                         "activation": spec["activation"], "norm_placement": spec["norm_placement"],
                         "width": genome["meta"].get("width"), "depth": len(genome["nodes"])})
    return pd.DataFrame(rows)


def front_shares(blocks: pd.DataFrame, column: str) -> pd.DataFrame:
    """Share of each value among the front's blocks against all blocks; ratio > 1: the front favours it."""
    table = pd.DataFrame({
        "front": blocks[blocks.on_front][column].value_counts(normalize=True),
        "all": blocks[column].value_counts(normalize=True),
    }).fillna(0.0)
    table["ratio"] = table["front"] / table["all"]
    return table.sort_values("ratio", ascending=False).round(2)


def accuracy_by_size(trials: pd.DataFrame, accuracy: str) -> pd.DataFrame:
    """Complete trials binned by parameter count (log-spaced): how much accuracy each size buys."""
    bins = min(4, trials.n_params.nunique())
    size = pd.cut(np.log10(trials.n_params), bins=bins)
    grouped = trials.groupby(size.map(lambda b: f"{10 ** b.left:,.0f} - {10 ** b.right:,.0f}"), observed=True)
    return grouped.agg(trials=("trial_id", "size"), on_front=("on_front", "sum"),
                       best=(accuracy, "max"), median=(accuracy, "median")).round(4)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("run_dir")
    args = parser.parse_args()

    run = archsearch.load_run(args.run_dir)
    trials = run.trials.to_pandas()
    complete = trials[trials.status == "complete"].copy()
    complete["on_front"] = complete.trial_id.isin(run.pareto().column("trial_id").to_pylist())
    print(f"{run.path}: {len(trials)} trials, {len(complete)} complete, {complete.on_front.sum()} on the front")

    blocks = block_rows(complete)
    if blocks.empty:
        print("no block-graph genomes in this run (a user-defined space): decisions on the front")
        print(complete[complete.on_front].decisions_json.to_string(index=False))
    else:
        for column in ("kind", "activation", "norm_placement"):
            print(f"\n{column} (share of blocks on the front vs in all complete trials)")
            print(front_shares(blocks, column).to_string())
        networks = blocks.drop_duplicates("trial_id")  # width and depth belong to the network, not a block
        for column in ("width", "depth"):
            print(f"\n{column} (share of networks on the front vs of all complete trials)")
            print(front_shares(networks, column).to_string())

    accuracy = next((name for name in run.objectives if name.endswith("accuracy")), None)
    if accuracy and "n_params" in complete:
        print(f"\n{accuracy} by parameter count")
        print(accuracy_by_size(complete, accuracy).to_string())

    print("\nbest trial per objective")
    best = []
    for name, direction in run.objectives.items():
        row = complete.loc[complete[name].idxmax() if direction == "maximize" else complete[name].idxmin()]
        best.append({"objective": name, "trial_id": row.trial_id, **{n: row[n] for n in run.objectives}})
    print(pd.DataFrame(best).to_string(index=False))


if __name__ == "__main__":
    main()
