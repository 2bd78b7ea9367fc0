"""Per-cluster cross-products ``W_j' W_j`` in one pass over cluster-sorted rows.

The rows are visited in blocks of a fixed number of rows; in each block the products of
the ``k (k + 1) / 2`` column pairs are formed (``k`` broadcast multiplications) and summed
over each cluster's run of rows with ``np.add.reduceat``. Memory beyond the ``(J, k, k)``
result is one block, and the cost is one pass over the data (the former method made one
weighted bincount per column pair, i.e. k(k+1)/2 passes). Rows need not be sorted: when
they are not, one stable argsort of the cluster codes orders them (data sorted by cluster
skip it).

Examples
--------
>>> import numpy as np
>>> W = np.arange(12.0).reshape(6, 2)
>>> codes = np.array([1, 0, 1, 2, 0, 2])
>>> cross = cluster_cross_products(W, codes, 3)
>>> np.allclose(cross[1], W[[0, 2]].T @ W[[0, 2]])
True
"""

from __future__ import annotations

import numpy as np

__all__ = ["cluster_cross_products", "CrossProductSums", "cluster_order", "BLOCK_ROWS"]

# Rows per block: large enough that numpy's per-call cost vanishes, small enough that a
# block of pair products (rows x k(k+1)/2 doubles) stays in cache-friendly megabytes.
BLOCK_ROWS = 1 << 12


class CrossProductSums:
    """Running sums ``W_j' W_j`` over blocks of rows, each block sorted by cluster.

    Feed it blocks of ``[X, Z, y]`` rows in cluster order (:meth:`add`), in any number;
    :meth:`result` gives the ``(J, k, k)`` table. Blocks of a multiple of ``block_rows``
    rows give exactly the sums of one :func:`cluster_cross_products` call over all rows.

    >>> import numpy as np
    >>> W, codes = np.arange(12.0).reshape(6, 2), np.array([0, 0, 1, 1, 2, 2])
    >>> sums = CrossProductSums(2, 3)
    >>> sums.add(W[:3], codes[:3]); sums.add(W[3:], codes[3:])
    >>> np.allclose(sums.result(), cluster_cross_products(W, codes, 3))
    True
    """

    def __init__(self, k: int, n_clusters: int, block_rows: int = BLOCK_ROWS):
        self.k, self.n_clusters, self.block_rows = k, n_clusters, block_rows
        self.rows, self.cols = np.triu_indices(k)
        self.sums = np.zeros((len(self.rows), n_clusters))
        self._products = np.empty((len(self.rows), block_rows))

    def add(self, W: np.ndarray, codes: np.ndarray) -> None:
        """Add rows ``W`` (shape ``(m, k)``) whose ``codes`` are sorted."""
        for start in range(0, len(codes), self.block_rows):
            stop = start + self.block_rows
            self._add_block(W[start:stop], codes[start:stop])

    def _add_block(self, block: np.ndarray, block_codes: np.ndarray) -> None:
        k, products, sums = self.k, self._products, self.sums
        m = len(block_codes)
        if m == 0:
            return
        columns = np.ascontiguousarray(block.T)  # (k, m): each column pair is two rows
        offset = 0
        for i in range(k):  # a loop over columns, never rows or clusters
            np.multiply(columns[i], columns[i:], out=products[offset : offset + k - i, :m])
            offset += k - i
        heads = np.flatnonzero(np.r_[True, block_codes[1:] != block_codes[:-1]])
        # Codes are sorted within the block, so each cluster appears once among the heads
        # and the fancy-index += is safe; a cluster split across blocks adds up.
        block_sums = np.add.reduceat(products[:, :m], heads, axis=1)
        first, last = block_codes[heads[0]], block_codes[heads[-1]]
        if last - first + 1 == len(heads):  # consecutive codes: a slice, not a scatter
            sums[:, first : last + 1] += block_sums
        else:
            sums[:, block_codes[heads]] += block_sums

    def result(self) -> np.ndarray:
        """The ``(J, k, k)`` table of the rows added so far."""
        k, rows, cols = self.k, self.rows, self.cols
        # Pair index of every (i, j) entry: the (J, k, k) result is one gather of whole rows.
        pair = np.empty((k, k), dtype=np.intp)
        pair[rows, cols] = pair[cols, rows] = np.arange(len(rows))
        return np.ascontiguousarray(self.sums[pair.ravel()].T).reshape(self.n_clusters, k, k)


def cluster_order(codes: np.ndarray) -> np.ndarray | None:
    """The stable order that sorts rows by cluster, or None when they are sorted already."""
    codes = np.asarray(codes)
    if len(codes) > 1 and np.any(codes[1:] < codes[:-1]):
        return np.argsort(codes, kind="stable")
    return None


def cluster_cross_products(
    W: np.ndarray, codes: np.ndarray, n_clusters: int, block_rows: int = BLOCK_ROWS
) -> np.ndarray:
    """``W_j' W_j`` for every cluster ``j`` (codes ``0..J-1``), shape ``(J, k, k)``.

    Parameters
    ----------
    W
        Rows, shape ``(n, k)``.
    codes
        Integer cluster code of each row, ``0 <= code < n_clusters``.
    n_clusters
        ``J``; clusters without rows get zeros.
    block_rows
        Rows per block (memory ``block_rows * k (k + 1) / 2`` doubles).
    """
    W = np.asarray(W, dtype=float)
    codes = np.asarray(codes)
    n, k = W.shape
    sums = CrossProductSums(k, n_clusters, block_rows)
    order = cluster_order(codes)
    for start in range(0, n, block_rows):
        if order is None:
            sums.add(W[start : start + block_rows], codes[start : start + block_rows])
        else:
            take = order[start : start + block_rows]
            sums.add(W[take], codes[take])
    return sums.result()
