"""The engine's kernel (issue 10): deviance, gradient and analytic Hessian against their
definitions, and the Newton optimizer built on them."""

import numpy as np
import pytest

from mlmwrap.model import engine
from mlmwrap.model.deviance import cov_beta_jacobian
from mlmwrap.model.engine import (
    ClusterStats,
    L_to_theta,
    block_pattern,
    evaluate,
    optimize,
    theta_indices,
    theta_to_L,
)
from mlmwrap.model.kernel import evaluate_kernel, hessian_kernel
from mlmwrap.model.numdiff import hessian_from_gradient, numeric_jacobian
from mlmwrap.model.scaling import column_scales


def _data(q, seed=0, n_clusters=25):
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 9, n_clusters)
    g = np.repeat(np.arange(n_clusters), sizes)
    n = len(g)
    X = np.column_stack([np.ones(n), rng.normal(size=n), rng.normal(size=n_clusters)[g]])
    Z = np.column_stack([np.ones(n), rng.normal(size=(n, q - 1))])
    y = X @ [1.0, 0.5, -0.3] + (rng.normal(size=(n_clusters, q))[g] * Z).sum(1)
    y = y + rng.normal(size=n)
    return X, Z, y, g


def _dense_deviance(X, Z, y, g, L, reml):
    """lme4's profiled deviance from the n x n marginal covariance, cluster by cluster."""
    n, p = X.shape
    blocks = [np.flatnonzero(g == j) for j in np.unique(g)]
    Vinv = np.zeros((n, n))
    logdet = 0.0
    for rows in blocks:
        Vj = np.eye(len(rows)) + Z[rows] @ L @ L.T @ Z[rows].T
        Vinv[np.ix_(rows, rows)] = np.linalg.inv(Vj)
        logdet += np.linalg.slogdet(Vj)[1]
    A = X.T @ Vinv @ X
    beta = np.linalg.solve(A, X.T @ Vinv @ y)
    r = y - X @ beta
    r2 = r @ Vinv @ r
    nu = n - p if reml else n
    dev = logdet + nu * (1.0 + np.log(2.0 * np.pi * r2 / nu))
    return dev + np.linalg.slogdet(A)[1] if reml else dev


@pytest.mark.parametrize("q", [1, 2, 3])
@pytest.mark.parametrize("reml", [True, False])
def test_kernel_deviance_is_the_dense_deviance_for_any_square_root(q, reml):
    X, Z, y, g = _data(q, seed=q)
    stats = ClusterStats.from_arrays(X, Z, y, g)
    rng = np.random.default_rng(5)
    L = np.tril(rng.normal(scale=0.5, size=(q, q))) + 0.5 * np.eye(q)
    full = rng.normal(scale=0.5, size=(q, q))  # not triangular: the intervals pass these
    for Lq in (L, full):
        ev = evaluate(stats, Lq, reml)
        assert ev.deviance == pytest.approx(_dense_deviance(X, Z, y, g, Lq, reml), rel=1e-11)


@pytest.mark.parametrize("q", [1, 2, 3])
@pytest.mark.parametrize("reml", [True, False])
@pytest.mark.parametrize("where", ["interior", "zero column"])
def test_analytic_hessian_matches_finite_differences_of_the_gradient(q, reml, where):
    X, Z, y, g = _data(q, seed=10 + q)
    stats = ClusterStats.from_arrays(X, Z, y, g)
    data = stats.kernel_data
    free = block_pattern([[0], [1, 2]], 3) if q == 3 and where == "interior" else None
    rng = np.random.default_rng(1)
    L = np.tril(rng.normal(scale=0.4, size=(q, q))) + 0.6 * np.eye(q)
    if free is not None:
        L = L * free
    if where == "zero column":  # a singular fit: a stationary subspace
        L[:, -1] = 0.0
    theta = L_to_theta(L, free)
    rows, cols = theta_indices(q, free)

    def grad(t):
        res = evaluate_kernel(data, theta_to_L(t, q, free), reml)
        return res.grad_L[rows, cols]

    numeric = hessian_from_gradient(grad, theta, rel=1e-4, order=4)
    analytic = hessian_kernel(data, evaluate_kernel(data, L, reml), rows, cols)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-7, atol=1e-7 * np.abs(numeric).max())


@pytest.mark.parametrize("q", [1, 2, 3])
def test_hessian_leaves_the_derivative_of_A(q):
    X, Z, y, g = _data(q, seed=20 + q)
    stats = ClusterStats.from_arrays(X, Z, y, g)
    data = stats.kernel_data
    L = np.tril(np.full((q, q), 0.2)) + 0.5 * np.eye(q)
    rows, cols = theta_indices(q)
    ev = evaluate_kernel(data, L, True)
    hessian_kernel(data, ev, rows, cols)
    theta = L_to_theta(L)
    numeric = numeric_jacobian(
        lambda t: evaluate_kernel(data, theta_to_L(t, q), True).A.ravel(), theta
    ).T.reshape(len(theta), 3, 3)
    np.testing.assert_allclose(ev.dA, numeric, atol=1e-8 * np.abs(numeric).max())


@pytest.mark.parametrize("q", [1, 2, 3])
@pytest.mark.parametrize("reml", [True, False])
def test_optimum_in_data_units_equals_an_evaluation_there(q, reml):
    """The engine works on rescaled statistics and maps its last evaluation back."""
    X, Z, y, g = _data(q, seed=30 + q, n_clusters=60)
    stats = ClusterStats.from_arrays(X * [1.0, 1e3, 1e-2], Z * 10.0, y * 1e4, g)
    opt = optimize(stats, reml=reml)
    mapped, direct = opt.evaluation, evaluate(stats, opt.evaluation.L, reml)
    assert mapped.deviance == pytest.approx(direct.deviance, rel=1e-12)
    for name in ("beta", "A", "G_V", "G_A", "G_r"):
        a, b = getattr(mapped, name), getattr(direct, name)
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12 * np.abs(b).max())
    assert mapped.sigma2 == pytest.approx(direct.sigma2, rel=1e-10)
    scale = np.abs(direct.G_V).max() * np.abs(direct.L).max()
    np.testing.assert_allclose(mapped.gradient, direct.gradient, atol=1e-9 * scale)
    if reml:  # the Jacobian of cov(beta) from the final Hessian, and from its own pass
        sigma = np.sqrt(direct.sigma2)
        reuse = cov_beta_jacobian(stats, direct.L, sigma, opt.a_jacobian, direct.A)
        own = cov_beta_jacobian(stats, direct.L, sigma)
        np.testing.assert_allclose(reuse, own, rtol=1e-6, atol=1e-9 * np.abs(own).max())


def test_kernel_data_rescaled_is_the_kernel_data_of_rescaled_columns():
    X, Z, y, g = _data(2, seed=4)
    stats = ClusterStats.from_arrays(X, Z, y, g)
    sx, sz, sy = column_scales(stats)
    a = stats.kernel_data.rescaled(sx, sz, sy)
    b = ClusterStats.from_arrays(X / sx, Z / sz, y / sy, g).kernel_data
    for name in ("S", "V", "xx", "xy"):
        np.testing.assert_allclose(getattr(a, name), getattr(b, name), rtol=1e-12, atol=1e-14)
    assert a.yy == pytest.approx(b.yy, rel=1e-12)


@pytest.mark.parametrize("q", [1, 2, 3])
def test_newton_converges_in_few_evaluations_and_two_starts_agree(q):
    X, Z, y, g = _data(q, seed=40 + q, n_clusters=200)
    stats = ClusterStats.from_arrays(X, Z, y, g)
    opt = optimize(stats, reml=True)
    assert opt.converged
    # Two starts (the moment start and lme4's L = I), each a handful of Newton steps.
    assert opt.n_evaluations <= 30
    start = engine._moment_start(stats.kernel_data.rescaled(*column_scales(stats)), stats.free)
    assert start is not None and np.all(np.isfinite(start))


def test_moment_start_respects_a_block_pattern():
    X, Z, y, g = _data(3, seed=7, n_clusters=100)
    free = block_pattern([[0, 2], [1]], 3)
    stats = ClusterStats.from_arrays(X, Z, y, g, free=free)
    theta = engine._moment_start(stats.kernel_data, free)
    assert theta is not None and len(theta) == int(free.sum())
    assert np.all(theta_to_L(theta, 3, free)[~free] == 0.0)


@pytest.mark.parametrize("q", [1, 2, 3])
def test_compressed_data_give_the_same_deviance_gradient_and_hessian(q):
    """Clusters that share Z'Z (a random intercept; a common grid of occasions) are merged
    into at most q (p + 1) columns per group, with the same sums."""
    rng = np.random.default_rng(q)
    J = 400
    sizes = rng.integers(2, 6, J) if q == 1 else np.full(J, 5)
    g = np.repeat(np.arange(J), sizes)
    n = len(g)
    t = rng.normal(size=n) if q == 1 else np.tile(np.arange(5.0), J)
    X = np.column_stack([np.ones(n), t, rng.normal(size=n), rng.normal(size=J)[g]])
    Z = np.column_stack([np.ones(n), t, t**2])[:, :q]
    y = X @ [1.0, 0.5, 0.2, 0.1] + (rng.normal(size=(J, q))[g] * Z).sum(1) + rng.normal(size=n)
    stats = ClusterStats.from_arrays(X, Z, y, g)
    full = stats.kernel_data
    small = full.compressed()
    assert small.n_clusters <= 0.1 * J
    L = np.tril(rng.normal(scale=0.3, size=(q, q))) + 0.5 * np.eye(q)
    rows, cols = theta_indices(q)
    for reml in (True, False):
        a, b = evaluate_kernel(full, L, reml), evaluate_kernel(small, L, reml)
        assert b.deviance == pytest.approx(a.deviance, rel=1e-13)
        np.testing.assert_allclose(b.grad_L, a.grad_L, atol=1e-11 * np.abs(a.grad_L).max())
        Ha, Hb = hessian_kernel(full, a, rows, cols), hessian_kernel(small, b, rows, cols)
        np.testing.assert_allclose(Hb, Ha, rtol=1e-10, atol=1e-11 * np.abs(Ha).max())
        np.testing.assert_allclose(b.dA, a.dA, atol=1e-12 * np.abs(a.dA).max())


def test_distinct_z_blocks_are_not_compressed():
    X, Z, y, g = _data(2, seed=3, n_clusters=300)
    data = ClusterStats.from_arrays(X, Z, y, g).kernel_data
    assert data.compressed() is data
