"""mlmwrap.compare: likelihood-ratio tests, ML refits, boundary mixtures, the build-up strategy.

Golden numbers: reference/hsb_inference.json (lrt_*, made by hsb_inference.R) and
reference/issue4_compare_r2.json (made by issue4_compare_r2.R: lme4 anova() tables,
performance::r2_nakagawa). Tolerances: chi-square and deviances 1e-3 absolute; p-values 1e-3
relative or 1e-6 absolute; R² 1e-3 relative.
"""

import copy
import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mlmwrap
from mlmwrap.analysis.compare import compare, lr_test
from mlmwrap.api.build_up import build_up
from mlmwrap.errors import ConvergenceWarning, DataError, SpecificationError

REFERENCE = Path(__file__).parent / "reference"
INFERENCE = json.loads((REFERENCE / "hsb_inference.json").read_text())
EXTRA = json.loads((REFERENCE / "issue4_compare_r2.json").read_text())

NULL = "mathach = b0 + e\nb0 = g00 + u0"
RI = "mathach = b0 + b1*cwc(ses) + e\nb0 = g00 + u0\nb1 = g10"
RC = "mathach = b0 + b1*cwc(ses) + e\nb0 = g00 + u0\nb1 = g10 + u1"
ISAO = """mathach = b0 + b1*cwc(ses) + e
b0 = g00 + g01*meanses + g02*sector + u0
b1 = g10 + g11*meanses + g12*sector + u1"""


def close_p(actual, expected):
    return abs(actual - expected) <= max(1e-3 * abs(expected), 1e-6)


@pytest.fixture(scope="module")
def fits(hsb):
    return {
        name: mlmwrap.fit(text, hsb, cluster="school")
        for name, text in [("null", NULL), ("ri", RI), ("rc", RC), ("isao", ISAO)]
    }


# -- golden numbers ---------------------------------------------------------------------------
def test_random_slope_reml_lrt_matches_lme4_and_uses_the_mixture(fits):
    gold = INFERENCE["lrt_ri_vs_rc_reml"]
    cmp = compare(fits["ri"], fits["rc"], names=["ri", "rc"])
    row = cmp.table.loc["rc"]
    assert list(cmp.table["method"]) == ["REML", "REML"]
    assert not cmp.table["refit"].any()
    assert abs(row["chi2"] - gold["chisq"]) < 1e-3
    assert row["df"] == gold["df"]
    assert close_p(row["p_naive"], gold["p_naive"])
    assert close_p(row["p"], gold["p_mixture_50_50_chi1_chi2"])
    assert row["reference"] == "0.5 chi2(1) + 0.5 chi2(2)"
    assert "REML deviances compared" in " ".join(cmp.notes)


def test_fixed_part_lrt_refits_by_ml_and_matches_lme4(fits):
    gold = INFERENCE["lrt_rc_vs_isao_ml"]
    cmp = compare(fits["rc"], fits["isao"])
    t = cmp.table
    assert list(t["method"]) == ["ML", "ML"] and t["refit"].all()
    np.testing.assert_allclose(t["deviance"], gold["deviance_ml"], atol=1e-3, rtol=0)
    np.testing.assert_allclose(t["aic"], gold["aic"], atol=1e-3, rtol=0)
    np.testing.assert_allclose(t["bic"], gold["bic"], atol=1e-3, rtol=0)
    assert abs(t["chi2"].iloc[1] - gold["chisq"]) < 1e-3
    assert t["df"].iloc[1] == gold["df"]
    assert close_p(t["p"].iloc[1], gold["p"]) and t["p"].iloc[1] == t["p_naive"].iloc[1]
    assert all(not r.reml for r in cmp.results)
    assert fits["rc"].reml and fits["isao"].reml  # the caller's fits are untouched
    assert "refit by ML" in " ".join(cmp.notes)


def test_build_up_matches_lme4_anova_of_the_four_models(hsb, fits):
    gold = EXTRA["buildup_anova_ml"]
    bu = build_up([NULL, RI, RC, ISAO], hsb, cluster="school")
    t = bu.table
    np.testing.assert_allclose(t["deviance"], gold["deviance"], atol=1e-3, rtol=0)
    assert list(t["n_params"]) == gold["npar"]
    np.testing.assert_allclose(t["aic"], gold["aic"], atol=1e-3, rtol=0)
    np.testing.assert_allclose(t["bic"], gold["bic"], atol=1e-3, rtol=0)
    np.testing.assert_allclose(t["chi2"].iloc[1:], gold["chisq"][1:], atol=1e-3, rtol=0)
    assert list(t["df"].iloc[1:]) == gold["df"][1:]
    for k in range(1, 4):
        assert close_p(t["p_naive"].iloc[k], gold["p"][k])
    # only the random-slope step tests a variance on the boundary
    assert t["p"].iloc[2] < t["p_naive"].iloc[2]
    assert t["p"].iloc[3] == t["p_naive"].iloc[3]


def test_two_random_effects_at_once_report_the_conservative_naive_p(hsb):
    gold = EXTRA["lrt_two_slopes_reml"]
    fixed = "mathach = b0 + b1*cwc(ses) + b2*cwc(minority) + e\nb0 = g00 + u0\n"
    small = mlmwrap.fit(fixed + "b1 = g10\nb2 = g20", hsb, cluster="school")
    large = mlmwrap.fit(fixed + "b1 = g10 + u1\nb2 = g20 + u2", hsb, cluster="school")
    cmp = compare(small, large)
    row = cmp.table.iloc[1]
    np.testing.assert_allclose(cmp.table["deviance"], gold["deviance"], atol=1e-3, rtol=0)
    assert abs(row["chi2"] - gold["chisq"]) < 1e-3 and row["df"] == gold["df"]
    assert close_p(row["p_naive"], gold["p_naive"]) and row["p"] == row["p_naive"]
    assert "conservative" in row["reference"]
    assert "no closed form" in " ".join(cmp.notes)


# -- the boundary rule ------------------------------------------------------------------------
def test_lr_test_mixture_rule():
    from scipy import stats

    p, naive, ref = lr_test(3.0, 3, random_added=1)
    assert p == pytest.approx(0.5 * stats.chi2.sf(3.0, 2) + 0.5 * stats.chi2.sf(3.0, 3))
    assert naive == pytest.approx(stats.chi2.sf(3.0, 3)) and ref.startswith("0.5 chi2(2)")
    # one variance and nothing else: chi2(0) is the point mass at 0, so p is halved
    p, naive, _ = lr_test(2.0, 1, random_added=1)
    assert p == pytest.approx(naive / 2)
    assert lr_test(0.0, 1, random_added=1)[0] == pytest.approx(1.0)
    p, naive, ref = lr_test(5.0, 2, random_added=0)
    assert p == naive == pytest.approx(stats.chi2.sf(5.0, 2)) and ref == "chi2(2)"
    assert np.isnan(lr_test(0.0, 0, random_added=0)[0])


def test_random_slope_and_gammas_added_together_shift_both_mixture_components(fits):
    cmp = compare(fits["ri"], fits["isao"])
    row = cmp.table.iloc[1]
    # 4 gammas + u1's variance and covariance: df 6, mixture of chi2(5) and chi2(6)
    assert row["df"] == 6 and row["reference"] == "0.5 chi2(5) + 0.5 chi2(6)"
    assert "u1" in row["added"] and "g01" in row["added"]


# -- refusing what cannot be compared ---------------------------------------------------------
def test_different_samples_are_refused_with_the_reason(hsb, fits):
    data = hsb.copy()
    data.loc[data.index[:30], "meanses"] = np.nan
    before = data.copy()
    with_missing = mlmwrap.fit(
        "mathach = b0 + e\nb0 = g00 + g01*meanses + u0", data, cluster="school"
    )
    with pytest.raises(DataError) as err:
        compare(fits["null"], with_missing, names=["null", "meanses"])
    text = str(err.value)
    assert "different samples" in text and "missing in 'meanses'" in text
    assert "complete cases" in text
    pd.testing.assert_frame_equal(data, before)


def test_different_outcomes_are_refused(hsb, fits):
    other = mlmwrap.fit("ses = b0 + e\nb0 = g00 + u0", hsb, cluster="school")
    with pytest.raises(DataError, match="different outcomes"):
        compare(other, fits["ri"])


def test_non_nested_models_are_refused_naming_the_missing_terms(hsb):
    a = mlmwrap.fit("mathach = b0 + e\nb0 = g00 + g01*meanses + u0", hsb, cluster="school")
    b = mlmwrap.fit("mathach = b0 + e\nb0 = g00 + g01*sector + u0", hsb, cluster="school")
    with pytest.raises(SpecificationError) as err:
        compare(a, b, names=["A", "B"])
    assert "'A' is not nested in 'B'" in str(err.value) and "g01 (meanses)" in str(err.value)


def test_larger_model_first_is_refused(fits):
    with pytest.raises(SpecificationError, match="random effect of cwc"):
        compare(fits["rc"], fits["ri"])


def test_nesting_is_checked_on_columns_not_names(hsb):
    raw = mlmwrap.fit("mathach = b0 + b1*ses + e\nb0 = g00 + u0\nb1 = g10", hsb, cluster="school")
    grand = mlmwrap.fit(
        "mathach = b0 + b1*cgm(ses) + e\nb0 = g00 + u0\nb1 = g10 + u1", hsb, cluster="school"
    )
    cmp = compare(raw, grand)  # cgm(ses) spans what ses spans next to the intercept
    assert cmp.table["df"].iloc[1] == 2
    within = mlmwrap.fit(
        "mathach = b0 + b1*cwc(ses) + e\nb0 = g00 + u0\nb1 = g10 + u1", hsb, cluster="school"
    )
    with pytest.raises(SpecificationError, match=r"g10 \(ses\)"):
        compare(raw, within)


def test_bad_arguments_get_clear_errors(fits):
    with pytest.raises(DataError, match="not a fitted model"):
        compare(fits["ri"], "mathach = b0 + e")
    with pytest.raises(DataError, match="at least two"):
        compare(fits["ri"])
    with pytest.raises(DataError, match="2 names for 3 models"):
        compare(fits["null"], fits["ri"], fits["rc"], names=["a", "b"])
    with pytest.raises(DataError, match="data= and cluster="):
        build_up([NULL, RI])


def test_a_larger_model_with_a_worse_fit_warns(fits):
    broken = copy.copy(fits["rc"])
    broken.deviance = fits["ri"].deviance + 1.0
    with pytest.warns(ConvergenceWarning, match="fits worse"):
        cmp = compare(fits["ri"], broken)
    assert cmp.table["chi2"].iloc[1] == 0.0


def test_ml_and_reml_fits_with_one_fixed_part_are_put_on_ml(hsb, fits):
    ri_ml = mlmwrap.fit(RI, hsb, cluster="school", reml=False)
    cmp = compare(ri_ml, fits["rc"])
    assert list(cmp.table["refit"]) == [False, True]
    assert "different methods" in " ".join(cmp.notes)


# -- display ----------------------------------------------------------------------------------
def test_text_and_html_show_the_table_and_the_notes(fits):
    cmp = compare(fits["ri"], fits["rc"], names=["RANCOVA", "random slope"])
    text = str(cmp)
    assert "RANCOVA" in text and "9.762" in text
    assert "random slope adds random u1 (cwc(ses)); p from 0.5 chi2(1) + 0.5 chi2(2)" in text
    assert max(len(line) for line in text.splitlines()) <= 100
    page = cmp._repr_html_()
    assert page.count("<tr>") == 3 and "0.5 chi2(1) + 0.5 chi2(2)" in page
    assert repr(cmp) == "<Comparison of 2 models: RANCOVA, random slope>"


# -- build-up: variance explained --------------------------------------------------------------
def test_build_up_tracks_variance_explained(hsb, fits):
    gold = EXTRA["buildup_r2_nakagawa"]
    bu = build_up([fits["null"], RI, RC, ISAO], hsb, "school", names=["0", "1", "2", "3"])
    v = bu.variance
    np.testing.assert_allclose(v.loc[["1", "2"], "r2_marginal"], gold["marginal"], rtol=1e-3)
    np.testing.assert_allclose(v.loc[["1", "2"], "r2_conditional"], gold["conditional"], rtol=1e-3)
    # the null model's conditional R² is its ICC
    assert v.loc["0", "r2_conditional"] == pytest.approx(INFERENCE["icc_null"]["icc"], rel=1e-3)
    tau_rc, tau_isao = fits["rc"].tau.iloc[0, 0], fits["isao"].tau.iloc[0, 0]
    assert v.loc["3", "tau00_reduction"] == pytest.approx((tau_rc - tau_isao) / tau_rc)
    s_null, s_ri = fits["null"].sigma2, fits["ri"].sigma2
    assert v.loc["1", "sigma2_reduction"] == pytest.approx((s_null - s_ri) / s_null)
    assert np.isnan(v.loc["0", "sigma2_reduction"])
    np.testing.assert_allclose(v["delta_r2_marginal"].iloc[1:], np.diff(v["r2_marginal"]))
    # adding group-centered SES raises tau00 a little: a negative reduction, explained
    assert v.loc["1", "tau00_reduction"] < 0 and "negative PRV" in " ".join(bu.notes)
    text = str(bu)
    assert "Variance explained" in text and "-0.007" in text
    assert "<table" in bu._repr_html_() and bu._repr_html_().count("<table") == 2
    assert all(r.reml for r in bu.results)


def test_build_up_fits_every_model_on_the_common_complete_rows(hsb):
    data = hsb.copy()
    data.loc[data.index[:25], "sector"] = np.nan
    before = data.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bu = build_up([RC, ISAO], data, cluster="school")
    assert all(r.nobs == len(hsb) - 25 for r in bu.results)
    assert "7160 of 7185 rows" in " ".join(bu.notes)
    pd.testing.assert_frame_equal(data, before)


def test_singular_fits_are_flagged_in_the_notes(boundary_data):
    base = "y = b0 + b1*x + e\nb0 = g00 + g01*w + u0\n"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # both fits are singular and say so when fitted
        small = mlmwrap.fit(base + "b1 = g10", boundary_data, cluster="cluster")
        large = mlmwrap.fit(base + "b1 = g10 + u1", boundary_data, cluster="cluster")
    cmp = compare(small, large)
    notes = " ".join(cmp.notes)
    assert "'M2' is a singular fit" in notes and "'M1' is itself a singular fit" in notes
    assert cmp.table["p"].iloc[1] == pytest.approx(1.0)
