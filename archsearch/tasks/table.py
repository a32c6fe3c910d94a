"""The user's own table: a Parquet or CSV file read with pyarrow, one column the target.

Feature encoding, so that any table gives a numeric matrix or a clear reason why not:

- numeric and boolean columns are used as they are (then standardized with the other features);
- string and dictionary columns are categorical: ``categorical="onehot"`` (default) makes one 0/1
  feature per distinct value (``column=value``), ``"ordinal"`` one feature holding the value's rank
  in sorted order, ``"error"`` refuses them; more than :data:`MAX_ONEHOT_CATEGORIES` values refuse
  one-hot encoding, since such a column (an id, free text) is rarely a feature;
- other types (dates, lists, binary) are refused with the column named: drop or convert them.

Missing values (nulls, and NaN in numeric columns) are an error by default, naming the columns.
``missing="impute"`` fills a numeric feature with its median and gives a categorical one its own
``(missing)`` category, and drops rows whose target is missing. The medians are taken over the
whole file, before the split: simple, at the price of letting test rows nudge the fill value.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from archsearch.tasks._base import Task, TaskError
from archsearch.tasks.arrays import infer_problem, task_from_arrays

MAX_ONEHOT_CATEGORIES = 100
FORMATS = {".parquet": "parquet", ".pq": "parquet", ".parq": "parquet", ".csv": "csv", ".tsv": "tsv",
           ".txt": "csv"}
CATEGORICAL_MODES = ("onehot", "ordinal", "error")
MISSING_MODES = ("error", "impute")
MISSING_CATEGORY = "(missing)"


def read_table(path: str | Path, format: str | None = None) -> Any:
    """The file as a ``pyarrow.Table``; every failure is a one-line :class:`TaskError`."""
    import pyarrow as pa

    file = Path(path).expanduser()
    if not file.exists():
        raise TaskError(f"no such file: {path}")
    format = format or _format_of(file)
    if file.is_file() and file.stat().st_size == 0:
        raise TaskError(f"{path} is empty")
    try:
        if format == "parquet":
            import pyarrow.parquet as pq

            return pq.read_table(file)
        if format in ("csv", "tsv"):
            from pyarrow import csv

            parse = csv.ParseOptions(delimiter="\t" if format == "tsv" else ",")
            return csv.read_csv(file, parse_options=parse)
    except (pa.ArrowException, OSError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise TaskError(f"cannot read {path} as {format}: {first}") from None
    raise TaskError(f"unknown format {format!r}; use parquet, csv or tsv")


def _format_of(file: Path) -> str:
    suffixes = [s.lower() for s in file.suffixes if s.lower() not in (".gz", ".bz2", ".zst", ".lz4")]
    if file.is_dir():
        return "parquet"  # a directory of Parquet parts
    if suffixes and suffixes[-1] in FORMATS:
        return FORMATS[suffixes[-1]]
    with open(file, "rb") as handle:
        if handle.read(4) == b"PAR1":
            return "parquet"
    raise TaskError(f"cannot tell the format of {file.name} from its extension; name it .parquet or .csv, "
                    "or set task.format=parquet|csv|tsv")


def table(
    seed: int = 0,
    path: str | None = None,
    target: str | None = None,
    problem: str | None = None,
    features: list[str] | None = None,
    drop: list[str] | None = None,
    categorical: str = "onehot",
    missing: str = "error",
    format: str | None = None,
    val_fraction: float = 0.2,
    test_fraction: float = 0.2,
) -> Task:
    """A task from a Parquet or CSV file (``task=table task.path=data.parquet task.target=label``).

    Args:
        seed: seeds the split (stratified for classification).
        path: the file (``.parquet``, ``.csv``, ``.tsv``, optionally compressed; or a Parquet directory).
        target: the column to predict.
        problem: ``"classification"`` or ``"regression"``; by default classification for string,
            boolean and integer targets with at most 50 distinct values, regression otherwise.
        features: the columns to use; default every column but the target and ``drop``.
        drop: columns to leave out (ids, leaks, dates).
        categorical: ``"onehot"``, ``"ordinal"`` or ``"error"`` for string columns (module docstring).
        missing: ``"error"`` or ``"impute"`` (module docstring).
        format: ``"parquet"``, ``"csv"`` or ``"tsv"`` when the extension does not say.
    """
    if not path:
        raise TaskError("task=table needs a file: task.path=data.parquet (or .csv)")
    if categorical not in CATEGORICAL_MODES:
        raise TaskError(f"categorical={categorical!r} is not one of {', '.join(CATEGORICAL_MODES)}")
    if missing not in MISSING_MODES:
        raise TaskError(f"missing={missing!r} is not one of {', '.join(MISSING_MODES)}")
    data = read_table(path, format)
    columns = list(data.column_names)
    listed = ", ".join(columns)
    if not target:
        raise TaskError(f"task=table needs the target column: task.target=NAME; columns: {listed}")
    if target not in columns:
        raise TaskError(f"no column {target!r} in {path}; columns: {listed}")
    unknown = [c for c in [*(features or []), *(drop or [])] if c not in columns]
    if unknown:
        raise TaskError(f"no column(s) {', '.join(map(repr, unknown))} in {path}; columns: {listed}")
    used = [c for c in (features or columns) if c != target and c not in (drop or [])]
    if not used:
        raise TaskError(f"no feature columns left in {path} besides the target {target!r}")
    if data.num_rows == 0:
        raise TaskError(f"{path} has columns but no rows")

    y, keep = _target(data.column(target), target, missing, path)
    if keep is not None:
        data = data.filter(keep)
    blocks, names, encodings, imputed = [], [], {}, {}
    for column in used:
        block, block_names, encoding, n_missing = _encode(data.column(column), column, categorical, missing)
        blocks.append(block)
        names.extend(block_names)
        if encoding:
            encodings[column] = encoding
        if n_missing:
            imputed[column] = n_missing
    info: dict[str, Any] = {"path": str(path), "target": target, "features": names, "encodings": encodings}
    if imputed:
        info["imputed"] = imputed
    return task_from_arrays(np.concatenate(blocks, axis=1), y, name="table", problem=problem or infer_problem(y),
                            val_fraction=val_fraction, test_fraction=test_fraction, seed=seed, info=info)


def _plain(column: Any) -> Any:
    import pyarrow as pa

    return column.cast(column.type.value_type) if pa.types.is_dictionary(column.type) else column


def _kind(column: Any) -> str:
    import pyarrow as pa

    t = column.type
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t) or pa.types.is_boolean(t):
        return "number"
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return "string"
    return "other"


def _target(column: Any, name: str, missing: str, path: Any) -> tuple[np.ndarray, Any]:
    """The target as numpy, and a row mask when rows with a missing target are dropped."""
    import pyarrow.compute as pc

    column = _plain(column)
    kind = _kind(column)
    if kind == "other":
        raise TaskError(f"target column {name!r} has type {column.type}; it must hold numbers or strings")
    absent = pc.is_null(column, nan_is_null=True)
    n_missing = int(pc.sum(absent).as_py() or 0)
    keep = None
    if n_missing:
        if missing == "error":
            raise TaskError(f"target column {name!r} has {n_missing} missing value(s) in {path}; drop those rows, "
                            "or set task.missing=impute to drop them for you")
        keep = pc.invert(absent)
        column = column.filter(keep)
    values = column.to_numpy()
    return (values.astype(str) if kind == "string" else values), keep


def _encode(column: Any, name: str, categorical: str, missing: str) -> tuple[np.ndarray, list[str], str, int]:
    """One column -> (rows, k) float features, their names, the encoding used, and how many were imputed."""
    import pyarrow as pa

    column = _plain(column)
    kind = _kind(column)
    if kind == "number":
        values = column.cast(pa.float64()).to_numpy()
        absent = ~np.isfinite(values)
        n_missing = int(absent.sum())
        if n_missing:
            _missing(name, n_missing, missing, "missing or infinite")
            if absent.all():
                raise TaskError(f"column {name!r} has no values at all; drop it (task.drop=[{name}])")
            values = np.where(absent, np.median(values[~absent]), values)
        return values[:, None], [name], "", n_missing
    if kind == "other":
        raise TaskError(f"column {name!r} has type {column.type}, which cannot be a feature; drop it "
                        f"(task.drop=[{name}]) or convert it to numbers or strings")
    if categorical == "error":
        raise TaskError(f"column {name!r} holds strings; encode it (task.categorical=onehot or ordinal) "
                        f"or drop it (task.drop=[{name}])")
    strings = np.array(column.to_pylist(), dtype=object)
    absent = np.array([v is None for v in strings])
    n_missing = int(absent.sum())
    if n_missing:
        _missing(name, n_missing, missing, "missing")
        strings[absent] = MISSING_CATEGORY
    categories, codes = np.unique(strings.astype(str), return_inverse=True)
    if categorical == "ordinal":
        return codes.astype(np.float64)[:, None], [name], "ordinal", n_missing
    if len(categories) > MAX_ONEHOT_CATEGORIES:
        raise TaskError(f"column {name!r} has {len(categories)} distinct values, too many to one-hot encode; "
                        f"use task.categorical=ordinal or drop it (task.drop=[{name}])")
    onehot = np.zeros((len(codes), len(categories)))
    onehot[np.arange(len(codes)), codes] = 1.0
    return onehot, [f"{name}={c}" for c in categories], "onehot", n_missing


def _missing(name: str, count: int, mode: str, what: str) -> None:
    if mode == "error":
        raise TaskError(f"column {name!r} has {count} {what} value(s); fill or drop them, "
                        "or set task.missing=impute")
