"""HLM's chi-square tests of the variance components and reliabilities: the published HSB
numbers and an independent per-school loop."""

import warnings

import numpy as np
import pytest
from scipy import stats

import mlmwrap
from mlmwrap.analysis.hlm_tests import variance_tests

ISAO = """
mathach = b0 + b1*cwc(ses) + e
b0 = g00 + g01*meanses + g02*sector + u0
b1 = g10 + g11*meanses + g12*sector + u1
"""


def test_null_model_reproduces_raudenbush_and_bryk_table_4_2(hsb):
    # R&B (2002), Table 4.2, as printed by HLM: reliability 0.901, chi-square 1660.23, df 159.
    # Tolerances: the printed rounding (1e-3 relative is looser than both).
    res = mlmwrap.fit("mathach = b0 + e\nb0 = g00 + u0", hsb, cluster="school")
    row = variance_tests(res).loc["u0"]
    assert row["chi2"] == pytest.approx(1660.23, abs=0.005)
    assert row["df"] == 159 and row["clusters_used"] == 160
    assert row["reliability"] == pytest.approx(0.901, abs=5e-4)
    assert row["p"] < 1e-100
    assert row["beta"] == "b0" and row["term"] == "(intercept)"


def _loop(res, data, x_col, w_cols):
    """Per-school OLS by lstsq and HLM's sums, one school at a time."""
    g = res.gamma["estimate"]
    chi2, lam, used = np.zeros(2), np.zeros(2), 0
    tau = np.diag(res.tau.to_numpy())
    for _, school in data.groupby("school"):
        x = school["ses"] - school["ses"].mean() if x_col == "cwc" else school["ses"]
        X = np.column_stack([np.ones(len(school)), x])
        if len(school) < 2 or np.linalg.matrix_rank(X) < 2:  # HLM: full rank, n_j >= Q
            continue
        used += 1
        coef = np.linalg.lstsq(X, school["mathach"].to_numpy(), rcond=None)[0]
        v = res.sigma2 * np.diag(np.linalg.inv(X.T @ X))
        w = school[w_cols].iloc[0].to_numpy()
        fixed = [g["g00"] + g[["g01", "g02"]].to_numpy() @ w]
        fixed.append(g["g10"] + g[["g11", "g12"]].to_numpy() @ w)
        chi2 += (coef - np.array(fixed)) ** 2 / v
        lam += tau / (tau + v)
    return chi2, lam / used, used


def test_slopes_as_outcomes_agree_with_an_independent_loop(hsb):
    res = mlmwrap.fit(ISAO, hsb, cluster="school")
    table = variance_tests(res)
    chi2, lam, used = _loop(res, hsb, "cwc", ["meanses", "sector"])
    assert table["chi2"].to_numpy() == pytest.approx(chi2, rel=1e-10)
    assert table["reliability"].to_numpy() == pytest.approx(lam, rel=1e-10)
    assert (table["df"] == used - 3).all()  # J' - S - 1 with S = 2 level-2 predictors
    assert table["p"].to_numpy() == pytest.approx(stats.chi2.sf(chi2, used - 3), rel=1e-10)
    assert list(table.index) == ["u0", "u1"] and list(table["term"]) == ["(intercept)", "cwc(ses)"]


@pytest.mark.filterwarnings("ignore::mlmwrap.BoundaryWarning")
def test_clusters_without_an_estimable_ols_are_left_out(hsb):
    data = hsb[hsb["school"].isin(hsb["school"].unique()[:40])].copy()
    flat = data["school"].unique()[:3]
    data.loc[data["school"].isin(flat), "ses"] = 0.1  # no ses variation in 3 schools
    res = mlmwrap.fit(ISAO.replace("cwc(ses)", "ses"), data, cluster="school")
    table = variance_tests(res)
    chi2, lam, used = _loop(res, data, "raw", ["meanses", "sector"])
    assert used == 37 and (table["clusters_used"] == 37).all() and (table["df"] == 34).all()
    assert table["chi2"].to_numpy() == pytest.approx(chi2, rel=1e-10)
    assert table["reliability"].to_numpy() == pytest.approx(lam, rel=1e-10)


def test_df_counts_the_columns_of_a_categorical_predictor(hsb):
    data = hsb.assign(kind=hsb["sector"].map({0: "public", 1: "catholic"}))
    data.loc[data["school"].isin(data["school"].unique()[:50:2]), "kind"] = "other"
    res = mlmwrap.fit("mathach = b0 + e\nb0 = g00 + g01*C(kind) + u0", data, cluster="school")
    assert variance_tests(res).loc["u0", "df"] == 160 - 2 - 1


def test_too_few_clusters_for_the_test_warns_and_gives_nan(hsb):
    data = hsb[hsb["school"].isin([1224, 1288, 4523])]
    with warnings.catch_warnings():  # a fit to 3 schools may be singular; not tested here
        warnings.simplefilter("ignore")
        res = mlmwrap.fit(
            "mathach = b0 + e\nb0 = g00 + g01*meanses + g02*sector + u0", data, cluster="school"
        )
    with pytest.warns(UserWarning, match="chi-square test of u0 is not defined"):
        table = variance_tests(res)
    assert np.isnan(table.loc["u0", "chi2"]) and np.isnan(table.loc["u0", "p"])
    assert np.isfinite(table.loc["u0", "reliability"])


@pytest.mark.filterwarnings("ignore::mlmwrap.BoundaryWarning")
def test_clusters_with_as_many_rows_as_coefficients_are_used(hsb):
    """HLM uses every unit whose level-1 design has full rank: n_j = Q counts (issue 11)."""
    data = hsb[hsb["school"].isin(hsb["school"].unique()[:40])]
    pair = data["school"].unique()[:2]
    keep = ~data["school"].isin(pair) | (data.groupby("school").cumcount() < 2)
    data = data[keep]  # two schools of exactly 2 students, 2 coefficients (b0, b1)
    res = mlmwrap.fit(ISAO.replace("cwc(ses)", "ses"), data, cluster="school")
    table = variance_tests(res)
    chi2, lam, used = _loop(res, data, "raw", ["meanses", "sector"])
    assert used == 40 and (table["clusters_used"] == 40).all() and (table["df"] == 37).all()
    assert table["chi2"].to_numpy() == pytest.approx(chi2, rel=1e-10)
    assert "40 of 40 clusters" in res.summary()
