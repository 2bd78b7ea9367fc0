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
3. the ``S_j`` are summed within each unit of the next level (a segment sum), and the next
   level's effects are absorbed the same way.

After the top level one ``(p + 1) x (p + 1)`` matrix is left: ``[X y]' V^-1 [X y]``, whose
blocks are lme4's ``A``, ``c`` and ``d``; the deviance then follows exactly as for two
levels (:mod:`mlmwrap.model.engine`). Each level is a batch of small solves over its units
and a segment sum: no Python loop over units, cost ``O(sum_l J_l k^3)`` per evaluation with
``k`` the number of columns left, independent of the number of rows. A fourth level is one
more pass of the same loop; a block-diagonal tau at any level is a ``free`` mask
(:func:`mlmwrap.model.engine.block_pattern`).

Layout: every per-unit array has the units on its last axis, ``(k, k, J)``, and each level's
units are kept sorted by their parent (:class:`_Level`). Then a ``q x q`` factorization is
``O(q^3)`` vector operations over the units (:mod:`mlmwrap.model.small_linalg`) rather than
one LAPACK call per unit, a segment sum is one ``np.add.reduceat`` and handing a parent's
value to its children one ``np.repeat``. Products with the small ``L`` are ``einsum``, not
BLAS: OpenBLAS's threads on a busy machine made those GEMMs an order of magnitude slower.

:func:`deviance_and_gradient` adds the analytic gradient in theta by a reverse pass through
the same recursion (:func:`_reverse`), which the optimizer uses; the pass takes a batch of
functionals of the top matrix at once, so :func:`variance_derivatives` gives the gradients
of ``r2`` and of every ``l' A^-1 l`` (what Satterthwaite's df need) in one pass.

Units: :func:`optimize_nested` (and :func:`mlmwrap.model.nested_fit.verify_nested`) search
on :meth:`NestedStats.rescaled`, the same model with every column of every level's Z, of X
and of y divided by its root mean square (:class:`NestedUnits`, built on
:mod:`mlmwrap.model.scaling` as the two-level engine is), and map the optimum back exactly
(:meth:`NestedUnits.original`). The starts, steps and tolerances then apply to theta in
units free of the data's, so rescaling a column changes the answer only by the implied
factor. :func:`evaluate_nested` and the derivatives work in whatever units they are given.

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

from mlmwrap.model.engine import cluster_cross_products, theta_indices
from mlmwrap.model.scaling import column_rms, level_theta_scales, scale_cross
from mlmwrap.model.small_linalg import cholesky, log_diag_sum, solve_lower

__all__ = [
    "NestedStats",
    "NestedUnits",
    "NestedEvaluation",
    "NestedOptimum",
    "evaluate_nested",
    "deviance_and_gradient",
    "optimize_nested",
    "variance_derivatives",
    "nested_objective",
    "search_starts",
    "canonical_signs",
]

_LOG_2PI = float(np.log(2.0 * np.pi))


@dataclass(frozen=True)
class _Level:
    """How one level's units sit in the engine's arrays (built once by :class:`NestedStats`).

    The engine keeps each level's units in an order where the children of every parent are
    contiguous (the parents in their own engine order), so that summing within parents is
    one ``np.add.reduceat`` and handing a parent's gradient to its children one
    ``np.repeat``.
    """

    q: int
    rows: np.ndarray  # the entries of L that theta holds (lme4's order, the free ones)
    cols: np.ndarray
    counts: np.ndarray  # children of each parent, in engine order
    starts: np.ndarray  # position of each parent's first child

    def segment_sum(self, a: np.ndarray) -> np.ndarray:
        """Sum the units (last axis) of ``a`` within each parent."""
        if len(self.counts) == 1:
            return a.sum(axis=-1, keepdims=True)
        return np.add.reduceat(a, self.starts, axis=-1)

    def to_children(self, a: np.ndarray) -> np.ndarray:
        """Each parent's slice of ``a`` (last axis), repeated for each of its children."""
        if len(self.counts) == 1:
            return np.broadcast_to(a, a.shape[:-1] + (int(self.counts[0]),))
        return np.repeat(a, self.counts, axis=-1)


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
    _levels: tuple[_Level, ...] = field(init=False, repr=False, compare=False)
    # the level-2 cross-products in engine order, units last: (k, k, J_2)
    _soa: np.ndarray = field(init=False, repr=False, compare=False)
    # their columns after Z_2, summed within each level-3 unit (the same at every theta)
    _rest_sum: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.frees:
            object.__setattr__(self, "frees", (None,) * len(self.qs))
        # Engine order, top down: each level's units sorted (stably) by their parent's
        # position in the level above, so that siblings are contiguous.
        position = np.zeros(1, dtype=np.intp)  # the root
        order = position
        levels: list[_Level] = []
        for parent, q, free in reversed(list(zip(self.parents, self.qs, self.frees, strict=True))):
            parent_pos = position[parent]
            counts = np.bincount(parent_pos, minlength=len(position))
            if np.any(counts == 0):  # reduceat would repeat a neighbour, not give 0
                raise ValueError("every unit must hold at least one unit of the level below")
            order = np.argsort(parent_pos, kind="stable")
            position = np.empty_like(order)
            position[order] = np.arange(len(order))
            starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.intp)
            rows, cols = theta_indices(q, free)
            levels.append(_Level(q=q, rows=rows, cols=cols, counts=counts, starts=starts))
        levels.reverse()
        object.__setattr__(self, "_levels", tuple(levels))
        soa = np.ascontiguousarray(self.cross[order].transpose(1, 2, 0))  # order: level 2's
        object.__setattr__(self, "_soa", soa)
        q = self.qs[0]
        object.__setattr__(self, "_rest_sum", levels[0].segment_sum(soa[q:, q:]))

    @property
    def n_theta(self) -> tuple[int, ...]:
        """Free entries of each level's ``L``."""
        return tuple(len(level.rows) for level in self._levels)

    def split_theta(self, theta: np.ndarray) -> list[np.ndarray]:
        """The ``L`` of each level from theta (the levels' thetas, level 2 first, as lme4
        orders the terms of a nested model)."""
        out, pos = [], 0
        for level in self._levels:
            L = np.zeros((level.q, level.q))
            n = len(level.rows)
            L[level.rows, level.cols] = theta[pos : pos + n]
            out.append(L)
            pos += n
        return out

    def join_theta(self, Ls: list[np.ndarray]) -> np.ndarray:
        """Theta from the levels' ``L`` (inverse of :meth:`split_theta`)."""
        return np.concatenate(
            [L[level.rows, level.cols] for L, level in zip(Ls, self._levels, strict=True)]
        )

    def units(self) -> NestedUnits:
        """The root mean square of every column: each level's Z, X and y (the engine's
        units, :class:`NestedUnits`)."""
        rms = column_rms(self.cross, self.n_obs)
        bounds = np.cumsum([0, *self.qs])
        z = tuple(rms[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True))
        return NestedUnits(
            z=z,
            x=rms[bounds[-1] : bounds[-1] + self.p],
            y=float(rms[-1]),
            theta=level_theta_scales(z, self.frees),
        )

    def rescaled(self, units: NestedUnits) -> NestedStats:
        """The same model with every column divided by its scale in ``units``:
        the cross-products of ``[Z_2 / s_2, ..., Z_K / s_K, X / s_x, y / s_y]``. A ``free``
        pattern of ``L`` is kept (``L = diag(1 / s_z) L_s`` has the same zeros)."""
        scales = np.concatenate([*units.z, units.x, [units.y]])
        return NestedStats(
            cross=scale_cross(self.cross, scales),
            qs=self.qs,
            n_units=self.n_units,
            parents=self.parents,
            n_obs=self.n_obs,
            p=self.p,
            frees=self.frees,
        )

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
    A_inv: np.ndarray = field(default=None, repr=False)


@dataclass(frozen=True)
class NestedUnits:
    """The nested engine's units (:mod:`mlmwrap.model.scaling`), from
    :meth:`NestedStats.units`.

    The optimizer and every tolerance of the fit work on :meth:`NestedStats.rescaled`, the
    model with every column at RMS 1, whose optimum is the same: with
    ``Z_l = Z_l,s diag(s_l)``, ``X = X_s diag(s_x)`` and ``y = s_y y_s``, the ``V`` of the
    two models is the same matrix when ``L_l = diag(1 / s_l) L_l,s``; then
    ``A = diag(s_x) A_s diag(s_x)``, ``beta = beta_s s_y / s_x``, ``r2 = s_y^2 r2_s``,
    ``sigma2 = s_y^2 sigma2_s``, and the deviance is the rescaled one plus
    ``nu log s_y^2`` (plus ``log det diag(s_x)^2`` under REML). :meth:`original` maps an
    evaluation back exactly.

    Attributes
    ----------
    z : tuple of ndarray
        RMS of each level's Z columns, level 2 first.
    x : ndarray
        RMS of each column of X.
    y : float
        RMS of y.
    theta : ndarray
        The natural size of each entry of theta, ``1 / s`` of its row of ``L``: ``theta =
        theta_s * units.theta``, and a Hessian in theta is ``H_s / outer(units.theta,
        units.theta)``.
    """

    z: tuple[np.ndarray, ...]
    x: np.ndarray
    y: float
    theta: np.ndarray

    def original(self, ev: NestedEvaluation, reml: bool, n_obs: int) -> NestedEvaluation:
        """An evaluation of the rescaled model, in the data's units."""
        sx = self.x
        outer = np.outer(sx, sx)
        logdet_sx2 = 2.0 * float(np.log(sx).sum())
        nu = n_obs - len(sx) if reml else n_obs
        shift = nu * 2.0 * np.log(self.y) + (logdet_sx2 if reml else 0.0)
        return NestedEvaluation(
            deviance=float(ev.deviance + shift),
            beta=ev.beta * self.y / sx,
            sigma2=ev.sigma2 * self.y**2,
            A=ev.A * outer,
            logdet_V=ev.logdet_V,
            logdet_A=ev.logdet_A + logdet_sx2,
            r2=ev.r2 * self.y**2,
            Ls=tuple(L / sz[:, None] for L, sz in zip(ev.Ls, self.z, strict=True)),
            A_inv=None if ev.A_inv is None else ev.A_inv / outer,
        )


def _forward(stats: NestedStats, Ls: list[np.ndarray]):
    """The recursion up the levels on arrays with the units last, ``(k, k, J)``.

    Per level: ``T = L' [D B]`` (one GEMM for all units), ``M = I + T_D L``, its Cholesky
    factor ``C`` entry by entry (:mod:`mlmwrap.model.small_linalg`: vector operations over
    the units, no per-unit LAPACK call), ``R = C^-1 L' B`` and the absorbed cross-products
    ``C_rest - R'R`` summed within the parents. At level 2 the sum of ``C_rest`` is the
    same at every theta and comes precomputed.

    Returns ``(S_top (p + 1, p + 1), logdet_V, saved)``, ``saved`` holding each level's
    input and ``C`` for the reverse pass.
    """
    S = stats._soa
    logdet_V = 0.0
    saved: list[tuple[np.ndarray, np.ndarray] | None] = []
    for i, (L, level) in enumerate(zip(Ls, stats._levels, strict=True)):
        q = level.q
        S_in = S
        rest = stats._rest_sum if i == 0 else level.segment_sum(S_in[q:, q:])
        if q == 0:
            saved.append(None)
            S = rest
            continue
        T = np.einsum("ba,bcj->acj", L, S_in[:q])  # L' S[:q], (q, k, J)
        M = np.einsum("abj,bc->acj", T[:, :q], L)
        M[range(q), range(q)] += 1.0
        chol = cholesky(M)
        logdet = log_diag_sum(chol)
        if not np.isfinite(logdet):
            raise np.linalg.LinAlgError("M_j is not positive definite")
        logdet_V += logdet
        R = solve_lower(chol, T[:, q:])  # C^-1 L' B, (q, r, J)
        RR = level.segment_sum(np.einsum("arj,asj->rsj", R, R))
        S = rest - RR
        saved.append((S_in, chol))
    return S[:, :, 0], logdet_V, saved


def _reverse(
    stats: NestedStats,
    Ls: list[np.ndarray],
    saved: list,
    G_top: np.ndarray,
    with_logdet: np.ndarray,
) -> np.ndarray:
    """Gradients in theta of ``m`` functionals of the recursion, in one reverse pass.

    ``G_top`` ``(m, p + 1, p + 1)``: each functional's (symmetric) gradient with respect to
    the top's ``[X y]' V^-1 [X y]``; ``with_logdet`` ``(m,)``: which of them also include
    ``log det V`` (the deviance does). For one absorption ``S_out = C - B' P B`` with
    ``P = L M^-1 L'``, ``M = I + L' D L`` (``D``, ``B``, ``C`` the blocks of ``S_in``) and an
    upstream gradient ``G`` of ``S_out``, with ``H = B G B'`` and ``Y = L M^-1``:
    ``d/dL = -2 (I - D P) H Y`` (``+ 2 D Y`` for ``log det M``), ``d/dD = P H P`` (``+ P``),
    ``d/dB = -2 P B G`` and ``d/dC = G``; a segment sum passes its gradient to every child.
    The lowest level needs only ``d/dL``. Returns ``(m, n_theta)``.
    """
    m = G_top.shape[0]
    G = G_top[..., None]  # (m, k, k, 1): the root's
    logdet_rows = np.flatnonzero(with_logdet)
    grads = []
    for i in reversed(range(len(Ls))):
        level, L = stats._levels[i], Ls[i]
        q = level.q
        G = level.to_children(G)  # (m, r, r, J)
        if q == 0:
            grads.append(np.zeros((m, 0)))
            continue  # the level's input is its output, unit by unit
        S, chol = saved[i]
        J = S.shape[-1]
        D, B = S[:q, :q], S[:q, q:]
        eye = np.broadcast_to(np.eye(q)[:, :, None], (q, q, J))
        C_inv = solve_lower(chol, eye)
        M_inv = np.einsum("baj,bcj->acj", C_inv, C_inv)
        Y = np.einsum("ab,bcj->acj", L, M_inv)  # L M^-1
        P = np.einsum("acj,dc->adj", Y, L)  # L M^-1 L'
        E = -np.einsum("abj,bcj->acj", D, P)
        E[range(q), range(q)] += 1.0  # I - D P
        BG = np.einsum("arj,mrsj->masj", B, G)
        H = np.einsum("masj,bsj->mabj", BG, B)
        dL = -2.0 * np.einsum("macj,cdj->mad", np.einsum("abj,mbcj->macj", E, H), Y)
        if len(logdet_rows):
            dL[logdet_rows] += 2.0 * np.einsum("abj,bcj->ac", D, Y)
        grads.append(dL[:, level.rows, level.cols])
        if i == 0:
            break
        k = S.shape[0]
        G_in = np.empty((m, k, k, J))
        G_in[:, :q, :q] = np.einsum("macj,cdj->madj", np.einsum("abj,mbcj->macj", P, H), P)
        G_in[logdet_rows, :q, :q] += P
        top_right = -np.einsum("abj,mbsj->masj", P, BG)
        G_in[:, :q, q:] = top_right
        G_in[:, q:, :q] = top_right.transpose(0, 2, 1, 3)
        G_in[:, q:, q:] = G
        G = G_in
    grads.reverse()
    return np.concatenate(grads, axis=1)


def _top(stats: NestedStats, S: np.ndarray, logdet_V: float, Ls, reml: bool) -> NestedEvaluation:
    """Deviance, beta and sigma2 from ``[X y]' V^-1 [X y]``."""
    p = stats.p
    A = 0.5 * (S[:p, :p] + S[:p, :p].T)
    c, d = S[:p, p], S[p, p]
    chol_A = np.linalg.cholesky(A)
    A_inv = np.linalg.inv(A)
    beta = A_inv @ c
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
        A_inv=A_inv,
    )


def evaluate_nested(stats: NestedStats, Ls: list[np.ndarray], reml: bool) -> NestedEvaluation:
    """Profiled (RE)ML deviance (lme4's, with its constants) at the levels' factors ``Ls``.

    Raises ``numpy.linalg.LinAlgError`` where ``X'V^-1X`` is not positive definite.
    """
    S, logdet_V, _ = _forward(stats, Ls)
    return _top(stats, S, logdet_V, Ls, reml)


def _r2_gradient(ev: NestedEvaluation, p: int) -> np.ndarray:
    """d r2 / d [X y]'V^-1[X y] with ``r2 = d - c' A^-1 c`` (symmetric: half of d/dc on
    each side)."""
    G = np.empty((p + 1, p + 1))
    G[:p, :p] = np.outer(ev.beta, ev.beta)
    G[:p, p] = G[p, :p] = -ev.beta
    G[p, p] = 1.0
    return G


def deviance_and_gradient(
    stats: NestedStats, theta: np.ndarray, reml: bool
) -> tuple[float, np.ndarray]:
    """The profiled deviance at ``theta`` and its analytic gradient in theta.

    A reverse pass through the recursion of :func:`evaluate_nested` (see
    :func:`_reverse`). At the top, with ``r2 = d - c' A^-1 c``: ``d/dA = (nu / r2) beta beta'``
    (plus ``A^-1`` for REML), ``d/dc = -2 (nu / r2) beta``, ``d/dd = nu / r2``.
    """
    Ls = stats.split_theta(theta)
    S, logdet_V, saved = _forward(stats, Ls)
    ev = _top(stats, S, logdet_V, Ls, reml)
    p = stats.p
    nu = stats.n_obs - p if reml else stats.n_obs
    G = (nu / ev.r2) * _r2_gradient(ev, p)
    if reml:
        G[:p, :p] += ev.A_inv
    grad = _reverse(stats, Ls, saved, G[None], np.array([True]))[0]
    return ev.deviance, grad


def variance_derivatives(
    stats: NestedStats, theta: np.ndarray, reml: bool, contrasts: np.ndarray
) -> tuple[NestedEvaluation, np.ndarray, np.ndarray]:
    """Gradients in theta of ``r2`` and of ``l' A^-1 l`` for each row ``l`` of ``contrasts``.

    What the Satterthwaite df need beyond the Hessian of the profiled deviance: all in one
    reverse pass (``d (l'A^-1 l) / dA = -A^-1 l l' A^-1``). Returns ``(evaluation,
    d_r2 (n_theta,), d_quad (n_contrasts, n_theta))``.
    """
    Ls = stats.split_theta(theta)
    S, logdet_V, saved = _forward(stats, Ls)
    ev = _top(stats, S, logdet_V, Ls, reml)
    p = stats.p
    contrasts = np.atleast_2d(np.asarray(contrasts, float))
    G = np.zeros((1 + len(contrasts), p + 1, p + 1))
    G[0] = _r2_gradient(ev, p)
    w = contrasts @ ev.A_inv  # A^-1 l per contrast (A symmetric)
    G[1:, :p, :p] = -w[:, :, None] * w[:, None, :]
    out = _reverse(stats, Ls, saved, G, np.zeros(len(G), dtype=bool))
    return ev, out[0], out[1:]


@dataclass(frozen=True)
class NestedOptimum:
    """The optimum found over all levels' factors."""

    evaluation: NestedEvaluation
    theta: np.ndarray
    reml: bool
    converged: bool
    gradient_norm: float  # of the deviance in the engine's units (theta_s: free of units)
    n_evaluations: int
    # The engine's units (the data's columns' RMS); None: the data's own units.
    units: NestedUnits | None = field(default=None, kw_only=True, repr=False)

    @property
    def theta_scale(self) -> np.ndarray:
        """The natural size of each entry of theta (:attr:`NestedUnits.theta`); ones
        without units."""
        return np.ones(len(self.theta)) if self.units is None else self.units.theta

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


def nested_objective(stats: NestedStats, reml: bool, counter: list[int] | None = None):
    """``theta -> (deviance, gradient)`` for an optimizer: ``(inf, 0)`` where the deviance
    cannot be evaluated; ``counter[0]`` counts the calls."""

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        if counter is not None:
            counter[0] += 1
        try:
            with np.errstate(all="ignore"):
                dev, grad = deviance_and_gradient(stats, theta, reml)
        except np.linalg.LinAlgError:
            return np.inf, np.zeros_like(theta)
        if not (np.isfinite(dev) and np.all(np.isfinite(grad))):
            return np.inf, np.zeros_like(theta)
        return dev, grad

    return objective


def _bfgs(objective, theta0: np.ndarray, gtol: float, stall: float):
    """BFGS with the analytic gradient; with ``stall > 0`` it also stops once an iteration
    gains less than ``stall`` relative (past that point the line searches only fight the
    deviance's rounding, and a Newton polish finishes faster). Returns ``(deviance, theta,
    BFGS's inverse Hessian)``."""
    last, best = [np.inf], [None]

    def callback(intermediate_result):
        fun = float(intermediate_result.fun)
        best[0] = (fun, np.array(intermediate_result.x))
        if last[0] - fun < stall * max(1.0, abs(fun)):
            raise StopIteration
        last[0] = fun

    res = sopt.minimize(
        objective,
        theta0,
        jac=True,
        method="BFGS",
        callback=callback if stall > 0 else None,
        options={"gtol": gtol, "maxiter": 2000},
    )
    hess_inv = np.asarray(res.hess_inv) if getattr(res, "hess_inv", None) is not None else None
    if best[0] is not None and best[0][0] < res.fun:
        return (*best[0], hess_inv)
    return float(res.fun), res.x, hess_inv


def canonical_signs(stats: NestedStats, theta: np.ndarray) -> np.ndarray:
    """The sign (+-1) of each entry of theta that makes every diagonal of every ``L``
    nonnegative: ``L L'`` does not change when a column of ``L`` flips, and theta's
    entries (and a Hessian in theta) flip with their column."""
    Ls = stats.split_theta(theta)
    flips = [np.ones_like(L) * np.where(np.diag(L) < 0, -1.0, 1.0)[None, :] for L in Ls]
    return stats.join_theta(flips)


def search_starts(
    stats: NestedStats, objective, gtol: float = 1e-6, stall: float = 0.0
) -> tuple[float, np.ndarray, np.ndarray | None]:
    """BFGS from ``L = I``, then from a smaller and a larger scale until two starts agree.

    Returns the best ``(deviance, theta, inverse Hessian)``, theta with nonnegative
    diagonals (:func:`canonical_signs`).
    """
    eye = stats.join_theta([np.eye(q) for q in stats.qs])
    found: list[tuple[float, np.ndarray, np.ndarray | None]] = []
    for scale in (1.0, 0.3, 3.0):
        fun, x, hess_inv = _bfgs(objective, scale * eye, gtol, stall)
        if np.isfinite(fun):
            found.append((fun, x, hess_inv))
        if len(found) >= 2:  # two starts that agree are enough
            devs = sorted(f[0] for f in found)
            if devs[1] - devs[0] < 1e-6 + (1e-9 * abs(devs[0]) if stall > 0 else 0.0):
                break
    if not found:
        raise np.linalg.LinAlgError("the deviance could not be evaluated at any start value")
    fun, theta, hess_inv = min(found, key=lambda f: f[0])
    sign = canonical_signs(stats, theta)
    if hess_inv is not None:
        hess_inv = hess_inv * np.outer(sign, sign)
    return fun, theta * sign, hess_inv


def optimize_nested(
    stats: NestedStats, reml: bool = True, gtol: float = 1e-6, stall: float = 0.0
) -> NestedOptimum:
    """Minimize the profiled deviance over every level's relative covariance factor.

    BFGS with the analytic gradient (:func:`deviance_and_gradient`) from several starts
    (:func:`search_starts`); the best is kept. The search runs in the engine's units
    (:class:`NestedUnits`: every column at RMS 1), so ``gtol`` and the starts are free of
    the data's units; the optimum is mapped back exactly. (The Newton polish and the
    Hessian checks are in :func:`mlmwrap.model.nested_fit.verify_nested`, which uses a
    looser ``gtol`` and a ``stall`` rule, see :func:`_bfgs`.)
    """
    units = stats.units()
    scaled = stats.rescaled(units)
    counter = [0]
    objective = nested_objective(scaled, reml, counter)
    _, theta, _ = search_starts(scaled, objective, gtol, stall)
    fun, grad = objective(theta)
    gnorm = float(np.max(np.abs(grad))) if grad.size else 0.0
    evaluation = evaluate_nested(scaled, scaled.split_theta(theta), reml)
    return NestedOptimum(
        evaluation=units.original(evaluation, reml, stats.n_obs),
        theta=theta * units.theta,
        reml=reml,
        converged=bool(np.isfinite(fun) and gnorm < 1e-2),
        gradient_norm=gnorm,
        n_evaluations=counter[0],
        units=units,
    )
