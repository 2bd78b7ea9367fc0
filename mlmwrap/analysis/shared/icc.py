"""The ICC of a variable from the REML null model, and the reliability of cluster means.

Shared by the descriptive ICCs (:mod:`mlmwrap.analysis.describe`) and the reliability of
cluster means as predictors (:mod:`mlmwrap.analysis.latent`).
"""

from __future__ import annotations

import warnings
from typing import NamedTuple

import numpy as np

from mlmwrap.errors import ConvergenceWarning
from mlmwrap.model.centering import cluster_means, is_level2
from mlmwrap.model.engine import ClusterStats, optimize

__all__ = ["NullICC", "null_model_icc", "mean_reliability"]


class NullICC(NamedTuple):
    """Variance components of a random-intercept null model ``x = g00 + u0 + e`` (REML)."""

    icc: float
    tau00: float
    sigma2: float
    note: str


def null_model_icc(x: np.ndarray, codes: np.ndarray) -> NullICC:
    """ICC(1) of ``x`` from the REML random-intercept null model, as ``performance::icc``.

    ``x`` must have no missing values; ``codes`` are the clusters (integers 0..J-1). A
    variable constant within every cluster has ICC 1 (no model is fitted); a between-cluster
    variance estimated at the boundary (0) gives ICC 0 with a note. A convergence problem
    is re-issued as a :class:`~mlmwrap.errors.ConvergenceWarning` and noted.

    Examples
    --------
    >>> import mlmwrap, numpy as np, pandas as pd
    >>> hsb = mlmwrap.datasets.load_hsb()
    >>> codes = pd.factorize(hsb["school"])[0]
    >>> round(null_model_icc(hsb["mathach"].to_numpy(), codes).icc, 4)
    0.1804
    """
    if np.nanvar(x) == 0:
        return NullICC(float("nan"), 0.0, 0.0, "constant: no variance to decompose")
    if is_level2(x, codes):
        tau = float(np.var(cluster_means(x, codes, int(codes.max()) + 1, skipna=True), ddof=1))
        return NullICC(1.0, tau, 0.0, "constant within every cluster (a level-2 variable)")
    # The engine directly (no parsing, no design): a null model per variable stays cheap.
    ones = np.ones((len(x), 1))
    opt = optimize(ClusterStats.from_arrays(ones, ones, x, codes), reml=True)
    notes = []
    if opt.singular:
        notes.append("between-cluster variance estimated as 0")
    for message in opt.messages:
        notes.append(f"null model: {message}")
        warnings.warn(message, ConvergenceWarning, stacklevel=3)
    tau00 = float(opt.tau[0, 0])
    return NullICC(tau00 / (tau00 + opt.sigma2), tau00, float(opt.sigma2), "; ".join(notes))


def mean_reliability(icc_value: float, sizes: np.ndarray) -> float:
    """Mean over clusters of ``n_j ICC / (1 + (n_j - 1) ICC)``, the reliability of each
    cluster's sample mean as a measure of its true mean (Spearman-Brown; Raudenbush & Bryk
    2002, eq. 3.58; Lüdtke et al. 2008)."""
    sizes = np.asarray(sizes, dtype=float)
    sizes = sizes[sizes > 0]
    return float(np.mean(sizes * icc_value / (1.0 + (sizes - 1.0) * icc_value)))
