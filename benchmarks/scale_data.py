"""Synthetic two-level data for ``scale.py``: J clusters of about ``m`` rows each, p = 5.

Model (``q`` random coefficients among b0, b1, b2)::

    y = b0 + b1*x1 + b2*x2 + e
    b0 = g00 + g01*w + u0
    b1 = g10 + g11*w [+ u1]
    b2 = g20 [+ u2]
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def make_data(
    n_clusters: int, per_cluster: float, q: int, seed: int = 1, chunk: int | None = None
) -> pd.DataFrame:
    """Rows sorted by cluster; sizes vary (Poisson around ``per_cluster``, at least 1).

    With ``chunk``, the clusters (sizes, level-2 values, random effects) are those of
    ``seed`` and only the rows are new: chunks stack into one larger data set of the same
    clusters (the out-of-core benchmark writes them one by one).
    """
    rng = np.random.default_rng(seed)
    row_rng = rng if chunk is None else np.random.default_rng([seed, chunk])
    sizes = np.maximum(1, rng.poisson(per_cluster, n_clusters))
    g = np.repeat(np.arange(n_clusters), sizes)
    n = len(g)
    w = rng.normal(size=n_clusters)
    x1 = row_rng.normal(size=n)
    x2 = row_rng.normal(size=n)
    tau_sd = np.array([1.0, 0.5, 0.3])[:q]
    u = rng.normal(size=(n_clusters, q)) * tau_sd
    b = np.zeros((n, 3))
    b[:, :q] = u[g]
    y = (
        1.0
        + 0.5 * w[g]
        + b[:, 0]
        + (0.3 + 0.2 * w[g] + b[:, 1]) * x1
        + (-0.2 + b[:, 2]) * x2
        + row_rng.normal(size=n)
    )
    return pd.DataFrame({"y": y, "x1": x1, "x2": x2, "w": w[g], "g": g})


def equations(q: int) -> str:
    u = [" + u0", " + u1" if q >= 2 else "", " + u2" if q >= 3 else ""]
    return (
        "y = b0 + b1*x1 + b2*x2 + e\n"
        f"b0 = g00 + g01*w{u[0]}\n"
        f"b1 = g10 + g11*w{u[1]}\n"
        f"b2 = g20{u[2]}"
    )


def lme4_formula(q: int) -> str:
    re = {1: "1", 2: "1 + x1", 3: "1 + x1 + x2"}[q]
    return f"y ~ x1*w + x2 + ({re} | g)"
