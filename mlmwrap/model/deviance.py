"""The (RE)ML deviance at given ``(L, sigma)``, not profiled, and its analytic gradient.

lme4's ``(theta, sigma)`` parametrization: the small-sample df (Satterthwaite, Kenward-Roger)
and the profile and Wald intervals of the variance components differentiate these; the
optimizer works on the profiled deviance in :mod:`mlmwrap.model.engine`.
"""

from __future__ import annotations

import numpy as np

from mlmwrap.model.engine import ClusterStats, L_to_theta, evaluate

__all__ = ["unprofiled_deviance", "unprofiled_gradient"]


def unprofiled_deviance(stats: ClusterStats, L: np.ndarray, sigma: float, reml: bool) -> float:
    """The (RE)ML deviance at relative factor ``L`` and residual SD ``sigma`` (not profiled).

    ``log|V| [+ log|A|] + nu log(2 pi sigma^2) + r2 / sigma^2`` with ``nu = n - p`` (REML)
    or ``n`` (ML): lme4's deviance with sigma a free parameter, as lmerTest and lme4's
    profile use it. At ``sigma^2 = r2 / nu`` it equals the profiled deviance.
    """
    ev = evaluate(stats, L, reml)
    nu = stats.n_obs - stats.p if reml else stats.n_obs
    s2 = sigma * sigma
    dev = ev.logdet_V + nu * np.log(2.0 * np.pi * s2) + ev.r2 / s2
    return float(dev + ev.logdet_A) if reml else float(dev)


def unprofiled_gradient(stats: ClusterStats, L: np.ndarray, sigma: float, reml: bool) -> np.ndarray:
    """Analytic gradient of :func:`unprofiled_deviance` in (theta, sigma).

    From the engine's pieces: d/dL = 2 (G_V [- G_A] - G_r / sigma^2) L, and
    d/dsigma = 2 nu / sigma - 2 r2 / sigma^3.
    """
    ev = evaluate(stats, L, reml)
    nu = stats.n_obs - stats.p if reml else stats.n_obs
    G = ev.G_V - ev.G_r / sigma**2
    if reml:
        G = G - ev.G_A
    d_theta = L_to_theta(np.tril(2.0 * G @ L), stats.free)
    return np.append(d_theta, 2.0 * nu / sigma - 2.0 * ev.r2 / sigma**3)
