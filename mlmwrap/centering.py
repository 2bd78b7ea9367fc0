"""Centering of predictors around cluster means, the grand mean or a reference value.

These are the numeric building blocks behind ``cwc``, ``cgm``, ``cmean`` and ``center`` in
the equations. They take plain arrays and integer cluster codes so that the caller decides
which rows form the estimation sample (mlmwrap computes them after listwise deletion).

Examples
--------
>>> import numpy as np
>>> x = np.array([1.0, 3.0, 10.0, 20.0])
>>> codes = np.array([0, 0, 1, 1])
>>> cluster_mean(x, codes)
array([ 2.,  2., 15., 15.])
>>> within_cluster(x, codes)
array([-1.,  1., -5.,  5.])
>>> grand_mean_centered(x, codes)  # varies within clusters: mean over rows
array([-7.5, -5.5,  1.5, 11.5])
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "cluster_mean",
    "within_cluster",
    "grand_mean_centered",
    "varies_within",
    "is_level2",
]


def cluster_mean(x: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """Each row's cluster mean of ``x`` (``codes`` are integers 0..J-1)."""
    sums = np.bincount(codes, weights=x)
    counts = np.bincount(codes)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = sums / counts
    return means[codes]


def within_cluster(x: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """``x`` minus its cluster mean (centering within cluster, CWC)."""
    return x - cluster_mean(x, codes)


def varies_within(x: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """Boolean per cluster: does ``x`` take more than one value in it (beyond rounding)?"""
    n_clusters = int(codes.max()) + 1 if len(codes) else 0
    hi = np.full(n_clusters, -np.inf)
    lo = np.full(n_clusters, np.inf)
    np.maximum.at(hi, codes, x)
    np.minimum.at(lo, codes, x)
    scale = max(1.0, float(np.max(np.abs(x))) if len(x) else 1.0)
    return (hi - lo) > 1e-9 * scale


def is_level2(x: np.ndarray, codes: np.ndarray) -> bool:
    """True when ``x`` is constant within every cluster."""
    return not bool(np.any(varies_within(x, codes)))


def grand_mean_centered(x: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """``x`` minus its grand mean (CGM).

    A level-2 variable (constant within clusters) is centered at its mean over clusters,
    each cluster counted once, as HLM does; a level-1 variable at its mean over rows.
    """
    if is_level2(x, codes):
        first = np.zeros(int(codes.max()) + 1)
        first[codes] = x
        return x - first.mean()
    return x - x.mean()
