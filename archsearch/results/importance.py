"""Which genes matter for which objective: permutation importance of a random forest over the decisions.

For each objective a random forest learns the objective from the trials' genes (the ``gene.*`` columns
of ``trials.parquet``: categorical genes as codes, a gene a trial does not have as its own value). A
gene's importance is how much the forest's R² drops when that gene's column is shuffled (scikit-learn's
permutation importance, averaged over repeats): unlike impurity importance it is not inflated for genes
with many values. Only the forest's ``CANDIDATES`` genes of highest impurity importance are shuffled (a
gene the forest hardly splits on cannot matter when shuffled), which keeps a report of a large space to a
second or two. The forest's out-of-bag R² says how much of the objective the genes explain at all;
when it is low, no bar means much. Objectives the run normalizes on a log scale (parameters, latency)
are learned as log10.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from archsearch.results.tables import GENE_PREFIX, objective_matrix

MIN_TRIALS = 12  # fewer complete trials than this: a forest would only memorize them
CANDIDATES = 16  # genes per objective whose permutation importance is measured


@dataclass
class Importance:
    """Gene importances for one objective.

    Attributes:
        objective: the metric.
        genes: gene labels, most important first.
        mean: mean drop of R² when the gene is shuffled, per gene.
        std: its standard deviation over the repeats.
        oob_r2: the forest's out-of-bag R² (how well the genes predict the objective at all).
    """

    objective: str
    genes: list[str]
    mean: list[float]
    std: list[float]
    oob_r2: float


def gene_matrix(table: pa.Table, rows: np.ndarray, min_present: int) -> tuple[np.ndarray, list[str]]:
    """The genes of ``rows`` as a float matrix: numbers as they are, categories as codes, absence as its own
    value; genes present in fewer than ``min_present`` rows or with one value are left out."""
    columns, names = [], []
    for name in table.column_names:
        if not name.startswith(GENE_PREFIX):
            continue
        values = table.column(name).take(pa.array(rows, type=pa.int64())).to_pylist()
        present = [v for v in values if v is not None]
        if len(present) < min_present or len({str(v) for v in values}) < 2:
            continue
        if all(isinstance(v, int | float) and not isinstance(v, bool) for v in present):
            low = min(float(v) for v in present)
            spread = max(float(v) for v in present) - low or 1.0
            column = [float(v) if v is not None else low - spread for v in values]
        else:
            codes = {v: k for k, v in enumerate(sorted({str(v) for v in present}))}
            column = [float(codes[str(v)]) if v is not None else -1.0 for v in values]
        columns.append(column)
        names.append(name.removeprefix(GENE_PREFIX))
    matrix = np.array(columns, dtype=float).T if columns else np.empty((len(rows), 0))
    return matrix, names


def gene_importance(table: pa.Table, objectives: dict[str, str], log_scale: list[bool] | None = None,
                    seed: int = 0, n_trees: int = 64, repeats: int = 3) -> list[Importance]:
    """One :class:`Importance` per objective; empty when there are too few complete trials or no genes."""
    values, rows = objective_matrix(table, objectives)
    if len(rows) < MIN_TRIALS:
        return []
    genes, names = gene_matrix(table, rows, min_present=max(3, len(rows) // 20))
    if not names:
        return []
    from sklearn.ensemble import RandomForestRegressor
    from sklearn.inspection import permutation_importance

    logs = log_scale or [False] * len(objectives)
    found = []
    for k, name in enumerate(objectives):
        target = values[:, k]
        if logs[k] and (target > 0).all():
            target = np.log10(target)
        if np.ptp(target) == 0:
            continue
        forest = RandomForestRegressor(n_estimators=n_trees, min_samples_leaf=2, oob_score=True,
                                       random_state=seed, n_jobs=1).fit(genes, target)
        candidates = np.argsort(-forest.feature_importances_)[:CANDIDATES]
        shuffled = _ColumnsOf(forest, genes, candidates)
        result = permutation_importance(shuffled, genes[:, candidates], target, n_repeats=repeats,
                                        random_state=seed, n_jobs=1)
        order = np.argsort(-result.importances_mean)
        found.append(Importance(name, [names[candidates[i]] for i in order], result.importances_mean[order].tolist(),
                                result.importances_std[order].tolist(), float(forest.oob_score_)))
    return found


class _ColumnsOf:
    """The forest seen through a subset of its columns (the others held at their true values), so that
    scikit-learn's permutation importance shuffles only the candidates."""

    def __init__(self, forest: Any, genes: np.ndarray, columns: np.ndarray) -> None:
        self.forest, self.genes, self.columns = forest, genes, columns

    def fit(self, *_: Any) -> _ColumnsOf:
        return self

    def predict(self, part: np.ndarray) -> np.ndarray:
        full = self.genes.copy()
        full[:, self.columns] = part
        return self.forest.predict(full)

    def score(self, part: np.ndarray, target: np.ndarray) -> float:
        from sklearn.metrics import r2_score

        return float(r2_score(target, self.predict(part)))


def top_genes(importances: list[Importance], n: int) -> list[str]:
    """The ``n`` genes with the highest importance for any objective (each objective's R² drop, max over
    objectives), in label order so that a block's genes stand together."""
    best: dict[str, float] = {}
    for imp in importances:
        for gene, value in zip(imp.genes, imp.mean, strict=True):
            best[gene] = max(best.get(gene, 0.0), value)
    chosen = sorted((g for g, v in best.items() if v > 0), key=lambda g: -best[g])[:n]
    return sorted(chosen)
