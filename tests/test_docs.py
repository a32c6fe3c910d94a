"""docs/run_directory.md against a real run directory: its tables name every column and key, its snippets run.

Every snippet runs: pyarrow, pandas and the journal on a callable-space run, polars and DuckDB (test
extras, not dependencies of archsearch) on a trained one, whose columns they name.
"""

import json
import re
from pathlib import Path

import pyarrow.parquet as pq
import pytest

import archsearch
from archsearch.results.tables import FIXED_COLUMNS

DOC = Path(__file__).resolve().parents[1] / "docs" / "run_directory.md"


def numbered(chooser):
    return {"x": chooser.suggest_int("x", 0, 1000)}


def evaluate(arch):
    return {"score": arch["x"] / 1000, "cost": float(arch["x"] % 7)}


@pytest.fixture(scope="module")
def run_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("doc")
    archsearch.search(space=numbered, evaluate=evaluate, objectives={"score": "maximize", "cost": "minimize"},
                      budget=6, executor="inline", run_dir=root / "runs" / "demo")
    return root


def section(title: str) -> str:
    text = DOC.read_text()
    start = text.index(f"## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end if end > 0 else None]


def table_rows(text: str) -> list[list[str]]:
    """The body rows of the first Markdown table in ``text``, cells stripped of backticks."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip().strip("`") for cell in re.split(r"(?<!\\)\|", line)[1:-1]])
    return rows


def test_every_fixed_column_of_trials_parquet_is_documented_with_its_type(run_root):
    rows = table_rows(section("`trials.parquet`"))
    schema = pq.read_table(run_root / "runs" / "demo" / "trials.parquet").schema
    documented = [(name, kind) for name, kind, _ in rows]
    assert documented == [(name, doc_type(kind)) for name, kind in FIXED_COLUMNS]
    assert [(f.name, doc_type(f.type)) for f in schema][:len(FIXED_COLUMNS)] == documented


def doc_type(arrow_type) -> str:
    """Arrow's type names as the page writes them (float64, as pandas shows it, rather than double)."""
    return {"double": "float64", "timestamp[us, tz=UTC]": "timestamp[us, UTC]"}.get(str(arrow_type), str(arrow_type))


@pytest.mark.parametrize(("title", "file"), [("`pareto.json`", "pareto.json"), ("`run.json`", "run.json")])
def test_json_files_keys_are_documented(run_root, title, file):
    data = json.loads((run_root / "runs" / "demo" / file).read_text())
    keys = set()
    for name, *_ in table_rows(section(title)):
        keys.update(k.strip().strip("`") for k in name.split(","))
    assert keys == set(data)


def test_pyarrow_pandas_and_journal_snippets_run(run_root, monkeypatch, capsys):
    monkeypatch.chdir(run_root)
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)
    runnable = [b for b in blocks if b.startswith(("# pyarrow", "# pandas")) or "journal.jsonl" in b]
    assert len(runnable) == 4
    for block in runnable:
        exec(compile(block, str(DOC), "exec"), {})
    assert "trial_id" in capsys.readouterr().out


def test_polars_and_duckdb_snippets_run_without_archsearch(tmp_path, monkeypatch, capsys):
    archsearch.search(space="mlp", budget=3, seed=0, executor="inline", run_dir=tmp_path / "runs" / "demo",
                      overrides=["training.epochs=0.3"])
    monkeypatch.chdir(tmp_path)
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)
    runnable = [b for b in blocks if b.startswith(("import polars", "import duckdb"))]
    assert len(runnable) == 2
    for block in runnable:
        exec(compile(block, str(DOC), "exec"), {})
    out = capsys.readouterr().out
    assert "origin" in out and "val_accuracy" in out and "width" in out
