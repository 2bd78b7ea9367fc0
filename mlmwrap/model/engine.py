"""Profiled (RE)ML deviance of a two-level linear mixed model and its global optimum.

The model, for cluster ``j``: ``y_j = X_j beta + Z_j b_j + e_j`` with
``b_j ~ N(0, sigma2 * L L')`` and ``e_j ~ N(0, sigma2 * I)``. ``L`` is lower triangular,
so ``tau = sigma2 * L L'`` is positive semi-definite by construction (lme4's relative
covariance factor). Everything is computed from per-cluster cross-products of
``[X, Z, y]``, stacked into arrays: one evaluation is a batch of small ``q x q`` solves,
with no Python loop over clusters, and its cost does not depend on the number of rows.

The deviance is lme4's (Bates, Maechler, Bolker & Walker 2015, "Fitting linear
mixed-effects models using lme4", J. Stat. Softw. 67(1), section 3), with its constants,
so values agree with ``-2 * logLik()`` of ``lmer``. Its gradient and Hessian with respect
to ``L`` are analytic (:mod:`mlmwrap.model.kernel`: d log|V| = tr(V^-1 dV), the REML
projection and the envelope theorem for the profiled beta and sigma2); each Hessian costs
about one evaluation, so the optimizer takes Newton steps, which converge quadratically even
where the surface is nearly flat. It starts from a moment estimate and from lme4's
``L = I`` (more starts when those two disagree), in units where every column has RMS 1.

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
from functools import cached_property

import numpy as np

from mlmwrap.model.cross_products import cluster_cross_products
from mlmwrap.model.kernel import KernelData, KernelResult, evaluate_kernel, hessian_kernel

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

    The layouts the engine and the analyses read (``kernel_data``, ``zt_all``, ...) are
    derived from ``cross`` on first use.
    """

    cross: np.ndarray
    n_obs: int
    p: int
    q: int
    cluster_sizes: np.ndarray
    free: np.ndarray | None = None

    @property
    def n_theta(self) -> int:
        """Number of free entries of ``L`` (the variance parameters other than sigma2)."""
        return len(theta_indices(self.q, self.free)[0])

    # Derived arrays, each computed on first use (the engine needs only kernel_data).
    @cached_property
    def kernel_data(self) -> KernelData:
        """``Z'Z`` and ``Z'[X y]`` per cluster in the kernel's layout (clusters last)."""
        return KernelData.from_cross(self.cross, self.p, self.q, self.n_obs)

    @cached_property
    def zt_all(self) -> np.ndarray:
        """``Z'[X y Z]`` per cluster, shape ``(J, q, p + 1 + q)``."""
        p, q, cross = self.p, self.q, self.cross
        zt = np.concatenate(
            [cross[:, p : p + q, :p], cross[:, p : p + q, -1:], cross[:, p : p + q, p : p + q]],
            axis=2,
        )
        return np.ascontiguousarray(zt)

    @cached_property
    def zt_xy(self) -> np.ndarray:
        """``Z'[X y]`` per cluster, shape ``(J, q, p + 1)``, contiguous."""
        return np.ascontiguousarray(self.kernel_data.V.transpose(2, 0, 1))  # not compressed

    @cached_property
    def ztz_soa(self) -> np.ndarray:
        """``Z'Z`` per cluster, clusters last: ``(q, q, J)``."""
        return self.kernel_data.S

    @cached_property
    def xx(self) -> np.ndarray:
        """``X'X`` summed over clusters."""
        return self.kernel_data.xx

    @cached_property
    def xy(self) -> np.ndarray:
        return self.kernel_data.xy

    @cached_property
    def yy(self) -> float:
        return self.kernel_data.yy

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
    n_hessians: int = 0  # analytic Hessians computed (each costs about one evaluation)
    # d A / d theta_i (A = X'V^-1 X, sigma2 factored out) in the data's units, shape
    # (n_theta, p, p): the Jacobian of cov(beta) for Satterthwaite's df, or None.
    a_jacobian: np.ndarray | None = field(default=None, repr=False)

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


def _evaluation(res: KernelResult) -> Evaluation:
    return Evaluation(
        deviance=res.deviance,
        gradient=res.grad_L,
        beta=res.beta,
        sigma2=res.sigma2,
        A=res.A,
        L=res.L,
        logdet_V=res.logdet_V,
        logdet_A=res.logdet_A,
        r2=res.r2,
        G_V=res.G_V,
        G_A=res.G_A,
        G_r=res.G_r,
    )


def evaluate(stats: ClusterStats, L: np.ndarray, reml: bool) -> Evaluation:
    """Profiled deviance, its gradient with respect to ``L`` (lower triangle), beta and sigma2.

    The ``q x q`` algebra is a few vector operations over the clusters and every sum over
    clusters one BLAS call (:mod:`mlmwrap.model.kernel`): an evaluation costs O(J q^2 p)
    flops at memory speed, with no per-cluster call overhead.
    """
    return _evaluation(evaluate_kernel(stats.kernel_data, np.asarray(L, dtype=float), reml))


class _Deviance:
    """theta -> (deviance, gradient, evaluation) on the kernel's data, and the Hessian."""

    def __init__(self, data: KernelData, reml: bool, q: int, free: np.ndarray | None):
        self.data, self.reml, self.q, self.free = data, reml, q, free
        self.rows, self.cols = theta_indices(q, free)
        self.n_evaluations = 0
        self.n_hessians = 0

    def __call__(self, theta: np.ndarray):
        self.n_evaluations += 1
        try:
            # Far from the optimum r2 can underflow; such points just get an infinite deviance.
            with np.errstate(all="ignore"):
                ev = evaluate_kernel(self.data, theta_to_L(theta, self.q, self.free), self.reml)
        except np.linalg.LinAlgError:
            return np.inf, np.zeros_like(theta), None
        if not np.isfinite(ev.deviance):
            return np.inf, np.zeros_like(theta), None
        return ev.deviance, ev.grad_L[self.rows, self.cols], ev

    def hessian(self, ev: KernelResult) -> np.ndarray:
        """The analytic Hessian in theta at the point ``ev`` was evaluated at."""
        self.n_hessians += 1
        with np.errstate(all="ignore"):
            return hessian(self.data, ev, self.rows, self.cols)


def hessian(data: KernelData, ev: KernelResult, rows: np.ndarray, cols: np.ndarray):
    """Hessian of the profiled deviance in theta (:func:`mlmwrap.model.kernel.hessian_kernel`)."""
    return hessian_kernel(data, ev, rows, cols)


@dataclass
class _Run:
    """Where one Newton run ended: deviance, theta, gradient, the Hessian there."""

    deviance: float
    theta: np.ndarray
    gradient: np.ndarray
    hessian: np.ndarray | None
    evaluation: KernelResult | None = field(default=None, repr=False)
    same: bool = False  # stopped early: converging to the best deviance found before
    stale: bool = False  # the Hessian is from the point one last (< 1e-5) step before


def _trust_step(H: np.ndarray, g: np.ndarray, radius: float) -> tuple[np.ndarray, bool]:
    """The minimizer of ``g's + s'Hs / 2`` over ``|s| <= radius`` (Euclidean), and whether
    it is the plain Newton step (``H`` positive definite, step inside the region).

    Outside, ``s = -(H + mu I)^-1 g`` with ``mu > max(0, -lambda_min)`` chosen so that
    ``|s| = radius`` (More and Sorensen's trust-region step, from one eigendecomposition).
    """
    w, Q = np.linalg.eigh(H)
    gq = Q.T @ g
    top = float(np.max(np.abs(w))) if w.size else 0.0
    if not np.isfinite(top):
        return -g * (radius / max(float(np.linalg.norm(g)), 1e-300)), False
    if w.min() > 1e-12 * top:
        s = -(Q @ (gq / w))
        if np.linalg.norm(s) <= radius:
            return s, True

    def norm(mu: float) -> float:
        return float(np.linalg.norm(gq / (w + mu)))

    lo = max(0.0, -float(w.min())) + 1e-12 * max(top, 1e-300)
    if norm(lo) <= radius:  # the hard case: add the direction of the smallest eigenvalue
        s = -(Q @ (gq / (w + lo)))
        extra = np.sqrt(max(radius**2 - float(s @ s), 0.0))
        return s + extra * Q[:, 0] * (-1.0 if float(gq[0]) > 0 else 1.0), False
    hi = lo + float(np.linalg.norm(g)) / radius + top
    for _ in range(100):  # |s(mu)| decreases in mu: bisection on the log scale
        mid = np.sqrt(lo * hi) if lo > 0 else 0.5 * (lo + hi)
        if norm(mid) > radius:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-10 * hi:
            break
    return -(Q @ (gq / (w + hi))), False


# The first trust region (relative for the diagonal of L), and the floor of that scale.
_RADIUS, _FLOOR = 0.5, 0.1


def _newton(fn: _Deviance, theta: np.ndarray, target: float | None = None, max_iter: int = 100):
    """Trust-region Newton with the analytic Hessian.

    Near the optimum the steps are plain Newton steps and converge quadratically: a run ends
    when the step is below 1e-10 (theta is unit-free: relative SDs; 1e-7 with a gradient
    below 1e-3), or, below 1e-5, after one last step without a new Hessian (the one kept is
    then <= 1e-5 away). Far from it
    (an indefinite Hessian, a long step) the step is confined to a region whose radius
    grows and shrinks with how well the quadratic model predicted the deviance. With
    ``target`` (the best deviance found so far) a run also ends as soon as the Newton
    decrement says it converges to within 1e-5 of that deviance: the same optimum, reached
    from another start.
    """
    theta = np.asarray(theta, dtype=float)
    f, g, ev = fn(theta)
    if not np.isfinite(f):
        return _Run(np.inf, theta, g, None)
    if not g.size:
        return _Run(float(f), theta, g, np.zeros((0, 0)), ev)
    H = fn.hessian(ev)
    radius = _RADIUS
    diagonal = fn.rows == fn.cols
    same = stale = False  # stale: H was computed one (tiny) step before theta
    for _ in range(max_iter):
        if not np.all(np.isfinite(H)):
            break
        # The region is relative for the diagonal of L: the deviance behaves like
        # log |L_kk| there, and no step of radius < 1 crosses zero.
        d = np.where(diagonal, 1.0 / np.maximum(np.abs(theta), _FLOOR), 1.0)
        scaled, newton = _trust_step(H / np.outer(d, d), g / d, radius)
        step = scaled / d
        size = float(np.max(np.abs(step)))
        if newton and (size < 1e-10 or (size < 1e-7 and float(np.max(np.abs(g))) < 1e-3)):
            break
        decrement = -0.5 * float(g @ step)
        noise = 1e-8 * max(1.0, abs(f))
        if (
            newton
            and target is not None
            and size < 1e-2
            and decrement < 1e-3
            and abs(f - decrement - target) < 1e-5
        ):
            same = True
            break
        f1, g1, ev1 = fn(theta + step)
        if newton and size < 1e-5:  # the last step: its Newton successor would be ~1e-10
            if np.isfinite(f1) and f1 <= f + noise and np.max(np.abs(g1)) <= np.max(np.abs(g)):
                theta, f, g, ev, stale = theta + step, f1, g1, ev1, True
            break
        predicted = -(float(g @ step) + 0.5 * float(step @ H @ step))
        length = float(np.linalg.norm(scaled))
        rho = (f - f1) / predicted if np.isfinite(f1) and predicted > 0 else -np.inf
        if rho < 0.25:
            # The minimum of the parabola through f, the slope g's and f(theta + s), kept
            # within [0.1, 0.5] of this step's length.
            slope = float(g @ step)
            curve = f1 - f - slope if np.isfinite(f1) else np.inf
            frac = -slope / (2.0 * curve) if curve > 0 else 0.25
            radius = float(np.clip(frac, 0.1, 0.5)) * length
        elif rho > 0.75 and length > 0.99 * radius:
            radius = min(2.0 * radius, 1e3)
        # Accepted when the deviance falls as predicted (in part), or stays within its
        # rounding noise while the gradient shrinks: with nearly collinear predictors the
        # deviance is only good to ~1e-10 relative, while the analytic gradient still
        # points the right way.
        if rho > 1e-4 or (
            np.isfinite(f1) and f1 <= f + noise and np.max(np.abs(g1)) < np.max(np.abs(g))
        ):
            theta, f, g, ev = theta + step, f1, g1, ev1
            H = fn.hessian(ev)
        elif radius < 1e-12:
            break
    return _Run(float(f), theta, g, H, ev, same, stale)


def _moment_start(data: KernelData, free: np.ndarray | None) -> np.ndarray | None:
    """A start near the optimum from moments of the pooled OLS residuals projected on Z.

    With ``r = y - X beta_OLS`` and ``z_j = Z_j'r_j``: ``E z_j z_j' ~ S_j tau S_j + sigma2 S_j``
    and ``E r'r ~ tr(tau sum_j S_j) + n sigma2``, linear in (tau, sigma2); solved by least
    squares, tau projected on the positive definite matrices. Costs one pass over the
    clusters; ``None`` when the moments say nothing usable.
    """
    q, J, n = data.q, data.n_clusters, data.n_obs
    try:
        beta = np.linalg.lstsq(data.xx, data.xy, rcond=None)[0]
    except np.linalg.LinAlgError:
        return None
    b = np.append(-beta, 1.0)
    z = np.matmul(b, data.V)  # (q, J)
    rr = float(data.yy - 2.0 * data.xy @ beta + beta @ data.xx @ beta)
    Szz = z @ z.T
    Ssum = data.S_sum
    Sf = data.S.reshape(q * q, J)
    wSf = Sf if data.weights is None else Sf * data.weights
    # sum_j S_j tau S_j as a linear map of vec(tau): K[a, b, c, d] = sum_j S_j[a, c] S_j[d, b]
    K = (wSf @ Sf.T).reshape(q, q, q, q).transpose(0, 3, 1, 2)
    K = K - np.einsum("ab,dc->abcd", Ssum, Ssum) / n
    rows, cols = np.tril_indices(q)
    basis = np.zeros((len(rows), q, q))
    basis[np.arange(len(rows)), rows, cols] = 1.0
    basis[np.arange(len(rows)), cols, rows] = 1.0
    design = np.einsum("abcd,icd->abi", K, basis).reshape(q * q, -1)
    rhs = (Szz - rr / n * Ssum).ravel()
    with np.errstate(all="ignore"):
        coef = np.linalg.lstsq(design, rhs, rcond=None)[0]
        tau = np.einsum("i,iab->ab", coef, basis)
        sigma2 = (rr - float(np.sum(tau * Ssum))) / n
    if not (np.all(np.isfinite(tau)) and np.isfinite(sigma2) and sigma2 > 1e-8 * rr / n):
        return None
    rel = tau / sigma2
    if free is not None:
        rel = rel * (free | free.T)
    w, Q = np.linalg.eigh(rel)
    rel = (Q * np.clip(w, 1e-4, 1e4)) @ Q.T  # SDs between 1% and 100x sigma (unit-free)
    try:
        return L_to_theta(np.linalg.cholesky(rel), free)
    except np.linalg.LinAlgError:
        return None


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


def _boundary_candidates(current: _Run, fn: _Deviance) -> _Run:
    """When the optimum found still has a sizable gradient, the minimum may lie on the
    boundary (a variance of 0) that the interior search only approaches along a flat valley.
    Try each small column of the (unit-free) L set to zero, a stationary subspace the
    optimizer then stays in, and keep a candidate that is as good (within 1e-3 in deviance)
    with a smaller gradient: a verified singular fit, as lme4 reports it, rather than an
    unverified interior point."""
    best = current
    q = fn.q
    L = theta_to_L(current.theta, q, fn.free)
    diag = np.abs(np.diag(L))
    for k in np.flatnonzero(diag < 0.1 * max(float(diag.max()), 1e-12)):
        Lk = L.copy()
        Lk[:, k] = 0.0
        cand = _newton(fn, L_to_theta(Lk, fn.free))
        if not np.isfinite(cand.deviance):
            continue
        # Deviance differences are free of units; 1e-3 is the tests' "same optimum as lme4".
        better = cand.deviance <= best.deviance + 1e-3
        if better and float(np.max(np.abs(cand.gradient))) < float(np.max(np.abs(best.gradient))):
            best = cand
    return best


def _snap_to_boundary(run: _Run, fn: _Deviance, tol: float = 1e-7) -> _Run:
    """A diagonal entry of the unit-free ``L`` that Newton's steps drove below ``tol`` is
    set to exactly 0 (a variance of 0, as lme4 reports a boundary fit), when the deviance
    does not rise beyond its rounding there. Newton's method approaches such a boundary at
    a cubic rate but stops once its step is negligible, ~1e-10 short of it."""
    L = theta_to_L(run.theta, fn.q, fn.free)
    small = (np.abs(np.diag(L)) < tol) & (np.diag(L) != 0.0)
    if not np.any(small) or run.evaluation is None:
        return run
    L[np.flatnonzero(small), np.flatnonzero(small)] = 0.0
    theta = L_to_theta(L, fn.free)
    f, g, ev = fn(theta)
    if not (np.isfinite(f) and f <= run.deviance + 1e-10 * max(1.0, abs(run.deviance))):
        return run
    return _Run(float(f), theta, g, run.hessian, ev, run.same, stale=True)


def optimize(stats: ClusterStats, reml: bool = True, gtol: float = 1e-6) -> Optimum:
    """Find the global minimum of the profiled (RE)ML deviance.

    Several starts, each followed by Newton's method with the analytic Hessian
    (:func:`mlmwrap.model.kernel.hessian_kernel`) until two starts agree. The best optimum is
    checked: gradient small (relative to the deviance's scale), Hessian positive definite
    unless tau is singular.

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
    from mlmwrap.model.scaling import column_scales, theta_row_scales

    original = stats
    sx, sz, sy = column_scales(original)
    # Optimize in units where every column has RMS 1, so that every tolerance below is
    # free of the data's units; L maps back exactly (mlmwrap.model.scaling).
    data = original.kernel_data.rescaled(sx, sz, sy).compressed()
    q = stats.q
    fn = _Deviance(data, reml, q, stats.free)
    found: list[_Run] = []
    moment = _moment_start(data, stats.free)
    starts = ([moment] if moment is not None else []) + _starts(q, stats.free)
    for theta0 in starts:
        target = min(r.deviance for r in found) if found else None
        run = _newton(fn, theta0, target=target)
        if np.isfinite(run.deviance):
            found.append(run)
        # Two starts that reach the same deviance are enough; otherwise keep trying the
        # remaining starts.
        if run.same:
            break
        if len(found) >= 2:
            devs = sorted(r.deviance for r in found)
            if devs[1] - devs[0] < 1e-4 + 1e-9 * abs(devs[0]):
                break
    if not found:
        raise np.linalg.LinAlgError("the deviance could not be evaluated at any start value")
    # A run stopped early on reaching the best deviance confirms it; it is not itself the
    # optimum (its last digits are not settled).
    best = min((r for r in found if not r.same), key=lambda r: r.deviance)
    if best.gradient.size and float(np.max(np.abs(best.gradient))) >= 1e-3:
        best = _boundary_candidates(best, fn)
    best = _snap_to_boundary(best, fn)
    if best.stale:  # the convergence check and the df want the Hessian at the optimum
        best.hessian = fn.hessian(best.evaluation)
    theta, grad, hessian_s = best.theta, best.gradient, best.hessian
    dev = best.deviance
    if hessian_s is None:
        hessian_s = np.zeros((0, 0))
    messages: list[str] = []

    L = theta_to_L(theta, q, stats.free)
    sign = np.ones(len(theta))
    if np.any(np.diag(L) < 0):  # canonical sign: L L' is unchanged by flipping a column
        flip = np.where(np.diag(L) < 0, -1.0, 1.0)
        L = L * flip[None, :]
        sign = L_to_theta(np.ones((q, q)) * flip[None, :], stats.free)  # each entry's flip
        theta, grad = theta * sign, grad * sign
        hessian_s = hessian_s * np.outer(sign, sign)
    gnorm = float(np.max(np.abs(grad))) if grad.size else 0.0
    singular = bool(np.any(np.abs(np.diag(L)) < SINGULAR_TOL))  # on the unit-free L_s
    L = L / sz[:, None]
    evaluation = _to_data_units(best.evaluation, L, sx, sz, sy, original.n_obs)
    a_jacobian = None
    if best.evaluation.dA is not None and len(best.evaluation.dA) == len(theta):
        # dA/dtheta in the data's units: A = D_x A_s D_x and theta_s = s_z[row] theta.
        factor = sign * sz[theta_indices(q, stats.free)[0]]
        a_jacobian = best.evaluation.dA * np.outer(sx, sx)[None] * factor[:, None, None]
    # The profiled deviance in the data's units is the rescaled one at L_s = diag(s_z) L (up
    # to a constant), so its Hessian in theta is D H_s D with D the rows' scales s_z.
    d = 1.0 / theta_row_scales(sz, stats.free)
    hessian_original = hessian_s * np.outer(d, d)
    eigen = np.linalg.eigvalsh(hessian_s) if hessian_s.size else np.array([1.0])
    hessian_pd: bool | None = None if singular else bool(eigen.min() > 0)
    # lme4's idea: where the Hessian is positive definite, the Newton step the gradient
    # implies must be negligible; elsewhere (singular fits) the gradient itself must be small.
    if hessian_pd:
        newton_step = float(np.max(np.abs(np.linalg.solve(hessian_s, grad))))
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
        n_evaluations=fn.n_evaluations,
        messages=tuple(messages),
        hessian=hessian_original,
        z_scale=sz,
        n_hessians=fn.n_hessians,
        a_jacobian=a_jacobian,
    )


def _to_data_units(
    ev: KernelResult, L: np.ndarray, sx: np.ndarray, sz: np.ndarray, sy: float, n_obs: int
) -> Evaluation:
    """The evaluation on the rescaled statistics, in the data's units at ``L`` (the same
    point: ``L_s = diag(s_z) L``, possibly with columns of opposite sign).

    ``V`` is the same matrix in both units; ``A = D_x A_s D_x``, ``r2 = s_y^2 r2_s``,
    ``beta = s_y beta_s / s_x`` and each ``G = D_z G_s D_z`` (``G_r`` also times ``s_y^2``).
    """
    p = len(sx)
    nu = n_obs - p if ev.reml else n_obs
    r2 = ev.r2 * sy**2
    logdet_A = ev.logdet_A + 2.0 * float(np.log(sx).sum())
    deviance = ev.logdet_V + nu * (1.0 + np.log(2.0 * np.pi * r2 / nu))
    if ev.reml:
        deviance += logdet_A
    zz = np.outer(sz, sz)
    G_V, G_A, G_r = ev.G_V * zz, ev.G_A * zz, ev.G_r * zz * sy**2
    G = G_V - (nu / r2) * G_r
    if ev.reml:
        G = G - G_A
    return Evaluation(
        deviance=float(deviance),
        gradient=np.tril(2.0 * G @ L),
        beta=ev.beta * sy / sx,
        sigma2=float(ev.sigma2 * sy**2),
        A=ev.A * np.outer(sx, sx),
        L=L,
        logdet_V=ev.logdet_V,
        logdet_A=logdet_A,
        r2=float(r2),
        G_V=G_V,
        G_A=G_A,
        G_r=G_r,
    )
