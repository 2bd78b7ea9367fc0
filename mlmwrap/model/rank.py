"""Rank check of the fixed and random parts from the summed cross-products, not the rows.

A column that is a linear combination of the ones before it is found from the Gram matrix
``X'X`` (``sum_j X_j'X_j``, which the engine has anyway), scaled to unit diagonal: the
Cholesky factor of that matrix, built column by column in the model's order, has a
(near) zero pivot exactly where the QR factor of the scaled ``n x p`` design would. This
costs O(p^3) instead of O(n p^2) and works when the rows were never in memory.

The tolerance is relative (a pivot of the unit-diagonal Gram below ``1e-10``, i.e. a
column whose part not explained by the earlier columns has a norm below 1e-5 of its own):
the engine itself works from these sums, so a direction they cannot resolve is one the
fit could not estimate either.

Examples
--------
>>> import numpy as np
>>> X = np.column_stack([np.ones(4), [1.0, 2, 3, 4], [2.0, 4, 6, 8]])
>>> first_dependent_column(X.T @ X)
2
>>> first_dependent_column(X[:, :2].T @ X[:, :2]) is None
True
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mlmwrap.errors import DataError

__all__ = ["first_dependent_column", "zero_columns", "check_rank", "RANK_TOL"]

# A pivot of the unit-diagonal Gram matrix (squared relative residual norm) below this is 0.
RANK_TOL = 1e-10


def zero_columns(gram: np.ndarray) -> np.ndarray:
    """Indices of columns that are zero in every row (zero diagonal of ``X'X``)."""
    return np.flatnonzero(np.diag(gram) <= 0.0)


def first_dependent_column(gram: np.ndarray, tol: float = RANK_TOL) -> int | None:
    """Index of the first column that is (numerically) a combination of earlier ones.

    Parameters
    ----------
    gram
        ``X'X``, shape ``(p, p)``, with a positive diagonal.
    tol
        Relative tolerance on the Cholesky pivots of the unit-diagonal Gram matrix.
    """
    p = gram.shape[0]
    if p == 0:
        return None
    scale = 1.0 / np.sqrt(np.diag(gram))
    G = gram * scale[:, None] * scale[None, :]
    keep: list[int] = []  # independent columns so far, and their Cholesky factor
    R = np.zeros((p, p))
    for k in range(p):  # a loop over columns (p of them), never rows
        if keep:
            r = np.linalg.solve(R[np.ix_(keep, keep)].T, G[keep, k])
            pivot = G[k, k] - r @ r
        else:
            r, pivot = np.zeros(0), G[k, k]
        if pivot <= tol:
            return k
        R[keep, k] = r
        R[k, k] = np.sqrt(pivot)
        keep.append(k)
    return None


def check_rank(gram: np.ndarray, terms: Sequence[str], labels: Sequence[str], part: str) -> None:
    """Raise :class:`DataError` naming the first zero or dependent column of a part.

    ``terms`` and ``labels`` name each column (reduced-form term and gamma or random-effect
    label); ``part`` is ``"fixed"`` or ``"random"``.
    """
    if gram.shape[0] == 0:
        return
    zero = zero_columns(gram)
    if zero.size:
        k = int(zero[0])
        raise DataError(
            f"the {part} term '{terms[k]}' ({labels[k]}) is zero in every row of the "
            "estimation sample",
            hint="a centered variable that is constant within clusters (e.g. cwc of a level-2 "
            "variable) is all zeros; remove the term",
        )
    k = first_dependent_column(gram)
    if k is not None:
        raise DataError(
            f"the {part} term '{terms[k]}' ({labels[k]}) is a linear combination of "
            "the terms before it, so it cannot be estimated",
            hint="remove it, or check for a predictor that is constant or duplicates another "
            "(e.g. cmean(x) together with the level-2 mean of x under another name)",
        )
