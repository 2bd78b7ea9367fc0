"""The (RE)ML deviance at given ``(L, sigma)``, not profiled, and its analytic gradient.

lme4's ``(theta, sigma)`` parametrization: the small-sample df (Satterthwaite, Kenward-Roger)
and the profile and Wald intervals of the variance components differentiate these; the
optimizer works on the profiled deviance in :mod:`mlmwrap.model.engine`.
"""

from __future__ import annotations

import numpy as np

from mlmwrap.model.engine import ClusterStats, L_to_theta, evaluate, theta_indices
from mlmwrap.model.small_linalg import cholesky, gram_of_solve

__all__ = [
    "unprofiled_deviance",
    "unprofiled_gradient",
    "unprofiled_hessian",
    "cov_beta_jacobian",
]


def unprofiled_deviance(stats: ClusterStats, L: np.ndarray, sigma: float, reml: bool) -> float:
    """The (RE)ML deviance at relative factor ``L`` and residual SD ``sigma`` (not profiled).

    ``log|V| [+ log|A|] + nu log(2 pi sigma^2) + r2 / sigma^2`` with ``nu = n - p`` (REML)
    or ``n`` (ML): lme4's deviance with sigma a free parameter, as lmerTest and lme4's
    profile use it. At ``sigma^2 = r2 / nu`` it equals the profiled deviance.
    """
    ev = evaluate(stats, L, reml)
    nu = stats.n_obs - stats.p if reml else stats.n_obs
    s2 = sigma * sigma
    dev = ev.logdet_V + nu * np.log(2.0 * np.pi * s2) + ev.r2 / s2
    return float(dev + ev.logdet_A) if reml else float(dev)


def unprofiled_gradient(stats: ClusterStats, L: np.ndarray, sigma: float, reml: bool) -> np.ndarray:
    """Analytic gradient of :func:`unprofiled_deviance` in (theta, sigma).

    From the engine's pieces: d/dL = 2 (G_V [- G_A] - G_r / sigma^2) L, and
    d/dsigma = 2 nu / sigma - 2 r2 / sigma^3.
    """
    ev = evaluate(stats, L, reml)
    nu = stats.n_obs - stats.p if reml else stats.n_obs
    G = ev.G_V - ev.G_r / sigma**2
    if reml:
        G = G - ev.G_A
    d_theta = L_to_theta(np.tril(2.0 * G @ L), stats.free)
    return np.append(d_theta, 2.0 * nu / sigma - 2.0 * ev.r2 / sigma**3)


def _z_vinv_x(stats: ClusterStats, L: np.ndarray) -> np.ndarray:
    """``W_j = Z_j' V_j^-1 X_j`` for every cluster, shape ``(J, q, p)``."""
    p, q = stats.p, stats.q
    ztz = stats.ztz_soa
    M = np.einsum("ba,bcj,cd->adj", L, ztz, L)
    M[range(q), range(q)] += 1.0
    H = gram_of_solve(cholesky(M), L.T)  # L M^-1 L', (q, q, J)
    Ninv = -np.einsum("abj,bcj->acj", ztz, H)
    Ninv[range(q), range(q)] += 1.0
    return np.ascontiguousarray(Ninv.transpose(2, 0, 1)) @ stats.zt_xy[:, :, :p]


def cov_beta_jacobian(
    stats: ClusterStats,
    L: np.ndarray,
    sigma: float,
    a_jacobian: np.ndarray | None = None,
    A: np.ndarray | None = None,
) -> np.ndarray:
    """Analytic derivatives of ``C = sigma^2 A^-1`` in (theta, sigma), shape ``(p, p, k)``.

    ``dC/dsigma = 2 sigma A^-1`` and ``dC/dtheta_i = -sigma^2 A^-1 (dA/dtheta_i) A^-1`` with
    ``dA/dL_ab = -sum_j (W_j[a]' U_j[b] + U_j[b]' W_j[a])``, ``W_j = Z_j'V_j^-1 X_j`` and
    ``U_j = L' W_j`` (from ``dV = Z (dL L' + L dL') Z'``). One pass over the clusters
    replaces the ``4 k`` deviance evaluations of a finite-difference Jacobian; given
    ``a_jacobian`` (``dA/dtheta``, ``(k, p, p)``, as the engine's Hessian leaves it in
    :attr:`~mlmwrap.model.engine.Optimum.a_jacobian`) and ``A``, there is no pass at all.
    """
    if a_jacobian is not None and A is not None:
        Ainv = np.linalg.inv(A)
        k = len(a_jacobian)
        jac = np.empty((A.shape[0], A.shape[0], k + 1))
        for i in range(k):
            jac[:, :, i] = -(sigma**2) * Ainv @ a_jacobian[i] @ Ainv
        jac[:, :, -1] = 2.0 * sigma * Ainv
        return jac
    p, q = stats.p, stats.q
    n_clusters = stats.zt_xy.shape[0]
    ev = evaluate(stats, L, True)
    Ainv = np.linalg.inv(ev.A)
    W = _z_vinv_x(stats, L)
    U = np.tensordot(W, L, axes=(1, 0)).transpose(0, 2, 1)  # L' W_j, (J, q, p)
    # Q[a, c, b, d] = sum_j W_j[a, c] U_j[b, d]: one GEMM over clusters.
    Q = (W.reshape(n_clusters, q * p).T @ U.reshape(n_clusters, q * p)).reshape(q, p, q, p)
    rows, cols = theta_indices(q, stats.free)  # lme4's theta order, the free entries
    jac = np.empty((p, p, len(rows) + 1))
    for i, (a, b) in enumerate(zip(rows, cols, strict=True)):
        dA = -(Q[a, :, b, :] + Q[a, :, b, :].T)
        jac[:, :, i] = -(sigma**2) * Ainv @ dA @ Ainv
    jac[:, :, -1] = 2.0 * sigma * Ainv
    return jac


def unprofiled_hessian(
    stats: ClusterStats,
    L: np.ndarray,
    reml: bool,
    profiled_hessian: np.ndarray,
    evaluation=None,
) -> np.ndarray:
    """Hessian of :func:`unprofiled_deviance` in (theta, sigma) at the optimum, for free.

    With ``D(theta, sigma)`` and the profiled ``D_p(theta) = D(theta, sigma(theta))``, at a
    point where ``dD/dsigma = 0``: ``H_p = H_tt - H_ts H_ts' / H_ss`` (the Schur complement),
    and ``H_ss = 4 nu / sigma^2``, ``H_ts = -2 (dr2/dtheta) / sigma^3`` are analytic, so the
    engine's Hessian of the profiled deviance gives the whole matrix with no new evaluations
    (``evaluation``: the engine's :class:`~mlmwrap.model.engine.Evaluation` at ``L``, if
    at hand; otherwise one evaluation).
    """
    ev = evaluation if evaluation is not None else evaluate(stats, L, reml)
    nu = stats.n_obs - stats.p if reml else stats.n_obs
    sigma2 = ev.r2 / nu
    d_r2 = L_to_theta(np.tril(-2.0 * ev.G_r @ L), stats.free)
    return hessian_with_sigma(profiled_hessian, d_r2, sigma2, nu)


def hessian_with_sigma(
    profiled_hessian: np.ndarray, d_r2: np.ndarray, sigma2: float, nu: int
) -> np.ndarray:
    """The Hessian in (theta, sigma) from the profiled deviance's Hessian in theta, at an
    optimum: ``H_tt = H_p + H_ts H_ts' / H_ss``, ``H_ts = -2 (dr2/dtheta) / sigma^3``,
    ``H_ss = 4 nu / sigma^2`` (``nu``: n, or n - p under REML). The same for two and for
    more levels: only ``dr2/dtheta`` differs.

    Examples
    --------
    >>> hessian_with_sigma(np.array([[2.0]]), np.array([1.0]), 1.0, 10)
    array([[ 2.1, -2. ],
           [-2. , 40. ]])
    """
    sigma = np.sqrt(sigma2)
    h_ts = -2.0 * d_r2 / sigma**3
    h_ss = 4.0 * nu / sigma2
    k = len(d_r2)
    H = np.empty((k + 1, k + 1))
    H[:k, :k] = profiled_hessian + np.outer(h_ts, h_ts) / h_ss
    H[:k, k] = H[k, :k] = h_ts
    H[k, k] = h_ss
    return H
