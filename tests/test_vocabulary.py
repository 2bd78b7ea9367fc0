"""One vocabulary across results, checked against lme4 where lme4 has the number.

Golden numbers: reference/issue12_ecosystem.json (made by issue12_ecosystem.R: lme4 coef(),
ranef(condVar = TRUE) postVar, fitted(), residuals()). Tolerance 1e-5 relative: the optima
agree to about 1e-7 in the deviance.
"""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mlmwrap
from mlmwrap.cli import DEMO_EQUATIONS

GOLD = json.loads((Path(__file__).parent / "reference" / "issue12_ecosystem.json").read_text())
RC = "mathach = b0 + b1*cwc(ses) + e\nb0 = g00 + u0\nb1 = g10 + u1"
SCHOOLS = [int(s) for s in GOLD["coef_rc"]["school"]]


@pytest.fixture(scope="module")
def rc(hsb):
    return mlmwrap.fit(RC, hsb, cluster="school")


@pytest.fixture(scope="module")
def isao(hsb):
    return mlmwrap.fit(DEMO_EQUATIONS, hsb, cluster="school")


def test_coef_is_lme4s_coef(rc, isao):
    got = rc.coef().loc[SCHOOLS]
    np.testing.assert_allclose(got["(Intercept)"], GOLD["coef_rc"]["intercept"], rtol=1e-5)
    np.testing.assert_allclose(got["cwc(ses)"], GOLD["coef_rc"]["cwc_ses"], rtol=1e-5)
    got = isao.coef().loc[SCHOOLS]
    gold = GOLD["coef_isao"]
    assert list(got.columns) == list(isao.gamma["term"])
    # The ISAO slope variance sits on a nearly flat deviance surface (DESIGN.md section 4):
    # both optima have deviance 46503.664, and the EB effects agree to 1e-3 of their SD.
    sd = np.sqrt(np.diag(isao.tau.to_numpy()))
    for column, key, k in [
        ("(Intercept)", "intercept", 0),
        ("meanses", "meanses", 0),
        ("sector", "sector", 0),
        ("cwc(ses)", "cwc_ses", 1),
        ("cwc(ses):meanses", "meanses_cwc_ses", 1),
    ]:
        np.testing.assert_allclose(got[column], gold[key], rtol=0, atol=1e-3 * sd[k])


def test_posterior_covariances_are_lme4s_postvar(rc):
    cov = rc.posterior_covariances()
    assert cov.index.names == ["school", "effect"] and list(cov.columns) == ["u0", "u1"]
    gold = GOLD["postvar_rc"]
    for k, school in enumerate(SCHOOLS):
        block = cov.loc[school]
        assert list(block.index) == ["u0", "u1"]
        np.testing.assert_allclose(
            block.to_numpy(),
            [[gold["v00"][k], gold["v01"][k]], [gold["v01"][k], gold["v11"][k]]],
            rtol=1e-4,
        )
    sd = rc.cluster_coefficients()["u1_sd"]
    np.testing.assert_allclose(np.sqrt(cov.xs("u1", level="effect")["u1"]), sd, rtol=1e-12)


def test_residuals_are_lme4s_fitted_and_residuals(rc):
    r = rc.residuals().iloc[:8]
    gold = GOLD["resid_rc"]
    np.testing.assert_allclose(r["fitted"], gold["fitted"], rtol=1e-5)
    np.testing.assert_allclose(r["residual"], gold["residual"], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(r["fixed"], gold["fixed"], rtol=1e-5)


def test_the_same_random_effect_has_the_same_index_everywhere(isao):
    labels = list(isao.tau.index)
    assert list(isao.variance_tests().index) == labels
    assert list(isao.reliabilities().index) == labels
    assert list(isao.posterior_covariances().columns) == labels
    assert list(isao.variance_components.index[:-1]) == labels
    np.testing.assert_allclose(
        isao.reliabilities(), isao.variance_tests()["reliability"], rtol=1e-12
    )


def test_the_lr_statistic_is_chi2_everywhere(hsb, rc, isao):
    null = mlmwrap.fit("mathach = b0 + e\nb0 = g00 + u0", hsb, cluster="school")
    table = mlmwrap.compare(null, isao).table
    assert "chi2" in table.columns and "chisq" not in table.columns
    assert "chi2" in isao.variance_tests().columns
    np.testing.assert_allclose(table["loglik"], -table["deviance"] / 2)


def test_compare_refit_ml(hsb, rc):
    ri = mlmwrap.fit("mathach = b0 + b1*cwc(ses) + e\nb0 = g00 + u0\nb1 = g10", hsb, "school")
    auto = mlmwrap.compare(ri, rc).table  # same fixed part: REML criteria compared
    assert set(auto["method"]) == {"REML"} and not auto["refit"].any()
    forced = mlmwrap.compare(ri, rc, refit_ml=True).table
    assert set(forced["method"]) == {"ML"} and forced["refit"].all()
    # lme4: anova(ri, rc) refits by ML; deviances 46720.412 and 46710.979 (README, hsb_lme4)
    np.testing.assert_allclose(forced["deviance"], [46720.412, 46710.979], atol=2e-3)
    assert ri.compare(rc, refit_ml=False).table["method"].iloc[0] == "REML"
    null = mlmwrap.fit("mathach = b0 + e\nb0 = g00 + u0", hsb, cluster="school")
    with pytest.raises(mlmwrap.SpecificationError, match="differ in their fixed parts"):
        mlmwrap.compare(null, rc, refit_ml=False)
    with pytest.raises(mlmwrap.DataError, match="refit_ml must be"):
        mlmwrap.compare(null, rc, refit_ml="sometimes")


def test_effects_carry_their_weights(hsb):
    res = mlmwrap.fit(
        "mathach = b0 + b1*cwc(ses) + e\nb0 = g00 + g01*cmean(ses) + u0\nb1 = g10",
        hsb,
        cluster="school",
    )
    table = res.effects()
    assert table.loc[("ses", "contextual"), "weights"] == {"g01": 1.0, "g10": -1.0}
    w = res.effect_weights()
    np.testing.assert_allclose(w.to_numpy() @ res.gamma["estimate"], table["estimate"])
    se = np.sqrt(np.diag(w.to_numpy() @ res.cov_gamma.to_numpy() @ w.to_numpy().T))
    np.testing.assert_allclose(se, table["se"], rtol=1e-12)


def test_top_level_functions_are_callable(hsb, rc):
    assert callable(mlmwrap.describe) and callable(mlmwrap.variance_explained)
    table = mlmwrap.describe(hsb, ["mathach", "ses"], cluster="school")
    means = hsb.groupby("school")["ses"].transform("mean")
    assert table.loc["ses", "sd_within"] == pytest.approx(np.std(hsb["ses"] - means, ddof=1))
    school_means = hsb.groupby("school")["mathach"].mean()
    assert table.loc["mathach", "sd_between"] == pytest.approx(school_means.std(ddof=1))
    icc = mlmwrap.icc(hsb, ["mathach", "ses"], cluster="school")
    np.testing.assert_allclose(table["icc"], icc["icc"])
    null = mlmwrap.fit("mathach = b0 + e\nb0 = g00 + u0", hsb, cluster="school")
    pd.testing.assert_frame_equal(mlmwrap.variance_explained(rc, null), rc.variance_explained(null))
    assert isinstance(mlmwrap.variance_explained(rc), pd.Series)
    import mlmwrap.analysis.describe as describe_module  # the modules stay importable
    import mlmwrap.analysis.variance_explained as ve_module

    assert describe_module.describe is mlmwrap.describe and ve_module.r2


def test_icc_columns_say_which_estimator(hsb):
    cols = mlmwrap.icc(hsb, "mathach", cluster="school").columns
    assert {"icc", "reliability", "icc1_anova", "icc2_anova"} <= set(cols)
    assert "icc1" not in cols and "icc2" not in cols


def test_report_text_is_the_summary(rc):
    assert rc.report("text") == rc.summary()
