"""Per-cluster totals over batches of rows that an engine streams out (Polars).

Polars' streaming group-by pre-aggregates only "hot" keys and keeps the other rows until
its input ends (pola-rs/polars#25607): with many clusters, its memory grows with the rows
(1.3 GB for 100M rows of 100,000 clusters here). So for Polars the engine evaluates the
design's columns (centering, transforms, dummies, products) and streams batches of rows,
and numpy sums each batch per cluster, with the cross-product kernel of the in-memory fit,
into running totals keyed by cluster id. Memory is one batch and the ``J``-row totals,
whatever the number of rows.

Examples
--------
>>> import numpy as np
>>> totals = ClusterTotals(k=2, n_sums=1, n_extrema=1)
>>> W = np.array([[1.0, 2.0], [1.0, 3.0], [1.0, 5.0]])
>>> totals.add(np.array(["b", "a", "b"]), W, W[:, 1:], W[:, 1:])
>>> totals.add(np.array(["c", "a"]), W[:2], W[:2, 1:], W[:2, 1:])
>>> totals.labels.tolist(), totals.count.tolist()
(['a', 'b', 'c'], [2, 2, 1])
>>> totals.cross[:, 1, 1].tolist(), totals.sums[:, 0].tolist(), totals.high[:, 0].tolist()
([18.0, 29.0, 4.0], [6.0, 7.0, 2.0], [3.0, 5.0, 2.0])
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd

from mlmwrap.model.cross_products import CrossProductSums

__all__ = ["ClusterTotals", "polars_batches", "BATCH_ROWS"]

#: Rows per streamed batch: a few tens of MB of columns, large enough that the per-batch
#: work (a factorization and a sort of the batch's cluster ids) is amortized.
BATCH_ROWS = 1 << 18


class ClusterTotals:
    """Running per-cluster totals: row counts, the cross-products ``W_j'W_j`` of ``k``
    design columns, sums of ``n_sums`` columns and minima and maxima of ``n_extrema``.

    Clusters are kept in sorted order of their ids, as the engines' group-bys are sorted
    afterwards; ids first seen in a later batch are merged in.
    """

    def __init__(self, k: int, n_sums: int = 0, n_extrema: int = 0):
        self.k, self.n_sums, self.n_extrema = k, n_sums, n_extrema
        self.n_pairs = k * (k + 1) // 2
        self.labels: np.ndarray = np.empty(0)
        self.count = np.zeros(0, dtype=np.int64)
        self._pairs = np.zeros((self.n_pairs, 0))
        self.sums = np.zeros((0, n_sums))
        self.low = np.zeros((0, n_extrema))
        self.high = np.zeros((0, n_extrema))

    def _positions(self, ids: np.ndarray) -> np.ndarray:
        """Where the sorted distinct ``ids`` of a batch sit among the labels (new ones are
        merged in first)."""
        if len(self.labels) == 0:
            self.labels = ids
            J = len(ids)
            self.count = np.zeros(J, dtype=np.int64)
            self._pairs = np.zeros((self.n_pairs, J))
            self.sums = np.zeros((J, self.n_sums))
            self.low = np.full((J, self.n_extrema), np.inf)
            self.high = np.full((J, self.n_extrema), -np.inf)
            return np.arange(J)
        at = np.searchsorted(self.labels, ids)
        known = (at < len(self.labels)) & (self.labels[np.minimum(at, len(self.labels) - 1)] == ids)
        if not known.all():
            merged = np.concatenate([self.labels, ids[~known]])
            order = np.argsort(merged, kind="stable")
            merged = merged[order]
            old = np.empty(len(self.labels), dtype=np.intp)
            old[:] = np.flatnonzero(order < len(self.labels))  # where the old labels went
            J = len(merged)
            count = np.zeros(J, dtype=np.int64)
            pairs = np.zeros((self.n_pairs, J))
            sums = np.zeros((J, self.n_sums))
            low = np.full((J, self.n_extrema), np.inf)
            high = np.full((J, self.n_extrema), -np.inf)
            count[old], pairs[:, old], sums[old] = self.count, self._pairs, self.sums
            low[old], high[old] = self.low, self.high
            self.labels, self.count, self._pairs, self.sums = merged, count, pairs, sums
            self.low, self.high = low, high
            at = np.searchsorted(self.labels, ids)
        return at

    def add(
        self,
        ids: np.ndarray,
        W: np.ndarray | None = None,
        S: np.ndarray | None = None,
        M: np.ndarray | None = None,
        *,
        is_sorted: bool = False,
    ) -> None:
        """Add a batch: cluster ``ids`` of its rows, design columns ``W`` (rows x k),
        columns to sum ``S`` and columns whose extremes are wanted ``M``; ``is_sorted``:
        the rows are sorted by id already (the engine sorted the batch)."""
        if len(ids) == 0:
            return
        if is_sorted:
            change = np.r_[True, ids[1:] != ids[:-1]]
            heads = np.flatnonzero(change)
            distinct, codes = ids[heads], np.cumsum(change) - 1
        else:
            codes, distinct = pd.factorize(ids, sort=True)
            distinct = np.asarray(distinct)
            order = np.argsort(codes, kind="stable")
            codes = codes[order]
            W, S, M = (None if a is None else a[order] for a in (W, S, M))
            heads = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])
        where = self._positions(distinct)
        self.count[where] += np.diff(np.r_[heads, len(codes)])
        if self.k:
            sums = CrossProductSums(self.k, len(distinct))
            sums.add(W, codes)
            self._pairs[:, where] += sums.sums
        if self.n_sums:
            self.sums[where] += np.add.reduceat(S, heads, axis=0)
        if self.n_extrema:
            low, high = np.minimum.reduceat(M, heads, axis=0), np.maximum.reduceat(M, heads, axis=0)
            self.low[where] = np.minimum(self.low[where], low)
            self.high[where] = np.maximum(self.high[where], high)

    @property
    def pair_sums(self) -> np.ndarray:
        """The cross-products as ``(J, k (k + 1) / 2)``, pairs in ``np.triu_indices`` order."""
        return self._pairs.T

    @property
    def cross(self) -> np.ndarray:
        """The cross-products as ``(J, k, k)``."""
        rows, cols = np.triu_indices(self.k)
        out = np.empty((len(self.labels), self.k, self.k))
        out[:, rows, cols] = self._pairs.T
        out[:, cols, rows] = self._pairs.T
        return out


def polars_batches(frame: Any, columns: list[str], batch_rows: int | None = None) -> Iterator:
    """Batches (Polars DataFrames) of ``columns`` of a Polars ``LazyFrame``, from its
    streaming engine, or None when this Polars cannot stream batches."""
    frame = frame.select(columns)
    if not hasattr(frame, "collect_batches"):  # pragma: no cover - Polars before 1.32
        return None
    return iter(
        frame.collect_batches(
            chunk_size=batch_rows or BATCH_ROWS, maintain_order=False, engine="streaming"
        )
    )
