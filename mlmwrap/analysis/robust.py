"""Cluster-robust (sandwich) standard errors of the gammas, with the CR2 small-sample correction.

HLM prints "robust standard errors" beside the model-based ones: if the two disagree, the
random part of the model (or the level-1 variance) is probably misspecified. The plain
sandwich estimator is biased downwards when the clusters are few; the bias-reduced CR2
estimator of Bell & McCaffrey (2002, Survey Methodology 28, 169-181), with the
Satterthwaite degrees of freedom of Pustejovsky & Tipton (2018, J. Bus. Econ. Stat. 36,
672-683), fixes most of it. This module computes them exactly as R's clubSandwich does for
an ``lmer`` fit (``coef_test(fit, vcov = "CR2", test = "Satterthwaite")``): the working
covariance of cluster j is the fitted ``V_j = Z_j tau Z_j' + sigma2 I``, the residuals are the
marginal ones ``y - X gamma``, and

    A_j   = D_j' [D_j (V_j - X_j M X_j') D_j']^(-1/2) D_j,  D_j'D_j = V_j (upper Cholesky)
    V_CR2 = M [sum_j X_j'V_j^-1 A_j e_j e_j' A_j V_j^-1 X_j] M,  M = (X'V^-1X)^-1.

Examples
--------
>>> import mlmwrap
>>> from mlmwrap.analysis.robust import robust_table
>>> res = mlmwrap.fit('''
...     mathach = b0 + b1*cwc(ses) + e
...     b0 = g00 + g01*meanses + g02*sector + u0
...     b1 = g10 + g11*meanses + g12*sector + u1
... ''', data=mlmwrap.datasets.load_hsb(), cluster="school")
>>> robust_table(res)[["estimate", "se_model", "se", "df", "p"]].round(3)
       estimate  se_model     se      df      p
gamma
g00      12.096     0.199  0.175  83.473  0.000
g01       5.333     0.369  0.339  56.029  0.000
g02       1.226     0.306  0.311 100.129  0.000
g10       2.939     0.155  0.149  76.140  0.000
g11       1.039     0.299  0.339  56.573  0.003
g12      -1.643     0.240  0.241  90.540  0.000
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy import stats as sstats

from mlmwrap.analysis.shared.progress import progress
from mlmwrap.errors import MLMError

if TYPE_CHECKING:  # pragma: no cover
    from mlmwrap.api.results import MLMResults

__all__ = ["cr2_vcov", "robust_table"]


def _inv_sqrt_psd(G: np.ndarray) -> np.ndarray:
    """Symmetric G^(-1/2) over the positive eigenvalues (clubSandwich's matrix_power), for
    a stack of matrices (..., n, n); the tolerance is relative to each matrix's largest
    eigenvalue (G is free of units: sigma2 is factored out)."""
    values, vectors = np.linalg.eigh(0.5 * (G + np.swapaxes(G, -1, -2)))
    tol = 1e-12 * np.maximum(1.0, values.max(axis=-1, keepdims=True))
    inv_sqrt = np.where(values > tol, 1.0 / np.sqrt(np.clip(values, tol, None)), 0.0)
    return (vectors * inv_sqrt[..., None, :]) @ np.swapaxes(vectors, -1, -2)


def _size_groups(codes: np.ndarray, n_clusters: int):
    """Clusters grouped by size: ``(clusters, rows)`` with ``rows`` of shape (J_s, n_s), the
    row indices of each cluster of that size (one array per distinct size, no loop over
    clusters)."""
    sizes = np.bincount(codes, minlength=n_clusters)
    order = np.argsort(codes, kind="stable")
    starts = np.r_[0, np.cumsum(sizes)[:-1]]
    for n in np.unique(sizes[sizes > 0]):
        clusters = np.flatnonzero(sizes == n)
        yield clusters, order[starts[clusters][:, None] + np.arange(n)]


def cr2_vcov(res: MLMResults) -> tuple[np.ndarray, np.ndarray]:
    """CR2 covariance matrix of the gammas and the Satterthwaite df of each gamma.

    Parameters
    ----------
    res
        A fitted model; its clusters are the clusters of the sandwich.

    Returns
    -------
    vcov : ndarray (p, p)
        The bias-reduced cluster-robust covariance matrix.
    df : ndarray (p,)
        clubSandwich's Satterthwaite df of each gamma (``coef_test(test="Satterthwaite")``).

    Notes
    -----
    Cluster by cluster with O(J) memory: clusters of equal size are stacked and their
    ``n_j x n_j`` matrices handled in one batch (a loop over the distinct sizes, never over
    clusters), and no J x J matrix is formed: the Satterthwaite df, whose matrix
    ``P_i = diag(g_i) - H_i H_i'`` is J x J, come from ``tr P_i = sum g_i - ||H_i||^2`` and
    ``||P_i||^2 = sum g_i^2 - 2 sum_j g_ij ||h_ij||^2 + ||H_i'H_i||^2``. Memory is
    ``sum_j n_j^2``, so one huge cluster is costly.

    Examples
    --------
    >>> import mlmwrap
    >>> res = mlmwrap.fit("mathach = b0 + b1*cwc(ses)\\nb0 = g00 + u0\\nb1 = g10 + u1",
    ...                   mlmwrap.datasets.load_hsb(), cluster="school")
    >>> vcov, df = cr2_vcov(res)
    >>> np.sqrt(np.diag(vcov)).round(4), df.round(1)
    (array([0.2445, 0.1283]), array([158.8, 148.6]))
    """
    d = res.design
    ev = res.optimum.evaluation
    if res.n_clusters < 2:
        raise MLMError("cluster-robust standard errors need at least two clusters")
    L = ev.L
    M = np.linalg.inv(ev.A)  # (X'V^-1X)^-1 with V = I + Z L L'Z' (sigma2 cancels)
    p = M.shape[0]
    M_chol = np.linalg.cholesky(M)
    resid = d.y - d.X @ ev.beta
    J = res.n_clusters
    components = np.empty((J, p))
    g2 = np.empty((J, p))  # squared norms of the rows of M E_j D_j'
    h = np.empty((J, p, p))  # M E_j X_j chol(M)
    groups = list(_size_groups(d.codes, J))
    for clusters, rows in progress(groups, "robust SEs", work=int(d.n_obs) > 200_000):
        X, Zl = d.X[rows], d.Z[rows] @ L  # (J_s, n, p), (J_s, n, q)
        V = Zl @ np.swapaxes(Zl, 1, 2)
        V[:, range(V.shape[1]), range(V.shape[1])] += 1.0
        Dt = np.linalg.cholesky(V)  # lower: V = Dt Dt'
        W = np.linalg.inv(V)
        XMXt = X @ M @ np.swapaxes(X, 1, 2)
        G = np.swapaxes(Dt, 1, 2) @ (V - XMXt) @ Dt
        A = Dt @ _inv_sqrt_psd(G) @ np.swapaxes(Dt, 1, 2)
        E = np.swapaxes(X, 1, 2) @ W @ A  # clubSandwich's adjusted estimating matrix
        components[clusters] = np.einsum("jpn,jn->jp", E, resid[rows])
        ME = M @ E
        g2[clusters] = np.sum((ME @ Dt) ** 2, axis=2)
        h[clusters] = ME @ X @ M_chol
    vcov = M @ (components.T @ components) @ M
    # Satterthwaite without the J x J matrix P_i[j, k] = delta_jk g2[j, i] - h_ji . h_ki
    hn2 = np.sum(h**2, axis=2)  # (J, p): ||h_ji||^2
    hth = np.einsum("jia,jib->iab", h, h)  # (p, p, p): H_i'H_i
    trace = g2.sum(axis=0) - hn2.sum(axis=0)
    frob = (g2**2).sum(axis=0) - 2.0 * (g2 * hn2).sum(axis=0) + np.sum(hth**2, axis=(1, 2))
    df = trace**2 / frob
    return 0.5 * (vcov + vcov.T), df


def robust_table(res: MLMResults, level: float = 0.95) -> pd.DataFrame:
    """The gammas with CR2 cluster-robust SEs, Satterthwaite t-tests and intervals.

    Parameters
    ----------
    res
        A fitted model.
    level
        Confidence level of the t-based intervals.

    Returns
    -------
    pandas.DataFrame
        Indexed like ``res.gamma``. Columns: ``estimate``; ``se_model`` (the model-based SE
        of ``res.gamma``, for comparison, as HLM prints both); ``se`` (CR2 robust);
        ``se_ratio`` (``se / se_model``: far from 1 hints at a misspecified random part);
        ``df`` (Satterthwaite, as clubSandwich); ``t``; ``p`` (two-sided);
        ``ci_lower``, ``ci_upper``; and ``beta``, ``level1``, ``predictor``, ``term``.

    Examples
    --------
    >>> import mlmwrap
    >>> res = mlmwrap.fit("mathach = b0 + b1*cwc(ses)\\nb0 = g00 + u0\\nb1 = g10 + u1",
    ...                   mlmwrap.datasets.load_hsb(), cluster="school")
    >>> robust_table(res)[["se_model", "se", "df"]].round(3)
           se_model     se       df
    gamma
    g00       0.245  0.244  158.847
    g10       0.128  0.128  148.604
    """
    if not 0.0 < level < 1.0:
        raise MLMError(f"level must be between 0 and 1, not {level!r}", hint="e.g. level=0.95")
    vcov, dof = cr2_vcov(res)
    g = res.gamma
    est = res.optimum.beta.copy()
    se_model = np.sqrt(np.diag(res.optimum.cov_beta))  # not g["se"]: it may be KR-adjusted
    se = np.sqrt(np.diag(vcov))
    t = est / se
    crit = sstats.t.ppf(0.5 + level / 2.0, dof)
    out = pd.DataFrame(
        {
            "estimate": est,
            "se_model": se_model,
            "se": se,
            "se_ratio": se / se_model,
            "df": dof,
            "t": t,
            "p": 2.0 * sstats.t.sf(np.abs(t), dof),
            "ci_lower": est - crit * se,
            "ci_upper": est + crit * se,
            "beta": g["beta"].to_numpy(),
            "level1": g["level1"].to_numpy(),
            "predictor": g["predictor"].to_numpy(),
            "term": g["term"].to_numpy(),
        },
        index=g.index.copy(),
    )
    out.attrs["inference"] = "CR2 cluster-robust SEs with Satterthwaite df (as clubSandwich)"
    out.attrs["level"] = level
    return out
