"""Simulated data with no between-cluster variation beyond the predictors (tau = 0).

The level-1 noise is centered within each cluster, so the cluster means of y are exactly
what the fixed part predicts: the REML/ML estimate of the intercept variance is 0.
Run: python tests/data/make_boundary.py  (writes boundary.csv beside this script)
"""

from pathlib import Path

import numpy as np
import pandas as pd


def make_boundary() -> pd.DataFrame:
    rng = np.random.default_rng(10239)
    n_clusters, size = 40, 12
    cluster = np.repeat(np.arange(1, n_clusters + 1), size)
    w = np.round(rng.normal(size=n_clusters), 3)[cluster - 1]
    x = np.round(rng.normal(size=n_clusters * size), 3)
    noise = rng.normal(size=n_clusters * size)
    noise -= pd.Series(noise).groupby(cluster).transform("mean").to_numpy()
    y = np.round(10.0 + 2.0 * w + 0.5 * x + noise, 4)
    return pd.DataFrame({"cluster": cluster, "y": y, "x": x, "w": w})


if __name__ == "__main__":
    make_boundary().to_csv(Path(__file__).with_name("boundary.csv"), index=False)
