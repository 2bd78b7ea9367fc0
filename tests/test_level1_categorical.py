"""Categorical predictors at level 1: ``b1*C(x)``, fixed or random, two and three levels.

Golden numbers: reference/issue9_level1_categorical.json (lme4 1.1-31, lmerTest 3.1-3 for the
Satterthwaite df, pbkrtest for Kenward-Roger, clubSandwich for CR2, performance for Nakagawa's
R², made by reference/issue9_level1_categorical.R) and the ``hsb_cat*`` models of
reference/issue9_three_level.json (reference/issue9_three_level.R). Tolerances: gammas 1e-4
relative, SEs, tau and sigma2 1e-3 relative, deviance 1e-3 absolute, lmerTest df 1e-2 relative.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from conftest import DATA, REFERENCE
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mlmwrap
from mlmwrap.errors import DataError, MLMError
from mlmwrap.language.equations import parse_equations
from mlmwrap.model.design import build_design

# -- the models and how lme4 names their coefficients -------------------------------------------
HSB_MIN = (
    "mathach = b0 + b1*C(minority) + b2*cwc(ses) + e\nb0 = g00 + g01*cmean(ses) + u0\nb2 = g20\n"
)
MODELS = {  # golden key -> (equations, data file, cluster, {lme4 name: mlmwrap label})
    "hsb_cat_cross": (
        "mathach = b0 + b1*C(ses_group) + e\nb0 = g00 + g01*cmean(ses) + u0\n"
        "b1 = g10 + g11*cmean(ses)",
        "hsb_level1_cat.csv.gz",
        "school",
        {
            "(Intercept)": "g00",
            "ses_grouplow": "g10[low]",
            "ses_groupmid": "g10[mid]",
            "cm_ses": "g01",
            "ses_grouplow:cm_ses": "g11[low]",
            "ses_groupmid:cm_ses": "g11[mid]",
        },
    ),
    "hsb_min_random": (
        HSB_MIN + "b1 = g10 + g11*cmean(ses) + u1",
        "hsb_level1_cat.csv.gz",
        "school",
        {
            "(Intercept)": "g00",
            "minority1": "g10[1]",
            "cm_ses": "g01",
            "cwc_ses": "g20",
            "minority1:cm_ses": "g11[1]",
        },
    ),
    "hsb_min_fixed": (HSB_MIN + "b1 = g10 + g11*cmean(ses)", "hsb_level1_cat.csv.gz", "school", {}),
    "hsb_cat_diag": (
        "mathach = b0 + b1*C(ses_group) + e\nb0 = g00 + u0\nb1 = g10 + u1\ncov(u0, u1) = 0",
        "hsb_level1_cat.csv.gz",
        "school",
        {"(Intercept)": "g00", "ses_grouplow": "g10[low]", "ses_groupmid": "g10[mid]"},
    ),
    "exam_intake": (
        "normexam = b0 + b1*C(intake) + b2*standLRT + e\nb0 = g00 + g01*schavg + u0\n"
        "b1 = g10 + g11*schavg\nb2 = g20 + u2",
        "exam.csv.gz",
        "school",
        {
            "(Intercept)": "g00",
            "intakemid 50%": "g10[mid 50%]",
            "intaketop 25%": "g10[top 25%]",
            "schavg": "g01",
            "standLRT": "g20",
            "intakemid 50%:schavg": "g11[mid 50%]",
            "intaketop 25%:schavg": "g11[top 25%]",
        },
    ),
}
MODELS["hsb_min_fixed"] = (*MODELS["hsb_min_fixed"][:3], MODELS["hsb_min_random"][3])
CAT = {"(Intercept)": "g00", "ses_grouplow": "g10[low]", "ses_groupmid": "g10[mid]"}
RI = "mathach = b0 + b1*C(ses_group) + e\nb0 = g00 + u0\n"
THREE_LEVEL_JSON = {  # models of issue9_three_level.json
    "hsb_cat": (RI + "b1 = g10", CAT),
    "hsb_cat_slope": (
        "mathach = b0 + b1*C(ses_group) + b2*minority + e\nb0 = g00 + u0\nb1 = g10\nb2 = g20 + u2",
        {**CAT, "minority": "g20"},
    ),
    "hsb_cat_int": (
        "mathach = b0 + b1*C(ses_tert) + e\nb0 = g00 + u0\nb1 = g10",
        {"(Intercept)": "g00", "ses_tert2": "g10[2]", "ses_tert3": "g10[3]"},
    ),
}
TAU_NAMES = {  # lme4's random-effect names -> mlmwrap's
    "(Intercept)": "u0",
    "minority1": "u1[1]",
    "standLRT": "u2",
    "minority": "u2",
    "dummy(ses_group)low": "u1[low]",
    "dummy(ses_group)mid": "u1[mid]",
    "ses_grouplow": "u1[low]",
    "ses_groupmid": "u1[mid]",
}


@pytest.fixture(scope="module")
def golden() -> dict:
    return json.loads((REFERENCE / "issue9_level1_categorical.json").read_text())["models"]


@pytest.fixture(scope="module")
def golden9() -> dict:
    return json.loads((REFERENCE / "issue9_three_level.json").read_text())["models"]


@pytest.fixture(scope="module")
def data() -> dict[str, pd.DataFrame]:
    files = ("hsb_level1_cat.csv.gz", "exam.csv.gz", "chem97.csv.gz")
    return {f: pd.read_csv(DATA / f) for f in files}


@pytest.fixture(scope="module")
def fits(data) -> dict:
    """Every two-level golden model, fitted once (REML; the ML keys refit)."""
    out = {}
    for key, (eq, file, cluster, _) in MODELS.items():
        out[key] = mlmwrap.fit(eq, data[file], cluster=cluster)
    return out


def check_against(res, g: dict, names: dict, tau_tol: float = 1e-3) -> None:
    """gammas, SEs, lmerTest df, tau, sigma2 and deviance against one golden model."""
    assert sorted(res.gamma.index) == sorted(names[k] for k in g["fixef"])
    for r_name, label in ((k, names[k]) for k in g["fixef"]):
        row = res.gamma.loc[label]
        assert row["estimate"] == pytest.approx(g["fixef"][r_name], rel=1e-4), label
        assert row["se"] == pytest.approx(g["se"][r_name], rel=1e-3), label
        assert row["df"] == pytest.approx(g["df"][r_name], rel=1e-2), label
    (tau,) = g["tau"].values()
    labels = [TAU_NAMES[n] for n in tau["names"]]
    ref = np.array(tau["cov"])
    np.testing.assert_allclose(
        res.tau.loc[labels, labels].to_numpy(), ref, rtol=tau_tol, atol=tau_tol * ref.max()
    )
    assert res.sigma2 == pytest.approx(g["sigma2"], rel=1e-3)
    assert res.deviance == pytest.approx(g["deviance"], abs=1e-3)


# -- two levels against lme4 -----------------------------------------------------------------
@pytest.mark.parametrize("key", list(MODELS))
def test_two_level_models_against_lme4(golden, fits, key):
    res = fits[key]
    g = golden[key if key != "hsb_min_fixed" else "hsb_min_fixed_ml"]
    if not g["reml"]:
        res = res.refit(reml=False)
    assert res.converged and not res.singular
    check_against(res, g, MODELS[key][3])
    n_tau = len(g["theta"])
    assert res.n_params == len(g["fixef"]) + n_tau + 1


def test_ml_random_slope_against_lme4(golden, fits):
    check_against(fits["hsb_min_random"].refit(reml=False), golden["hsb_min_random_ml"],
                  MODELS["hsb_min_random"][3])  # fmt: skip


@pytest.mark.parametrize("key", ["hsb_cat", "hsb_cat_ml", "hsb_cat_slope", "hsb_cat_int"])
def test_models_of_the_three_level_reference(golden9, data, key):
    eq, names = THREE_LEVEL_JSON[key.removesuffix("_ml")]
    g = golden9[key]
    res = mlmwrap.fit(eq, data["hsb_level1_cat.csv.gz"], cluster="school", reml=g["reml"])
    check_against(res, g, names)


def test_singular_random_categorical_slope_reaches_lme4s_optimum(golden9, data):
    # lme4 itself is singular here: compare the deviance (an optimum no worse than lme4's)
    # and the gammas, which stay right at the boundary; tau only loosely
    g = golden9["hsb_cat_random"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = mlmwrap.fit(RI + "b1 = g10 + u1", data["hsb_level1_cat.csv.gz"], cluster="school")
    assert res.singular
    assert res.deviance <= g["deviance"] + 1e-3
    assert res.deviance == pytest.approx(g["deviance"], abs=1e-2)
    est = res.gamma["estimate"]
    for r_name, label in CAT.items():
        assert est[label] == pytest.approx(g["fixef"][r_name], rel=1e-3)
    labels = [TAU_NAMES[n] for n in g["tau"]["school"]["names"]]
    np.testing.assert_allclose(
        res.tau.loc[labels, labels].to_numpy(), np.array(g["tau"]["school"]["cov"]), atol=0.05
    )


def test_integer_levels_are_the_same_fit_as_text_levels(golden9, data):
    hsb = data["hsb_level1_cat.csv.gz"]
    text = mlmwrap.fit(RI + "b1 = g10", hsb, cluster="school")
    number = mlmwrap.fit(RI.replace("ses_group", "ses_tert") + "b1 = g10", hsb, "school")
    floats = mlmwrap.fit(
        RI.replace("ses_group", "tert") + "b1 = g10", hsb.assign(tert=hsb["ses_tert"] * 1.0),
        "school",
    )  # fmt: skip
    assert list(number.gamma.index) == ["g00", "g10[2]", "g10[3]"]
    assert list(floats.gamma.index) == ["g00", "g10[2]", "g10[3]"]  # 2.0 prints as 2
    assert text.deviance == pytest.approx(number.deviance, abs=1e-6)
    assert number.deviance == pytest.approx(golden9["hsb_cat_int"]["deviance"], abs=1e-3)
    # the reference is the first category in sorted order: 'high' (strings), 1 (numbers)
    assert list(text.gamma.index) == ["g00", "g10[low]", "g10[mid]"]


# -- the design: what the formulas and the labels say -----------------------------------------
def test_design_labels_terms_and_random_effects(fits):
    res = fits["hsb_cat_diag"]
    d = res.design
    assert [c.label for c in d.fixed_columns] == ["g00", "g10[low]", "g10[mid]"]
    assert [c.term for c in d.fixed_columns] == ["(Intercept)", "ses_group[low]", "ses_group[mid]"]
    assert [c.category for c in d.fixed_columns] == [None, "low", "mid"]
    assert d.random_labels == ["u0", "u1[low]", "u1[mid]"]
    assert list(res.tau.index) == ["u0", "u1[low]", "u1[mid]"]
    # cov(u0, u1) = 0 applies to both of u1's effects; their own covariance is estimated
    assert res.tau_fixed.loc["u0", ["u1[low]", "u1[mid]"]].all()
    assert not res.tau_fixed.loc["u1[low]", "u1[mid]"]
    assert res.formulas.fixed == "mathach ~ 1 + C(ses_group)"
    assert res.formulas.re_formula == "~1 + C(ses_group)"
    # R codes every category of a factor in a term without an intercept; dummy() does not
    assert res.formulas.lme4 == (
        "mathach ~ 1 + factor(ses_group) + (1 | school) + (0 + dummy(ses_group) | school)"
    )


def test_cross_level_interaction_columns(fits, data):
    res = fits["hsb_min_random"]
    hsb = data["hsb_level1_cat.csv.gz"]
    minority = (hsb["minority"] == 1).to_numpy(float)
    cm = hsb.groupby("school")["ses"].transform("mean").to_numpy()
    X = pd.DataFrame(res.design.X, columns=[c.label for c in res.design.fixed_columns])
    np.testing.assert_array_equal(X["g10[1]"], minority)
    np.testing.assert_allclose(X["g11[1]"], minority * cm, atol=1e-12)
    np.testing.assert_array_equal(res.design.Z[:, 1], minority)
    assert res.gamma.loc["g11[1]", "term"] == "minority[1]:cmean(ses)"
    assert res.gamma.loc["g11[1]", "level1"] == "C(minority)"


def test_statsmodels_bridge_names_categories_as_its_formula_does(fits):
    res = fits["hsb_min_random"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sm = res.statsmodels
    assert "C(minority)[T.1]" in sm.fe_params.index
    np.testing.assert_allclose(sm.bse_fe[res.design.patsy_fixed_names], res.gamma["se"])


# -- inference ----------------------------------------------------------------------------------
def test_kenward_roger_against_pbkrtest(golden, fits):
    names = MODELS["hsb_min_random"][3]
    kr = golden["hsb_min_random"]["kenward_roger"]
    table = fits["hsb_min_random"].with_inference("kenward-roger").gamma
    for r_name, label in names.items():
        assert table.loc[label, "se"] == pytest.approx(kr["se"][r_name], rel=1e-3)
        assert table.loc[label, "df"] == pytest.approx(kr["df"][r_name], rel=1e-2)


def test_cr2_against_clubsandwich(golden, fits):
    names = MODELS["hsb_min_random"][3]
    cr2 = golden["hsb_min_random"]["cr2"]
    table = fits["hsb_min_random"].robust()
    for r_name, label in names.items():
        assert table.loc[label, "se"] == pytest.approx(cr2["se"][r_name], rel=1e-3)
        assert table.loc[label, "df"] == pytest.approx(cr2["df"][r_name], rel=1e-2)


def test_nakagawa_r2_against_performance(golden, fits):
    ref = golden["hsb_min_random"]["r2_nakagawa"]
    r2 = fits["hsb_min_random"].r2()
    assert r2["marginal"] == pytest.approx(ref["marginal"], rel=1e-3)
    assert r2["conditional"] == pytest.approx(ref["conditional"], rel=1e-3)


def test_compare_fixed_and_random_categorical_slope(golden, fits):
    small = fits["hsb_min_fixed"].refit(reml=False)
    large = fits["hsb_min_random"].refit(reml=False)
    table = mlmwrap.compare(small, large).table
    chi2 = golden["hsb_min_fixed_ml"]["deviance"] - golden["hsb_min_random_ml"]["deviance"]
    assert table["chi2"].iloc[1] == pytest.approx(chi2, abs=2e-3)
    assert table["df"].iloc[1] == 2  # the variance of u1[1] and its covariance with u0
    assert "u1[1]" in table["added"].iloc[1]


# -- empirical Bayes, coef, predictions ------------------------------------------------------
def test_empirical_bayes_and_coef_against_lme4(golden, fits):
    res = fits["hsb_min_random"]
    ref = golden["hsb_min_random"]
    cc = res.cluster_coefficients()
    schools = [int(s) for s in ref["ranef"]["school"]]
    for name, values in zip(ref["ranef"]["names"], ref["ranef"]["effects"], strict=True):
        np.testing.assert_allclose(cc.loc[schools, TAU_NAMES[name]], values, rtol=2e-3, atol=2e-4)
    post = res.posterior_covariances().loc[schools[0]].to_numpy()
    np.testing.assert_allclose(post, ref["ranef"]["postvar_first_school"], rtol=2e-3, atol=2e-5)
    coef = res.coef()
    terms = {"(Intercept)": "(Intercept)", "minority1": "minority[1]", "cm_ses": "cmean(ses)",
             "cwc_ses": "cwc(ses)", "minority1:cm_ses": "minority[1]:cmean(ses)"}  # fmt: skip
    for name, values in zip(ref["coef"]["names"], ref["coef"]["values"], strict=True):
        np.testing.assert_allclose(coef.loc[schools, terms[name]], values, rtol=1e-4, atol=1e-4)
    # HLM's EB coefficient of the category: its gammas at the school's W plus u1[1]
    cm = res.model_frame.groupby("school")["cmean_ses"].first()
    b1 = res.gamma.at["g10[1]", "estimate"] + res.gamma.at["g11[1]", "estimate"] * cm
    np.testing.assert_allclose(cc["b1[1]"], b1 + cc["u1[1]"], atol=1e-10)


def test_predictions_against_lme4(golden, fits, data):
    res = fits["hsb_min_random"]
    ref = golden["hsb_min_random"]
    np.testing.assert_allclose(res.predict().iloc[:5], ref["fitted_first"], rtol=1e-4)
    rows = [r - 1 for r in ref["newdata"]["row"]]
    new = data["hsb_level1_cat.csv.gz"].iloc[rows][["school", "minority", "ses"]]
    assert new["minority"].tolist() == ref["newdata"]["minority"]
    np.testing.assert_allclose(res.predict(new), ref["predict_newdata"], rtol=1e-4)
    np.testing.assert_allclose(
        res.predict(new, random=False), ref["predict_newdata_fixed"], rtol=1e-4
    )


def test_prediction_with_a_category_the_fit_never_saw(fits, data):
    new = data["hsb_level1_cat.csv.gz"].head(3).assign(minority=[0, 1, 7])
    with pytest.raises(DataError) as info:
        fits["hsb_min_random"].predict(new)
    assert "categories of 'C(minority)' the model was not fitted with: 7" in info.value.message
    assert "0, 1" in info.value.expected


def test_per_cluster_ols_and_variance_tests_per_category(fits, data):
    res = fits["hsb_cat_diag"]
    cc = res.cluster_coefficients()
    assert {"b1[low]", "b1[mid]", "b1[low]_ols", "u1[mid]", "b1[mid]_reliability"} <= set(cc)
    # the OLS per school is the regression on the indicators (numpy, school by school)
    hsb = data["hsb_level1_cat.csv.gz"]
    one = hsb[hsb["school"] == 1224]
    X = np.column_stack(
        [np.ones(len(one)), one["ses_group"] == "low", one["ses_group"] == "mid"]
    ).astype(float)
    coef, *_ = np.linalg.lstsq(X, one["mathach"].to_numpy(), rcond=None)
    np.testing.assert_allclose(cc.loc[1224, ["b0_ols", "b1[low]_ols", "b1[mid]_ols"]], coef)
    vt = res.variance_tests()
    assert list(vt.index) == ["u0", "u1[low]", "u1[mid]"]
    assert list(vt["beta"]) == ["b0", "b1[low]", "b1[mid]"]
    assert (vt["df"] == vt["clusters_used"] - 1).all()  # one gamma per category
    assert list(res.reliabilities().index) == ["u0", "u1[low]", "u1[mid]"]


# -- reports ---------------------------------------------------------------------------------
def test_equations_show_one_beta_per_category(fits):
    text = fits["hsb_cat_diag"].equations()
    assert "mathach = b0 + b1[low]*ses_group[low] + b1[mid]*ses_group[mid] + e" in text
    assert "b1[low] = -4.029 + u1[low]" in text
    latex = fits["hsb_min_random"].equations("latex")
    assert r"\beta_{1j}[\text{1}] &= -2.806 + 0.119\,\mathrm{cmean}(\mathrm{ses})_{j}" in latex
    assert r"u_{1j}[\text{1}]\,\mathrm{minority}_{ij}[\text{1}]" in latex


def test_tables_summary_and_json(fits):
    res = fits["hsb_cat_cross"]
    table = res.fixed_table()
    assert "| Intercept | γ10[low] |" in table and "| cmean(ses) | γ11[mid] |" in table
    summary = fits["hsb_cat_diag"].summary()
    assert "u1[low] ses_group[low]" in summary
    assert "fixed at 0 (not estimated): the covariances of (u0, u1)" in summary
    frame = fits["hsb_cat_diag"].to_frame()
    effect = frame.set_index("term").loc["tau1[low],0", "effect"]
    assert effect == "ses_group[low], (intercept) (fixed at 0)"
    from mlmwrap.report.export import from_json
    from mlmwrap.report.tables import fixed_table

    assert fixed_table(from_json(res.to_json())) == table


def test_plots(fits):
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    res = fits["hsb_min_random"]
    fig = res.plot.caterpillar()
    assert "of C(minority)[1]" in fig.axes[1].get_title()
    assert "cwc(ses)" in res.plot.spaghetti().axes[0].get_title()  # the numeric slope
    with pytest.raises(MLMError, match="not available for level-1 categorical predictors"):
        res.plot.spaghetti("C(minority)")
    with pytest.raises(MLMError, match="not available for level-1 categorical predictors"):
        fits["hsb_cat_diag"].plot.spaghetti()


def test_effects_of_a_categorical_predictor_are_not_reported(data):
    res = mlmwrap.fit(
        "mathach = b0 + b1*C(minority) + e\nb0 = g00 + g01*cmean(minority) + u0\nb1 = g10",
        data["hsb_level1_cat.csv.gz"],
        cluster="school",
    )
    effects = res.effects()
    assert effects.loc["minority", "estimate"].isna().all()  # no silently wrong number
    assert "not available for the level-1 categorical predictor" in effects.iloc[0]["note"]


# -- lazy inputs -------------------------------------------------------------------------------
def test_lazy_input_pushes_the_indicators_down(fits, data):
    pl = pytest.importorskip("polars")
    eq = MODELS["hsb_min_random"][0]
    lazy = mlmwrap.fit(eq, pl.from_pandas(data["hsb_level1_cat.csv.gz"]).lazy(), "school")
    eager = fits["hsb_min_random"]
    assert list(lazy.gamma.index) == list(eager.gamma.index)
    assert list(lazy.tau.index) == ["u0", "u1[1]"]
    np.testing.assert_allclose(lazy.gamma["estimate"], eager.gamma["estimate"], rtol=1e-9)
    assert lazy.deviance == pytest.approx(eager.deviance, abs=1e-6)
    text = mlmwrap.fit(MODELS["hsb_cat_diag"][0],
                       pl.from_pandas(data["hsb_level1_cat.csv.gz"]).lazy(), "school")  # fmt: skip
    assert list(text.tau.index) == ["u0", "u1[low]", "u1[mid]"]
    assert text.deviance == pytest.approx(fits["hsb_cat_diag"].deviance, abs=1e-6)


# -- three levels ------------------------------------------------------------------------------
THREE = {
    "chem97_gender": (
        "score = p0 + p1*C(gender) + p2*cwc(gcsecnt) + e\np0 = b00 + r0\np1 = b10 + r1\n"
        "p2 = b20\nb00 = g000 + u00\nb10 = g100\nb20 = g200",
        {"(Intercept)": "g000", "genderM": "g100[M]", "gcsecnt_cwc": "g200"},
        {"lea:school": ["r0", "r1[M]"], "lea": ["u00"]},
    ),
    "chem97_gender_l3": (
        "score = p0 + p1*C(gender) + e\np0 = b00 + r0\np1 = b10\nb00 = g000 + u00\n"
        "b10 = g100 + u10",
        {"(Intercept)": "g000", "genderM": "g100[M]"},
        {"lea:school": ["r0"], "lea": ["u00", "u10[M]"]},
    ),
}


@pytest.mark.parametrize("key", list(THREE))
def test_three_level_models_against_lme4(golden, data, key):
    eq, names, taus = THREE[key]
    g = golden[key]
    res = mlmwrap.fit(eq, data["chem97.csv.gz"], cluster=["school", "lea"])
    assert res.converged and not res.singular
    assert sorted(res.gamma.index) == sorted(names.values())
    for r_name, label in names.items():
        row = res.gamma.loc[label]
        assert row["estimate"] == pytest.approx(g["fixef"][r_name], rel=1e-4)
        assert row["se"] == pytest.approx(g["se"][r_name], rel=1e-3)
        assert row["df"] == pytest.approx(g["df"][r_name], rel=1e-2)
    for factor, labels in taus.items():
        cluster = "school" if factor == "lea:school" else "lea"
        tau = res.tau_by_level[cluster]
        assert list(tau.index) == labels
        ref = np.array(g["tau"][factor]["cov"])
        np.testing.assert_allclose(tau.to_numpy(), ref, rtol=1e-3, atol=1e-3 * ref.max())
    assert res.sigma2 == pytest.approx(g["sigma2"], rel=1e-3)
    assert res.deviance == pytest.approx(g["deviance"], abs=1e-3)
    eb = res.random_effects(3 if key.endswith("l3") else 2)
    (category,) = [lab for labels in taus.values() for lab in labels if "[" in lab]
    assert category in eb.columns and f"se_{category}" in eb.columns


def test_three_level_categories_beyond_two(data):
    ch = data["chem97.csv.gz"].iloc[:6000]
    ch = ch.assign(agegrp=pd.cut(ch["age"], [-7, -2, 2, 7], labels=["a", "b", "c"]).astype(str))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = mlmwrap.fit(
            "score = p0 + p1*C(agegrp) + e\np0 = b00 + r0\np1 = b10 + r1\nb00 = g000 + u00\n"
            "b10 = g100\ncov(r0, r1) = 0",
            ch,
            cluster=["school", "lea"],
        )
    assert list(res.gamma.index) == ["g000", "g100[b]", "g100[c]"]
    tau = res.tau_by_level["school"]
    assert list(tau.index) == ["r0", "r1[b]", "r1[c]"]
    assert tau.loc["r0", "r1[b]"] == 0.0 and tau.loc["r0", "r1[c]"] == 0.0
    assert "(0 + dummy(agegrp) | lea:school)" in res.formulas.lme4


# -- errors, with the line and a caret ---------------------------------------------------------
def error_of(equations: str, frame: pd.DataFrame, cluster="school") -> MLMError:
    with pytest.raises(MLMError) as info:
        mlmwrap.fit(equations, frame, cluster=cluster)
    err = info.value
    if err.source is not None:
        assert err.span is not None and err.source[slice(*err.span)].strip()
    return err


@pytest.mark.parametrize(
    ("equations", "marked", "message"),
    [
        ("mathach = b0 + b1*cwc(C(ses_group)) + e\nb0 = g00 + u0\nb1 = g10",
         "cwc(C(ses_group))", "cwc() of the categorical predictor 'ses_group' is not defined"),
        ("mathach = b0 + b1*cgm(ses_group) + e\nb0 = g00 + u0\nb1 = g10",
         "cgm(ses_group)", "cgm() of the categorical predictor 'ses_group'"),
        ("mathach = b0 + b1*C(ses_group) + e\nb0 = g00 + u0\nb1 = g10 + g11*C(sector)",
         "C(sector)", "an interaction of two categorical predictors is not available yet"),
        ("mathach = b0 + b1*C(one) + e\nb0 = g00 + u0\nb1 = g10",
         "C(one)", "has a single category"),
        ("mathach = b0 + b1*C(ses_group)*ses + e\nb0 = g00 + u0\nb1 = g10",
         "C(ses_group)", "categorical and cannot be used inside an arithmetic expression"),
    ],
)  # fmt: skip
def test_errors_point_at_the_categorical(data, equations, marked, message):
    hsb = data["hsb_level1_cat.csv.gz"].assign(sector=lambda d: d["school"] % 2, one="a")
    err = error_of(equations, hsb)
    assert message in err.message
    assert err.source[slice(*err.span)] == marked
    assert err.hint


def test_centering_errors_for_lazy_and_three_level_inputs(data):
    pl = pytest.importorskip("polars")
    hsb = pl.from_pandas(data["hsb_level1_cat.csv.gz"]).lazy()
    err = error_of("mathach = b0 + b1*cwc(ses_group) + e\nb0 = g00 + u0\nb1 = g10", hsb)
    assert "cwc() of the categorical predictor" in err.message
    ch = data["chem97.csv.gz"]
    err = error_of(
        "score = p0 + p1*cwc(gender) + e\np0 = b00 + r0\np1 = b10\nb00 = g000 + u00\nb10 = g100",
        ch,
        cluster=["school", "lea"],
    )
    assert "cwc() of the categorical predictor 'gender'" in err.message


# -- property: generated equation sets give the right design --------------------------------------
@st.composite
def categorical_models(draw):
    """Data with a k-category level-1 column and equations using it (fixed or random, with
    or without level-2 predictors, zero-mean or not), with the columns each gamma and each
    random effect must hold, computed independently."""
    k = draw(st.integers(2, 4))
    kind = draw(st.sampled_from(["text", "int", "float"]))
    pool = {"text": ["b", "a", "Z", "mid"], "int": [3, 1, 10, 2], "float": [2.0, 0.5, 1.0, 7.0]}
    levels = pool[kind][:k]
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    n_clusters, size = 12, 15
    school = np.repeat(np.arange(n_clusters), size)
    cat = np.array(levels, dtype=object)[np.tile(np.arange(k), n_clusters * size // k + 1)]
    cat = rng.permutation(cat[: n_clusters * size])
    if kind != "text":
        cat = cat.astype(float if kind == "float" else int)
    w = np.repeat(rng.normal(size=n_clusters), size)
    frame = pd.DataFrame({"y": rng.normal(size=len(school)), "g": cat, "w": w, "school": school})
    with_w = draw(st.booleans())
    constant = draw(st.booleans()) or not with_w
    random = draw(st.booleans())
    bare = kind == "text" and draw(st.booleans())  # a text column needs no C()
    x = "g" if bare else "C(g)"
    terms = (
        (["g10"] if constant else []) + (["g11*w"] if with_w else []) + (["u1"] if random else [])
    )
    if not constant and not with_w:
        terms = ["u1"]
    text = f"y = b0 + b1*{x} + e\nb0 = g00 + u0\nb1 = {' + '.join(terms)}"
    ordered = sorted(set(levels), key=lambda v: (str(type(v)), v))
    shown = [str(int(v)) if isinstance(v, float) and v.is_integer() else str(v) for v in ordered]
    ind = {
        s: (frame["g"].to_numpy() == v).astype(float) for s, v in zip(shown, ordered, strict=True)
    }
    columns = {"g00": np.ones(len(frame))}
    for s in shown[1:]:
        if constant:
            columns[f"g10[{s}]"] = ind[s]
    for s in shown[1:]:
        if with_w:
            columns[f"g11[{s}]"] = ind[s] * w
    z = {"u0": np.ones(len(frame))}
    if random:
        z.update({f"u1[{s}]": ind[s] for s in shown[1:]})
    return text, frame, columns, z


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(categorical_models())
def test_generated_models_give_the_indicator_design(case):
    text, frame, columns, z = case
    spec = parse_equations(text)
    design = build_design(spec, frame, "school")
    assert [c.label for c in design.fixed_columns] == list(columns)
    np.testing.assert_allclose(design.X, np.column_stack(list(columns.values())), atol=1e-12)
    assert design.random_labels == list(z)
    np.testing.assert_array_equal(design.Z, np.column_stack(list(z.values())))
    f = design.formulas
    assert ("C(g)" in f.fixed) == any(label.startswith("g1") for label in columns)
    assert f.re_formula == ("~1 + C(g)" if len(z) > 1 else "~1")


def test_hlm_df_count_each_categorys_own_level2_equation(fits):
    # HLM fits the indicators: each category's coefficient has J - S - 1 df, S = 1 (cmean)
    table = fits["hsb_min_random"].with_inference("hlm").gamma
    assert table.loc[["g00", "g01", "g10[1]", "g11[1]"], "df"].tolist() == [158.0] * 4
    assert table.loc["g20", "df"] == 7185 - 5
