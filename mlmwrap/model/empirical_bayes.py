"""Empirical Bayes random effects from the engine's per-cluster quantities.

For cluster ``j``, with ``tau = sigma2 L L'`` and ``M_j = I + L' Z_j'Z_j L``::

    u_j = L M_j^-1 L' Z_j'(y_j - X_j gamma)        cov(u_j | y, gamma) = sigma2 L M_j^-1 L'

which is lme4's ``ranef(condVar = TRUE)``. All clusters at once, on stacked ``q x q`` arrays.
"""

from __future__ import annotations

import numpy as np

from mlmwrap.model.engine import ClusterStats, Evaluation

__all__ = ["empirical_bayes"]


def empirical_bayes(ev: Evaluation, stats: ClusterStats) -> tuple[np.ndarray, np.ndarray]:
    """EB random effects and their conditional covariance given the gammas, per cluster.

    Returns
    -------
    u : ndarray, shape (J, q)
        ``L M_j^-1 L' Z_j'(y_j - X_j gamma)``, rows in ``res.design.cluster_labels`` order.
    cov : ndarray, shape (J, q, q)
        ``sigma2 L M_j^-1 L'`` (lme4's ``postVar``).
    """
    p, q, L = stats.p, stats.q, ev.L
    zt = stats.zt_all  # Z'[X y Z] per cluster
    ztr = zt[:, :, p] - zt[:, :, :p] @ ev.beta  # Z_j'(y_j - X_j gamma), (J, q)
    M = L.T @ zt[:, :, p + 1 :] @ L
    M[:, range(q), range(q)] += 1.0
    LMinv = L @ np.linalg.inv(M)  # (J, q, q)
    u = np.einsum("jab,jb->ja", LMinv @ L.T, ztr)
    cov = ev.sigma2 * (LMinv @ L.T)
    return u, cov
