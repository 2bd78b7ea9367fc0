"""Per-cluster estimates: EB effects and coefficients (lme4), OLS (lme4's lmList, HLM's
printed output), reliabilities, and a direct per-cluster computation."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mlmwrap
from mlmwrap.analysis.cluster import cluster_coefficients, empirical_bayes, reliabilities

REFERENCE = Path(__file__).parent / "reference"
RC = "mathach = b0 + b1*cwc(ses) + e\nb0 = g00 + u0\nb1 = g10 + u1"
ISAO = """
mathach = b0 + b1*cwc(ses) + e
b0 = g00 + g01*meanses + g02*sector + u0
b1 = g10 + g11*meanses + g12*sector + u1
"""


@pytest.fixture(scope="module")
def issue5() -> dict:
    """lme4 1.1-31 (reference/issue5_eb.R made it)."""
    return json.loads((REFERENCE / "issue5_eb.json").read_text())


@pytest.fixture(scope="module")
def rc(hsb):
    return mlmwrap.fit(RC, hsb, cluster="school")


@pytest.fixture(scope="module")
def isao(hsb):
    return mlmwrap.fit(ISAO, hsb, cluster="school")


def _check(cc: pd.DataFrame, ref: dict, names: dict[str, str], rel: float) -> None:
    schools = [int(s) for s in ref["school"]]
    for ours, theirs in names.items():
        assert cc.loc[schools, ours].to_numpy() == pytest.approx(ref[theirs], rel=rel), ours


def test_eb_of_the_random_coefficient_model_match_lme4(rc):
    # R: ranef(rc, condVar = TRUE), sqrt(attr(, "postVar")), coef(rc) (hsb_inference.R)
    ref = json.loads((REFERENCE / "hsb_inference.json").read_text())["eb_rc_first5"]
    names = {k: k for k in ("u0", "u1", "u0_sd", "u1_sd")} | {"b0": "beta0", "b1": "beta1"}
    _check(cluster_coefficients(rc), ref, names, rel=1e-3)


def test_eb_coefficients_include_the_level2_predictors(isao, issue5):
    # R: ranef(isao, condVar = TRUE); beta_Kj = fixef combined with meanses_j, sector_j + u_Kj
    names = {k: k for k in ("u0", "u1", "u0_sd", "u1_sd")} | {"b0": "beta0", "b1": "beta1"}
    _check(cluster_coefficients(isao), issue5["eb_isao"], names, rel=1e-3)


def test_eb_equal_a_direct_per_cluster_computation(isao):
    # u_j = tau Z'V^-1 (y - X gamma), cov = tau - tau Z'V^-1 Z tau, V = Z tau Z' + sigma2 I
    d, tau, s2 = isao.design, isao.tau.to_numpy(), isao.sigma2
    u, cov = empirical_bayes(isao)
    for j in (0, 37, 159):
        rows = d.codes == j
        Z, r = d.Z[rows], d.y[rows] - d.X[rows] @ isao.gamma["estimate"].to_numpy()
        Vinv = np.linalg.inv(Z @ tau @ Z.T + s2 * np.eye(rows.sum()))
        assert u[j] == pytest.approx(tau @ Z.T @ Vinv @ r, rel=1e-8)
        assert cov[j] == pytest.approx(tau - tau @ Z.T @ Vinv @ Z @ tau, rel=1e-8, abs=1e-12)


def test_ols_matches_lmlist(rc, issue5):
    # R: coef(lmList(mathach ~ cwc_ses | school, d))
    _check(cluster_coefficients(rc), issue5["ols_rc"], {"b0_ols": "b0", "b1_ols": "b1"}, 1e-8)


def test_ols_matches_hlms_printed_regressions_and_skips_rank_deficient_schools(hsb):
    # HLM2 6.02, "HSB Test Run" (University of Delaware's hsb2.out), Level-1 OLS regressions
    # of MATHACH on MINORITY, FEMALE, SES. It lists 1224, 1288, 1296, 1358, ...: school 1308
    # has no boys and 1317 only girls, so their regressions are not estimable.
    res = mlmwrap.fit(
        """mathach = b0 + b1*minority + b2*female + b3*ses + e
        b0 = g00 + g01*size + g02*sector + g03*pracad + g04*disclim + g05*himinty + g06*meanses + u0
        b1 = g10 + g11*meanses + u1
        b2 = g20 + u2
        b3 = g30 + u3""",
        hsb,
        cluster="school",
    )
    cc = cluster_coefficients(res)
    hlm = {
        1224: [12.88837, -8.72320, -3.00562, 1.47322],
        1288: [13.13595, -2.86801, 0.88435, 2.71298],
        1296: [3.68352, 5.55066, -1.69086, 0.91791],
        2917: [12.14963, np.nan, np.nan, np.nan],
    }
    for school, values in hlm.items():
        got = cc.loc[school, ["b0_ols", "b1_ols", "b2_ols", "b3_ols"]].to_numpy(dtype=float)
        ok = ~np.isnan(values)
        assert got[ok] == pytest.approx(np.array(values)[ok], abs=6e-6)
    assert not cc.loc[[1308, 1317], "ols_estimable"].any()
    assert cc.loc[[1308, 1317], ["b0_ols", "b3_ols", "b0_reliability"]].isna().all().all()
    assert cc["ols_estimable"].sum() < len(cc)


def test_reliability_of_the_null_model_is_the_textbook_formula(hsb):
    res = mlmwrap.fit("mathach = b0 + e\nb0 = g00 + u0", hsb, cluster="school")
    cc = cluster_coefficients(res)
    tau = res.tau.iloc[0, 0]
    expected = tau / (tau + res.sigma2 / cc["n"])
    assert cc["b0_reliability"].to_numpy() == pytest.approx(expected.to_numpy(), rel=1e-10)
    assert reliabilities(res)["u0"] == pytest.approx(expected.mean(), rel=1e-12)
    # Raudenbush & Bryk (2002), Table 4.2, as printed by HLM: 0.901
    assert reliabilities(res)["u0"] == pytest.approx(0.901, abs=5e-4)


def test_layout_and_the_fixed_beta_gets_its_level2_part(hsb):
    res = mlmwrap.fit(
        "mathach = b0 + b1*cwc(ses) + e\nb0 = g00 + u0\nb1 = g10 + g11*sector",
        hsb,
        cluster="school",
    )
    cc = cluster_coefficients(res)
    assert list(cc.columns) == [
        "n", "u0", "u0_sd", "b0", "b1", "b0_ols", "b1_ols", "b0_reliability", "ols_estimable"
    ]  # fmt: skip
    assert cc.index.name == "school" and len(cc) == 160
    g = res.gamma["estimate"]
    sector = hsb.groupby("school")["sector"].first()
    assert cc["b1"].to_numpy() == pytest.approx((g["g10"] + g["g11"] * sector).to_numpy())
    assert cc["n"].sum() == res.nobs


def test_small_and_rank_deficient_clusters_have_no_ols(hsb):
    data = hsb[hsb["school"].isin(hsb["school"].unique()[:30])].copy()
    one = data["school"].unique()[0]
    data.loc[data["school"] == one, "ses"] = 0.25  # ses constant in one school
    tiny = data["school"].unique()[1]
    keep = (data["school"] != tiny) | (data.groupby("school").cumcount() < 1)
    data = data[keep]  # a school of 1 student: fewer rows than 2 coefficients
    before = data.copy()
    res = mlmwrap.fit(RC, data, cluster="school")
    cc = cluster_coefficients(res)
    assert not cc.loc[one, "ols_estimable"] and np.isnan(cc.loc[one, "b1_ols"])
    assert not cc.loc[tiny, "ols_estimable"] and cc.loc[tiny, "n"] == 1
    assert cc["ols_estimable"].sum() == 28
    assert np.isfinite(cc.loc[[one, tiny], ["u0", "u1", "b0"]].to_numpy()).all()
    pd.testing.assert_frame_equal(data, before)


def test_a_zero_variance_gives_zero_effects(boundary_data):
    with pytest.warns(mlmwrap.BoundaryWarning):
        res = mlmwrap.fit(
            "y = b0 + b1*x + e\nb0 = g00 + g01*w + u0\nb1 = g10", boundary_data, "cluster"
        )
    u, cov = empirical_bayes(res)
    assert np.allclose(u, 0.0, atol=1e-6) and np.allclose(cov, 0.0, atol=1e-8)
