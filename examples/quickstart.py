"""Quickstart: search MLPs on scikit-learn's digits and print the Pareto front.

    python examples/quickstart.py            # 20 candidates
    python examples/quickstart.py --budget 3 --epochs 1
"""

import argparse

import archsearch


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--budget", type=int, default=20)
    parser.add_argument("--epochs", type=float, default=10)
    parser.add_argument("--run-dir", default=None)
    args = parser.parse_args()

    run = archsearch.search(
        space="mlp",
        task="digits",
        strategy="random",
        budget=args.budget,
        seed=0,
        executor="inline",
        run_dir=args.run_dir,
        overrides=[f"training.epochs={args.epochs}"],
        progress=True,
    )
    front = run.pareto().to_pandas()
    print(front[["trial_id", "val_accuracy", "n_params", "latency_ms"]].to_string(index=False))
    summary = run.summary()
    print(f"hypervolume {summary['hypervolume']:.4f} over {summary['n_trials']} trials in {run.path}")


if __name__ == "__main__":
    main()
