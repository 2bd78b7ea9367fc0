"""Profiled (RE)ML deviance of a two-level linear mixed model and its global optimum.

The model, for cluster ``j``: ``y_j = X_j beta + Z_j b_j + e_j`` with
``b_j ~ N(0, sigma2 * L L')`` and ``e_j ~ N(0, sigma2 * I)``. ``L`` is lower triangular,
so ``tau = sigma2 * L L'`` is positive semi-definite by construction (lme4's relative
covariance factor). Everything is computed from per-cluster cross-products of
``[X, Z, y]``, stacked into arrays: one evaluation is a batch of small ``q x q`` solves,
with no Python loop over clusters, and its cost does not depend on the number of rows.

The deviance is lme4's (Bates, Maechler, Bolker & Walker 2015, "Fitting linear
mixed-effects models using lme4", J. Stat. Softw. 67(1), section 3), with its constants,
so values agree with ``-2 * logLik()`` of ``lmer``. Its gradient with respect to ``L`` is
analytic (derived from d log|V| = tr(V^-1 dV) and the envelope theorem for the profiled
beta and sigma2), which lets a quasi-Newton method reach the optimum even where the
surface is nearly flat.

``L``'s diagonal is left unconstrained: ``L L'`` does not change when a column of ``L``
changes sign, so the optimizer never meets a bound, and a variance of exactly zero is an
ordinary stationary point rather than a place where it stops for lack of room.

Examples
--------
>>> import numpy as np
>>> rng = np.random.default_rng(1)
>>> groups = np.repeat(np.arange(30), 10)
>>> X = np.column_stack([np.ones(300), rng.normal(size=300)])
>>> y = X @ [1.0, 0.5] + rng.normal(size=30)[groups] + rng.normal(size=300)
>>> stats = ClusterStats.from_arrays(X, X[:, :1], y, groups)
>>> opt = optimize(stats, reml=True)
>>> round(float(opt.beta[1]), 3), opt.converged
(0.483, True)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import optimize as sopt

from mlmwrap.model.cross_products import cluster_cross_products
from mlmwrap.model.numdiff import hessian_from_gradient
from mlmwrap.model.small_linalg import cholesky, gram_of_solve, log_diag_sum

__all__ = [
    "ClusterStats",
    "Evaluation",
    "Optimum",
    "optimize",
    "evaluate",
    "theta_to_L",
    "L_to_theta",
    "theta_indices",
    "block_pattern",
    "cluster_cross_products",
]

_LOG_2PI = np.log(2.0 * np.pi)
# lme4's isSingular() tolerance on the relative covariance factor's diagonal.
SINGULAR_TOL = 1e-4


@dataclass(frozen=True)
class ClusterStats:
    """Per-cluster cross-products of ``[X, Z, y]``, computed once per fit.

    Attributes
    ----------
    cross : ndarray, shape (J, k, k)
        ``W_j' W_j`` for ``W = [X, Z, y]``, ``k = p + q + 1``; the sums the deviance
        needs are derived from it once, at construction.
    n_obs : int
    p, q : int
        Numbers of fixed-effect columns and random-effect columns.
    cluster_sizes : ndarray of int, shape (J,)
    free : ndarray of bool, shape (q, q), or None
        The entries of the relative covariance factor ``L`` that are free (lower triangle,
        within the blocks of a block-diagonal tau); ``None``: all of the lower triangle
        (tau unstructured). See :func:`block_pattern`.
    """

    cross: np.ndarray
    n_obs: int
    p: int
    q: int
    cluster_sizes: np.ndarray
    zt_all: np.ndarray = field(init=False, repr=False)  # Z'[X y Z], shape (J, q, p + 1 + q)
    zt_xy: np.ndarray = field(init=False, repr=False)  # its first p + 1 columns, contiguous
    ztz_soa: np.ndarray = field(init=False, repr=False)  # Z'Z per cluster, clusters last
    xx: np.ndarray = field(init=False, repr=False)  # X'X summed over clusters
    xy: np.ndarray = field(init=False, repr=False)
    yy: float = field(init=False, repr=False)
    free: np.ndarray | None = None

    @property
    def n_theta(self) -> int:
        """Number of free entries of ``L`` (the variance parameters other than sigma2)."""
        return len(theta_indices(self.q, self.free)[0])

    def __post_init__(self) -> None:
        p, q, cross = self.p, self.q, self.cross
        zt = np.concatenate(
            [cross[:, p : p + q, :p], cross[:, p : p + q, -1:], cross[:, p : p + q, p : p + q]],
            axis=2,
        )
        object.__setattr__(self, "zt_all", np.ascontiguousarray(zt))
        object.__setattr__(self, "zt_xy", np.ascontiguousarray(zt[:, :, : p + 1]))
        object.__setattr__(
            self, "ztz_soa", np.ascontiguousarray(zt[:, :, p + 1 :].transpose(1, 2, 0))
        )
        object.__setattr__(self, "xx", cross[:, :p, :p].sum(axis=0))
        object.__setattr__(self, "xy", cross[:, :p, -1].sum(axis=0))
        object.__setattr__(self, "yy", float(cross[:, -1, -1].sum()))

    @classmethod
    def from_arrays(
        cls,
        X: np.ndarray,
        Z: np.ndarray,
        y: np.ndarray,
        groups: np.ndarray,
        free: np.ndarray | None = None,
    ) -> ClusterStats:
        """Build from row-level arrays; ``groups`` holds integer codes 0..J-1; ``free`` the
        pattern of ``L`` (``None``: unstructured)."""
        X = np.asarray(X, dtype=float)
        Z = np.asarray(Z, dtype=float)
        y = np.asarray(y, dtype=float).reshape(-1, 1)
        groups = np.asarray(groups)
        n_clusters = int(groups.max()) + 1 if len(groups) else 0
        cross = cluster_cross_products(np.hstack([X, Z, y]), groups, n_clusters)
        sizes = np.bincount(groups, minlength=n_clusters)
        return cls(
            cross=cross, n_obs=len(y), p=X.shape[1], q=Z.shape[1], cluster_sizes=sizes, free=free
        )


@dataclass(frozen=True)
class Evaluation:
    """Everything the profiled deviance yields at one relative covariance factor ``L``."""

    deviance: float
    gradient: np.ndarray
    beta: np.ndarray
    sigma2: float
    A: np.ndarray  # X' V^-1 X with V = I + Z L L' Z' (sigma2 factored out)
    L: np.ndarray
    logdet_V: float  # log det V = sum_j log det M_j
    logdet_A: float  # log det A
    r2: float  # (y - X beta)' V^-1 (y - X beta) at the GLS beta
    # Pieces of the gradient, each q x q: d/dL of log det V is 2 G_V L, of log det A is
    # -2 G_A L and of r2 is -2 G_r L (see evaluate); they give the gradient of the deviance
    # with sigma2 as a free parameter too (mlmwrap.inference).
    G_V: np.ndarray = field(repr=False, default=None)
    G_A: np.ndarray = field(repr=False, default=None)
    G_r: np.ndarray = field(repr=False, default=None)


@dataclass(frozen=True)
class Optimum:
    """The optimum found, and how trustworthy it is."""

    evaluation: Evaluation
    reml: bool
    converged: bool
    singular: bool
    hessian_pd: bool | None  # None when the fit is singular (no interior Hessian to judge)
    gradient_norm: float
    n_evaluations: int
    messages: tuple[str, ...] = field(default=())
    # Hessian of the profiled deviance in theta (lme4's order) at the optimum, or None.
    hessian: np.ndarray | None = field(default=None, repr=False)
    # Root mean square of each column of Z: the engine's units (mlmwrap.model.scaling).
    z_scale: np.ndarray | None = field(default=None, repr=False)

    @property
    def beta(self) -> np.ndarray:
        return self.evaluation.beta

    @property
    def sigma2(self) -> float:
        return self.evaluation.sigma2

    @property
    def deviance(self) -> float:
        return self.evaluation.deviance

    @property
    def tau(self) -> np.ndarray:
        L = self.evaluation.L
        return self.evaluation.sigma2 * (L @ L.T)

    @property
    def zero_variances(self) -> np.ndarray:
        """Boolean per random effect: its variance is 0 up to rounding (on the boundary)."""
        # Relative to sigma2 and to the units of the effect's column: tau_kk s_k^2 / sigma2,
        # the share of the level-1 variance the effect carries, is free of units.
        L = self.evaluation.L
        scale = np.ones(L.shape[0]) if self.z_scale is None else self.z_scale
        return np.sum(L**2, axis=1) * scale**2 <= 1e-8

    @property
    def cov_beta(self) -> np.ndarray:
        """``sigma2 * A^-1``: the model-based covariance of beta (as lme4, nlme, SAS, HLM)."""
        return self.evaluation.sigma2 * np.linalg.inv(self.evaluation.A)


def block_pattern(blocks: list[list[int]], q: int) -> np.ndarray | None:
    """The free entries of ``L`` for a block-diagonal tau with the given blocks.

    ``L[i, j]`` (``i >= j``) is free when ``i`` and ``j`` are in one block. Then
    ``L L'`` is zero between blocks, and each block's rows and columns of ``L`` are a
    lower-triangular (Cholesky) factor of that block: every block-diagonal tau with these
    blocks, and only those, is reached. The blocks need not be contiguous. ``None`` for a
    single block (the unstructured tau).

    Examples
    --------
    >>> block_pattern([[0, 2], [1]], 3).astype(int)
    array([[1, 0, 0],
           [0, 1, 0],
           [1, 0, 1]])
    """
    if len(blocks) <= 1:
        return None
    block_of = np.empty(q, dtype=int)
    for b, members in enumerate(blocks):
        block_of[list(members)] = b
    return np.tril(block_of[:, None] == block_of[None, :])


def theta_indices(q: int, free: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Rows and columns of ``L`` that theta holds, in lme4's column-major order."""
    rows, cols = np.tril_indices(q)
    order = np.lexsort((rows, cols))
    rows, cols = rows[order], cols[order]
    if free is not None:
        keep = free[rows, cols]
        rows, cols = rows[keep], cols[keep]
    return rows, cols


def theta_to_L(theta: np.ndarray, q: int, free: np.ndarray | None = None) -> np.ndarray:
    """Relative covariance factor from lme4's theta (column-major lower triangle:
    L[0,0], L[1,0], ..., L[1,1], ...; only the ``free`` entries when a pattern is given)."""
    L = np.zeros((q, q))
    L[theta_indices(q, free)] = theta
    return L


def L_to_theta(L: np.ndarray, free: np.ndarray | None = None) -> np.ndarray:
    """lme4's theta (column-major lower triangle, the ``free`` entries) of ``L``."""
    return L[theta_indices(L.shape[0], free)].copy()


def evaluate(stats: ClusterStats, L: np.ndarray, reml: bool) -> Evaluation:
    """Profiled deviance, its gradient with respect to ``L`` (lower triangle), beta and sigma2.

    The ``q x q`` factorizations of ``M_j`` are closed-form vector operations over the
    clusters (:mod:`mlmwrap.model.small_linalg`), not one LAPACK call per cluster; the
    rest is stacked matmuls and GEMMs, so an evaluation costs O(J q^2 p) flops at memory
    speed, with no per-cluster call overhead.
    """
    p, q = stats.p, stats.q
    n_clusters = stats.zt_xy.shape[0]
    zxy = stats.zt_xy  # Z'[X y] per cluster, (J, q, p + 1), contiguous
    # The q x q algebra runs on (q, q, J) arrays: a few vector operations per entry.
    ztz = stats.ztz_soa  # Z'Z, (q, q, J)
    T = np.einsum("abj,bc->acj", ztz, L)  # Z'Z L
    M = np.einsum("ba,bcj->acj", L, T)
    M[range(q), range(q)] += 1.0  # M = I + L' Z'Z L
    chol = cholesky(M)
    logdet_V = log_diag_sum(chol)
    if not np.isfinite(logdet_V):
        raise np.linalg.LinAlgError("M_j is not positive definite")
    H = gram_of_solve(chol, L.T)  # L M^-1 L'
    ZtZH = np.einsum("abj,bcj->acj", ztz, H)
    G_V = (ztz - np.einsum("abj,bcj->acj", ZtZH, ztz)).sum(axis=2)  # sum_j Z'V^-1 Z
    Ninv = -ZtZH
    Ninv[range(q), range(q)] += 1.0  # I - Z'Z L M^-1 L', so that Z'V^-1 = Ninv Z'
    # The products with Z'[X y] (q x (p + 1) per cluster) are stacked matmuls.
    Hz = np.ascontiguousarray(H.transpose(2, 0, 1)) @ zxy  # L M^-1 L' Z'[X y]
    # Sum over clusters of [X y]' Z L M^-1 L' Z' [X y]: one GEMM over the (J q) rows.
    correction = zxy.reshape(-1, p + 1).T @ Hz.reshape(-1, p + 1)
    A = stats.xx - correction[:p, :p]
    c = stats.xy - correction[:p, p]
    d = stats.yy - correction[p, p]
    A = 0.5 * (A + A.T)
    chol_A = np.linalg.cholesky(A)
    Ainv = np.linalg.inv(A)
    beta = Ainv @ c
    r2 = float(d - c @ beta)
    n = stats.n_obs
    nu = n - p if reml else n
    sigma2 = r2 / nu
    logdet_A = float(2.0 * np.log(np.diag(chol_A)).sum())
    deviance = logdet_V + nu * (1.0 + np.log(2.0 * np.pi * r2 / nu))
    if reml:
        deviance += logdet_A

    # Gradient: d(dev)/dL = 2 G L with G = sum_j [P_j - W_j A^-1 W_j' (REML) - (nu/r2) s_j s_j'],
    # P_j = Z'V^-1 Z, W_j = Z'V^-1 X, s_j = Z'V^-1 (y - X beta), where
    # Z'V^-1 = (I - Z'Z L M^-1 L') Z' (Woodbury).
    ZtVinv = np.ascontiguousarray(Ninv.transpose(2, 0, 1)) @ zxy  # Z'V^-1 [X y]
    s = (ZtVinv.reshape(-1, p + 1) @ np.append(-beta, 1.0)).reshape(n_clusters, q)
    G_r = s.T @ s
    # sum_j W_j A^-1 W_j' with W_j = Z'V^-1 X: from one Gram matrix of the flattened
    # Z'V^-1 [X y] over clusters (a single GEMM), contracted with A^-1 block by block.
    flat = ZtVinv.reshape(n_clusters, q * (p + 1))
    gram = (flat.T @ flat).reshape(q, p + 1, q, p + 1)[:, :p, :, :p]
    G_A = np.tensordot(gram, Ainv, axes=([1, 3], [0, 1]))
    G = G_V - (nu / r2) * G_r
    if reml:
        G -= G_A
    grad_L = 2.0 * G @ L
    return Evaluation(
        deviance=float(deviance),
        gradient=np.tril(grad_L),
        beta=beta,
        sigma2=float(sigma2),
        A=A,
        L=L,
        logdet_V=float(logdet_V),
        logdet_A=logdet_A,
        r2=r2,
        G_V=G_V,
        G_A=G_A,
        G_r=G_r,
    )


def _objective(theta: np.ndarray, stats: ClusterStats, reml: bool, counter: list[int]):
    counter[0] += 1
    try:
        # Far from the optimum r2 can underflow; such points just get an infinite deviance.
        with np.errstate(all="ignore"):
            ev = evaluate(stats, theta_to_L(theta, stats.q, stats.free), reml)
    except np.linalg.LinAlgError:
        return np.inf, np.zeros_like(theta)
    if not np.isfinite(ev.deviance):
        return np.inf, np.zeros_like(theta)
    return ev.deviance, L_to_theta(ev.gradient, stats.free)


def _numeric_hessian(theta: np.ndarray, stats: ClusterStats, reml: bool, counter) -> np.ndarray:
    """Hessian of the profiled deviance: second-order central differences of its gradient."""
    return hessian_from_gradient(
        lambda t: _objective(t, stats, reml, counter)[1], theta, rel=1e-5, order=2, floor=1.0
    )


def _polish(theta, stats, reml, counter):
    """Newton steps from a BFGS answer: the surface can be nearly flat along a slope variance.

    Returns the deviance, theta, its gradient and the last Hessian computed (at most one
    Newton step of size <= 1e-6 away from the final theta, so it serves the convergence
    check and the small-sample df without being recomputed).
    """
    dev, grad = _objective(theta, stats, reml, counter)
    hessian = None
    for _ in range(6):
        if not grad.size:
            break
        hessian = _numeric_hessian(theta, stats, reml, counter)
        try:
            step = np.linalg.solve(hessian, grad)
        except np.linalg.LinAlgError:
            break
        size = float(np.max(np.abs(step)))
        if size < 1e-10:  # theta is relative (L = tau^1/2 / sigma): a scale-free size
            break
        new_dev, new_grad = _objective(theta - step, stats, reml, counter)
        # Accept within rounding noise of the deviance when the gradient shrinks: with
        # nearly collinear predictors (cond(X'V^-1 X) ~ 1e8) the deviance is only good to
        # ~1e-10 relative, while the analytic gradient still points the right way.
        noise = 1e-8 * max(1.0, abs(dev))
        if not (new_dev <= dev + noise and np.max(np.abs(new_grad)) < np.max(np.abs(grad))):
            break
        theta, dev, grad = theta - step, new_dev, new_grad
        if size < 1e-6:  # quadratic convergence: the next step would be ~1e-12
            break
    return float(dev), theta, grad, hessian


class _Progress(Exception):
    """BFGS stalled: the deviance no longer improves beyond its rounding noise."""


def _bfgs(theta0, stats, reml, counter):
    """BFGS with the analytic gradient, stopped when an iteration gains < 1e-9 relative.

    scipy's own test is on the gradient's size, which is in units of the deviance (it grows
    with n); past the point where the deviance stops improving its line searches only fight
    rounding noise. The Newton polish takes over from there.
    """
    last = [np.inf]
    best = [None]

    def callback(intermediate_result):
        fun = float(intermediate_result.fun)
        best[0] = (fun, np.array(intermediate_result.x))
        if last[0] - fun < 1e-9 * max(1.0, abs(fun)):
            raise StopIteration
        last[0] = fun

    res = sopt.minimize(
        _objective,
        theta0,
        args=(stats, reml, counter),
        jac=True,
        method="BFGS",
        callback=callback,
        options={"gtol": 1e-4, "maxiter": 2000},
    )
    if best[0] is not None and best[0][0] < res.fun:
        return best[0]
    return float(res.fun), res.x


def _starts(q: int, free: np.ndarray | None = None) -> list[np.ndarray]:
    # lme4 starts at L = I; smaller and larger scales guard against a local optimum, and
    # no start has a zero diagonal (a zero column is a stationary point the gradient can't leave).
    eye = L_to_theta(np.eye(q), free)
    starts = [eye, 0.3 * eye, 3.0 * eye]
    if q > 1:
        rng = np.random.default_rng(20261125)
        jitter = L_to_theta(np.tril(rng.normal(scale=0.3, size=(q, q)), -1), free)
        if np.any(jitter):  # a diagonal pattern has no off-diagonal entry to jitter
            starts.append(eye + jitter)
    return starts


def _boundary_candidates(current, stats, reml, counter):
    """When the polished optimum still has a sizable gradient, the minimum may lie on the
    boundary (a variance of 0) that the interior search only approaches along a flat valley.
    Try each small column of the (unit-free) L set to zero, a stationary subspace the
    optimizer then stays in, and keep a candidate that is as good (within 1e-3 in deviance)
    with a smaller gradient: a verified singular fit, as lme4 reports it, rather than an
    unverified interior point."""
    dev, theta, grad, hessian = current
    q = stats.q
    L = theta_to_L(theta, q, stats.free)
    diag = np.abs(np.diag(L))
    for k in np.flatnonzero(diag < 0.1 * max(float(diag.max()), 1e-12)):
        Lk = L.copy()
        Lk[:, k] = 0.0
        fun, x = _bfgs(L_to_theta(Lk, stats.free), stats, reml, counter)
        if not np.isfinite(fun):
            continue
        cand = _polish(x, stats, reml, counter)
        # Deviance differences are free of units; 1e-3 is the tests' "same optimum as lme4".
        better = cand[0] <= dev + 1e-3
        if better and float(np.max(np.abs(cand[2]))) < float(np.max(np.abs(grad))):
            dev, theta, grad, hessian = cand
    return dev, theta, grad, hessian


def optimize(stats: ClusterStats, reml: bool = True, gtol: float = 1e-6) -> Optimum:
    """Find the global minimum of the profiled (RE)ML deviance.

    Several starts, BFGS with the analytic gradient, then Newton polishing with a
    finite-difference Hessian of the gradient. The best optimum is checked: gradient small
    (relative to the deviance's scale), Hessian positive definite unless tau is singular.

    Parameters
    ----------
    stats
        Per-cluster cross-products (:meth:`ClusterStats.from_arrays`).
    reml
        Restricted maximum likelihood (default) or full maximum likelihood.
    gtol
        Convergence tolerance on the gradient's largest absolute entry.

    Returns
    -------
    Optimum
    """
    from mlmwrap.model.scaling import column_scales, rescaled, theta_row_scales

    original = stats
    sx, sz, sy = column_scales(original)
    # Optimize in units where every column has RMS 1, so that every tolerance below is
    # free of the data's units; L maps back exactly (mlmwrap.model.scaling).
    stats = rescaled(original, sx, sz, sy)
    q = stats.q
    counter = [0]
    found: list[tuple[float, np.ndarray]] = []
    for theta0 in _starts(q, stats.free):
        fun, x = _bfgs(theta0, stats, reml, counter)
        if np.isfinite(fun):
            found.append((fun, x))
        # Two starts that reach the same deviance are enough (the Newton polish of the best
        # then settles the last digits); otherwise keep trying the remaining starts.
        if len(found) >= 2:
            devs = sorted(f[0] for f in found)
            if devs[1] - devs[0] < 1e-4 + 1e-9 * abs(devs[0]):
                break
    if not found:
        raise np.linalg.LinAlgError("the deviance could not be evaluated at any start value")
    dev, theta = min(found, key=lambda f: f[0])
    # Canonical sign first: nonnegative diagonal (L L' is unchanged by flipping a column).
    flip = np.where(np.diag(theta_to_L(theta, q, stats.free)) < 0, -1.0, 1.0)
    theta = L_to_theta(theta_to_L(theta, q, stats.free) * flip[None, :], stats.free)
    dev, theta, grad, hessian = _polish(theta, stats, reml, counter)
    if grad.size and float(np.max(np.abs(grad))) >= 1e-3:
        dev, theta, grad, hessian = _boundary_candidates(
            (dev, theta, grad, hessian), stats, reml, counter
        )
    if hessian is None:
        hessian = _numeric_hessian(theta, stats, reml, counter)
    messages: list[str] = []

    L = theta_to_L(theta, q, stats.free)
    if np.any(np.diag(L) < 0):  # a Newton step crossed zero: flip those columns back
        flip = np.where(np.diag(L) < 0, -1.0, 1.0)
        L = L * flip[None, :]
        sign = L_to_theta(np.ones((q, q)) * flip[None, :], stats.free)  # each entry's flip
        theta, grad, hessian = theta * sign, grad * sign, hessian * np.outer(sign, sign)
    gnorm = float(np.max(np.abs(grad))) if grad.size else 0.0
    singular = bool(np.any(np.abs(np.diag(L)) < SINGULAR_TOL))  # on the unit-free L_s
    L = L / sz[:, None]
    evaluation = evaluate(original, L, reml)
    # The profiled deviance in the data's units is the rescaled one at L_s = diag(s_z) L (up
    # to a constant), so its Hessian in theta is D H_s D with D the rows' scales s_z.
    d = 1.0 / theta_row_scales(sz, stats.free)
    hessian_original = hessian * np.outer(d, d)
    eigen = np.linalg.eigvalsh(hessian) if hessian.size else np.array([1.0])
    hessian_pd: bool | None = None if singular else bool(eigen.min() > 0)
    # lme4's idea: where the Hessian is positive definite, the Newton step the gradient
    # implies must be negligible; elsewhere (singular fits) the gradient itself must be small.
    if hessian_pd:
        newton_step = float(np.max(np.abs(np.linalg.solve(hessian, grad))))
        converged = bool(np.isfinite(dev) and newton_step < 1e-5 and gnorm < 1e-2)
    else:
        converged = bool(np.isfinite(dev) and gnorm < 1e-3)
    if not converged:
        messages.append(
            f"the optimizer stopped with a gradient of {gnorm:.2g}; "
            "the estimates may not be the optimum"
        )
    if hessian_pd is False:
        messages.append(
            "the Hessian of the deviance is not positive definite at the estimates: "
            "the variance parameters are not well identified"
        )
    return Optimum(
        evaluation=evaluation,
        reml=reml,
        converged=bool(converged),
        singular=singular,
        hessian_pd=hessian_pd,
        gradient_norm=gnorm,
        n_evaluations=counter[0],
        messages=tuple(messages),
        hessian=hessian_original,
        z_scale=sz,
    )
