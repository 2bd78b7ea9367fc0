"""Empirical Bayes (conditional mode) estimates of every level's random effects, nested model.

With ``e = y - X gamma`` and ``P_j = L2 M_j^-1 L2'`` (``M_j = I + L2' Z2j'Z2j L2``): the
level-3 effects ``u_k = L3 M_k^-1 L3' (Z3' V2^-1 e)_k`` from the level-2-absorbed
cross-products summed within the level-3 unit; then ``r_j = P_j Z2j'(e_j - Z3j u_k)``.
Conditional covariances (gammas treated as known, as lme4's ``condVar``):
``Var(u_k | y) = sigma^2 L3 M_k^-1 L3'`` and
``Var(r_j | y) = sigma^2 P_j + B_j Var(u_k | y) B_j'`` with ``B_j = P_j Z2j'Z3j``.
Batched solves over units, no loop over units.

Examples
--------
>>> import numpy as np
>>> from mlmwrap.model.nested import NestedStats
>>> from mlmwrap.model.nested_fit import verify_nested
>>> rng = np.random.default_rng(1)
>>> c3 = np.repeat(np.arange(20), 30); c2 = np.repeat(np.arange(100), 6)
>>> y = rng.normal(size=20)[c3] + rng.normal(size=100)[c2] + rng.normal(size=600)
>>> one = np.ones((600, 1))
>>> fit = verify_nested(NestedStats.from_arrays(one, [one, one], y, [c2, c3]))
>>> (r, vr), (u, vu) = nested_eb(fit, one, [one, one], y, [c2, c3])
>>> r.shape, u.shape, vu.shape
((100, 1), (20, 1), (20, 1, 1))
"""

from __future__ import annotations

import numpy as np

from mlmwrap.model.engine import cluster_cross_products
from mlmwrap.model.nested_fit import NestedFit

__all__ = ["nested_eb"]


def nested_eb(
    fit: NestedFit, X: np.ndarray, Zs: list[np.ndarray], y: np.ndarray, codes: list[np.ndarray]
) -> list[tuple[np.ndarray, np.ndarray]]:
    """``[(estimates (J2, q2), covariances (J2, q2, q2)), (the same for level 3)]``."""
    if len(Zs) != 2:
        raise NotImplementedError("empirical Bayes estimates are written for three levels")
    L2, L3 = fit.evaluation.Ls
    s2 = fit.sigma2
    Z2, Z3 = Zs
    q2, q3 = Z2.shape[1], Z3.shape[1]
    c2, c3 = codes
    J2, J3 = int(c2.max()) + 1, int(c3.max()) + 1
    e = y - X @ fit.beta
    W = np.hstack([Z2, Z3, e[:, None]])
    S = cluster_cross_products(W, c2, J2)  # (J2, k, k)
    D, B = S[:, :q2, :q2], S[:, :q2, q2:]
    M2 = L2.T @ D @ L2
    M2[:, range(q2), range(q2)] += 1.0
    P2 = L2 @ np.linalg.solve(M2, np.broadcast_to(L2.T, M2.shape[:1] + L2.T.shape))
    absorbed = S[:, q2:, q2:] - np.swapaxes(B, 1, 2) @ P2 @ B  # [Z3, e] given level 2
    parent = np.zeros(J2, dtype=np.intp)
    parent[c2] = c3
    k = q3 + 1
    Sk = np.zeros((J3, k * k))
    np.add.at(Sk, parent, absorbed.reshape(J2, k * k))
    Sk = Sk.reshape(J3, k, k)
    M3 = L3.T @ Sk[:, :q3, :q3] @ L3
    M3[:, range(q3), range(q3)] += 1.0
    P3 = L3 @ np.linalg.solve(M3, np.broadcast_to(L3.T, M3.shape[:1] + L3.T.shape))
    u = (P3 @ Sk[:, :q3, q3:])[:, :, 0]
    var_u = s2 * P3
    # level 2 given level 3
    Z2e = B[:, :, q3]  # Z2'e per level-2 unit
    Z2Z3 = B[:, :, :q3]
    r = (P2 @ (Z2e - (Z2Z3 @ u[parent][:, :, None])[:, :, 0])[:, :, None])[:, :, 0]
    Bj = P2 @ Z2Z3
    var_r = s2 * P2 + Bj @ var_u[parent] @ np.swapaxes(Bj, 1, 2)
    return [(r, var_r), (u, var_u)]
