"""Use an exported model on new data: raw inputs in, the task's own labels out.

    python examples/use_exported_model.py                 # a small search on digits first
    python examples/use_exported_model.py RUN_DIR         # export the best trial of a digits run

The model exported from a run standardizes its inputs itself with the training split's statistics
(kept in its model.json), so the rows below are fed exactly as scikit-learn returns them: pixel
intensities 0..16, never seen in that form by any candidate during the search.
"""

import argparse
import tempfile
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits

import archsearch
from archsearch.tasks.arrays import split_indices


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("run_dir", nargs="?", help="a finished run on task=digits (default: run a small one)")
    parser.add_argument("--epochs", type=float, default=3)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="archsearch-export-"))
    if args.run_dir:
        run = archsearch.load_run(args.run_dir)
    else:
        run = archsearch.search(space="mlp", task="digits", budget=4, seed=0, executor="inline",
                                run_dir=workdir / "run", overrides=[f"training.epochs={args.epochs}"], quiet=True)
    best = run.pareto().column("trial_id")[0].as_py()  # the front is sorted best first in val_accuracy
    folder = run.export(best, workdir / "model")
    model = archsearch.load_model(folder)

    # New data: the raw images of the run's test split, which no selection ever looked at.
    digits = load_digits()
    seed = run.info["seed"]
    _, _, test = split_indices(len(digits.target), 0.2, 0.2, seed, digits.target)
    x_new, y_new = digits.data[test], digits.target[test]
    labels = model.predict(x_new)
    confidence = model.predict_proba(x_new).max(axis=1)
    print(f"exported trial {best} to {folder}")
    print(f"accuracy on {len(x_new)} raw test images: {np.mean(labels == y_new):.3f} "
          f"(the run recorded test_accuracy {run.trial_row(best)['test_accuracy']:.3f})")
    for label, truth, p in list(zip(labels, y_new, confidence, strict=True))[:5]:
        print(f"  predicted {label} (p={p:.2f}), true {truth}")


if __name__ == "__main__":
    main()
