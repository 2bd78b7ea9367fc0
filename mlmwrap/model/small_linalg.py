"""Cholesky factor and triangular solves of many small SPD matrices at once.

The engine's matrices ``M_j = I + L' Z_j'Z_j L`` are ``q x q`` with ``q`` = 1-4 and there is
one per cluster (up to millions). numpy's stacked ``linalg`` routines call LAPACK once per
matrix, which costs about a microsecond each whatever ``q`` is; here the matrices are stored
"structure of arrays", shape ``(q, q, J)``, and the factorization is written out entry by
entry: ``O(q^3)`` vector operations over the ``J`` clusters, each at memory speed.

Examples
--------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> B = rng.normal(size=(5, 3, 3))
>>> M = np.eye(3) + B @ B.transpose(0, 2, 1)          # five SPD matrices, (J, q, q)
>>> C = cholesky(np.moveaxis(M, 0, -1))                 # (q, q, J)
>>> np.allclose(np.moveaxis(C, -1, 0), np.linalg.cholesky(M))
True
>>> rhs = rng.normal(size=(3, 2, 5))                    # (q, m, J): two right-hand sides
>>> x = cho_solve(C, rhs)
>>> np.allclose(np.einsum("jab,bmj->amj", M, x), rhs)
True
"""

from __future__ import annotations

import numpy as np

__all__ = ["cholesky", "solve_lower", "solve_upper", "cho_solve", "gram_of_solve", "log_diag_sum"]


def cholesky(M: np.ndarray) -> np.ndarray:
    """Lower Cholesky factors of SPD matrices ``M[:, :, j]``; shape ``(q, q, J)``.

    Only the lower triangle of ``M`` is read. A matrix that is not positive definite gives
    NaN in its factor (not an exception), so callers test ``np.isfinite`` once.
    """
    q = M.shape[0]
    C = np.zeros_like(M)
    with np.errstate(invalid="ignore", divide="ignore"):
        for i in range(q):
            for k in range(i + 1):
                s = M[i, k].copy()
                for m in range(k):
                    s -= C[i, m] * C[k, m]
                C[i, k] = np.sqrt(s) if i == k else s / C[k, k]
    return C


def solve_lower(C: np.ndarray, B: np.ndarray) -> np.ndarray:
    """``C_j^-1 B_j`` for lower-triangular ``C`` ``(q, q, J)`` and ``B`` ``(q, m, J)``."""
    q = C.shape[0]
    Y = np.empty_like(B)
    for i in range(q):
        s = B[i].copy()
        for k in range(i):
            s -= C[i, k] * Y[k]
        Y[i] = s / C[i, i]
    return Y


def solve_upper(C: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """``C_j'^-1 Y_j`` for lower-triangular ``C`` ``(q, q, J)`` and ``Y`` ``(q, m, J)``."""
    q = C.shape[0]
    X = np.empty_like(Y)
    for i in reversed(range(q)):
        s = Y[i].copy()
        for k in range(i + 1, q):
            s -= C[k, i] * X[k]
        X[i] = s / C[i, i]
    return X


def cho_solve(C: np.ndarray, B: np.ndarray) -> np.ndarray:
    """``M_j^-1 B_j`` from the Cholesky factors ``C`` of ``M`` (see :func:`cholesky`)."""
    return solve_upper(C, solve_lower(C, B))


def log_diag_sum(C: np.ndarray) -> float:
    """``sum_j log det M_j`` from the factors: twice the sum of the log diagonals."""
    q = C.shape[0]
    return 2.0 * float(sum(np.log(C[i, i]).sum() for i in range(q)))


def gram_of_solve(C: np.ndarray, B: np.ndarray) -> np.ndarray:
    """``B' M_j^-1 B`` for one fixed ``q x r`` matrix ``B`` and the factors ``C`` of ``M``.

    With ``R_j = C_j^-1 B``, ``B' M_j^-1 B = R_j' R_j``: one forward solve and a product,
    shape ``(r, r, J)``. The engine's ``L M_j^-1 L'`` is ``gram_of_solve(C, L.T)``.

    Examples
    --------
    >>> import numpy as np
    >>> M = np.array([[4.0, 2.0], [2.0, 3.0]])
    >>> B = np.array([[1.0, 0.0], [0.5, 2.0]])
    >>> out = gram_of_solve(cholesky(M[:, :, None]), B)[:, :, 0]
    >>> np.allclose(out, B.T @ np.linalg.solve(M, B))
    True
    """
    J = C.shape[2]
    R = solve_lower(C, np.broadcast_to(B[:, :, None], (B.shape[0], B.shape[1], J)))
    r = B.shape[1]
    G = np.empty((r, r, J))
    for a in range(r):
        for b in range(a + 1):
            G[a, b] = np.einsum("cj,cj->j", R[:, a], R[:, b])
            G[b, a] = G[a, b]
    return G
