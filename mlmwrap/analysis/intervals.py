"""Confidence intervals for the variance components (and the gammas): profile and Wald.

A variance cannot be negative and a correlation cannot leave [-1, 1], and their sampling
distributions are skewed when the clusters are few, so ``estimate +- 1.96 SE`` on the variance
scale is a poor interval. Two better ones:

- ``"profile"`` (lme4's ``confint`` default): the set of values of one parameter at which the
  deviance, minimized over all the other parameters, rises by at most ``qchisq(level, 1)``
  above its minimum. Like lme4, the deviance profiled is the ML deviance even for a REML fit
  (lme4's ``profile`` refits by ML first), so the interval of a REML fit is centred near the
  ML estimate. Where the profile never rises that far before a boundary (an SD of 0, a
  correlation of +-1), the boundary is the limit.
- ``"wald"``: ``estimate +- z SE`` on a scale without bounds (log SD, atanh correlation,
  log sigma), mapped back, with the SE from the Hessian of the fit's own deviance (REML
  criterion for a REML fit) by the delta method. Not defined at the boundary (NaN there).

Examples
--------
>>> import mlmwrap
>>> from mlmwrap.analysis.intervals import variance_intervals
>>> res = mlmwrap.fit('''
...     mathach = b0 + b1*cwc(ses) + e
...     b0 = g00 + u0
...     b1 = g10 + u1
... ''', data=mlmwrap.datasets.load_hsb(), cluster="school")
>>> variance_intervals(res).round(3)
            estimate   lower   upper
parameter
sd(u0)         2.946   2.607   3.326
cor(u0,u1)     0.019  -0.308   0.348
sd(u1)         0.833   0.457   1.149
sigma          6.058   5.958   6.161
g00           12.636  12.155  13.117
g10            2.193   1.941   2.446
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy import optimize as sopt
from scipy import stats as sstats

from mlmwrap.errors import BoundaryWarning, ConvergenceWarning, MLMError
from mlmwrap.model.deviance import unprofiled_deviance
from mlmwrap.model.engine import ClusterStats, L_to_theta, optimize, theta_indices, theta_to_L
from mlmwrap.model.numdiff import numeric_hessian
from mlmwrap.model.scaling import column_scales, rescaled

if TYPE_CHECKING:  # pragma: no cover
    from mlmwrap.api.results import MLMResults

__all__ = ["variance_intervals"]

_LOG_2PI = float(np.log(2.0 * np.pi))
# An SD below this fraction of sigma counts as 0 (lme4's singularity tolerance on theta).
_BOUNDARY = 1e-4


# -- the ML deviance and its gradient in L (full matrix, any square root of Lambda) -------
def _ml_parts(stats: ClusterStats, L: np.ndarray) -> tuple[float, float, np.ndarray, np.ndarray]:
    """``log|V|``, the GLS residual ``r2``, and their gradients with respect to ``L``.

    Same algebra as :func:`mlmwrap.model.engine.evaluate` (V = I + Z L L'Z'), but returning the
    two gradients separately: ``d log|V| / dL = 2 P L`` with ``P = sum_j Z'V^-1 Z``, and
    ``d r2 / dL = -2 S L`` with ``S = sum_j s_j s_j'``, ``s_j = Z_j'V_j^-1 (y_j - X_j beta)``,
    which the unprofiled deviance (sigma held fixed) needs. ``L`` need not be triangular.
    """
    p, q = stats.p, stats.q
    Zt_all = stats.zt_all  # Z'[X y Z] per cluster
    LtZt = L.T @ Zt_all
    M = LtZt[:, :, p + 1 :] @ L
    M[:, range(q), range(q)] += 1.0
    chol = np.linalg.cholesky(M)
    logdet_V = 2.0 * float(np.log(chol[:, range(q), range(q)]).sum())
    K = np.linalg.solve(M, LtZt)
    corr = np.tensordot(LtZt[:, :, : p + 1], K[:, :, : p + 1], axes=([0, 1], [0, 1]))
    c = stats.xy - corr[:p, p]
    d = stats.yy - corr[p, p]
    if p:
        A = stats.xx - corr[:p, :p]
        beta = np.linalg.solve(0.5 * (A + A.T), c)
        r2 = float(d - c @ beta)
    else:
        beta = np.zeros(0)
        r2 = float(d)
    ZtVinv = Zt_all - (Zt_all[:, :, p + 1 :] @ L) @ K
    s = ZtVinv[:, :, p] - ZtVinv[:, :, :p] @ beta
    grad_logdet = 2.0 * ZtVinv[:, :, p + 1 :].sum(axis=0) @ L
    grad_r2 = -2.0 * (s.T @ s) @ L
    return logdet_V, r2, grad_logdet, grad_r2


def _profiled_ml(stats: ClusterStats, L: np.ndarray) -> tuple[float, np.ndarray]:
    """ML deviance with sigma profiled out, and its gradient in L."""
    n = stats.n_obs
    logdet, r2, g_logdet, g_r2 = _ml_parts(stats, L)
    return logdet + n * (1.0 + _LOG_2PI + np.log(r2 / n)), g_logdet + (n / r2) * g_r2


def _unprofiled_ml(
    stats: ClusterStats, L: np.ndarray, sigma: float
) -> tuple[float, np.ndarray, float]:
    """ML deviance at (L, sigma), its gradient in L and its derivative in sigma."""
    n = stats.n_obs
    logdet, r2, g_logdet, g_r2 = _ml_parts(stats, L)
    s2 = sigma * sigma
    dev = logdet + n * (_LOG_2PI + np.log(s2)) + r2 / s2
    return dev, g_logdet + g_r2 / s2, 2.0 * n / sigma - 2.0 * r2 / (s2 * sigma)


def _safe(fun: Callable[[np.ndarray], tuple[float, np.ndarray]]):
    """Turn numerical failures far from the optimum into an infinite deviance."""

    def wrapped(x: np.ndarray) -> tuple[float, np.ndarray]:
        try:
            with np.errstate(all="ignore"):
                f, g = fun(x)
        except (np.linalg.LinAlgError, ZeroDivisionError, FloatingPointError):
            return np.inf, np.zeros_like(x)
        if not np.isfinite(f) or not np.all(np.isfinite(g)):
            return np.inf, np.zeros_like(x)
        return float(f), g

    return wrapped


def _minimize(fun, x0: np.ndarray) -> tuple[float, np.ndarray]:
    if len(x0) == 0:
        return fun(x0)[0], x0
    out = sopt.minimize(_safe(fun), x0, jac=True, method="BFGS", options={"gtol": 1e-6})
    return float(out.fun), out.x


# -- one parameter held fixed --------------------------------------------------------------
@dataclass
class _Param:
    label: str
    kind: str  # "sd", "cor", "sigma", "gamma"
    index: tuple[int, ...]
    estimate: float  # the fitted model's estimate (REML or ML)
    low: float  # natural limits
    high: float


def _tril_mask(q: int, free: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Rows and columns of theta's entries of ``L`` (column-major; only the free ones of a
    block-diagonal pattern), so that ``grad[rows, cols]`` is in theta's order."""
    return theta_indices(q, free)


class _Profiler:
    """The ML deviance minimized over everything but one parameter, with warm starts."""

    def __init__(self, res: MLMResults):
        stats = res.cluster_stats
        self.stats = stats
        self.q = stats.q
        self.free = stats.free
        ml = optimize(stats, reml=False) if res.reml else res.optimum
        self.ml = ml
        self.dev_min = float(ml.deviance)
        self.L_hat = ml.evaluation.L
        self.sigma_hat = float(np.sqrt(ml.sigma2))
        self.rows, self.cols = _tril_mask(self.q, self.free)
        # nuisance optima already found, per (parameter, side): warm starts for nearby values
        self._starts: dict[str, list[tuple[float, np.ndarray]]] = {}

    def _theta_grad(self, gL: np.ndarray) -> np.ndarray:
        return gL[self.rows, self.cols]

    def deviance(self, par: _Param, v: float, centre: float) -> float:
        """The ML deviance minimized with ``par`` held at ``v`` (``centre``: its ML value)."""
        # Warm start from the optimum found at the nearest value between the centre and v:
        # the profile is traced outwards, and a start from farther out can sit where another
        # variance collapsed to 0, a flat region the optimizer would not leave.
        found = self._starts.setdefault(par.label, [])
        inside = [
            f
            for f in found
            if (f[0] - centre) * (v - centre) >= 0 and abs(f[0] - centre) <= abs(v - centre)
        ]
        x0 = min(inside, key=lambda f: abs(f[0] - v))[1] if inside else None
        if par.kind == "sd":
            dev, x = self._sd(par.index[0], v, x0)
        elif par.kind == "sigma":
            dev, x = self._sigma(v, x0)
        elif par.kind == "cor":
            dev, x = self._cor(par.index, v, x0)
        else:
            dev, x = self._gamma(par.index[0], v, x0)
        if x is not None and np.isfinite(dev):
            found.append((v, x))
        return dev

    def _sd(self, k: int, v: float, x0):
        q, stats = self.q, self.stats
        if v <= 0.0:
            # row k of L is 0: the k-th effect is gone; sigma is profiled analytically.
            keep = self.rows != k

            def fun0(x):
                theta = np.zeros(len(self.rows))
                theta[keep] = x
                dev, gL = _profiled_ml(stats, theta_to_L(theta, q, self.free))
                return dev, self._theta_grad(gL)[keep]

            return _minimize(fun0, L_to_theta(self.L_hat, self.free)[keep])[0], None

        def fun(x):
            L = theta_to_L(x, q, self.free)
            nk = float(np.linalg.norm(L[k]))
            sigma = v / nk
            dev, gL, gs = _unprofiled_ml(stats, L, sigma)
            gL = gL.copy()
            gL[k] += gs * (-v * L[k] / nk**3)  # sigma = v / |L_k|
            return dev, self._theta_grad(gL)

        if x0 is None:
            L0 = self.L_hat.copy()
            if not np.any(L0[k]):  # an SD estimated as exactly 0: start on the diagonal
                L0[k, k] = 1.0
            L0[k] *= v / (self.sigma_hat * max(np.linalg.norm(L0[k]), 1e-8))
            x0 = L_to_theta(L0, self.free)
        return _minimize(fun, x0)

    def _sigma(self, v: float, x0):
        q, stats = self.q, self.stats

        def fun(x):
            dev, gL, _ = _unprofiled_ml(stats, theta_to_L(x, q, self.free), v)
            return dev, self._theta_grad(gL)

        if x0 is None:
            x0 = L_to_theta(self.L_hat, self.free) * self.sigma_hat / v
        return _minimize(fun, x0)

    def _cor(self, ab: tuple[int, ...], rho: float, x0):
        q, stats = self.q, self.stats
        a, b = ab
        # The block of tau holding (a, b) is parametrized by log SDs and unit rows (row 1
        # fixed by rho); the entries of L in the other blocks stay free as they are.
        free = np.tril(np.ones((q, q), bool)) if self.free is None else self.free
        block = [i for i in range(q) if free[max(i, a), min(i, a)]]
        qb = len(block)
        rest = ~np.isin(self.rows, block)
        r_rows, r_cols = self.rows[rest], self.cols[rest]
        perm = [a, b] + [i for i in block if i not in (a, b)]
        n_free = [i for i in range(2, qb)]  # rows of C with free directions (v_i in R^i)
        n_block = qb + sum(n_free)
        c1 = np.zeros(qb)
        c1[0], c1[1] = rho, np.sqrt(max(0.0, 1.0 - rho * rho))

        def build(x):
            ell = np.exp(x[:qb])
            C = np.zeros((qb, qb))
            C[0, 0] = 1.0
            C[1] = c1
            pos, norms = qb, {}
            for i in n_free:
                w = np.append(x[pos : pos + i], 1.0)
                pos += i
                norms[i] = float(np.linalg.norm(w))
                C[i, : i + 1] = w / norms[i]
            Lp = ell[:, None] * C
            L = np.zeros((q, q))
            L[np.ix_(perm, block)] = Lp
            L[r_rows, r_cols] = x[n_block:]
            return L, Lp, C, ell, norms

        def fun(x):
            L, _, C, ell, norms = build(x)
            dev, gL = _profiled_ml(stats, L)
            gLp = gL[np.ix_(perm, block)]
            grad = np.empty_like(x)
            grad[:qb] = ell * np.sum(gLp * C, axis=1)
            pos = qb
            for i in n_free:
                ci = C[i, : i + 1]
                dc = ell[i] * gLp[i, : i + 1]
                dw = (dc - (dc @ ci) * ci) / norms[i]
                grad[pos : pos + i] = dw[:i]
                pos += i
            grad[n_block:] = gL[r_rows, r_cols]
            return dev, grad

        if x0 is None:
            lam = self.L_hat @ self.L_hat.T
            lam_p = lam[np.ix_(perm, perm)]
            sd = np.sqrt(np.clip(np.diag(lam_p), 1e-12, None))
            R = lam_p / np.outer(sd, sd) + 1e-10 * np.eye(qb)
            Cp = np.linalg.cholesky(R / np.sqrt(np.outer(np.diag(R), np.diag(R))))
            x0 = np.concatenate(
                [np.log(sd)] + [Cp[i, :i] / Cp[i, i] for i in n_free] + [self.L_hat[r_rows, r_cols]]
            )
        return _minimize(fun, x0)

    def _gamma(self, k: int, value: float, x0):
        q = self.q
        reduced = self._reduced_stats(k, value)

        def fun(x):
            dev, gL = _profiled_ml(reduced, theta_to_L(x, q, self.free))
            return dev, self._theta_grad(gL)

        return _minimize(fun, L_to_theta(self.L_hat, self.free) if x0 is None else x0)

    def _reduced_stats(self, k: int, value: float) -> ClusterStats:
        # [X_-k, Z, y - value * x_k] = [X, Z, y] T: transform the cross-products, no rows.
        stats = self.stats
        p, q = stats.p, stats.q
        width = p + q + 1
        keep = [i for i in range(p + q + 1) if i != k]
        T = np.eye(width)[:, keep]
        T[k, -1] = -value
        cross = np.einsum("ia,jik,kb->jab", T, stats.cross, T, optimize=True)
        return ClusterStats(
            cross=cross,
            n_obs=stats.n_obs,
            p=p - 1,
            q=q,
            cluster_sizes=stats.cluster_sizes,
            free=stats.free,
        )


# -- parameters, Wald ------------------------------------------------------------------------
def _params(res: MLMResults, gammas: bool) -> list[_Param]:
    labels = list(res.tau.index)
    q = len(labels)
    tau = res.tau.to_numpy()
    sd = np.sqrt(np.clip(np.diag(tau), 0.0, None))
    out = []
    rows, cols = _tril_mask(q, res.cluster_stats.free)  # a covariance fixed at 0: no parameter
    for a, b in zip(rows, cols, strict=True):
        if a == b:
            out.append(_Param(f"sd({labels[a]})", "sd", (a,), float(sd[a]), 0.0, np.inf))
        else:
            r = float(res.tau_corr.iloc[a, b])
            out.append(_Param(f"cor({labels[b]},{labels[a]})", "cor", (a, b), r, -1.0, 1.0))
    out.append(_Param("sigma", "sigma", (), float(np.sqrt(res.sigma2)), 0.0, np.inf))
    if gammas:
        for i, (label, est) in enumerate(res.gamma["estimate"].items()):
            out.append(_Param(str(label), "gamma", (i,), float(est), -np.inf, np.inf))
    return out


def _to_scale(par: _Param, v: float) -> float:
    if par.kind in ("sd", "sigma"):
        return float(np.log(v)) if v > 0 else -np.inf
    if par.kind == "cor":
        return float(np.arctanh(v)) if abs(v) < 1 else float(np.sign(v) * np.inf)
    return v


def _from_scale(par: _Param, u: float) -> float:
    if par.kind in ("sd", "sigma"):
        return float(np.exp(u))
    if par.kind == "cor":
        return float(np.tanh(u))
    return u


def _zero_sd(stats: ClusterStats, k: int, sigma: float) -> float:
    """The SD of random effect k below which it counts as 0: ``_BOUNDARY * sigma`` in the
    units of a standardized z_k, so rescaling a predictor never changes the verdict."""
    return _BOUNDARY * sigma / float(column_scales(stats)[1][k])


def _wald_scale_se(res: MLMResults, params: list[_Param]) -> dict[str, float]:
    """SEs on the unbounded scale (log SD, atanh cor, log sigma) from the fit's deviance."""
    var = [p for p in params if p.kind != "gamma"]
    stats = res.cluster_stats
    q = stats.q
    sigma_hat = np.sqrt(res.sigma2)
    zero_sd = {
        p.index[0]
        for p in var
        if p.kind == "sd" and not p.estimate > _zero_sd(stats, p.index[0], sigma_hat)
    }
    free = [
        p.index[0] not in zero_sd
        if p.kind == "sd"
        else (
            p.kind == "sigma"
            # a correlation within 1e-6 of +-1 is on the boundary (NaN fails too)
            or (abs(p.estimate) < 1.0 - 1e-6 and not set(p.index) & zero_sd)
        )
        for p in var
    ]
    # A singular correlation matrix (a singular fit with every SD positive): its
    # correlations sit on the boundary of the PSD cone, where no Wald SE exists.
    R_hat = np.eye(q)
    for p in var:
        if p.kind == "cor" and np.isfinite(p.estimate):
            R_hat[p.index] = R_hat[p.index[::-1]] = p.estimate
    if q > 1 and np.linalg.eigvalsh(R_hat)[0] <= _BOUNDARY:
        free = [f and p.kind != "cor" for p, f in zip(var, free, strict=True)]
    u_hat = np.array(
        [
            _to_scale(p, p.estimate)
            if f
            else (float(np.nan_to_num(p.estimate)) if p.kind == "cor" else 0.0)
            for p, f in zip(var, free, strict=True)
        ]
    )

    def deviance(u_free: np.ndarray) -> float:
        u = u_hat.copy()
        u[np.flatnonzero(free)] = u_free
        sds, R, sigma = np.zeros(q), np.eye(q), 1.0
        for p, f, ui in zip(var, free, u, strict=True):
            value = _from_scale(p, ui) if f else (ui if p.kind == "cor" else 0.0)
            if p.kind == "sd":
                sds[p.index[0]] = value
            elif p.kind == "cor":
                R[p.index] = R[p.index[::-1]] = value
            else:
                sigma = value
        try:
            root = np.linalg.cholesky(R)
        except np.linalg.LinAlgError:  # a correlation of +-1 (singular fit): any square root
            w, v = np.linalg.eigh(R)
            if w.min() < -1e-10:
                return np.inf  # not a correlation matrix: off the parameter space
            root = v * np.sqrt(np.clip(w, 0.0, None))
        L = (sds[:, None] * root) / sigma
        # On the standardized statistics (the same surface up to a constant): the finite
        # differences then do not lose digits to badly scaled columns.
        return unprofiled_deviance(standard, scale_z[:, None] * L, sigma / scale_y, res.reml)

    scales = column_scales(stats)
    standard = rescaled(stats, *scales)
    scale_z, scale_y = scales[1], float(scales[2])
    idx = np.flatnonzero(free)
    out = {p.label: np.nan for p in var}
    if len(idx):
        # Steps of 5e-3 on the log / atanh scale whatever the value there: a change of
        # units shifts log SD and log sigma, and must not change the step.
        H = numeric_hessian(lambda du: deviance(u_hat[idx] + du), np.zeros(len(idx)), scale=10.0)
        try:
            cov = 2.0 * np.linalg.inv(H)
            se = np.sqrt(np.where(np.diag(cov) > 0, np.diag(cov), np.nan))
        except np.linalg.LinAlgError:
            se = np.full(len(idx), np.nan)
        for j, i in enumerate(idx):
            out[var[i].label] = float(se[j])
    for label, se in zip(res.gamma.index, res.gamma["se"], strict=True):
        out[str(label)] = float(se)
    return out


# -- profile root-finding --------------------------------------------------------------------
def _profile_bound(
    prof: _Profiler, par: _Param, centre: float, se_u: float, side: int, crit: float
) -> float:
    """Where the profiled deviance rises by ``crit`` on one side of ``centre``."""
    z = np.sqrt(crit)
    if par.kind == "sd" and centre < _zero_sd(prof.stats, par.index[0], prof.sigma_hat):
        centre = 0.0  # on the boundary: the log scale is no use
    u0 = _to_scale(par, centre)
    limit = par.high if side > 0 else par.low

    memo: dict[float, float] = {}

    def excess(v: float) -> float:
        if v not in memo:
            rise = prof.deviance(par, v, centre) - prof.dev_min
            memo[v] = float(np.sqrt(max(rise, 0.0)) - z)
        return memo[v]

    if not np.isfinite(u0):
        # centred on a boundary (an SD of 0, a correlation of +-1): search on the natural
        # scale, on the inner side only.
        if side * (limit - centre) <= 0 or centre == limit:
            return centre
        u0 = centre

        def from_scale(u: float) -> float:
            return u

        se_u = 0.1 * (
            prof.sigma_hat / column_scales(prof.stats)[1][par.index[0]] if par.kind == "sd" else 1.0
        )
    else:

        def from_scale(u: float) -> float:
            return _from_scale(par, u)

    step = se_u if np.isfinite(se_u) and se_u > 0 else 0.1 * max(abs(u0), 1.0)
    inner, outer = centre, None
    u = u0
    for _ in range(30):
        u = u + side * step * z
        v = from_scale(u)
        if (side > 0 and v >= limit) or (side < 0 and v <= limit) or not np.isfinite(v):
            break
        if par.kind == "sd" and v < _zero_sd(prof.stats, par.index[0], prof.sigma_hat):
            break  # so close to 0 that only 0 itself is worth trying
        g = excess(v)
        if g >= 0:
            outer = v
            break
        inner, step = v, step * 1.5
    if outer is None:
        if np.isfinite(limit):
            if excess(limit) <= 0:
                return limit  # the profile never rises far enough: the boundary is the limit
            outer = limit
        else:
            return side * np.inf
    try:
        return float(sopt.brentq(excess, inner, outer, xtol=1e-9, rtol=1e-9, maxiter=100))
    except ValueError:  # the profile was not monotone between the two points
        warnings.warn(
            f"the profile of {par.label} could not be traced on the "
            f"{'upper' if side > 0 else 'lower'} side; that bound is NaN",
            ConvergenceWarning,
            stacklevel=3,
        )
        return np.nan


def variance_intervals(
    res: MLMResults, method: str = "profile", level: float = 0.95, gammas: bool = True
) -> pd.DataFrame:
    """Confidence intervals for the SDs and correlations of the random effects and sigma.

    Parameters
    ----------
    res
        A fitted model.
    method
        ``"profile"`` (default, lme4's ``confint`` default; about 0.5 s for a model with
        two random effects) or ``"wald"`` (instant).
    level
        Confidence level.
    gammas
        Also give intervals for the gammas (profile: on the ML deviance, as lme4;
        Wald: ``estimate +- z se``, as ``res.gamma``).

    Returns
    -------
    pandas.DataFrame
        Indexed by parameter, in lme4's order: ``sd(u0)``, ``cor(u0,u1)``, ``sd(u1)``, ...,
        ``sigma``, then the gamma labels. Columns: ``estimate`` (the fit's estimate),
        ``lower``, ``upper``. ``attrs["method"]`` describes the method in words.

    Warns
    -----
    BoundaryWarning
        Wald intervals for a singular fit (NaN where a variance is 0 or a correlation is
        +-1; use the profile intervals).

    Examples
    --------
    >>> import mlmwrap
    >>> res = mlmwrap.fit("mathach = b0 + b1*cwc(ses)\\nb0 = g00 + u0\\nb1 = g10 + u1",
    ...                   mlmwrap.datasets.load_hsb(), cluster="school")
    >>> variance_intervals(res, method="wald", gammas=False).round(3)
                estimate  lower  upper
    parameter
    sd(u0)         2.946  2.608  3.328
    cor(u0,u1)     0.019 -0.296  0.331
    sd(u1)         0.833  0.560  1.238
    sigma          6.058  5.958  6.160
    """
    method = str(method).lower()
    if method not in ("profile", "wald"):
        raise MLMError(
            f"unknown interval method {method!r}",
            expected="'profile' or 'wald'",
            hint="method='profile' is lme4's default",
        )
    if not 0.0 < level < 1.0:
        raise MLMError(f"level must be between 0 and 1, not {level!r}", hint="e.g. level=0.95")
    params = _params(res, gammas)
    se_u = _wald_scale_se(res, params)
    z = float(sstats.norm.ppf(0.5 + level / 2.0))
    lower, upper = [], []
    if method == "wald":
        nan = [p.label for p in params if p.kind != "gamma" and not np.isfinite(se_u[p.label])]
        if nan:
            warnings.warn(
                "Wald intervals are not defined at the boundary (a variance of 0 or a "
                f"correlation of +-1): NaN for {', '.join(nan)}; use method='profile'",
                BoundaryWarning,
                stacklevel=2,
            )
        for p in params:
            u, s = _to_scale(p, p.estimate), se_u[p.label]
            lower.append(_from_scale(p, u - z * s) if np.isfinite(s) else np.nan)
            upper.append(_from_scale(p, u + z * s) if np.isfinite(s) else np.nan)
        description = (
            f"{level:.0%} Wald intervals on the log-SD / atanh-correlation scale "
            f"({res.method} deviance Hessian); gammas: normal Wald"
        )
    else:
        prof = _Profiler(res)
        crit = float(sstats.chi2.ppf(level, 1))
        ml_values = _ml_values(prof, params)
        for p in params:
            centre = ml_values[p.label]
            lo = _profile_bound(prof, p, centre, se_u[p.label], -1, crit)
            hi = _profile_bound(prof, p, centre, se_u[p.label], +1, crit)
            lower.append(lo)
            upper.append(hi)
        description = (
            f"{level:.0%} profile-likelihood intervals on the ML deviance (as lme4's confint)"
        )
    out = pd.DataFrame(
        {"estimate": [p.estimate for p in params], "lower": lower, "upper": upper},
        index=pd.Index([p.label for p in params], name="parameter"),
    )
    out.attrs["method"] = description
    out.attrs["level"] = level
    return out


def _ml_values(prof: _Profiler, params: list[_Param]) -> dict[str, float]:
    """Each parameter at the ML optimum: where the ML profile is centred."""
    L, sigma = prof.L_hat, prof.sigma_hat
    tau = sigma**2 * (L @ L.T)
    sd = np.sqrt(np.clip(np.diag(tau), 0.0, None))
    out = {}
    for p in params:
        if p.kind == "sd":
            out[p.label] = float(sd[p.index[0]])
        elif p.kind == "cor":
            a, b = p.index
            out[p.label] = float(tau[a, b] / (sd[a] * sd[b])) if sd[a] * sd[b] > 0 else 0.0
        elif p.kind == "sigma":
            out[p.label] = sigma
        else:
            out[p.label] = float(prof.ml.beta[p.index[0]])
    return out
