"""Profiled (RE)ML deviance of a linear mixed model with nested levels (three or more).

The model: ``y = X beta + Z_2 b_2 + Z_3 b_3 + ... + e``, each ``b_l`` holding one vector of
``q_l`` random effects per unit of level ``l``, ``b_l ~ N(0, sigma2 * L_l L_l')``
independently across units and levels, ``e ~ N(0, sigma2 * I)``, with every level-2 unit
inside one level-3 unit, every level-3 unit inside one level-4 unit, and so on.

From the per-level-2-unit cross-products of ``W = [Z_2, Z_3, ..., X, y]``, computed once,
one evaluation recurses up the levels (DESIGN.md, "More than two levels"):

1. per unit ``j`` of the current level, ``M_j = I + L' (Z'Z)_j L`` and the Woodbury
   absorption of its effects from the remaining columns ``R`` (higher levels' ``Z``, ``X``,
   ``y``): ``S_j = R_j'R_j - R_j'Z_j L M_j^-1 L' Z_j'R_j``, which is ``R_j' V_j^-1 R_j`` for
   the covariance ``V_j`` of the levels absorbed so far;
2. ``log det V`` gains ``sum_j log det M_j``;
3. the ``S_j`` are summed within each unit of the next level (a sparse segment sum), and
   the next level's effects are absorbed the same way.

After the top level one ``(p + 1) x (p + 1)`` matrix is left: ``[X y]' V^-1 [X y]``, whose
blocks are lme4's ``A``, ``c`` and ``d``; the deviance then follows exactly as for two
levels (:mod:`mlmwrap.model.engine`). Each level is a batch of small solves over its units
and a segment sum: no Python loop over units, cost ``O(sum_l J_l k^3)`` per evaluation with
``k`` the number of columns left, independent of the number of rows. A fourth level is one
more pass of the same loop; a block-diagonal tau at any level is a ``free`` mask
(:func:`mlmwrap.model.engine.block_pattern`).

:func:`deviance_and_gradient` adds the analytic gradient in theta by a reverse pass through
the same recursion, which :func:`optimize_nested` uses. This module is the engine core only:
it is not yet reached from the equations.

Examples
--------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> school = np.repeat(np.arange(20), 40)            # 20 schools ...
>>> klass = np.repeat(np.arange(100), 8)             # ... of 5 classes of 8 pupils
>>> y = 1.0 + rng.normal(size=20)[school] + 0.5 * rng.normal(size=100)[klass]
>>> y = y + rng.normal(size=800)
>>> ones = np.ones((800, 1))
>>> stats = NestedStats.from_arrays(ones, [ones, ones], y, [klass, school])
>>> stats.n_units, stats.qs
((100, 20), (1, 1))
>>> opt = optimize_nested(stats, reml=True)
>>> opt.converged, round(float(opt.beta[0]), 3), [tau.round(3).tolist() for tau in opt.taus]
(True, 0.844, [[[0.156]], [[0.857]]])
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import optimize as sopt
from scipy import sparse

from mlmwrap.model.engine import L_to_theta, cluster_cross_products, theta_indices, theta_to_L

__all__ = [
    "NestedStats",
    "NestedEvaluation",
    "NestedOptimum",
    "evaluate_nested",
    "deviance_and_gradient",
    "optimize_nested",
]

_LOG_2PI = float(np.log(2.0 * np.pi))


@dataclass(frozen=True)
class NestedStats:
    """Per-level-2-unit cross-products of ``[Z_2, Z_3, ..., X, y]`` and the nesting.

    Attributes
    ----------
    cross : ndarray, shape (J_2, k, k)
        ``W_j' W_j`` per level-2 unit, ``W = [Z_2, ..., Z_K, X, y]``.
    qs : tuple of int
        Random effects per level, from level 2 up.
    n_units : tuple of int
        Units per level, from level 2 up.
    parents : tuple of ndarray
        ``parents[i][j]``: the unit of level ``i + 3`` holding unit ``j`` of level ``i + 2``;
        the top level's parent is the single root (all zeros).
    n_obs, p : int
    frees : tuple of (ndarray or None)
        Free entries of each level's ``L`` (``None``: unstructured).
    """

    cross: np.ndarray
    qs: tuple[int, ...]
    n_units: tuple[int, ...]
    parents: tuple[np.ndarray, ...]
    n_obs: int
    p: int
    frees: tuple[np.ndarray | None, ...] = ()
    _sum: tuple[sparse.csr_matrix, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.frees:
            object.__setattr__(self, "frees", (None,) * len(self.qs))
        # segment sums as sparse (parent x child) indicator products
        sums = []
        for parent, n_child in zip(self.parents, self.n_units, strict=True):
            n_parent = int(parent.max()) + 1
            ind = sparse.csr_matrix(
                (np.ones(n_child), (parent, np.arange(n_child))), shape=(n_parent, n_child)
            )
            sums.append(ind)
        object.__setattr__(self, "_sum", tuple(sums))

    @property
    def n_theta(self) -> tuple[int, ...]:
        """Free entries of each level's ``L``."""
        return tuple(len(theta_indices(q, f)[0]) for q, f in zip(self.qs, self.frees, strict=True))

    def split_theta(self, theta: np.ndarray) -> list[np.ndarray]:
        """The ``L`` of each level from theta (the levels' thetas, level 2 first, as lme4
        orders the terms of a nested model)."""
        out, pos = [], 0
        for q, free, n in zip(self.qs, self.frees, self.n_theta, strict=True):
            out.append(theta_to_L(theta[pos : pos + n], q, free))
            pos += n
        return out

    def join_theta(self, Ls: list[np.ndarray]) -> np.ndarray:
        """Theta from the levels' ``L`` (inverse of :meth:`split_theta`)."""
        return np.concatenate([L_to_theta(L, f) for L, f in zip(Ls, self.frees, strict=True)])

    @classmethod
    def from_arrays(
        cls,
        X: np.ndarray,
        Zs: list[np.ndarray],
        y: np.ndarray,
        codes: list[np.ndarray],
        frees: list[np.ndarray | None] | None = None,
    ) -> NestedStats:
        """Build from row-level arrays.

        Parameters
        ----------
        X : (n, p)
        Zs : list of (n, q_l) arrays, level 2 first
        y : (n,)
        codes : list of (n,) integer arrays, level 2 first: each row's unit at that level,
            coded 0..J_l-1. A unit must lie in one unit of the level above (give level-2
            codes that already tell apart "class 1 of school A" from "class 1 of school B").
        frees : optional free masks of each level's ``L``

        Raises
        ------
        ValueError
            The codes are not nested or the shapes disagree.
        """
        if len(Zs) != len(codes) or not Zs:
            raise ValueError("one Z and one code array per level, from level 2 up")
        X = np.asarray(X, float)
        y = np.asarray(y, float).reshape(-1, 1)
        codes = [np.asarray(c, dtype=np.intp) for c in codes]
        Zs = [np.asarray(Z, float).reshape(len(y), -1) for Z in Zs]
        n_units = tuple(int(c.max()) + 1 for c in codes)
        parents = []
        for level, (child, parent, n_child) in enumerate(
            zip(codes, [*codes[1:], np.zeros_like(codes[0])], n_units, strict=True)
        ):
            up = np.full(n_child, -1, dtype=np.intp)
            up[child] = parent
            if np.any(up[child] != parent):
                raise ValueError(
                    f"level {level + 2} units are not nested in level {level + 3} units: a "
                    "unit has rows in two units of the level above"
                )
            if np.any(up < 0):
                raise ValueError(f"level {level + 2} codes must be 0..J-1 with no gap")
            parents.append(up)
        W = np.hstack([*Zs, X, y])
        cross = cluster_cross_products(W, codes[0], n_units[0])
        return cls(
            cross=cross,
            qs=tuple(Z.shape[1] for Z in Zs),
            n_units=n_units,
            parents=tuple(parents),
            n_obs=len(y),
            p=X.shape[1],
            frees=tuple(frees) if frees is not None else (),
        )


@dataclass(frozen=True)
class NestedEvaluation:
    """The profiled deviance at one set of relative covariance factors, and its pieces."""

    deviance: float
    beta: np.ndarray
    sigma2: float
    A: np.ndarray  # X' V^-1 X (sigma2 factored out)
    logdet_V: float  # sum over levels and units of log det M
    logdet_A: float
    r2: float
    Ls: tuple[np.ndarray, ...]


def _absorb(S: np.ndarray, L: np.ndarray) -> tuple[np.ndarray, float]:
    """Absorb the first ``q`` columns of every unit's cross-products (Woodbury).

    ``S`` has shape (J, k, k); returns the (J, k - q, k - q) absorbed cross-products and
    ``sum_j log det M_j``.
    """
    q = L.shape[0]
    LtZtR = L.T @ S[:, :q, q:]  # L' Z'R per unit
    M = L.T @ S[:, :q, :q] @ L
    M[:, range(q), range(q)] += 1.0
    chol = np.linalg.cholesky(M)
    logdet = 2.0 * float(np.log(chol[:, range(q), range(q)]).sum())
    K = np.linalg.solve(M, LtZtR)  # M^-1 L' Z'R
    return S[:, q:, q:] - np.swapaxes(LtZtR, 1, 2) @ K, logdet


def evaluate_nested(stats: NestedStats, Ls: list[np.ndarray], reml: bool) -> NestedEvaluation:
    """Profiled (RE)ML deviance (lme4's, with its constants) at the levels' factors ``Ls``.

    Raises ``numpy.linalg.LinAlgError`` where ``X'V^-1X`` is not positive definite.
    """
    S = stats.cross
    logdet_V = 0.0
    for L, ind in zip(Ls, stats._sum, strict=True):
        S, logdet = _absorb(S, L)
        logdet_V += logdet
        J, k, _ = S.shape
        S = (ind @ S.reshape(J, k * k)).reshape(-1, k, k)  # sum within the parent units
    S = S[0]
    p = stats.p
    A = 0.5 * (S[:p, :p] + S[:p, :p].T)
    c, d = S[:p, p], S[p, p]
    chol_A = np.linalg.cholesky(A)
    beta = np.linalg.solve(A, c)
    r2 = float(d - c @ beta)
    n = stats.n_obs
    nu = n - p if reml else n
    logdet_A = 2.0 * float(np.log(np.diag(chol_A)).sum())
    deviance = logdet_V + nu * (1.0 + _LOG_2PI + np.log(r2 / nu))
    if reml:
        deviance += logdet_A
    return NestedEvaluation(
        deviance=float(deviance),
        beta=beta,
        sigma2=r2 / nu,
        A=A,
        logdet_V=logdet_V,
        logdet_A=logdet_A,
        r2=r2,
        Ls=tuple(Ls),
    )


def deviance_and_gradient(
    stats: NestedStats, theta: np.ndarray, reml: bool
) -> tuple[float, np.ndarray]:
    """The profiled deviance at ``theta`` and its analytic gradient in theta.

    A reverse pass through the recursion of :func:`evaluate_nested`. For one absorption
    ``S_out = C - B' P B`` with ``P = L M^-1 L'``, ``M = I + L' D L`` (``D``, ``B``, ``C``
    the blocks of ``S_in``) and an upstream gradient ``G`` of ``S_out`` (plus the level's
    ``log det M``), with ``H = B G B'`` and ``K = M^-1 L' H L M^-1``:
    ``d/dL = 2 D L M^-1 - 2 H L M^-1 + 2 D L K``, ``d/dD = P + L K L'``,
    ``d/dB = -2 P B G`` and ``d/dC = G``; a segment sum passes its gradient down to every
    child. At the top, with ``r2 = d - c' A^-1 c``: ``d/dA = (nu / r2) beta beta'`` (plus
    ``A^-1`` for REML), ``d/dc = -2 (nu / r2) beta``, ``d/dd = nu / r2``.
    """
    Ls = stats.split_theta(theta)
    S = stats.cross
    saved = []
    logdet_V = 0.0
    for L, ind in zip(Ls, stats._sum, strict=True):
        q = L.shape[0]
        D, B = S[:, :q, :q], S[:, :q, q:]
        M = L.T @ D @ L
        M[:, range(q), range(q)] += 1.0
        chol = np.linalg.cholesky(M)
        logdet_V += 2.0 * float(np.log(chol[:, range(q), range(q)]).sum())
        Minv = np.linalg.inv(M)
        LMinv = L @ Minv  # (J, q, q)
        P = LMinv @ L.T
        out = S[:, q:, q:] - np.swapaxes(B, 1, 2) @ P @ B
        saved.append((D, B, Minv, LMinv, P))
        J, k, _ = out.shape
        S = (ind @ out.reshape(J, k * k)).reshape(-1, k, k)
    S = S[0]
    p, n = stats.p, stats.n_obs
    nu = n - p if reml else n
    A = 0.5 * (S[:p, :p] + S[:p, :p].T)
    c, d = S[:p, p], S[p, p]
    chol_A = np.linalg.cholesky(A)
    Ainv = np.linalg.inv(A)
    beta = Ainv @ c
    r2 = float(d - c @ beta)
    deviance = logdet_V + nu * (1.0 + _LOG_2PI + np.log(r2 / nu))
    G = np.empty((p + 1, p + 1))
    G[:p, :p] = (nu / r2) * np.outer(beta, beta)
    G[:p, p] = G[p, :p] = -(nu / r2) * beta  # half of d/dc on each side
    G[p, p] = nu / r2
    if reml:
        deviance += 2.0 * float(np.log(np.diag(chol_A)).sum())
        G[:p, :p] += Ainv
    G = G[None]
    grads: list[np.ndarray] = []
    for L, ind, (D, B, Minv, LMinv, P) in zip(
        reversed(Ls), reversed(stats._sum), reversed(saved), strict=True
    ):
        q = L.shape[0]
        k = G.shape[-1]
        G = (ind.T @ G.reshape(G.shape[0], k * k)).reshape(-1, k, k)  # to every child
        H = B @ G @ np.swapaxes(B, 1, 2)
        K = np.swapaxes(LMinv, 1, 2) @ H @ LMinv
        DL = D @ L
        grads.append((2.0 * (DL @ Minv - H @ LMinv + DL @ K)).sum(axis=0))
        G_in = np.empty((G.shape[0], q + k, q + k))
        G_in[:, :q, :q] = P + L @ K @ L.T
        half = -(P @ B @ G)  # half of d/dB on each side
        G_in[:, :q, q:] = half
        G_in[:, q:, :q] = np.swapaxes(half, 1, 2)
        G_in[:, q:, q:] = G
        G = G_in
    grads.reverse()
    grad = np.concatenate(
        [g[theta_indices(L.shape[0], f)] for g, L, f in zip(grads, Ls, stats.frees, strict=True)]
    )
    return float(deviance), grad


@dataclass(frozen=True)
class NestedOptimum:
    """The optimum found over all levels' factors."""

    evaluation: NestedEvaluation
    theta: np.ndarray
    reml: bool
    converged: bool
    gradient_norm: float
    n_evaluations: int

    @property
    def deviance(self) -> float:
        return self.evaluation.deviance

    @property
    def beta(self) -> np.ndarray:
        return self.evaluation.beta

    @property
    def sigma2(self) -> float:
        return self.evaluation.sigma2

    @property
    def taus(self) -> list[np.ndarray]:
        """tau of each level, level 2 first."""
        return [self.evaluation.sigma2 * (L @ L.T) for L in self.evaluation.Ls]

    @property
    def cov_beta(self) -> np.ndarray:
        """``sigma2 A^-1``: the model-based covariance of beta."""
        return self.evaluation.sigma2 * np.linalg.inv(self.evaluation.A)


def optimize_nested(stats: NestedStats, reml: bool = True, gtol: float = 1e-6) -> NestedOptimum:
    """Minimize the profiled deviance over every level's relative covariance factor.

    BFGS with the analytic gradient (:func:`deviance_and_gradient`) from ``L = I``, then
    from a smaller and a larger scale until two starts agree; the best is kept. (The
    two-level engine's Newton polish and Hessian checks are in
    :func:`mlmwrap.model.nested_fit.verify_nested`, which passes a looser ``gtol``.)
    """
    counter = [0]

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        counter[0] += 1
        try:
            with np.errstate(all="ignore"):
                dev, grad = deviance_and_gradient(stats, theta, reml)
        except np.linalg.LinAlgError:
            return np.inf, np.zeros_like(theta)
        if not (np.isfinite(dev) and np.all(np.isfinite(grad))):
            return np.inf, np.zeros_like(theta)
        return dev, grad

    eye = stats.join_theta([np.eye(q) for q in stats.qs])
    found = []
    for scale in (1.0, 0.3, 3.0):
        res = sopt.minimize(objective, scale * eye, jac=True, method="BFGS", options={"gtol": gtol})
        if np.isfinite(res.fun):
            found.append(res)
        if len(found) >= 2 and abs(found[0].fun - found[1].fun) < 1e-6:
            break  # two starts agree
    best = min(found, key=lambda r: r.fun) if found else None
    if best is None:
        raise np.linalg.LinAlgError("the deviance could not be evaluated at any start value")
    # canonical sign: nonnegative diagonals (L L' does not change when a column flips)
    Ls = [L * np.where(np.diag(L) < 0, -1.0, 1.0)[None, :] for L in stats.split_theta(best.x)]
    theta = stats.join_theta(Ls)
    grad = objective(theta)[1]
    gnorm = float(np.max(np.abs(grad))) if grad.size else 0.0
    return NestedOptimum(
        evaluation=evaluate_nested(stats, Ls, reml),
        theta=theta,
        reml=reml,
        converged=bool(np.isfinite(best.fun) and gnorm < 1e-2),
        gradient_norm=gnorm,
        n_evaluations=counter[0],
    )
