"""Satterthwaite degrees of freedom for nested (three-level) models, as lmerTest computes them.

varpar = (theta, sigma); the *unprofiled* deviance in varpar (beta at its GLS value given
theta, as lmerTest's ``devfun_vp``) is

    ML:   log det V + n log(2 pi sigma^2) + r2(theta) / sigma^2
    REML: log det V + log det A + (n - p) log(2 pi sigma^2) + r2(theta) / sigma^2

``A_var = 2 H^-1`` (a generalized inverse over the positive eigenvalues when the fit is
singular), ``C(varpar) = sigma^2 A(theta)^-1`` and ``df = 2 (l'Cl)^2 / (g' A_var g)``.

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

from mlmwrap.model.nested import NestedStats, evaluate_nested
from mlmwrap.model.nested_fit import NestedFit
from mlmwrap.model.numdiff import numeric_hessian, numeric_jacobian

__all__ = ["nested_satterthwaite", "unprofiled_nested_deviance"]

_LOG_2PI = float(np.log(2.0 * np.pi))


def unprofiled_nested_deviance(stats: NestedStats, varpar: np.ndarray, reml: bool) -> float:
    """The deviance at (theta, sigma), beta at its GLS value given theta."""
    ev = evaluate_nested(stats, stats.split_theta(varpar[:-1]), reml)
    s2 = float(varpar[-1]) ** 2
    nu = stats.n_obs - stats.p if reml else stats.n_obs
    out = ev.logdet_V + nu * (_LOG_2PI + np.log(s2)) + ev.r2 / s2
    return float(out + ev.logdet_A) if reml else float(out)


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
    reml = fit.reml
    varpar = np.append(fit.theta, np.sqrt(fit.sigma2))
    Lmat = np.eye(p) if contrasts is None else np.atleast_2d(np.asarray(contrasts, float))

    def dev(vp: np.ndarray) -> float:
        return unprofiled_nested_deviance(stats, vp, reml)

    def cov_beta(vp: np.ndarray) -> np.ndarray:
        A = evaluate_nested(stats, stats.split_theta(vp[:-1]), reml).A
        return vp[-1] ** 2 * np.linalg.inv(A)

    with np.errstate(all="ignore"):
        a_var = 2.0 * _pinv_psd(numeric_hessian(dev, varpar))
        jac = numeric_jacobian(cov_beta, varpar).reshape(p, p, len(varpar))
    C = fit.cov_beta
    var_con = np.einsum("ki,ij,kj->k", Lmat, C, Lmat)
    grad = np.einsum("ki,ijv,kj->kv", Lmat, jac, Lmat)
    denom = np.einsum("kv,vw,kw->k", grad, a_var, grad)
    with np.errstate(divide="ignore"):
        return 2.0 * var_con**2 / denom
