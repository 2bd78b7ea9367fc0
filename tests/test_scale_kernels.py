"""The fast kernels (issue 10) against their plain definitions, and the rank check's errors."""

import warnings

import numpy as np
import pytest

import mlmwrap
from mlmwrap.model.cross_products import cluster_cross_products
from mlmwrap.model.deviance import cov_beta_jacobian, unprofiled_gradient, unprofiled_hessian
from mlmwrap.model.engine import ClusterStats, L_to_theta, evaluate, optimize, theta_to_L
from mlmwrap.model.numdiff import hessian_from_gradient, numeric_jacobian
from mlmwrap.model.rank import first_dependent_column
from mlmwrap.model.small_linalg import cho_solve, cholesky, gram_of_solve, log_diag_sum


@pytest.mark.parametrize("block_rows", [3, 7, 4096])
def test_cross_products_equal_direct_sums_sorted_or_not(block_rows):
    rng = np.random.default_rng(0)
    n, J = 200, 23
    codes = rng.integers(0, J, n)
    codes[codes == 5] = 6  # an empty cluster gets zeros
    W = rng.normal(size=(n, 4)) + 10.0
    cross = cluster_cross_products(W, codes, J, block_rows=block_rows)
    for j in range(J):
        Wj = W[codes == j]
        np.testing.assert_allclose(cross[j], Wj.T @ Wj, rtol=1e-13, atol=1e-10)
    order = np.argsort(codes, kind="stable")
    sorted_cross = cluster_cross_products(W[order], codes[order], J, block_rows=block_rows)
    np.testing.assert_allclose(sorted_cross, cross, rtol=1e-13, atol=1e-10)


@pytest.mark.parametrize("q", [1, 2, 3, 5])
def test_small_linalg_matches_numpy(q):
    rng = np.random.default_rng(q)
    B = rng.normal(size=(50, q, q))
    M = np.eye(q) + B @ B.transpose(0, 2, 1)
    soa = np.moveaxis(M, 0, -1)
    C = cholesky(soa)
    np.testing.assert_allclose(np.moveaxis(C, -1, 0), np.linalg.cholesky(M), rtol=1e-12)
    assert log_diag_sum(C) == pytest.approx(np.linalg.slogdet(M)[1].sum(), rel=1e-12)
    rhs = rng.normal(size=(q, 3, 50))
    x = cho_solve(C, rhs)
    np.testing.assert_allclose(np.einsum("jab,bmj->amj", M, x), rhs, atol=1e-10)
    L = np.tril(rng.normal(size=(q, q)))
    G = gram_of_solve(C, L.T)
    np.testing.assert_allclose(
        np.moveaxis(G, -1, 0), L @ np.linalg.inv(M) @ L.T, rtol=1e-10, atol=1e-12
    )


def test_cholesky_of_non_pd_gives_nan_not_an_exception():
    M = np.array([[1.0, 2.0], [2.0, 1.0]])[:, :, None]
    assert not np.isfinite(log_diag_sum(cholesky(M)))


def _stats(q, seed=3):
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(60), rng.integers(2, 12, 60))
    n = len(g)
    X = np.column_stack([np.ones(n), rng.normal(size=n), rng.normal(size=60)[g]])
    Z = X[:, :q] if q <= 2 else np.column_stack([X[:, :2], rng.normal(size=n)])
    y = X @ [1.0, 0.5, 0.2] + (rng.normal(size=(60, Z.shape[1]))[g] * Z).sum(1)
    y = y + rng.normal(size=n)
    return ClusterStats.from_arrays(X, Z, y, g)


@pytest.mark.parametrize("q", [1, 2, 3])
@pytest.mark.parametrize("reml", [True, False])
def test_gradient_is_the_derivative_of_the_deviance(q, reml):
    stats = _stats(q)
    theta = L_to_theta(np.tril(np.full((q, q), 0.3)) + 0.5 * np.eye(q))
    grad = L_to_theta(evaluate(stats, theta_to_L(theta, q), reml).gradient)
    num = numeric_jacobian(
        lambda t: np.array([evaluate(stats, theta_to_L(t, q), reml).deviance]), theta
    ).ravel()
    np.testing.assert_allclose(grad, num, rtol=1e-7, atol=1e-7)


@pytest.mark.parametrize("q", [1, 2])
@pytest.mark.parametrize("reml", [True, False])
def test_hessian_and_jacobian_for_satterthwaite_match_finite_differences(q, reml):
    stats = _stats(q)
    opt = optimize(stats, reml=reml)
    L = opt.evaluation.L
    varpar = np.append(L_to_theta(L), np.sqrt(opt.sigma2))
    numeric = hessian_from_gradient(
        lambda v: unprofiled_gradient(stats, theta_to_L(v[:-1], q), v[-1], reml), varpar
    )
    analytic = unprofiled_hessian(stats, L, reml, opt.hessian)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-5, atol=1e-6 * np.abs(numeric).max())
    p = stats.p

    def cov(v):
        return v[-1] ** 2 * np.linalg.inv(evaluate(stats, theta_to_L(v[:-1], q), reml).A)

    jac = numeric_jacobian(cov, varpar).reshape(p, p, -1)
    np.testing.assert_allclose(
        cov_beta_jacobian(stats, L, varpar[-1]), jac, atol=1e-7 * np.abs(jac).max()
    )


def test_rank_from_gram_names_first_dependent_column():
    rng = np.random.default_rng(1)
    x = rng.normal(size=100)
    X = np.column_stack([np.ones(100), x, 2.0 * x - 3.0, rng.normal(size=100)])
    assert first_dependent_column(X.T @ X) == 2
    assert first_dependent_column(X[:, [0, 1, 3]].T @ X[:, [0, 1, 3]]) is None
    # A large mean is not a dependency (the Gram matrix is scaled to unit diagonal).
    Y = np.column_stack([np.ones(100), 1e4 + x])
    assert first_dependent_column(Y.T @ Y) is None


def test_dependent_random_term_is_named(hsb):
    data = hsb.assign(ses2=2.0 * hsb["ses"])
    with pytest.raises(mlmwrap.DataError) as info, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mlmwrap.fit(
            "mathach = b0 + b1*ses + b2*ses2\nb0 = g00 + u0\nb1 = g10 + u1\nb2 = g20 + u2",
            data,
            cluster="school",
        )
    assert "is a linear combination of the terms before it" in info.value.message
    assert "(g20)" in info.value.message


# -- the blockwise design (issue 10: memory of an in-memory fit) ---------------------------


def _shuffled_frame(n_clusters=2000, per=100, seed=5):
    """Rows in random cluster order, a text level-2 predictor and a transform: more than
    one block of rows (ROW_BLOCK) and an unsorted cluster column."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(n_clusters), rng.integers(1, 2 * per, n_clusters))
    w = rng.normal(size=n_clusters)
    kind = rng.choice(["a", "b", "c"], n_clusters)
    x = rng.normal(size=len(g)) + w[g]
    y = 1.0 + 0.5 * x + w[g] + rng.normal(size=n_clusters)[g] + rng.normal(size=len(g))
    frame = pd.DataFrame({"y": y, "x": x, "w": w[g], "kind": kind[g], "g": g * 7 + 3})
    return frame.iloc[rng.permutation(len(frame))].reset_index(drop=True)


EQUATIONS = """
y = b0 + b1*cwc(x) + b2*exp(center(x, 3)) + e
b0 = g00 + g01*w + g02*C(kind) + u0
b1 = g10 + g11*w + u1
b2 = g20
"""


def test_blockwise_cross_products_are_those_of_the_full_design_to_the_bit():
    from mlmwrap.language.equations import parse_equations
    from mlmwrap.model.design import ROW_BLOCK, build_design
    from mlmwrap.model.design_stats import design_cluster_stats

    frame = _shuffled_frame()
    assert len(frame) > 2 * ROW_BLOCK
    design = build_design(parse_equations(EQUATIONS), frame, cluster="g")
    blockwise = design_cluster_stats(design)
    assert "_xz" not in design.__dict__  # the fit never formed X and Z
    full = ClusterStats.from_arrays(design.X, design.Z, design.y, design.codes)
    assert np.array_equal(blockwise.cross, full.cross)
    assert np.array_equal(blockwise.cluster_sizes, full.cluster_sizes)
    assert (blockwise.n_obs, blockwise.p, blockwise.q) == (full.n_obs, full.p, full.q)


def test_an_in_memory_fit_holds_no_copy_of_the_rows():
    """Peak memory of a fit well under the input's size when the clusters are few (the
    J x k x k table is then small): the design is summed block by block, the model frame
    shares the caller's columns, and the caller's later changes do not reach the fit."""
    import tracemalloc

    frame = _shuffled_frame(n_clusters=300, per=5000)
    size = frame.memory_usage(deep=True).sum()
    equations = "y = b0 + b1*x + e\nb0 = g00 + g01*w + u0\nb1 = g10 + u1"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a singular fit of the warm-up's few rows
        mlmwrap.fit(equations, frame.head(3000), cluster="g", df="z")  # imports, caches
        tracemalloc.start()
        try:
            res = mlmwrap.fit(equations, frame, cluster="g", df="z")
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert peak < 0.8 * size, (peak / size, size)
    fitted_x = res.design.X.copy()
    frame.loc[0, "x"] = 1e6  # the caller edits its data after the fit
    assert res.model_frame["x"].iloc[0] != 1e6
    np.testing.assert_array_equal(res.design.X, fitted_x)
    assert res.design.X[:, 2].tolist() == res.model_frame["x"].tolist()
