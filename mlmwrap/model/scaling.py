"""Internal standardization: the engine works in units in which every column has RMS 1.

A threshold in absolute units (a finite-difference step, a zero-variance test) makes the
answer depend on the units of measurement. The engine therefore optimizes the deviance of
the same model with every column of ``[X, Z, y]`` divided by its root mean square, which
does not move the optimum: with ``Z = Z_s diag(s_z)`` and ``y = s_y y_s`` the relative
covariance factors are related by ``L = diag(1 / s_z) L_s`` (lower triangular still), beta
by ``beta_k = beta_s,k s_y / s_x,k``, and the deviances differ by a constant. Every
tolerance is then applied to ``L_s``, whose entries are free of units.

Examples
--------
>>> import numpy as np
>>> from mlmwrap.model.engine import ClusterStats, theta_indices
>>> rng = np.random.default_rng(0)
>>> g = np.repeat(np.arange(5), 4)
>>> X = np.column_stack([np.ones(20), 1e6 * rng.normal(size=20)])
>>> stats = ClusterStats.from_arrays(X, X, 1e-3 * rng.normal(size=20), g)
>>> sx, sz, sy = column_scales(stats)
>>> bool(sz[0] == 1.0), bool(1e5 < sz[1] < 1e7), bool(1e-4 < sy < 1e-2)
(True, True, True)
>>> float(rescaled(stats, sx, sz, sy).cross[:, 1, 1].sum() / 20).__round__(12)
1.0
"""

from __future__ import annotations

import numpy as np

from mlmwrap.model.engine import ClusterStats, theta_indices

__all__ = ["column_scales", "rescaled", "theta_row_scales"]


def column_scales(stats: ClusterStats) -> tuple[np.ndarray, np.ndarray, float]:
    """Root mean squares of the columns of X, of Z and of y (1 for an all-zero column)."""
    k = stats.cross.shape[1]
    ms = stats.cross[:, range(k), range(k)].sum(axis=0) / max(stats.n_obs, 1)
    rms = np.sqrt(ms)
    rms = np.where((rms > 0) & np.isfinite(rms), rms, 1.0)
    p, q = stats.p, stats.q
    return rms[:p], rms[p : p + q], float(rms[-1])


def rescaled(stats: ClusterStats, sx: np.ndarray, sz: np.ndarray, sy: float) -> ClusterStats:
    """The cross-products of ``[X / s_x, Z / s_z, y / s_y]``."""
    inv = 1.0 / np.concatenate([sx, sz, [sy]])
    return ClusterStats(
        cross=stats.cross * np.outer(inv, inv),
        n_obs=stats.n_obs,
        p=stats.p,
        q=stats.q,
        cluster_sizes=stats.cluster_sizes,
        free=stats.free,  # L = diag(1 / s_z) L_s keeps a zero pattern of L
    )


def theta_row_scales(sz: np.ndarray, free: np.ndarray | None = None) -> np.ndarray:
    """The natural size of each entry of theta (lme4's column-major order, the ``free``
    entries): ``1 / s_z`` of its row, since ``L = diag(1 / s_z) L_s``."""
    rows, _ = theta_indices(len(sz), free)
    return 1.0 / np.asarray(sz, dtype=float)[rows]
