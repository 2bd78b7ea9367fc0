"""One evaluation of the profiled (RE)ML deviance, its gradient and its analytic Hessian.

The per-cluster statistics are stored "structure of arrays": ``S = Z'Z`` as ``(q, q, J)``
and ``V = Z'[X y]`` as ``(q, p + 1, J)``, so that every per-cluster ``q x q`` operation is
a vector operation over the ``J`` clusters and every sum over clusters is a BLAS call. For
a relative covariance factor ``L`` (lower triangular) and ``M_j = I + L'S_j L = C_j C_j'``:

- ``U_j = C_j^-1 L' V_j`` (``q x (p + 1)``), so that ``sum_j V_j' L M_j^-1 L' V_j`` is
  ``sum_a U[a] U[a]'``: one GEMM per random effect, and that gives ``A``, ``c`` and ``d``
  of the profiled deviance (see ``DESIGN.md``, section 4);
- ``Y_j = S_j L C_j^-T``, so that ``P_j = Z_j'V_j^-1 Z_j = S_j - Y_j Y_j'``,
  ``P_j L = Y_j C_j^-1``, and ``Z_j'V_j^-1 [X y] = V_j - Y_j U_j``.

The gradient in theta is ``2 (G L)[r, c]`` with ``G = sum_j [P_j - B_j - (nu / r2) s_j s_j']``
(``B_j = W_j A^-1 W_j'``, ``W_j = Z_j'V_j^-1 X_j``, ``s_j = Z_j'V_j^-1 (y_j - X_j beta)``;
``B_j`` for REML only). The Hessian follows from ``dV = Z D_i Z'`` with
``D_i = E_i L' + L E_i'`` (``E_i`` the unit matrix of theta's entry ``(r, c)``) and the REML
projection ``Pi = V^-1 - V^-1 X A^-1 X'V^-1``:

    d2 (log|V| + log|A|) = tr(Pi V_ik) - tr(Pi V_i Pi V_k)
    d2 r2 = 2 y'Pi V_i Pi V_k Pi y - y'Pi V_ik Pi y
    d2 (nu log r2) = nu (d2 r2 / r2 - d r2 d r2 / r2^2)

(ML: ``log|V|`` alone, ``tr(V^-1 V_ik) - tr(V^-1 V_i V^-1 V_k)``), where every trace is a
sum over clusters of products of entries of ``P_j``, ``P_j L``, ``L'P_j L``, ``B_j`` and so
on; each such sum is one small GEMM over the clusters. One Hessian costs about as much as
one evaluation, so the optimizer takes Newton steps (:mod:`mlmwrap.model.engine`).

Examples
--------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> J, q, p = 50, 2, 3
>>> Zs = [rng.normal(size=(6, q)) for _ in range(J)]
>>> Xs = [rng.normal(size=(6, p)) for _ in range(J)]
>>> ys = [rng.normal(size=6) for _ in range(J)]
>>> S = np.stack([Z.T @ Z for Z in Zs], axis=-1)
>>> V = np.stack([Z.T @ np.column_stack([X, y]) for Z, X, y in zip(Zs, Xs, ys)], axis=-1)
>>> xx = sum(X.T @ X for X in Xs); xy = sum(X.T @ y for X, y in zip(Xs, ys))
>>> data = KernelData(S, V, xx, xy, sum(y @ y for y in ys), n_obs=300)
>>> L = np.array([[0.8, 0.0], [0.3, 0.5]])
>>> out = evaluate_kernel(data, L, reml=True)
>>> Vfull = [np.eye(6) + Z @ L @ L.T @ Z.T for Z in Zs]
>>> logdet = sum(np.linalg.slogdet(Vj)[1] for Vj in Vfull)
>>> bool(np.isclose(out.logdet_V, logdet))
True
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mlmwrap.model.small_linalg import cholesky

__all__ = ["KernelData", "KernelResult", "evaluate_kernel", "hessian_kernel", "theta_pairs"]


@dataclass(frozen=True)
class KernelData:
    """Per-cluster statistics in the kernel's layout.

    Attributes
    ----------
    S : ndarray, shape (q, q, J)
        ``Z_j'Z_j``.
    V : ndarray, shape (q, p + 1, J)
        ``Z_j'[X_j y_j]``.
    xx, xy, yy
        ``X'X``, ``X'y`` and ``y'y`` summed over clusters.
    n_obs : int
    weights : ndarray, shape (J,), or None
        How many clusters each column stands for in the sums that depend on ``S`` alone
        (``log|V|``, ``sum_j P_j`` and the like); ``None``: one each. Set by
        :meth:`compressed`, whose columns are not clusters.
    S_sum : ndarray, shape (q, q)
        ``sum_j Z_j'Z_j`` over the clusters (computed when not given).
    """

    S: np.ndarray
    V: np.ndarray
    xx: np.ndarray
    xy: np.ndarray
    yy: float
    n_obs: int
    weights: np.ndarray | None = field(default=None, repr=False)
    S_sum: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.S_sum is None:
            object.__setattr__(self, "S_sum", self.S.sum(axis=2))

    @property
    def q(self) -> int:
        return self.S.shape[0]

    @property
    def p(self) -> int:
        return self.V.shape[1] - 1

    @property
    def n_clusters(self) -> int:
        """Columns of ``S`` and ``V``: clusters, or after :meth:`compressed` fewer."""
        return self.S.shape[2]

    @classmethod
    def from_cross(cls, cross: np.ndarray, p: int, q: int, n_obs: int) -> KernelData:
        """From the ``(J, k, k)`` cross-products of ``[X, Z, y]``."""
        S = np.ascontiguousarray(cross[:, p : p + q, p : p + q].transpose(1, 2, 0))
        V = np.empty((q, p + 1, cross.shape[0]))
        V[:, :p] = cross[:, p : p + q, :p].transpose(1, 2, 0)
        V[:, p] = cross[:, p : p + q, -1].T
        xx = cross[:, :p, :p].sum(axis=0)
        xy = cross[:, :p, -1].sum(axis=0)
        return cls(S, V, xx, xy, float(cross[:, -1, -1].sum()), n_obs)

    def rescaled(self, sx: np.ndarray, sz: np.ndarray, sy: float) -> KernelData:
        """The statistics of ``[X / s_x, Z / s_z, y / s_y]``."""
        iz = 1.0 / np.asarray(sz, dtype=float)
        ixy = 1.0 / np.append(np.asarray(sx, dtype=float), sy)
        zz = iz[:, None] * iz[None, :]
        S = self.S * zz[:, :, None]
        V = self.V * (iz[:, None] * ixy[None, :])[:, :, None]
        ix = ixy[:-1]
        return KernelData(
            S,
            V,
            self.xx * np.outer(ix, ix),
            self.xy * ix * ixy[-1],
            float(self.yy * ixy[-1] ** 2),
            self.n_obs,
            self.weights,
            self.S_sum * zz,
        )

    def compressed(self, max_groups: int = 2000) -> KernelData:
        """The same deviance from fewer columns, when many clusters share one ``Z_j'Z_j``.

        A random intercept alone (``Z_j'Z_j = n_j``) or a common grid of occasions gives
        few distinct ``S_j``. Every sum the kernel forms over the clusters of one such
        group is either a function of ``S_g`` times the group's size (``log|M_g|``,
        ``P_g``, ...) or a quadratic form in the ``V_j``, which depends on them only
        through ``K_g = sum_j vec(V_j) vec(V_j)'``. So the group's clusters are replaced
        by the ``rank(K_g) <= q (p + 1)`` columns ``sqrt(lambda_m) e_m`` of its eigen-
        decomposition, all with ``S_g`` and weight ``n_g / rank``: exactly the same sums, up
        to rounding, at a cost per evaluation of the number of groups, not of clusters.
        Returns ``self`` when there is nothing to gain.
        """
        q, p1, J = self.V.shape
        r = q * p1
        if self.weights is not None or J < 8 * r:
            return self
        iu = np.triu_indices(q)
        keys = self.S[iu[0], iu[1]].T  # (J, q(q+1)/2)
        # A sample first: data whose S_j are all different (random slopes on a continuous
        # predictor) should not pay for sorting every cluster.
        sample = keys[:: max(1, J // 512)]
        if len(np.unique(sample, axis=0)) > len(sample) // 4:
            return self
        order = np.lexsort(keys.T[::-1])  # clusters sorted by S_j: groups are runs
        ordered = keys[order]
        heads = np.flatnonzero(np.r_[True, np.any(ordered[1:] != ordered[:-1], axis=1)])
        n_groups = len(heads)
        if n_groups > max_groups or n_groups * r > J // 4:
            return self
        starts = np.r_[heads, J]
        counts = np.diff(starts)
        flat = self.V.reshape(r, J)[:, order]  # columns grouped
        cols, weights, s_cols = [], [], []
        for g in range(n_groups):
            block = flat[:, starts[g] : starts[g + 1]]
            K = block @ block.T
            lam, vec = np.linalg.eigh(K)
            keep = lam > 1e-14 * max(float(lam[-1]), 0.0)
            if not np.any(keep):  # all V_j zero: one column of zeros keeps the group's S
                keep = lam == lam[-1]
                lam = np.zeros_like(lam)
            cols.append(vec[:, keep] * np.sqrt(np.clip(lam[keep], 0.0, None)))
            weights.append(np.full(int(keep.sum()), counts[g] / keep.sum()))
            s_cols.append(np.full(int(keep.sum()), g))
        V = np.ascontiguousarray(np.concatenate(cols, axis=1)).reshape(q, p1, -1)
        group_of = np.concatenate(s_cols)
        S = np.ascontiguousarray(self.S[:, :, order[heads]][:, :, group_of])
        return KernelData(
            S, V, self.xx, self.xy, self.yy, self.n_obs, np.concatenate(weights), self.S_sum
        )


@dataclass
class KernelResult:
    """The deviance at one ``L`` and the per-cluster arrays its Hessian reuses."""

    deviance: float
    grad_L: np.ndarray  # d deviance / d L, lower triangle
    beta: np.ndarray
    sigma2: float
    A: np.ndarray
    L: np.ndarray
    logdet_V: float
    logdet_A: float
    r2: float
    G_V: np.ndarray
    G_A: np.ndarray
    G_r: np.ndarray
    reml: bool
    # per-cluster pieces, (q, q, J) / (q, p + 1, J) / (q, J)
    C: np.ndarray = field(repr=False, default=None)
    Y: np.ndarray = field(repr=False, default=None)
    U: np.ndarray = field(repr=False, default=None)
    s: np.ndarray = field(repr=False, default=None)
    t: np.ndarray = field(repr=False, default=None)
    W: np.ndarray | None = field(repr=False, default=None)  # W_j = Z_j'V_j^-1 X_j, (q, p, J)
    # sum_j of the outer products of [vec(W_j), s_j, t_j], (qp + 2q) square (REML only)
    gram: np.ndarray | None = field(repr=False, default=None)
    chol_A: np.ndarray = field(repr=False, default=None)
    dA: np.ndarray | None = field(repr=False, default=None)  # (k, p, p), set by the Hessian


def _forward(C: np.ndarray, B: np.ndarray, tmp: np.ndarray | None = None) -> None:
    """``B <- C_j^-1 B_j`` in place, ``C`` lower ``(q, q, J)``, ``B`` ``(q, ..., J)``."""
    q = C.shape[0]
    extra = B.ndim - 2
    for i in range(q):
        for k in range(i):
            cik = C[i, k].reshape((1,) * extra + (-1,)) if extra else C[i, k]
            if tmp is None:
                B[i] -= cik * B[k]
            else:
                np.multiply(B[k], cik, out=tmp)
                B[i] -= tmp
        cii = C[i, i].reshape((1,) * extra + (-1,)) if extra else C[i, i]
        B[i] /= cii


def _backward(C: np.ndarray, B: np.ndarray) -> None:
    """``B <- C_j'^-1 B_j`` in place for ``B`` ``(q, J)``."""
    q = C.shape[0]
    for i in reversed(range(q)):
        for k in range(i + 1, q):
            B[i] -= C[k, i] * B[k]
        B[i] /= C[i, i]


def _mat_L(X: np.ndarray, L: np.ndarray) -> np.ndarray:
    """``X_j L`` for per-cluster ``X`` ``(q, q, J)`` and a constant ``L``."""
    q = L.shape[0]
    out = np.zeros_like(X)
    for c in range(q):
        for b in range(q):
            lbc = L[b, c]
            if lbc != 0.0:
                out[:, c] += X[:, b] * lbc
    return out


def evaluate_kernel(data: KernelData, L: np.ndarray, reml: bool) -> KernelResult:
    """Profiled deviance, its gradient in ``L`` and the pieces the Hessian needs."""
    p, q, J = data.p, data.q, data.n_clusters
    S, V = data.S, data.V
    T = _mat_L(S, L)  # S L
    M = np.empty((q, q, J))
    for a in range(q):
        for c in range(a + 1):
            acc = np.zeros(J) if a != c else np.ones(J)
            for b in range(q):  # L need not be triangular (any square root of L L')
                lba = L[b, a]
                if lba != 0.0:
                    acc += lba * T[b, c]
            M[a, c] = acc
    C = cholesky(M)
    w = data.weights
    with np.errstate(divide="ignore", invalid="ignore"):
        if w is None:
            logdet_V = 2.0 * float(sum(np.log(C[i, i]).sum() for i in range(q)))
        else:
            logdet_V = 2.0 * float(sum(np.log(C[i, i]) @ w for i in range(q)))
    if not np.isfinite(logdet_V):
        raise np.linalg.LinAlgError("M_j is not positive definite")
    # U = C^-1 L' V: one GEMM, then a forward substitution over the q rows.
    U = (L.T @ V.reshape(q, -1)).reshape(q, p + 1, J)
    tmp = np.empty((p + 1, J)) if q > 1 else None
    _forward(C, U, tmp)
    correction = np.zeros((p + 1, p + 1))
    for a in range(q):
        correction += U[a] @ U[a].T
    A = data.xx - correction[:p, :p]
    c = data.xy - correction[:p, p]
    d = data.yy - correction[p, p]
    A = 0.5 * (A + A.T)
    chol_A = np.linalg.cholesky(A) if p else np.zeros((0, 0))
    beta = np.linalg.solve(A, c) if p else np.zeros(0)
    r2 = float(d - c @ beta)
    nu = data.n_obs - p if reml else data.n_obs
    sigma2 = r2 / nu
    logdet_A = float(2.0 * np.log(np.diag(chol_A)).sum())
    deviance = logdet_V + nu * (1.0 + np.log(2.0 * np.pi * r2 / nu))
    if reml:
        deviance += logdet_A

    # Y = S L C^-T (in place of T): Y_j C_j' = T_j, solved column by column.
    Y = T
    for i in range(q):
        for k in range(i):
            Y[:, i] -= Y[:, k] * C[i, k]
        Y[:, i] /= C[i, i]
    G_V = data.S_sum - _sum_outer(Y, w)  # sum_j S_j - Y_j Y_j'
    # s = Z'V^-1 (y - X beta) = V b - Y (U b), with b = (-beta, 1); t = L's = C^-T (U b).
    b = np.append(-beta, 1.0)
    vb = np.matmul(b, V)  # (q, J): one GEMV per random effect
    ub = np.matmul(b, U)
    s = vb
    for a in range(q):
        for i in range(q):
            s[a] -= Y[a, i] * ub[i]
    t = ub.copy()
    _backward(C, t)
    W = gram = None
    G_A = np.zeros((q, q))
    if reml and p:
        # One Gram matrix over clusters of [W_j, s_j, t_j] gives sum_j W_j A^-1 W_j' (and
        # the sums the Hessian needs): W_j = Z_j'V_j^-1 X_j, rows (a, k) of a (qp + 2q, J)
        # array, s and t in the last 2q rows.
        aug = np.empty((q * p + 2 * q, J))
        W = aug[: q * p].reshape(q, p, J)
        _w(V, Y, U, tmp, out=W)
        aug[q * p : q * p + q] = s
        aug[q * p + q :] = t
        gram = aug @ aug.T
        GW = gram[: q * p, : q * p].reshape(q, p, q, p)
        G_A = np.einsum("akbl,kl->ab", GW, np.linalg.inv(A))
        G_r = gram[q * p : q * p + q, q * p : q * p + q]
    else:
        G_r = s @ s.T
    G = G_V - (nu / r2) * G_r
    if reml:
        G = G - G_A
    grad_L = np.tril(2.0 * G @ L)
    return KernelResult(
        deviance=float(deviance),
        grad_L=grad_L,
        beta=beta,
        sigma2=float(sigma2),
        A=A,
        L=L,
        logdet_V=logdet_V,
        logdet_A=logdet_A,
        r2=r2,
        G_V=G_V,
        G_A=G_A,
        G_r=G_r,
        reml=reml,
        C=C,
        Y=Y,
        U=U,
        s=s,
        t=t,
        W=W,
        gram=gram,
        chol_A=chol_A,
    )


def _sum_outer(Y: np.ndarray, w: np.ndarray | None = None) -> np.ndarray:
    """``sum_j w_j Y_j Y_j'`` for per-cluster ``Y`` ``(q, q, J)``: one GEMM."""
    q, _, J = Y.shape
    flat = Y.reshape(q * q, J)
    gram = ((flat if w is None else flat * w) @ flat.T).reshape(q, q, q, q)
    return np.einsum("aibi->ab", gram)


def _w(V: np.ndarray, Y: np.ndarray, U: np.ndarray, tmp, out=None) -> np.ndarray:
    """``W_j = Z_j'V_j^-1 X_j = V_j - Y_j U_j`` (the X columns), shape ``(q, p, J)``."""
    q, p1, J = V.shape
    p = p1 - 1
    W = np.empty((q, p, J)) if out is None else out
    buf = tmp[:p] if tmp is not None else np.empty((p, J))
    for a in range(q):
        W[a] = V[a, :p]
        for i in range(q):
            np.multiply(U[i, :p], Y[a, i], out=buf)
            W[a] -= buf
    return W


def _gram(W: np.ndarray) -> np.ndarray:
    """``sum_j vec(W_j) vec(W_j)'`` as ``(q, p, q, p)``."""
    q, p, J = W.shape
    flat = W.reshape(q * p, J)
    return (flat @ flat.T).reshape(q, p, q, p)


def theta_pairs(rows: np.ndarray, cols: np.ndarray) -> list[tuple[int, int]]:
    return list(zip(rows.tolist(), cols.tolist(), strict=True))


def hessian_kernel(
    data: KernelData, ev: KernelResult, rows: np.ndarray, cols: np.ndarray
) -> np.ndarray:
    """Analytic Hessian of the profiled deviance in theta (entries ``(rows, cols)`` of
    ``L``) at the point ``ev`` was evaluated at; also sets ``ev.dA`` (``dA/dtheta``)."""
    p, q, J = data.p, data.q, data.n_clusters
    reml, L, C, Y, U, s, t = ev.reml, ev.L, ev.C, ev.Y, ev.U, ev.s, ev.t
    k = len(rows)
    if k == 0:
        return np.zeros((0, 0))
    W, gram = ev.W, ev.gram
    if p and W is None:  # ML: the evaluation did not need W
        aug = np.empty((q * p + 2 * q, J))
        W = aug[: q * p].reshape(q, p, J)
        _w(data.V, Y, U, None, out=W)
        aug[q * p : q * p + q] = s
        aug[q * p + q :] = t
        gram = aug @ aug.T
    Ainv = np.linalg.inv(ev.A) if p else np.zeros((0, 0))
    with_b = bool(reml and p)
    # Per cluster, stacked so that every sum over clusters of products of their entries is
    # one GEMM: P L, P = Z'V^-1 Z, t s', s s' and (REML) B = W A^-1 W', each against P L;
    # t t' and B against P. Products with L'PL, B L and L'B L are contractions of these
    # with L (q^4 numbers, no pass over the clusters).
    n2 = q * q
    left = np.empty((5 if with_b else 4, q, q, J))
    PL, P, TS, SS = left[0], left[1], left[2], left[3]
    PL[...] = Y  # P L = Y C^-1: PL C = Y, solved from the last column
    for c in reversed(range(q)):
        for i in range(c + 1, q):
            PL[:, c] -= PL[:, i] * C[i, c]
        PL[:, c] /= C[c, c]
    for a in range(q):  # P = S - Y Y'
        for b in range(a + 1):
            acc = P[a, b]
            acc[...] = data.S[a, b]
            for i in range(q):
                acc -= Y[a, i] * Y[b, i]
            if a != b:
                P[b, a] = acc
    np.multiply(t[:, None, :], s[None, :, :], out=TS)
    np.multiply(s[:, None, :], s[None, :, :], out=SS)
    second = np.empty((2 if with_b else 1, q, q, J))
    np.multiply(t[:, None, :], t[None, :, :], out=second[0])
    if with_b:
        WF = np.matmul(np.linalg.inv(ev.chol_A), W)  # B_j = (C_A^-1 W_j')' (C_A^-1 W_j')
        B = left[4]
        for a in range(q):
            for b in range(a + 1):
                np.einsum("kj,kj->j", WF[a], WF[b], out=B[a, b])
                if a != b:
                    B[b, a] = B[a, b]
        del WF
        second[1] = B
    w = data.weights
    if w is None:
        x1 = (left.reshape(-1, J) @ PL.reshape(n2, J).T).reshape(-1, q, q, q, q)
    else:  # P L and P count clusters (weights); t s', s s' and B are quadratic in V
        wPL = PL.reshape(n2, J) * w
        x1 = np.concatenate(
            [
                (left[:2].reshape(-1, J) @ wPL.T).reshape(-1, q, q, q, q),
                (left[2:].reshape(-1, J) @ PL.reshape(n2, J).T).reshape(-1, q, q, q, q),
            ]
        )
    x2 = (second.reshape(-1, J) @ P.reshape(n2, J).T).reshape(-1, q, q, q, q)
    x_plpl = x1[0]  # [a, b, c, d] = sum_j PL[a, b] PL[c, d]
    x_p_lpl = np.einsum("abec,ed->abcd", x1[1], L)  # sum_j P[a, b] (L'PL)[c, d]
    x_ts_pl = x1[2]
    x_ss_lpl = np.einsum("abec,ed->abcd", x1[3], L)
    x_tt_p = x2[0]
    if with_b:
        x_blpl = np.einsum("aecd,eb->abcd", x1[4], L)  # sum_j (BL)[a, b] PL[c, d]
        x_b_lpl = np.einsum("abec,ed->abcd", x1[4], L)  # sum_j B[a, b] (L'PL)[c, d]
        # sum_j P[a, b] (L'BL)[c, d] = sum_ef L[e, c] L[f, d] sum_j B[e, f] P[a, b]
        x_p_lbl = np.einsum("efab,ec,fd->abcd", x2[1], L, L)

    pairs = theta_pairs(rows, cols)
    if p:
        # F_i = sum_j W_j' D_i W_j = Q_rc + Q_rc' with Q_rc = sum_j W_j[r]' (L'W_j)[c], and
        # h_i = sum_j W_j' D_i s_j = sum_j W_j[r]' t_j[c] + (L'W_j)[c]' s_j[r] (p-vectors).
        qp = q * p
        GW = gram[:qp, :qp].reshape(q, p, q, p)
        Q = np.einsum("rkbl,bc->rkcl", GW, L)
        Ws = gram[:qp, qp : qp + q].reshape(q, p, q)  # [b, k, r] = sum_j W_j[b, k] s_j[r]
        Wt = gram[:qp, qp + q :].reshape(q, p, q)
        LWs = np.einsum("bkr,bc->rck", Ws, L)
        h = np.array([Wt[r, :, c] + LWs[r, c] for r, c in pairs])  # (k, p)
        F = np.array([Q[r, :, c, :] + Q[r, :, c, :].T for r, c in pairs])  # (k, p, p)
        AF = np.einsum("ab,ibc->iac", Ainv, F)
        ev.dA = -F  # d A / d theta_i, kept for the Jacobian of cov(beta) (Satterthwaite)
        hAh = h @ Ainv @ h.T
    n_obs = data.n_obs
    nu = n_obs - p if reml else n_obs
    r2 = ev.r2
    GrL = ev.G_r @ L
    dr2 = np.array([-2.0 * GrL[r, c] for r, c in pairs])
    G_tr = ev.G_V - ev.G_A if reml else ev.G_V
    H = np.empty((k, k))
    for i, (r, c) in enumerate(pairs):
        for m in range(i + 1):
            r_, c_ = pairs[m]
            same = c == c_
            t1 = 2.0 * x_plpl[r_, c, r, c_] + 2.0 * x_p_lpl[r, r_, c, c_]
            trace = (2.0 * G_tr[r, r_] if same else 0.0) - t1
            if with_b:
                t2 = 2.0 * (x_blpl[r_, c, r, c_] + x_blpl[r, c_, r_, c]) + 2.0 * (
                    x_p_lbl[r, r_, c, c_] + x_b_lpl[r, r_, c, c_]
                )
                t3 = float(np.einsum("ab,ba->", AF[i], AF[m]))
                trace += t2 - t3
            sdpds = (
                x_tt_p[c, c_, r, r_]
                + x_ts_pl[c, r_, r, c_]
                + x_ts_pl[c_, r, r_, c]
                + x_ss_lpl[r, r_, c, c_]
            )
            if p:
                sdpds -= hAh[i, m]
            d2r2 = 2.0 * sdpds - (2.0 * ev.G_r[r, r_] if same else 0.0)
            H[i, m] = H[m, i] = trace + nu * (d2r2 / r2 - dr2[i] * dr2[m] / r2**2)
    return H
