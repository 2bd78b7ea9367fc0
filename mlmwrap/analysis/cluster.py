"""Per-cluster estimates: empirical Bayes effects and coefficients, OLS, reliabilities.

For cluster ``j`` with ``y_j = X_j gamma + Z_j u_j + e_j``, ``u_j ~ N(0, tau)``, the
empirical Bayes (EB) estimate of ``u_j`` and its conditional covariance given the gammas
are, with ``tau = sigma2 L L'`` and ``M_j = I + L' Z_j'Z_j L`` (the engine's quantities)::

    u_j = L M_j^-1 L' Z_j'(y_j - X_j gamma)        cov(u_j | y, gamma) = sigma2 L M_j^-1 L'

which is lme4's ``ranef(condVar = TRUE)``. All clusters are done at once on stacked
``q x q`` arrays built from the per-cluster cross-products the fit already has.

The cluster's own coefficient (HLM's EB coefficient) is::

    beta_Kj = gamma_K0 + sum_M gamma_KM W_Mj + u_Kj

the fixed part of beta K's level-2 equation at the cluster's level-2 values plus its EB
effect (no ``u_Kj`` for a beta without a random effect). This equals lme4's ``coef()``
only when beta K's equation has no level-2 predictors: ``coef()`` adds ``u_Kj`` to the
*term's* fixed effect and leaves ``gamma_KM W_Mj`` in other columns.

The OLS estimates are the within-cluster least-squares regression of the outcome on the
level-1 predictors (one coefficient per beta, as HLM's "Level-1 OLS regressions"), for
clusters where it is estimable: at least as many rows as coefficients and a full-rank design (the
level-1 columns, scaled by their root mean square over the whole sample, have a condition
number below 1e5 within the cluster). Their reliability, as HLM reports it, is
``lambda_Kj = tau_KK / (tau_KK + sigma2 [(X_j'X_j)^-1]_KK)``; the overall reliability is
its mean over the clusters with estimable OLS (Raudenbush & Bryk 2002, eq. 3.56).

Examples
--------
>>> import mlmwrap
>>> res = mlmwrap.fit('''
...     mathach = b0 + b1*cwc(ses) + e
...     b0 = g00 + u0
...     b1 = g10 + u1
... ''', data=mlmwrap.datasets.load_hsb(), cluster="school")
>>> cc = cluster_coefficients(res)
>>> cc[["n", "u0", "u0_sd", "b0", "b1", "b1_ols"]].head(3).round(3)
         n     u0  u0_sd      b0     b1  b1_ols
school
1224    47 -2.679  0.846   9.957  2.263   2.509
1288    25  0.750  1.121  13.386  2.376   3.255
1296    48 -4.597  0.838   8.039  1.872   1.076
>>> reliabilities(res).round(3)
u0    0.908
u1    0.264
Name: reliability, dtype: float64
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from mlmwrap.analysis.shared.per_cluster import (
    ClusterOLS,
    cluster_ols,
    cluster_reliability,
    level2_fixed_parts,
)
from mlmwrap.model.empirical_bayes import empirical_bayes as _empirical_bayes
from mlmwrap.model.new_design import level1_columns

if TYPE_CHECKING:  # pragma: no cover
    from mlmwrap.api.results import MLMResults

__all__ = [
    "empirical_bayes",
    "ClusterOLS",
    "cluster_ols",
    "cluster_betas",
    "reliabilities",
    "cluster_coefficients",
    "coef",
    "posterior_covariances",
]


def empirical_bayes(res: MLMResults) -> tuple[np.ndarray, np.ndarray]:
    """EB random effects ``(J, q)`` and their conditional covariances ``(J, q, q)`` given the
    gammas (:func:`mlmwrap.model.empirical_bayes.empirical_bayes`)."""
    return _empirical_bayes(res.optimum.evaluation, res.cluster_stats)


def cluster_betas(res: MLMResults, u: np.ndarray | None = None) -> np.ndarray:
    """Each cluster's coefficients ``beta_Kj`` (fixed part at its W's plus ``u_Kj``), (J, P),
    one per level-1 column (:func:`mlmwrap.model.new_design.level1_columns`: a categorical
    level-1 predictor has one per non-reference category)."""
    if u is None:
        u, _ = empirical_bayes(res)
    betas = level2_fixed_parts(res)
    random_positions = [k for k, c in enumerate(level1_columns(res)) if c.random]
    betas[:, random_positions] += u
    return betas


def reliabilities(res: MLMResults) -> pd.Series:
    """HLM's reliability of each random coefficient: mean ``lambda_Kj`` over the clusters
    with an estimable OLS regression.

    Returns
    -------
    pandas.Series
        Indexed by the random effects (``u0``, ``u1``), as ``res.tau`` and
        ``res.variance_tests()`` are; named ``reliability``.
    """
    ols = cluster_ols(res)
    lam = cluster_reliability(res, ols)[ols.estimable]
    labels = list(res.design.random_labels)
    values = lam.mean(axis=0) if len(lam) else np.full(len(labels), np.nan)
    return pd.Series(values, index=pd.Index(labels), name="reliability")


def cluster_coefficients(res: MLMResults) -> pd.DataFrame:
    """Per-cluster EB effects and coefficients, OLS estimates and their reliabilities.

    Parameters
    ----------
    res
        A fitted model.

    Returns
    -------
    pandas.DataFrame
        One row per cluster, indexed by cluster id (named like the cluster column).
        Columns:

        - ``n``: the cluster's rows in the estimation sample;
        - ``uK``, ``uK_sd`` for each random effect: the EB estimate and its posterior SD
          given the gammas (lme4's ``ranef(condVar = TRUE)``);
        - ``bK`` for each beta (``bK[Black]`` for each non-reference category of a
          categorical level-1 predictor): the cluster's coefficient
          ``gamma_K0 + sum_M gamma_KM W_Mj + u_Kj`` (HLM's EB coefficient; for a beta
          without a random effect, the fixed part at the cluster's level-2 values);
        - ``bK_ols`` for each beta: the within-cluster OLS estimate, NaN where the
          regression is not estimable;
        - ``bK_reliability`` for each random beta: ``tau_KK / (tau_KK + sigma2
          [(X_j'X_j)^-1]_KK)``, NaN where the OLS is not estimable;
        - ``ols_estimable``: at least as many rows as level-1 coefficients and a full-rank design.

        The overall reliabilities are :func:`reliabilities` (and a column of
        :func:`mlmwrap.analysis.hlm_tests.variance_tests`).

    Examples
    --------
    >>> import mlmwrap
    >>> res = mlmwrap.fit("mathach = b0 + e\\nb0 = g00 + u0",
    ...                   data=mlmwrap.datasets.load_hsb(), cluster="school")
    >>> cluster_coefficients(res).head(2).round(3)
             n     u0  u0_sd      b0  b0_ols  b0_reliability  ols_estimable
    school
    1224    47 -2.664  0.871   9.973   9.715           0.912           True
    1288    25  0.739  1.151  13.376  13.511           0.846           True
    """
    d = res.design
    u, cov = empirical_bayes(res)
    sd = np.sqrt(np.clip(np.diagonal(cov, axis1=1, axis2=2), 0.0, None))
    betas = cluster_betas(res, u)
    ols = cluster_ols(res)
    lam = cluster_reliability(res, ols)
    columns: dict[str, np.ndarray] = {"n": d.cluster_sizes}
    for k, label in enumerate(d.random_labels):
        columns[label] = u[:, k]
        columns[f"{label}_sd"] = sd[:, k]
    for k, label in enumerate(ols.labels):
        columns[label] = betas[:, k]
    for k, label in enumerate(ols.labels):
        columns[f"{label}_ols"] = ols.coef[:, k]
    random_labels = [label for label, r in zip(ols.labels, ols.random, strict=True) if r]
    for k, label in enumerate(random_labels):
        columns[f"{label}_reliability"] = lam[:, k]
    columns["ols_estimable"] = ols.estimable
    return pd.DataFrame(columns, index=pd.Index(d.cluster_labels, name=d.cluster))


def coef(res: MLMResults) -> pd.DataFrame:
    """lme4's ``coef()``: per cluster, each fixed effect plus the cluster's EB effect.

    For every reduced-form term (the columns, named as in ``res.gamma["term"]``:
    ``(Intercept)``, ``meanses``, ``cwc(ses)``, ``cwc(ses):meanses``) the gamma, plus
    ``u_Kj`` for the term that carries the random effect ``uK``. Terms without a random
    effect are the same in every row. Unlike :func:`cluster_betas` (HLM's EB
    coefficients), the level-2 predictors' contributions stay in their own columns.

    Examples
    --------
    >>> import mlmwrap
    >>> res = mlmwrap.fit("mathach = b0 + b1*cwc(ses) + e\\nb0 = g00 + u0\\nb1 = g10 + u1",
    ...                   data=mlmwrap.datasets.load_hsb(), cluster="school")
    >>> coef(res).head(2).round(3)
            (Intercept)  cwc(ses)
    school
    1224          9.957     2.263
    1288         13.386     2.376
    """
    d = res.design
    u, _ = empirical_bayes(res)
    terms = list(res.gamma["term"])
    values = np.tile(res.gamma["estimate"].to_numpy(), (len(d.cluster_labels), 1))
    columns = list(terms)
    for k, term in enumerate(d.random_terms):
        if term in columns:
            values[:, columns.index(term)] += u[:, k]
        else:
            columns.append(term)
            values = np.column_stack([values, u[:, k]])
    return pd.DataFrame(values, index=pd.Index(d.cluster_labels, name=d.cluster), columns=columns)


def posterior_covariances(res: MLMResults) -> pd.DataFrame:
    """Each cluster's posterior covariance of its EB effects, labelled (lme4's ``postVar``).

    Returns
    -------
    pandas.DataFrame
        Index ``(cluster, effect)``, columns the random effects (``u0``, ``u1``): row block
        ``j`` is ``cov(u_j | y, gamma) = sigma2 L M_j^-1 L'``. The posterior SDs are the
        square roots of its diagonal (``uK_sd`` in :func:`cluster_coefficients`).

    Examples
    --------
    >>> import mlmwrap
    >>> res = mlmwrap.fit("mathach = b0 + b1*cwc(ses) + e\\nb0 = g00 + u0\\nb1 = g10 + u1",
    ...                   data=mlmwrap.datasets.load_hsb(), cluster="school")
    >>> posterior_covariances(res).loc[1224].round(4)
                u0      u1
    effect
    u0      0.7164  0.0029
    u1      0.0029  0.5169
    """
    d = res.design
    _, cov = empirical_bayes(res)
    labels = list(d.random_labels)
    index = pd.MultiIndex.from_product(
        [pd.Index(d.cluster_labels), labels], names=[d.cluster, "effect"]
    )
    return pd.DataFrame(cov.reshape(-1, len(labels)), index=index, columns=labels)
