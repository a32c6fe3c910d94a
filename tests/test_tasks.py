"""Built-in tasks and the user's own data: shapes, seeded splits, clear errors, and real baselines."""

import math

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from clitools import archsearch_cli

from archsearch.evaluation.training import TrainingEvaluator, TrainingRecipe
from archsearch.genome import BlockSpec, Genome
from archsearch.tasks import TASKS, TaskError, load_task, task_from_arrays, task_from_dataset
from archsearch.tasks.feynman import EQUATIONS
from archsearch.tasks.function_fitting import FUNCTIONS

BUILT_IN = [name for name in TASKS.names() if name != "table"]
SMALL_MLP = Genome.sequential([BlockSpec("mlp", {"expansion": 2}, "gelu", residual=True)], {"width": 32})


def arrays(task):
    return [task.x_train, task.y_train, task.x_val, task.y_val, task.x_test, task.y_test]


@pytest.mark.parametrize("name", BUILT_IN)
def test_listed_sizes_are_the_loaded_sizes(name):
    sizes = load_task(name, seed=0).sizes()
    assert (sizes["train"], sizes["val"], sizes["test"]) == TASKS.sizes(name)
    assert f"{sizes['train']:,}/{sizes['val']:,}/{sizes['test']:,}" in TASKS.describe()[name]


@pytest.mark.parametrize(
    "name, problem, input_kind, width, n_outputs",
    [
        ("digits", "classification", "vector", 64, 10),
        ("breast_cancer", "classification", "vector", 30, 2),
        ("wine", "classification", "vector", 13, 3),
        ("diabetes", "regression", "vector", 10, 1),
        ("mnist1d", "classification", "sequence", 40, 10),
        ("kan_toy", "regression", "vector", 2, 1),
        ("feynman", "regression", "vector", 2, 1),
        ("modular_addition", "classification", "tokens", 3, 97),
        ("associative_recall", "classification", "tokens", 17, 16),
    ],
)
def test_shapes_and_dtypes(name, problem, input_kind, width, n_outputs):
    task = load_task(name, seed=0)
    assert (task.problem, task.input_kind) == (problem, input_kind)
    assert task.data_spec.n_outputs == n_outputs
    x_dtype = np.int64 if input_kind == "tokens" else np.float32
    y_dtype = np.int64 if problem == "classification" else np.float32
    for x, y in [(task.x_train, task.y_train), (task.x_val, task.y_val), (task.x_test, task.y_test)]:
        assert x.shape == (len(y), width) and x.dtype == x_dtype and y.dtype == y_dtype
        if problem == "classification":
            assert y.min() >= 0 and y.max() < n_outputs
    if input_kind == "tokens":
        assert task.data_spec.vocab_size == task.vocab_size > int(max(a.max() for a in arrays(task)[::2]))
    if input_kind == "sequence":
        assert task.data_spec.seq_len == width and task.data_spec.n_channels == 1


@pytest.mark.parametrize("name", BUILT_IN)
def test_same_seed_same_data_other_seed_other_split(name):
    first, again, other = load_task(name, seed=0), load_task(name, seed=0), load_task(name, seed=1)
    for a, b in zip(arrays(first), arrays(again), strict=True):
        np.testing.assert_array_equal(a, b)
    assert first.x_val.shape == other.x_val.shape
    assert not np.array_equal(first.x_val, other.x_val)


@pytest.mark.parametrize(
    "name, options, epochs, check",
    [
        ("breast_cancer", {}, 5, lambda m, t: m["val_accuracy"] > 0.9),  # majority class: 0.63
        ("wine", {}, 5, lambda m, t: m["val_accuracy"] > 0.85),  # chance: 0.4
        ("diabetes", {}, 10, lambda m, t: m["val_rmse"] < 0.8 * t.y_std),
        ("kan_toy", {"function": "exp_sin"}, 30, lambda m, t: m["val_rmse"] < 0.15 * t.y_std),
        ("kan_toy", {"function": "xy"}, 30, lambda m, t: m["val_rmse"] < 0.1 * t.y_std),
        ("feynman", {"equation": "I.6.2"}, 20, lambda m, t: m["val_rmse"] < 0.1 * t.y_std),
        ("feynman", {"equation": "I.12.11"}, 15, lambda m, t: m["val_rmse"] < 0.3 * t.y_std),
        ("mnist1d", {}, 5, lambda m, t: m["val_accuracy"] > 0.32),  # the paper's logistic regression
        ("associative_recall", {}, 8, lambda m, t: m["val_accuracy"] > 2 / 16),  # chance: 1/16
    ],
)
def test_small_mlp_trains_a_sensible_baseline(name, options, epochs, check):
    task = load_task(name, seed=0, **options)
    result = TrainingEvaluator(task, TrainingRecipe(epochs=epochs)).evaluate(SMALL_MLP)
    assert result.status == "complete", result.error if hasattr(result, "error") else result
    assert check(result.metrics, task), result.metrics


@pytest.mark.parametrize("kind, params", [("kan_bspline", {"grid_size": 5}), ("kan_rbf", {"grid_size": 8})])
def test_a_kan_fits_a_kan_toy_function_to_a_low_rmse(kind, params):
    """The KAN paper's exp(sin(pi x) + y^2), learnt by a one-block KAN (600 samples, 100 epochs)."""
    task = load_task("kan_toy", seed=0, function="exp_sin")
    kan = Genome.sequential([BlockSpec(kind, params, "silu", norm="none", norm_placement="none")],
                            {"width": 16, "final_norm": "none"})
    result = TrainingEvaluator(task, TrainingRecipe(epochs=100)).evaluate(kan)
    assert result.status == "complete", result.error
    assert result.metrics["val_rmse"] < 0.08 * task.y_std, result.metrics  # 2026-12-02: 0.05-0.055


def test_modular_addition_trains_and_stays_near_chance_without_a_token_mixer():
    # Per-token MLPs cannot add two tokens mod p; the test pins the task's difficulty, not a failure.
    task = load_task("modular_addition", seed=0, p=23)
    result = TrainingEvaluator(task, TrainingRecipe(epochs=5)).evaluate(SMALL_MLP)
    assert result.status == "complete"
    assert result.metrics["val_accuracy"] < 0.3


def test_kan_toy_functions_match_their_formulas():
    assert {"bessel", "exp_sin", "xy", "high_dim"} <= set(FUNCTIONS)
    zero = {name: float(f.fn(np.zeros((1, f.dims)))[0]) for name, f in FUNCTIONS.items()}
    assert zero["bessel"] == pytest.approx(1.0) and zero["exp_sin"] == pytest.approx(1.0)
    assert zero["xy"] == 0.0 and zero["high_dim"] == pytest.approx(1.0)
    assert zero["phase_transition"] == pytest.approx(math.tanh(-5))
    assert FUNCTIONS["high_dim"].dims == 100
    x = np.array([[0.5, 0.5]])
    assert FUNCTIONS["exp_sin"].fn(x)[0] == pytest.approx(math.exp(1 + 0.25))
    task = load_task("kan_toy", seed=0, function="four_dim", n_samples=200, noise=0.1)
    assert task.data_spec.n_features == 4 and task.info["formula"].startswith("exp(")
    assert all(r == [-1.0, 1.0] for r in task.info["ranges"])


def test_feynman_equations_follow_the_benchmark():
    assert len(EQUATIONS) >= 20
    for name, eq in EQUATIONS.items():
        x = np.random.default_rng(0).uniform(*np.array(eq.ranges).T, size=(64, eq.dims))
        assert np.isfinite(eq.fn(x)).all(), name
        assert len(eq.variables) == eq.dims
    point = {"q": 1, "Ef": 2, "B": 3, "v": 4, "theta": math.pi / 2}
    assert EQUATIONS["I.12.11"].fn(np.array([[point[v] for v in EQUATIONS["I.12.11"].variables]]))[0] == \
        pytest.approx(14.0)
    assert EQUATIONS["I.6.2a"].fn(np.zeros((1, 1)))[0] == pytest.approx(1 / math.sqrt(2 * math.pi))
    assert EQUATIONS["III.9.52"].fn(np.array([[1.0, 1, 1, 2 * math.pi, 3, 3]]))[0] == pytest.approx(1.0)
    assert EQUATIONS["I.9.18"].ranges[3] == (3.0, 4.0) and EQUATIONS["I.18.12"].ranges[2] == (0.0, 5.0)
    task = load_task("feynman", seed=3, equation="I.10.7", n_samples=100)
    assert task.data_spec.n_features == 3 and task.info["variables"] == ["m_0", "v", "c"]


@pytest.mark.parametrize(
    "name, options, message",
    [
        ("kan_toy", {"function": "sinc"}, "valid: bessel"),
        ("feynman", {"equation": "I.99"}, "valid: I.6.2a"),
        ("digits", {"val_fracton": 0.1}, "its options: val_fraction"),
        ("associative_recall", {"n_pairs": 20}, "n_pairs=20"),
        ("modular_addition", {"train_fraction": 1.5}, "train_fraction"),
    ],
)
def test_bad_task_options_are_clear_errors(name, options, message):
    with pytest.raises(TaskError, match=message):
        load_task(name, **options)


def test_modular_addition_is_the_full_table_split_by_train_fraction():
    task = load_task("modular_addition", seed=0, p=11, train_fraction=0.5)
    x = np.concatenate([task.x_train, task.x_val, task.x_test])
    y = np.concatenate([task.y_train, task.y_val, task.y_test])
    assert len({(a, b) for a, b, _ in x.tolist()}) == len(x) == 121
    assert (x[:, 2] == 11).all() and task.vocab_size == 12
    np.testing.assert_array_equal(y, (x[:, 0] + x[:, 1]) % 11)
    assert len(task.x_train) == 60 and task.n_classes == 11
    assert load_task("modular_addition", p=11, equals_token=False).x_train.shape[1] == 2


def test_associative_recall_targets_the_value_after_the_query_key():
    task = load_task("associative_recall", seed=0, n_samples=300, n_pairs=4, vocab_size=20)
    x, y = task.x_train, task.y_train
    keys, values, query = x[:, 0:-1:2], x[:, 1:-1:2], x[:, -1]
    assert x.shape[1] == 9 and (keys < 10).all() and (values >= 10).all() and (values < 20).all()
    assert all(len(set(row)) == 4 for row in keys.tolist())
    position = (keys == query[:, None]).argmax(axis=1)
    assert (keys == query[:, None]).sum(axis=1).tolist() == [1] * len(x)
    np.testing.assert_array_equal(values[np.arange(len(x)), position] - 10, y)


def test_mnist1d_is_the_packages_data_and_leaves_global_random_state_alone():
    state = np.random.get_state()[1].copy()
    task = load_task("mnist1d", seed=0)
    np.testing.assert_array_equal(np.random.get_state()[1], state)
    assert task.info["reference_test_accuracy"] == {"logistic_regression": 0.32, "mlp": 0.68, "cnn": 0.94,
                                                    "gru": 0.91}
    other = load_task("mnist1d", seed=5)
    np.testing.assert_array_equal(task.x_test, other.x_test)  # the package's test split, whatever the seed
    assert abs(float(np.concatenate([task.x_train, task.x_val]).std()) - 1) < 0.05
    assert np.bincount(task.y_val, minlength=10).min() >= 70  # stratified validation split
    flat = load_task("mnist1d", seed=0, input_kind="vector")  # what the paper's MLP sees
    assert flat.data_spec.n_features == 40
    np.testing.assert_array_equal(flat.x_train, task.x_train)


# --- the user's own data ------------------------------------------------------------------------------


def make_frame(n=120, seed=0):
    rng = np.random.default_rng(seed)
    x1 = rng.normal(size=n)
    color = rng.choice(["red", "green", "blue"], size=n)
    return {
        "x1": x1,
        "x2": rng.integers(0, 10, size=n),
        "color": color,
        "label": np.where(x1 + (color == "red") > 0.5, "yes", "no"),
        "price": 3 * x1 + rng.normal(scale=0.1, size=n),
    }


def write(tmp_path, frame, kind="parquet", name="data"):
    table = pa.table(frame)
    path = tmp_path / f"{name}.{kind}"
    if kind == "parquet":
        pq.write_table(table, path)
    else:
        from pyarrow import csv

        csv.write_csv(table, path)
    return path


@pytest.mark.parametrize("kind", ["parquet", "csv"])
def test_table_infers_classification_and_one_hot_encodes_strings(tmp_path, kind):
    path = write(tmp_path, make_frame(), kind)
    task = load_task("table", seed=0, path=str(path), target="label", drop=["price"])
    assert task.problem == "classification" and task.n_classes == 2
    assert task.info["classes"] == ["no", "yes"]
    assert task.info["features"] == ["x1", "x2", "color=blue", "color=green", "color=red"]
    assert task.info["encodings"] == {"color": "onehot"}
    assert task.sizes() == {"train": 72, "val": 24, "test": 24}
    again = load_task("table", seed=0, path=str(path), target="label", drop=["price"])
    np.testing.assert_array_equal(task.x_val, again.x_val)


def test_table_regression_ordinal_features_and_problem_override(tmp_path):
    path = write(tmp_path, make_frame())
    task = load_task("table", path=str(path), target="price", categorical="ordinal", features=["x1", "color"])
    assert task.problem == "regression" and task.info["features"] == ["x1", "color"]
    result = TrainingEvaluator(task, TrainingRecipe(epochs=20)).evaluate(SMALL_MLP)
    assert result.metrics["val_rmse"] < 0.5 * task.y_std
    forced = load_task("table", path=str(path), target="x2", problem="regression", drop=["label", "color"])
    assert forced.problem == "regression"
    assert load_task("table", path=str(path), target="x2", drop=["label", "color"]).problem == "classification"


def test_table_missing_values_error_or_impute(tmp_path):
    frame = make_frame()
    frame["x1"] = pa.array([None if i % 10 == 0 else v for i, v in enumerate(frame["x1"])], pa.float64())
    frame["color"] = [None if i % 7 == 0 else v for i, v in enumerate(frame["color"])]
    path = write(tmp_path, frame)
    with pytest.raises(TaskError, match="column 'x1' has 12 missing .*task.missing=impute"):
        load_task("table", path=str(path), target="label")
    task = load_task("table", path=str(path), target="label", missing="impute")
    assert task.info["imputed"] == {"x1": 12, "color": 18}
    assert "color=(missing)" in task.info["features"] and np.isfinite(task.x_train).all()

    frame = make_frame()
    frame["label"] = [None if i < 5 else v for i, v in enumerate(frame["label"])]
    path = write(tmp_path, frame, name="no_target")
    with pytest.raises(TaskError, match="target column 'label' has 5 missing"):
        load_task("table", path=str(path), target="label")
    assert sum(load_task("table", path=str(path), target="label", missing="impute").sizes().values()) == 115


def test_table_errors_are_one_clear_line(tmp_path):
    good = write(tmp_path, make_frame())
    cases = [
        ({"path": str(tmp_path / "nope.parquet"), "target": "label"}, "no such file"),
        ({"path": str(good), "target": "labl"}, r"no column 'labl' in .*; columns: x1, x2, color, label, price"),
        ({"path": str(good)}, "needs the target column.*columns: x1"),
        ({"target": "label"}, "needs a file"),
        ({"path": str(good), "target": "label", "categorical": "error"}, "column 'color' holds strings"),
        ({"path": str(good), "target": "label", "drop": ["colour"]}, "no column.*'colour'"),
    ]
    garbage = tmp_path / "garbage.parquet"
    garbage.write_bytes(b"this is not parquet at all")
    cases.append(({"path": str(garbage), "target": "label"}, "cannot read .* as parquet"))
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    cases.append(({"path": str(empty), "target": "label"}, "is empty"))
    header_only = tmp_path / "header.csv"
    header_only.write_text("a,b,label\n")
    cases.append(({"path": str(header_only), "target": "label"}, "no rows"))
    unknown = tmp_path / "data.xlsx"
    unknown.write_bytes(b"PK\x03\x04 spreadsheet")
    cases.append(({"path": str(unknown), "target": "label"}, "cannot tell the format"))
    one_class = write(tmp_path, {"x": [1.0, 2.0, 3.0, 4.0, 5.0], "label": ["a"] * 5}, name="one_class")
    cases.append(({"path": str(one_class), "target": "label"}, "at least two classes"))
    dates = write(tmp_path, {"when": pa.array([1, 2, 3, 4, 5], pa.timestamp("s")), "y": [0, 1, 0, 1, 0]},
                  name="dates")
    cases.append(({"path": str(dates), "target": "y"}, r"column 'when' has type timestamp.*task.drop=\[when\]"))
    for options, message in cases:
        with pytest.raises(TaskError, match=message) as error:
            load_task("table", **options)
        assert "\n" not in str(error.value), options


def test_table_reads_tsv_and_gzipped_csv(tmp_path):
    frame = make_frame(n=60)
    csv_path = write(tmp_path, frame, "csv")
    tsv = tmp_path / "data.tsv"
    tsv.write_text(csv_path.read_text().replace(",", "\t"))
    assert load_task("table", path=str(tsv), target="label").sizes()["train"] == 36
    import gzip

    gz = tmp_path / "data.csv.gz"
    gz.write_bytes(gzip.compress(csv_path.read_bytes()))
    assert load_task("table", path=str(gz), target="label").n_classes == 2


def test_task_from_dataset_materializes_a_torch_dataset():
    import torch
    from torch.utils.data import IterableDataset, TensorDataset

    x = torch.randn(100, 5)
    y = (x[:, 0] > 0).long()
    task = task_from_dataset(TensorDataset(x, y), seed=0)
    assert task.problem == "classification" and task.data_spec.n_features == 5 and task.name == "TensorDataset"
    assert sum(task.sizes().values()) == 100
    reference = task_from_arrays(x.numpy(), y.numpy(), seed=0)
    np.testing.assert_array_equal(task.x_val, reference.x_val)

    class Stream(IterableDataset):
        def __iter__(self):
            for i in range(200):
                yield torch.full((6, 2), float(i)), torch.tensor(float(i) ** 0.5)

    streamed = task_from_dataset(Stream(), max_items=50, name="stream")
    assert streamed.problem == "regression" and streamed.input_kind == "sequence"
    assert streamed.data_spec.seq_len == 6 and sum(streamed.sizes().values()) == 50
    with pytest.raises(TaskError, match=r"\(x, y\) pairs"):
        task_from_dataset([torch.zeros(3)] * 10)


def test_task_from_arrays_accepts_token_ids():
    x = np.random.default_rng(0).integers(0, 7, size=(50, 4))
    task = task_from_arrays(x, x[:, 0] % 2, input_kind="tokens", seed=0)
    assert task.vocab_size == 7 and task.x_train.dtype == np.int64 and task.data_spec.vocab_size == 7
    with pytest.raises(TaskError, match="integer ids"):
        task_from_arrays(x.astype(float), x[:, 0], input_kind="tokens")
    with pytest.raises(TaskError, match=r"must lie in \[0, 5\)"):
        task_from_arrays(x, x[:, 0], input_kind="tokens", vocab_size=5)


# --- the CLI on a file, as a user types it ------------------------------------------------------------


def archsearch(*args, cwd):
    return archsearch_cli(*args, cwd=cwd, check=False)


@pytest.mark.parametrize("kind", ["parquet", "csv"])
def test_cli_runs_a_search_on_a_table_file(tmp_path, kind):
    write(tmp_path, make_frame(), kind)
    proc = archsearch("run", "task=table", f"task.path=data.{kind}", "task.target=label", "budget=2",
                      "training.epochs=1", "executor=inline", "run_dir=runs/table", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "Pareto front" in proc.stdout and "val_accuracy" in proc.stdout
    trials = pq.read_table(tmp_path / "runs" / "table" / "trials.parquet").to_pandas()
    assert len(trials) == 2 and set(trials.status) == {"complete"}


def test_cli_bad_table_fails_before_any_run_directory(tmp_path):
    write(tmp_path, make_frame(), "csv")
    proc = archsearch("run", "task=table", "task.path=data.csv", "task.target=labl", "budget=2",
                      "run_dir=runs/bad", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip() == (f"archsearch: error: no column 'labl' in {tmp_path / 'data.csv'}; "
                                   "columns: x1, x2, color, label, price")
    assert not (tmp_path / "runs").exists()


def test_cli_lists_every_task_with_its_sizes(tmp_path):
    proc = archsearch("list", "tasks", cwd=tmp_path)
    assert proc.returncode == 0
    for name in TASKS.names():
        assert name in proc.stdout
    assert "3,200/800/1,000" in proc.stdout and "sizes from the data" in proc.stdout
