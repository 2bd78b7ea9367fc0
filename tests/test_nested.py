"""The nested-levels engine core (mlmwrap.model.nested) against a dense computation and lme4.

Golden numbers: reference/issue9_three_level.json (lme4 1.1-31 on mlmRev's Chem97, pupils in
schools in LEAs, and egsingle, years in children in schools; made by
reference/issue9_three_level.R, data in tests/data). X, Z2 and Z3 are built by hand here:
the module is not reached from the equations yet. Tolerances: deviance at lme4's theta 1e-6
relative; at the optimum 1e-3 absolute; gammas 1e-4 relative; SEs, tau and sigma2 1e-3.
"""

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest
from conftest import DATA, REFERENCE

from mlmwrap.model.engine import ClusterStats, block_pattern, evaluate
from mlmwrap.model.nested import (
    NestedStats,
    deviance_and_gradient,
    evaluate_nested,
    optimize_nested,
    variance_derivatives,
)


@pytest.fixture(scope="module")
def golden() -> dict:
    return json.loads((REFERENCE / "issue9_three_level.json").read_text())["models"]


@pytest.fixture(scope="module")
def chem97() -> pd.DataFrame:
    df = pd.read_csv(DATA / "chem97.csv.gz")
    by_school = df.groupby("school").gcsecnt
    df["gcsecnt_cwc"] = df.gcsecnt - by_school.transform("mean")
    df["school_mean_gcse"] = by_school.transform("mean")
    schools = df.drop_duplicates("school")  # each school counted once in its LEA's mean
    lea_mean = schools.groupby("lea").school_mean_gcse.mean()
    df["lea_mean_sm"] = df.lea.map(lea_mean)
    df["sm_cwc3"] = df.school_mean_gcse - df.lea_mean_sm
    return df


@pytest.fixture(scope="module")
def egsingle() -> pd.DataFrame:
    return pd.read_csv(DATA / "egsingle.csv.gz")


def _codes(df: pd.DataFrame, level2: str, level3: str) -> list[np.ndarray]:
    """Level-2 units as (level-3 id, level-2 id) pairs, as lme4's g3/g2."""
    pairs = pd.MultiIndex.from_arrays([df[level3], df[level2]])
    return [pd.factorize(pairs)[0], pd.factorize(df[level3])[0]]


def _columns(df: pd.DataFrame, names: list[str]) -> np.ndarray:
    cols = []
    for name in names:
        if name == "(Intercept)":
            cols.append(np.ones(len(df)))
        else:
            cols.append(np.prod([df[part].to_numpy(float) for part in name.split(":")], axis=0))
    return np.column_stack(cols)


def _model(key: str, g: dict, chem97: pd.DataFrame, egsingle: pd.DataFrame) -> NestedStats:
    fixef = list(g["fixef"])
    if key.startswith("chem97"):
        df, y = chem97, chem97.score.to_numpy()
        level2 = "school_in_lea" if "school_in_lea" in key else "school"
        codes = _codes(df, level2, "lea")
        z2 = ["(Intercept)"] if "null" in key else ["(Intercept)", "gcsecnt_cwc"]
        z3 = ["(Intercept)"]
    else:
        df, y = egsingle, egsingle.math.to_numpy()
        codes = _codes(df, "childid", "schoolid")
        z2 = z3 = ["(Intercept)", "year"]
    frees = [block_pattern([[0], [1]], 2), None] if key.endswith("diag_child") else None
    X, Z2, Z3 = _columns(df, fixef), _columns(df, z2), _columns(df, z3)
    return NestedStats.from_arrays(X, [Z2, Z3], y, codes, frees=frees)


THREE_LEVEL = [
    "chem97_null",
    "chem97_null_ml",
    "chem97_null_school_in_lea",
    "chem97_cwc_slope",
    "chem97_cwc_slope_ml",
    "chem97_cwc_slope_l3",
    "eg_growth",
    "eg_growth_ml",
    "eg_growth_pred",
    "eg_growth_pred_ml",
    "eg_growth_diag_child",
]


@pytest.mark.parametrize("key", THREE_LEVEL)
def test_deviance_at_lme4_theta(golden, chem97, egsingle, key):
    g = golden[key]
    stats = _model(key, g, chem97, egsingle)
    theta = np.array(list(g["theta"].values()))  # level 2's terms first, as lme4 orders them
    ev = evaluate_nested(stats, stats.split_theta(theta), g["reml"])
    assert ev.deviance == pytest.approx(g["deviance"], rel=1e-6)
    np.testing.assert_allclose(ev.beta, list(g["fixef"].values()), rtol=1e-4)
    assert ev.sigma2 == pytest.approx(g["sigma2"], rel=1e-6)


@pytest.mark.parametrize("key", ["chem97_null", "chem97_cwc_slope", "eg_growth_diag_child"])
def test_optimizer_reaches_lme4(golden, chem97, egsingle, key):
    g = golden[key]
    stats = _model(key, g, chem97, egsingle)
    opt = optimize_nested(stats, reml=g["reml"])
    assert opt.converged
    assert opt.deviance == pytest.approx(g["deviance"], abs=1e-3)
    np.testing.assert_allclose(opt.beta, list(g["fixef"].values()), rtol=1e-4)
    np.testing.assert_allclose(np.sqrt(np.diag(opt.cov_beta)), list(g["se"].values()), rtol=1e-3)
    assert opt.sigma2 == pytest.approx(g["sigma2"], rel=1e-3)
    for tau, factor in zip(opt.taus, g["tau"], strict=True):  # level 2 first
        ref = np.array(g["tau"][factor]["cov"])
        np.testing.assert_allclose(tau, ref, rtol=1e-3, atol=1e-3 * ref.max())
    if key.endswith("diag_child"):
        assert opt.taus[0][0, 1] == 0.0  # the pattern holds at the optimum


def _dense_deviance(X, Zs, y, codes, Ls, reml):
    """-2 log-likelihood (or REML criterion) from V built row by row, for small data."""
    n, p = X.shape
    V = np.eye(n)
    for Z, c, L in zip(Zs, codes, Ls, strict=True):
        same = c[:, None] == c[None, :]
        V += same * (Z @ L @ L.T @ Z.T)
    Vinv = np.linalg.inv(V)
    A = X.T @ Vinv @ X
    beta = np.linalg.solve(A, X.T @ Vinv @ y)
    r = y - X @ beta
    r2 = r @ Vinv @ r
    nu = n - p if reml else n
    dev = np.linalg.slogdet(V)[1] + nu * (1 + np.log(2 * np.pi * r2 / nu))
    return dev + (np.linalg.slogdet(A)[1] if reml else 0.0)


@pytest.mark.parametrize("n_random", [1, 2, 3])  # two-, three- and four-level models
def test_matches_a_dense_computation(n_random):
    rng = np.random.default_rng(n_random)
    sizes = [3, 2, 2][: n_random - 1]  # units of level l inside each unit of level l + 1
    n_top = 3
    rows_per_unit = rng.integers(2, 5, size=n_top * int(np.prod(sizes)))
    codes = [np.repeat(np.arange(len(rows_per_unit)), rows_per_unit)]  # level 2 ...
    for s in sizes:  # ... and the levels above, each unit inside one parent
        codes.append(codes[-1] // s)
    n = len(codes[0])
    X = np.column_stack([np.ones(n), rng.normal(size=n), rng.normal(size=n)])
    y = X @ [1.0, 0.4, -0.2] + rng.normal(size=n)
    Zs = [X[:, :2] if k % 2 == 0 else X[:, :1] for k in range(n_random)]
    Ls = [np.tril(rng.normal(scale=0.7, size=(Z.shape[1],) * 2)) for Z in Zs]
    frees = [None] * n_random
    frees[0] = block_pattern([[0], [1]], 2)  # a diagonal tau at level 2
    Ls[0] = np.diag(np.diag(Ls[0]))
    stats = NestedStats.from_arrays(X, Zs, y, codes, frees=frees)
    assert stats.n_units == tuple(int(c.max()) + 1 for c in codes)
    for reml in (True, False):
        ev = evaluate_nested(stats, Ls, reml)
        assert ev.deviance == pytest.approx(_dense_deviance(X, Zs, y, codes, Ls, reml), rel=1e-10)
    theta = stats.join_theta(Ls)
    for reml in (True, False):  # the analytic gradient against central differences
        dev, grad = deviance_and_gradient(stats, theta, reml)
        assert dev == pytest.approx(evaluate_nested(stats, Ls, reml).deviance, rel=1e-12)
        h = 1e-6
        numeric = [
            (
                evaluate_nested(stats, stats.split_theta(theta + h * e), reml).deviance
                - evaluate_nested(stats, stats.split_theta(theta - h * e), reml).deviance
            )
            / (2 * h)
            for e in np.eye(len(theta))
        ]
        np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-6)
    assert len(theta) == sum(stats.n_theta) == {1: 2, 2: 3, 3: 6}[n_random]  # 2 + 1 + 3
    for a, b in zip(stats.split_theta(theta), Ls, strict=True):
        np.testing.assert_array_equal(a, b)


def test_one_level_is_the_two_level_engine():
    rng = np.random.default_rng(7)
    groups = np.repeat(np.arange(25), 6)
    X = np.column_stack([np.ones(150), rng.normal(size=150)])
    y = X @ [2.0, 0.3] + rng.normal(size=25)[groups] + rng.normal(size=150)
    L = np.array([[0.8, 0.0], [0.2, 0.4]])
    two = evaluate(ClusterStats.from_arrays(X, X, y, groups), L, reml=True)
    nested = evaluate_nested(NestedStats.from_arrays(X, [X], y, [groups]), [L], reml=True)
    assert nested.deviance == pytest.approx(two.deviance, rel=1e-12)
    np.testing.assert_allclose(nested.beta, two.beta, rtol=1e-10)


def test_units_that_are_not_nested_are_refused():
    ones = np.ones((4, 1))
    level2 = np.array([0, 0, 1, 1])
    level3 = np.array([0, 1, 1, 1])  # unit 0 of level 2 has rows in two level-3 units
    with pytest.raises(ValueError, match="not nested"):
        NestedStats.from_arrays(ones, [ones, ones], np.arange(4.0), [level2, level3])


def _toy_stats(seed: int = 3):
    """A small three-level model with a random slope at level 2 and a diagonal level-3 tau."""
    rng = np.random.default_rng(seed)
    c3 = np.repeat(np.arange(12), 40)
    c2 = np.repeat(np.arange(96), 5)
    n = len(c2)
    x = rng.normal(size=n)
    X = np.column_stack([np.ones(n), x, rng.normal(size=n)])
    y = (
        X @ [1.0, 0.5, -0.3]
        + rng.normal(size=96)[c2]
        + 0.4 * rng.normal(size=96)[c2] * x
        + 0.8 * rng.normal(size=12)[c3]
        + rng.normal(size=n)
    )
    frees = [None, block_pattern([[0], [1]], 2)]
    return NestedStats.from_arrays(X, [X[:, :2], X[:, :2]], y, [c2, c3], frees=frees)


def test_variance_derivatives_match_central_differences():
    stats = _toy_stats()
    theta = np.array([0.9, 0.1, 0.35, 0.7, 0.2])
    contrasts = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]])
    ev, d_r2, d_quad = variance_derivatives(stats, theta, True, contrasts)

    def pieces(t):
        e = evaluate_nested(stats, stats.split_theta(t), True)
        A_inv = np.linalg.inv(e.A)
        return np.concatenate([[e.r2], np.einsum("ki,ij,kj->k", contrasts, A_inv, contrasts)])

    h = 1e-6
    numeric = np.column_stack(
        [(pieces(theta + h * e) - pieces(theta - h * e)) / (2 * h) for e in np.eye(len(theta))]
    )
    np.testing.assert_allclose(d_r2, numeric[0], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(d_quad, numeric[1:], rtol=1e-5, atol=1e-10)
    assert ev.r2 == pytest.approx(pieces(theta)[0], rel=1e-12)


@pytest.mark.parametrize("reml", [True, False])
def test_satterthwaite_hessian_is_the_numeric_one(reml):
    """The Hessian in (theta, sigma) from the fit's profiled Hessian (no new evaluations)
    equals central differences of the unprofiled deviance, and so do the df."""
    from mlmwrap.analysis.nested_inference import (
        nested_satterthwaite,
        unprofiled_nested_deviance,
        unprofiled_nested_hessian,
    )
    from mlmwrap.model.nested_fit import verify_nested
    from mlmwrap.model.numdiff import numeric_hessian, numeric_jacobian

    stats = _toy_stats()
    fit = verify_nested(stats, reml=reml)
    assert fit.converged and fit.hessian.shape == (5, 5)
    varpar = np.append(fit.theta, np.sqrt(fit.sigma2))
    _, d_r2, _ = variance_derivatives(stats, fit.theta, reml, np.eye(stats.p))
    analytic = unprofiled_nested_hessian(stats, fit, d_r2)
    numeric = numeric_hessian(lambda v: unprofiled_nested_deviance(stats, v, reml), varpar)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-4, atol=1e-3)
    # the df as the numeric route gives them (lmerTest's recipe)
    a_var = 2.0 * np.linalg.inv(numeric)

    def cov_beta(v):
        A = evaluate_nested(stats, stats.split_theta(v[:-1]), reml).A
        return v[-1] ** 2 * np.linalg.inv(A)

    jac = numeric_jacobian(cov_beta, varpar).reshape(stats.p, stats.p, len(varpar))
    C = fit.cov_beta
    g = np.einsum("iiv->iv", jac)
    want = 2 * np.diag(C) ** 2 / np.einsum("kv,vw,kw->k", g, a_var, g)
    np.testing.assert_allclose(nested_satterthwaite(stats, fit), want, rtol=1e-4)
    # a fit that carries no Hessian gets one computed
    bare = dataclasses.replace(fit, hessian=None)
    np.testing.assert_allclose(nested_satterthwaite(stats, bare), want, rtol=1e-4)


def test_unit_numbering_does_not_matter():
    """The engine sorts units so that siblings are contiguous: any numbering of the units
    (and any order of the rows) gives the same deviance and gradient."""
    rng = np.random.default_rng(11)
    c4 = np.repeat(np.arange(3), 60)  # a four-level model: 3 x 4 x 3 units
    c3 = np.repeat(np.arange(12), 15)
    c2 = np.repeat(np.arange(36), 5)
    n = len(c2)
    X = np.column_stack([np.ones(n), rng.normal(size=n)])
    y = X @ [1.0, 0.5] + rng.normal(size=36)[c2] + rng.normal(size=12)[c3] + rng.normal(size=n)
    Zs = [X, X[:, :1], X[:, :1]]
    base = NestedStats.from_arrays(X, Zs, y, [c2, c3, c4])
    theta = np.array([0.8, 0.2, 0.4, 0.6, 0.5])
    want = deviance_and_gradient(base, theta, True)
    rows = rng.permutation(n)
    relabel = [rng.permutation(c.max() + 1)[c] for c in (c2, c3, c4)]
    shuffled = NestedStats.from_arrays(
        X[rows], [Z[rows] for Z in Zs], y[rows], [c[rows] for c in relabel]
    )
    got = deviance_and_gradient(shuffled, theta, True)
    assert got[0] == pytest.approx(want[0], rel=1e-12)
    np.testing.assert_allclose(got[1], want[1], rtol=1e-9)
