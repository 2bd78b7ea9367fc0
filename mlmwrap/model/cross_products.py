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

__all__ = ["cluster_cross_products", "BLOCK_ROWS"]

# Rows per block: large enough that numpy's per-call cost vanishes, small enough that a
# block of pair products (rows x k(k+1)/2 doubles) stays in cache-friendly megabytes.
BLOCK_ROWS = 1 << 12


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
    rows, cols = np.triu_indices(k)
    sums = np.zeros((len(rows), n_clusters))
    order = None
    if n > 1 and np.any(codes[1:] < codes[:-1]):
        order = np.argsort(codes, kind="stable")
    products = np.empty((len(rows), block_rows))
    for start in range(0, n, block_rows):
        if order is None:
            block, block_codes = W[start : start + block_rows], codes[start : start + block_rows]
        else:
            take = order[start : start + block_rows]
            block, block_codes = W[take], codes[take]
        m = len(block_codes)
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
    # Pair index of every (i, j) entry: the (J, k, k) result is one gather of whole rows.
    pair = np.empty((k, k), dtype=np.intp)
    pair[rows, cols] = pair[cols, rows] = np.arange(len(rows))
    return np.ascontiguousarray(sums[pair.ravel()].T).reshape(n_clusters, k, k)
