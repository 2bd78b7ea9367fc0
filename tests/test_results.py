"""The results object: derived numbers, the statsmodels view, and the displays."""

import numpy as np
import pytest
from scipy import stats
from statsmodels.regression.mixed_linear_model import MixedLMResults

import mlmwrap

NULL = "mathach = b0 + e\nb0 = g00 + u0"
ISAO = """
mathach = b0 + b1*cwc(ses) + e
b0 = g00 + g01*meanses + g02*sector + u0
b1 = g10 + g11*meanses + g12*sector + u1
"""


@pytest.fixture(scope="module")
def isao(hsb):
    return mlmwrap.fit(ISAO, hsb, cluster="school")


def test_icc_of_the_null_model_is_raudenbush_and_bryks(hsb, lme4_hsb):
    res = mlmwrap.fit(NULL, hsb, cluster="school")
    ref = lme4_hsb["null"]
    tau00 = ref["tau"][0][0]
    assert res.icc == pytest.approx(tau00 / (tau00 + ref["sigma2"]), rel=1e-4)
    assert round(res.icc, 2) == 0.18  # Raudenbush & Bryk (2002), Table 4.2
    assert res.icc_name == "ICC"
    assert "ICC: 0.180" in res.summary()


def test_other_models_report_a_residual_icc(isao):
    tau00 = isao.tau.loc["u0", "u0"]
    assert isao.icc == pytest.approx(tau00 / (tau00 + isao.sigma2))
    assert isao.icc_name.startswith("residual ICC")


def test_information_criteria_follow_lme4(isao, hsb):
    # lme4: AIC = deviance + 2k, BIC = deviance + k log(n); k = 6 gammas + 3 tau + sigma2.
    assert isao.n_params == 10
    assert isao.aic == pytest.approx(isao.deviance + 20)
    assert isao.bic == pytest.approx(isao.deviance + 10 * np.log(7185))
    assert isao.loglik == pytest.approx(-isao.deviance / 2)


def test_gamma_table_columns_and_labels(isao, lme4_hsb):
    """By default the gammas get t-tests with Satterthwaite df (lmerTest's default)."""
    g = isao.gamma
    assert list(g.index) == ["g00", "g01", "g02", "g10", "g11", "g12"]
    assert list(g.columns) == [
        "estimate", "se", "df", "t", "p", "ci_lower", "ci_upper",
        "beta", "level1", "predictor", "term",
    ]  # fmt: skip
    row = g.loc["g11"]
    assert (row["beta"], row["level1"], row["predictor"], row["term"]) == (
        "b1",
        "cwc(ses)",
        "meanses",
        "cwc(ses):meanses",
    )
    assert row["t"] == pytest.approx(row["estimate"] / row["se"])
    crit = stats.t.ppf(0.975, row["df"])
    assert row["ci_upper"] - row["estimate"] == pytest.approx(crit * row["se"], rel=1e-6)
    assert g.loc["g00", "predictor"] == "(constant)" and g.loc["g00", "term"] == "(Intercept)"
    assert isao.df_method == "satterthwaite" and "Satterthwaite" in isao.inference


def test_df_methods_switch_without_refit(isao, hsb):
    z = isao.with_inference("z")
    assert "df" not in z.gamma.columns and z.df_method == "z"
    row = z.gamma.loc["g11"]
    assert row["z"] == pytest.approx(row["estimate"] / row["se"])
    assert row["ci_upper"] - row["estimate"] == pytest.approx(1.959964 * row["se"], rel=1e-6)
    kr = isao.with_inference("kenward-roger")
    assert kr.df_method == "kenward-roger" and (kr.gamma["se"] >= isao.gamma["se"]).all()
    assert "Kenward-Roger adjusted" in kr.summary()
    assert isao.df_method == "satterthwaite"  # the original is unchanged
    fitted = mlmwrap.fit(ISAO, hsb, cluster="school", df="hlm")
    assert (fitted.gamma.loc[["g00", "g01", "g02"], "df"] == 160 - 2 - 1).all()
    with pytest.raises(mlmwrap.MLMError, match="unknown df method"):
        mlmwrap.fit(ISAO, hsb, cluster="school", df="bonferroni")


def test_tau_correlations_and_variance_components(isao):
    tau = isao.tau.to_numpy()
    r = tau[0, 1] / np.sqrt(tau[0, 0] * tau[1, 1])
    assert isao.tau_corr.loc["u1", "u0"] == pytest.approx(r)
    assert list(isao.tau.index) == ["u0", "u1"] == list(isao.tau.columns)
    vc = isao.variance_components
    assert list(vc.index) == ["u0", "u1", "e"]
    assert vc.loc["e", "variance"] == isao.sigma2
    assert vc.loc["u1", "sd"] == pytest.approx(np.sqrt(tau[1, 1]))


def test_cluster_size_summary(isao, hsb):
    sizes = hsb.groupby("school").size()
    assert isao.cluster_sizes == {
        "min": sizes.min(),
        "mean": pytest.approx(sizes.mean()),
        "max": sizes.max(),
    }
    assert (isao.nobs, isao.n_clusters) == (7185, 160)


def test_statsmodels_view_agrees(isao):
    sm = isao.statsmodels
    assert isinstance(sm._results, MixedLMResults)
    # statsmodels' columns are patsy's, in patsy's order; design.patsy_fixed_names maps them.
    names = isao.design.patsy_fixed_names
    assert names == ["Intercept", "meanses", "sector", "cwc_ses", "cwc_ses:meanses",
                     "cwc_ses:sector"]  # fmt: skip
    assert sorted(sm.fe_params.index) == sorted(names)
    np.testing.assert_allclose(sm.fe_params[names], isao.gamma["estimate"], rtol=1e-12)
    np.testing.assert_allclose(sm.bse_fe[names], isao.gamma["se"], rtol=1e-12)
    assert sm.model.data.exog_re_names == ["school", "cwc_ses"]  # its intercept's name
    np.testing.assert_allclose(np.asarray(sm.cov_re), isao.tau.to_numpy(), rtol=1e-12)
    assert sm.model.formula == isao.formulas.fixed
    assert sm.scale == pytest.approx(isao.sigma2)
    # statsmodels' own REML log-likelihood at the same point: lme4's REML criterion / -2.
    assert sm.llf == pytest.approx(isao.loglik, abs=1e-6)
    assert "cwc_ses:meanses" in str(sm.summary())


def test_statsmodels_refit_from_our_optimum_stays_there(isao):
    """statsmodels' own optimizer, started at mlmwrap's answer, finds nothing better."""
    sm = isao.statsmodels
    refit = sm.model.fit(start_params=sm.params_object, reml=True, method="bfgs")
    assert refit.llf <= sm.llf + 1e-6
    np.testing.assert_allclose(refit.fe_params, sm.fe_params, rtol=1e-5)


def test_summary_reads_like_hlm(isao):
    text = isao.summary()
    for piece in [
        "Multilevel model of mathach, estimated by REML",
        "7185 in 160 clusters (school); cluster size min 14, mean 44.9, max 67",
        "Level 1:   mathach = b0 + b1*cwc(ses) + e",
        "b1 = g10 + g11*meanses + g12*sector + u1",
        "Mixed:     mathach = g00 + g01*meanses",
        "b1 (slope of cwc(ses))",
        "Variance components",
        "Deviance (REML criterion): 46503.664",
        "Converged: yes",
        "Chi-square tests of tau = 0 (HLM; per-cluster OLS, 160 of 160 clusters)",
    ]:
        assert piece in text, piece
    assert str(isao) == text
    assert max(len(line) for line in text.splitlines()) <= 100
    line = next(ln for ln in text.splitlines() if ln.strip().startswith("g12"))
    assert "-1.643" in line and "0.240" in line
    tests = isao.variance_tests()
    line = [ln for ln in text.splitlines() if ln.strip().startswith("u1")][-1]
    assert f"{tests.loc['u1', 'chi2']:.2f}" in line
    assert f"{tests.loc['u1', 'reliability']:.3f}" in line


def test_html_display(isao):
    html = isao._repr_html_()
    assert html.count("<table class") <= 1 and "g12" in html and "u1" in html
    assert html.count("<caption") == 3  # gammas, variance components, chi-square tests
    assert "&lt;.001" in html and "<.001" not in html  # text is escaped
    assert "corr. u0" in html and "0.391" in html
    assert "Deviance (REML criterion): 46503.664" in html


def test_repr_is_one_line(isao):
    text = repr(isao)
    assert "\n" not in text and "REML deviance 46503.664" in text


def test_cov_gamma_and_model_frame(isao, hsb):
    cov = isao.cov_gamma
    assert list(cov.index) == list(isao.gamma.index) == list(cov.columns)
    np.testing.assert_allclose(np.sqrt(np.diag(cov)), isao.gamma["se"], rtol=1e-12)
    np.testing.assert_allclose(cov.to_numpy(), cov.to_numpy().T)
    frame = isao.model_frame
    # The raw columns, the derived column the formulas use, and the cluster.
    assert set(frame.columns) == {"mathach", "ses", "meanses", "sector", "school", "cwc_ses"}
    by_hand = hsb["ses"] - hsb.groupby("school")["ses"].transform("mean")
    np.testing.assert_allclose(frame["cwc_ses"], by_hand, atol=1e-12)
    assert frame.index.equals(hsb.index) and isao.data is hsb
    assert isao.cluster_stats.cross.shape == (160, 9, 9)  # [X (6), Z (2), y]


def test_tau_by_level_of_a_two_level_model(isao):
    assert list(isao.tau_by_level) == ["school"]
    assert isao.tau_by_level["school"].equals(isao.tau)
