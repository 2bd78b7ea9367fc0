"""Internal standardization: the engines work in units in which every column has RMS 1.

A threshold in absolute units (a finite-difference step, a zero-variance test) makes the
answer depend on the units of measurement. The engines therefore optimize the deviance of
the same model with every column of ``[X, Z, y]`` divided by its root mean square, which
does not move the optimum: with ``Z = Z_s diag(s_z)`` and ``y = s_y y_s`` the relative
covariance factors are related by ``L = diag(1 / s_z) L_s`` (lower triangular still), beta
by ``beta_k = beta_s,k s_y / s_x,k``, and the deviances differ by a constant. Every
tolerance is then applied to ``L_s``, whose entries are free of units.

The helpers work on any stacked cross-products ``W_j'W_j``: the two-level engine's
(:func:`column_scales`, :func:`rescaled`, ``W = [X, Z, y]``) and the nested engine's
(:meth:`mlmwrap.model.nested.NestedStats.units`, ``W = [Z_2, ..., Z_K, X, y]``, one ``L``
per level: :func:`level_theta_scales`).

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

from collections.abc import Sequence

import numpy as np

from mlmwrap.model.engine import ClusterStats, theta_indices

__all__ = [
    "column_rms",
    "scale_cross",
    "column_scales",
    "rescaled",
    "theta_row_scales",
    "level_theta_scales",
]


def column_rms(cross: np.ndarray, n_obs: int) -> np.ndarray:
    """Root mean square of each column of ``W`` from its stacked cross-products
    ``W_j'W_j`` (shape ``(J, k, k)``); 1 for an all-zero (or non-finite) column."""
    k = cross.shape[1]
    rms = np.sqrt(cross[:, range(k), range(k)].sum(axis=0) / max(n_obs, 1))
    return np.where((rms > 0) & np.isfinite(rms), rms, 1.0)


def scale_cross(cross: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """The stacked cross-products of ``W diag(1 / scales)``."""
    inv = 1.0 / np.asarray(scales, dtype=float)
    return cross * np.outer(inv, inv)


def column_scales(stats: ClusterStats) -> tuple[np.ndarray, np.ndarray, float]:
    """Root mean squares of the columns of X, of Z and of y (1 for an all-zero column)."""
    rms = column_rms(stats.cross, stats.n_obs)
    p, q = stats.p, stats.q
    return rms[:p], rms[p : p + q], float(rms[-1])


def rescaled(stats: ClusterStats, sx: np.ndarray, sz: np.ndarray, sy: float) -> ClusterStats:
    """The cross-products of ``[X / s_x, Z / s_z, y / s_y]``."""
    return ClusterStats(
        cross=scale_cross(stats.cross, np.concatenate([sx, sz, [sy]])),
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


def level_theta_scales(
    z_scales: Sequence[np.ndarray], frees: Sequence[np.ndarray | None]
) -> np.ndarray:
    """:func:`theta_row_scales` of each level (one ``L`` per level, each with its own
    ``free`` entries), concatenated in the order of a nested model's theta (level 2 first)."""
    parts = [theta_row_scales(sz, free) for sz, free in zip(z_scales, frees, strict=True)]
    return np.concatenate(parts) if parts else np.zeros(0)
