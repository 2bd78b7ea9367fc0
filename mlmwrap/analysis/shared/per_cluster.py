"""Within-cluster OLS regressions and the reliabilities built on them (HLM's level-1 OLS).

Shared by the per-cluster estimates (:mod:`mlmwrap.analysis.cluster`) and HLM's chi-square
tests (:mod:`mlmwrap.analysis.hlm_tests`); see the first for the definitions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from mlmwrap.model.engine import cluster_cross_products
from mlmwrap.model.new_design import fit_level_columns, level1_columns

if TYPE_CHECKING:  # pragma: no cover
    from mlmwrap.api.results import MLMResults

__all__ = [
    "MAX_CONDITION",
    "ClusterOLS",
    "cluster_ols",
    "level2_fixed_parts",
    "cluster_reliability",
]

#: Largest condition number (of the scaled level-1 design) for a cluster's OLS to count.
MAX_CONDITION = 1e5


@dataclass(frozen=True)
class ClusterOLS:
    """Within-cluster OLS regressions on the level-1 predictors.

    Attributes
    ----------
    coef : ndarray, shape (J, P)
        One coefficient per level-1 column (per beta; per category's indicator for a
        categorical level-1 predictor), NaN where not estimable.
    inv_diag : ndarray, shape (J, P)
        Diagonal of ``(X_j'X_j)^-1`` (NaN where not estimable).
    estimable : ndarray of bool, shape (J,)
    labels : list of str
        The level-1 column of each coefficient: ``b0``, ``b1``, ``b2[Black]``.
    random : ndarray of bool, shape (P,)
        Whether the column carries a random effect (in the order of ``res.tau``).
    """

    coef: np.ndarray
    inv_diag: np.ndarray
    estimable: np.ndarray
    labels: list[str]
    random: np.ndarray


def cluster_ols(res: MLMResults) -> ClusterOLS:
    """Per-cluster OLS of the outcome on the level-1 predictors (see the module notes)."""
    columns = level1_columns(res)
    X1 = np.column_stack([c.x for c in columns])
    d = res.design
    J, P = d.n_clusters, X1.shape[1]
    cross = cluster_cross_products(np.column_stack([X1, d.y]), d.codes, J)
    xtx, xty = cross[:, :P, :P], cross[:, :P, P]
    scale = np.sqrt((X1**2).mean(axis=0))
    eig = np.linalg.eigvalsh(xtx / np.outer(scale, scale))
    with np.errstate(divide="ignore", invalid="ignore"):
        condition = eig[:, -1] / eig[:, 0]
    # HLM's rule: every cluster whose design has full column rank (n_j >= P) has an OLS
    # estimate, an exact fit when n_j == P; sigma2 (pooled) gives its sampling variance.
    estimable = (d.cluster_sizes >= P) & (eig[:, 0] > 0) & (condition < MAX_CONDITION**2)
    coef = np.full((J, P), np.nan)
    inv_diag = np.full((J, P), np.nan)
    if estimable.any():
        inv = np.linalg.inv(xtx[estimable])
        coef[estimable] = np.einsum("jab,jb->ja", inv, xty[estimable])
        inv_diag[estimable] = np.diagonal(inv, axis1=1, axis2=2)
    return ClusterOLS(
        coef=coef,
        inv_diag=inv_diag,
        estimable=estimable,
        labels=[c.label for c in columns],
        random=np.array([c.random for c in columns], dtype=bool),
    )


def level2_fixed_parts(res: MLMResults) -> np.ndarray:
    """``gamma_K0 + sum_M gamma_KM W_Mj`` for each cluster and level-1 column, (J, P)."""
    _, gamma_cols = fit_level_columns(res)
    d = res.design
    estimate = dict(zip([c.label for c in d.fixed_columns], res.optimum.beta, strict=True))
    _, first = np.unique(d.codes, return_index=True)  # a row of each cluster
    out = np.zeros((d.n_clusters, len(gamma_cols)))
    for k, cols in enumerate(gamma_cols):
        for g in cols:
            out[:, k] += estimate[g.label] * g.w[first]
    return out


def cluster_reliability(res: MLMResults, ols: ClusterOLS) -> np.ndarray:
    """``lambda_Kj`` for each cluster and random beta, shape (J, q); NaN without OLS."""
    tau = np.diag(res.optimum.tau)
    v = res.sigma2 * ols.inv_diag[:, ols.random]
    with np.errstate(invalid="ignore", divide="ignore"):
        return tau / (tau + v)
