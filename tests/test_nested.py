"""The nested-levels engine core (mlmwrap.model.nested) against a dense computation and lme4.

Golden numbers: reference/issue9_three_level.json (lme4 1.1-31 on mlmRev's Chem97, pupils in
schools in LEAs, and egsingle, years in children in schools; made by
reference/issue9_three_level.R, data in tests/data). X, Z2 and Z3 are built by hand here:
the module is not reached from the equations yet. Tolerances: deviance at lme4's theta 1e-6
relative; at the optimum 1e-3 absolute; gammas 1e-4 relative; SEs, tau and sigma2 1e-3.
"""

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
