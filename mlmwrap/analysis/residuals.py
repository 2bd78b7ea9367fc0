"""Level-1 residuals and fitted values, one row per row of the estimation sample.

What HLM writes to its level-1 residual file: for row i of cluster j, the fitted value
``X_i gamma + Z_i u_j`` (with the cluster's empirical Bayes effects), the fixed part
``X_i gamma`` alone, the residual ``r_ij = y_ij - fitted`` and the residual divided by
``sigma``. The EB effects are lme4's ``ranef()``, so ``fitted`` and ``residual`` are lme4's
``fitted()`` and ``residuals()``.

Examples
--------
>>> import mlmwrap
>>> res = mlmwrap.fit("mathach = b0 + b1*cwc(ses) + e\\nb0 = g00 + u0\\nb1 = g10 + u1",
...                   mlmwrap.datasets.load_hsb(), cluster="school")
>>> residuals(res).head(3).round(3)
   school  mathach  fitted   fixed  residual  standardized
0    1224    5.876   7.482  10.238    -1.606        -0.265
1    1224   19.708   9.609  12.299    10.099         1.667
2    1224   20.349   9.745  12.431    10.604         1.750
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from mlmwrap.model.empirical_bayes import empirical_bayes

if TYPE_CHECKING:  # pragma: no cover
    from mlmwrap.api.results import MLMResults

__all__ = ["residuals"]


def residuals(res: MLMResults) -> pd.DataFrame:
    """Fitted values and level-1 residuals of every row the model used.

    Returns
    -------
    pandas.DataFrame
        Indexed like the rows of the caller's data that were used. Columns: the cluster
        id (named like the cluster column), the outcome (named like it), ``fitted``
        (``X gamma + Z u_j``), ``fixed`` (``X gamma``), ``residual`` (outcome - fitted)
        and ``standardized`` (residual / sigma).
    """
    d = res.design
    u, _ = empirical_bayes(res.optimum.evaluation, res.cluster_stats)
    fixed = d.X @ res.optimum.beta
    fitted = fixed + np.einsum("nq,nq->n", d.Z, u[d.codes])
    resid = d.y - fitted
    return pd.DataFrame(
        {
            d.cluster: d.cluster_labels[d.codes],
            d.outcome: d.y,
            "fitted": fitted,
            "fixed": fixed,
            "residual": resid,
            "standardized": resid / np.sqrt(res.sigma2),
        },
        index=d.row_index,
    )
