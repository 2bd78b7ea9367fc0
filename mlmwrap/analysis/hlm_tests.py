"""HLM's chi-square tests of the variance components and the reliabilities.

HLM prints, beside each variance component ``tau_KK``, a chi-square test of
``H0: tau_KK = 0`` computed from the per-cluster OLS estimates (Raudenbush & Bryk 2002,
section 3.5, eq. 3.103)::

    chi2_K = sum_j (beta_hat_Kj - gamma_K0 - sum_M gamma_KM W_Mj)^2 / V_hat_Kj,
    V_hat_Kj = sigma2 [(X_j'X_j)^-1]_KK,           df = J' - S_K - 1

over the ``J'`` clusters whose within-cluster OLS regression is estimable (a full-rank
design, so at least as many rows as level-1 coefficients, as HLM; see
:mod:`mlmwrap.analysis.cluster`), with the model's (REML or ML) gammas and sigma2 and
``S_K`` the number of level-2 predictor columns in beta K's equation. Beside it, the
reliability of each random coefficient: the mean over those clusters of
``tau_KK / (tau_KK + V_hat_Kj)`` (eq. 3.56).

The test is large-sample and conservative near the boundary; it complements the
likelihood-ratio test of a variance component rather than replacing it.

Examples
--------
>>> import mlmwrap
>>> res = mlmwrap.fit("mathach = b0 + e\\nb0 = g00 + u0",
...                   data=mlmwrap.datasets.load_hsb(), cluster="school")
>>> variance_tests(res).round(3)  # Raudenbush & Bryk (2002), Table 4.2: 1660.23, 159, .901
      beta         term  variance     chi2   df    p  reliability  clusters_used
u0      b0  (intercept)     8.614  1660.232  159  0.0        0.901            160
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy import stats as sstats

from mlmwrap.analysis.shared.per_cluster import cluster_ols, cluster_reliability, level2_fixed_parts
from mlmwrap.model.design import INTERCEPT
from mlmwrap.model.new_design import level1_columns

if TYPE_CHECKING:  # pragma: no cover
    from mlmwrap.api.results import MLMResults

__all__ = ["variance_tests"]


def variance_tests(res: MLMResults) -> pd.DataFrame:
    """HLM's chi-square test of each variance component, and each coefficient's reliability.

    Parameters
    ----------
    res
        A fitted model.

    Returns
    -------
    pandas.DataFrame
        One row per random effect (``u0``, ``u1``, ...), columns:

        - ``beta``: the random coefficient (``b0``); ``term``: what it multiplies;
        - ``variance``: ``tau_KK``;
        - ``chi2``, ``df``, ``p``: the test of ``tau_KK = 0``, ``df = J' - S_K - 1``
          (NaN, with a warning, when ``df < 1``);
        - ``reliability``: mean of ``lambda_Kj`` over the ``J'`` clusters;
        - ``clusters_used``: ``J'``, the clusters with an estimable OLS regression (HLM:
          "based on only J' of J units that had sufficient data").

    Notes
    -----
    The per-cluster OLS regresses the outcome on all the level-1 predictors (one
    coefficient per beta, random or not), as in HLM's "Level-1 OLS regressions". When
    every level-1 coefficient is random this is HLM's computation exactly; with some
    level-1 coefficients fixed HLM may compute the OLS with their fixed part removed, which
    can change ``chi2`` and the reliability slightly.

    Examples
    --------
    >>> import mlmwrap
    >>> res = mlmwrap.fit('''
    ...     mathach = b0 + b1*cwc(ses) + e
    ...     b0 = g00 + g01*meanses + g02*sector + u0
    ...     b1 = g10 + g11*meanses + g12*sector + u1
    ... ''', data=mlmwrap.datasets.load_hsb(), cluster="school")
    >>> variance_tests(res)[["chi2", "df", "p", "reliability"]].round(3)
           chi2   df      p  reliability
    u0  604.996  157  0.000        0.733
    u1  162.228  157  0.371        0.051
    """
    ols = cluster_ols(res)
    used = ols.estimable
    j_used = int(used.sum())
    fixed_part = level2_fixed_parts(res)
    lam = cluster_reliability(res, ols)
    rows = []
    columns = level1_columns(res)  # a categorical predictor: one per category
    random_columns = [(k, c) for k, c in enumerate(columns) if c.random]
    for r, (k, col) in enumerate(random_columns):
        label = res.design.random_labels[r]
        n_gammas = len(col.gammas)
        v = res.sigma2 * ols.inv_diag[used, k]
        chi2 = float(np.sum((ols.coef[used, k] - fixed_part[used, k]) ** 2 / v))
        df = j_used - n_gammas
        if df < 1:
            warnings.warn(
                f"the chi-square test of {label} is not defined: {j_used} clusters have an "
                f"estimable OLS regression, not more than the {n_gammas} gammas of "
                f"{col.label}",
                UserWarning,
                stacklevel=2,
            )
            chi2, p, df_out = float("nan"), float("nan"), float("nan")
        else:
            p, df_out = float(sstats.chi2.sf(chi2, df)), df
        term = res.design.random_terms[r]
        rows.append(
            {
                "beta": col.label,
                "term": "(intercept)" if term == INTERCEPT else term,
                "variance": float(res.tau.iloc[r, r]),
                "chi2": chi2,
                "df": df_out,
                "p": p,
                "reliability": float(lam[used, r].mean()) if j_used else float("nan"),
                "clusters_used": j_used,
            }
        )
    frame = pd.DataFrame(rows, index=pd.Index(res.design.random_labels))
    if frame["df"].notna().all():
        frame["df"] = frame["df"].astype(int)
    return frame
