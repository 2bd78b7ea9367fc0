"""Satterthwaite degrees of freedom for nested (three-level) models, as lmerTest computes them.

varpar = (theta, sigma); the *unprofiled* deviance in varpar (beta at its GLS value given
theta, as lmerTest's ``devfun_vp``) is

    ML:   log det V + n log(2 pi sigma^2) + r2(theta) / sigma^2
    REML: log det V + log det A + (n - p) log(2 pi sigma^2) + r2(theta) / sigma^2

``A_var = 2 H^-1`` (a generalized inverse over the positive eigenvalues when the fit is
singular), ``C(varpar) = sigma^2 A(theta)^-1`` and ``df = 2 (l'Cl)^2 / (g' A_var g)``.

No new deviance evaluations: at the optimum (where ``dD/dsigma = 0``) the Hessian ``H`` in
varpar follows from the Hessian of the *profiled* deviance that the fit already computed
(its Schur complement, as :func:`mlmwrap.model.deviance.unprofiled_hessian` does for two
levels), with ``H_ss = 4 nu / sigma^2`` and ``H_ts = -2 (d r2 / d theta) / sigma^3``; the
derivatives of ``r2`` and of every ``l' A^-1 l`` come from one reverse pass through the
engine's recursion (:func:`mlmwrap.model.nested.variance_derivatives`).

The generalized inverse and any finite differences are taken in unit-free coordinates
``u = varpar / scale`` (each theta entry over its natural size, the fit's
``theta_scale``; sigma over its estimate), as for two levels: the df are the same under
this linear change of variables, and no tolerance depends on the data's units.

Examples
--------
>>> import numpy as np
>>> from mlmwrap.model.nested import NestedStats
>>> from mlmwrap.model.nested_fit import verify_nested
>>> rng = np.random.default_rng(1)
>>> c3 = np.repeat(np.arange(20), 30); c2 = np.repeat(np.arange(100), 6)
>>> y = rng.normal(size=20)[c3] + rng.normal(size=100)[c2] + rng.normal(size=600)
>>> one = np.ones((600, 1))
>>> stats = NestedStats.from_arrays(one, [one, one], y, [c2, c3])
>>> df = nested_satterthwaite(stats, verify_nested(stats))
>>> bool(15 < df[0] < 25)
True
"""

from __future__ import annotations

import numpy as np

from mlmwrap.model.deviance import hessian_with_sigma
from mlmwrap.model.nested import (
    NestedStats,
    evaluate_nested,
    nested_objective,
    variance_derivatives,
)
from mlmwrap.model.nested_fit import NestedFit
from mlmwrap.model.numdiff import hessian_from_gradient

__all__ = ["nested_satterthwaite", "unprofiled_nested_deviance", "unprofiled_nested_hessian"]

_LOG_2PI = float(np.log(2.0 * np.pi))


def unprofiled_nested_deviance(stats: NestedStats, varpar: np.ndarray, reml: bool) -> float:
    """The deviance at (theta, sigma), beta at its GLS value given theta."""
    ev = evaluate_nested(stats, stats.split_theta(varpar[:-1]), reml)
    s2 = float(varpar[-1]) ** 2
    nu = stats.n_obs - stats.p if reml else stats.n_obs
    out = ev.logdet_V + nu * (_LOG_2PI + np.log(s2)) + ev.r2 / s2
    return float(out + ev.logdet_A) if reml else float(out)


def unprofiled_nested_hessian(stats: NestedStats, fit: NestedFit, d_r2: np.ndarray) -> np.ndarray:
    """Hessian of :func:`unprofiled_nested_deviance` in (theta, sigma) at the optimum, from
    the profiled Hessian: ``H_tt = H_p + H_ts H_ts' / H_ss``."""
    H_p = fit.hessian
    if H_p is None:  # a fit made without one: central differences of the analytic gradient,
        # in theta over its natural size (steps free of the data's units)
        objective = nested_objective(stats, fit.reml)
        ts = fit.theta_scale
        H_u = hessian_from_gradient(
            lambda u: objective(u * ts)[1] * ts, fit.theta / ts, rel=1e-5, order=2, floor=0.1
        )
        H_p = H_u / np.outer(ts, ts)
    nu = stats.n_obs - stats.p if fit.reml else stats.n_obs
    return hessian_with_sigma(H_p, d_r2, fit.sigma2, nu)


def _pinv_psd(H: np.ndarray) -> np.ndarray:
    values, vectors = np.linalg.eigh(H)
    tol = 1e-8 * max(1.0, float(np.abs(values).max()))
    pos = values > tol
    return (vectors[:, pos] / values[pos]) @ vectors[:, pos].T


def nested_satterthwaite(
    stats: NestedStats, fit: NestedFit, contrasts: np.ndarray | None = None
) -> np.ndarray:
    """Satterthwaite df of each gamma (or of each row of ``contrasts``)."""
    p = stats.p
    Lmat = np.eye(p) if contrasts is None else np.atleast_2d(np.asarray(contrasts, float))
    sigma2 = fit.sigma2
    # unit-free coordinates u = varpar / scale: H_u = S H S, the gradient in u is S g
    scale = np.append(fit.theta_scale, np.sqrt(sigma2))
    with np.errstate(all="ignore"):
        ev, d_r2, d_quad = variance_derivatives(stats, fit.theta, fit.reml, Lmat)
        H_u = unprofiled_nested_hessian(stats, fit, d_r2) * np.outer(scale, scale)
        a_var = 2.0 * _pinv_psd(H_u)
    quad = np.einsum("ki,ij,kj->k", Lmat, ev.A_inv, Lmat)  # l' A^-1 l
    var_con = sigma2 * quad
    # gradient of l'Cl = sigma^2 l'A^-1 l in (theta, sigma), then in u
    grad = np.column_stack([sigma2 * d_quad, 2.0 * np.sqrt(sigma2) * quad]) * scale
    denom = np.einsum("kv,vw,kw->k", grad, a_var, grad)
    with np.errstate(divide="ignore"):
        return 2.0 * var_con**2 / denom
