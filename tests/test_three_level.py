"""Three-level models from the equations (HLM3 notation) against lme4 and lmerTest.

Golden numbers: reference/issue9_three_level.json (lme4 1.1-31, lmerTest 3.1.3; made by
reference/issue9_three_level.R on mlmRev's Chem97 and egsingle, data in tests/data).
Tolerances (issue 9): gammas 1e-4 relative, SEs / tau / sigma2 1e-3 relative, deviance
1e-3 absolute, Satterthwaite df 1e-2 relative.
"""

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from conftest import DATA, REFERENCE
from scipy import stats

import mlmwrap
from mlmwrap.api.nested_results import NestedResults
from mlmwrap.errors import MLMError

NULL = """
score = p0 + e
p0 = b00 + r0
b00 = g000 + u00
"""
CWC = """
score = p0 + p1*cwc(gcsecnt) + e
p0 = b00 + b01*cmean(gcsecnt) + r0
p1 = b10 + r1
b00 = g000 + u00
b01 = g010
b10 = g100
"""
CWC_L3 = """
score = p0 + p1*cwc(gcsecnt) + e
p0 = b00 + b01*cwc(cmean(gcsecnt)) + r0
p1 = b10 + r1
b00 = g000 + g001*cmean(cmean(gcsecnt)) + u00
b01 = g010
b10 = g100
"""
GROWTH = """
math = p0 + p1*year + e
p0 = b00 + r0
p1 = b10 + r1
b00 = g000 + u00
b10 = g100 + u10
"""
GROWTH_PRED = """
math = π0jk + π1jk*year + e_ijk
π0jk = β00k + β01k*black + r0jk
π1jk = β10k + β11k*black + r1jk
β00k = γ000 + γ001*lowinc + u00k
β01k = γ010
β10k = γ100 + γ101*lowinc + u10k
β11k = γ110
"""
#: key -> (data, equations, clusters, R name -> gamma label, R name -> (r, u) label)
MODELS = {
    "chem97_null": ("chem97", NULL, ["school", "lea"], {"(Intercept)": "g000"}),
    "chem97_null_ml": ("chem97", NULL, ["school", "lea"], {"(Intercept)": "g000"}),
    "chem97_null_school_in_lea": (
        "chem97",
        NULL,
        ["school_in_lea", "lea"],
        {"(Intercept)": "g000"},
    ),
    "chem97_cwc_slope": (
        "chem97",
        CWC,
        ["school", "lea"],
        {"(Intercept)": "g000", "gcsecnt_cwc": "g100", "school_mean_gcse": "g010"},
    ),
    "chem97_cwc_slope_ml": (
        "chem97",
        CWC,
        ["school", "lea"],
        {"(Intercept)": "g000", "gcsecnt_cwc": "g100", "school_mean_gcse": "g010"},
    ),
    "chem97_cwc_slope_l3": (
        "chem97",
        CWC_L3,
        ["school", "lea"],
        {"(Intercept)": "g000", "gcsecnt_cwc": "g100", "sm_cwc3": "g010", "lea_mean_sm": "g001"},
    ),
    "eg_growth": (
        "egsingle",
        GROWTH,
        ["childid", "schoolid"],
        {"(Intercept)": "g000", "year": "g100"},
    ),
    "eg_growth_ml": (
        "egsingle",
        GROWTH,
        ["childid", "schoolid"],
        {"(Intercept)": "g000", "year": "g100"},
    ),
    "eg_growth_pred": (
        "egsingle",
        GROWTH_PRED,
        ["childid", "schoolid"],
        {
            "(Intercept)": "g000",
            "year": "g100",
            "black": "g010",
            "lowinc": "g001",
            "year:black": "g110",
            "year:lowinc": "g101",
        },
    ),
    "eg_growth_pred_ml": (
        "egsingle",
        GROWTH_PRED,
        ["childid", "schoolid"],
        {
            "(Intercept)": "g000",
            "year": "g100",
            "black": "g010",
            "lowinc": "g001",
            "year:black": "g110",
            "year:lowinc": "g101",
        },
    ),
    "eg_growth_diag_child": (
        "egsingle",
        GROWTH + "cov(r0, r1) = 0\n",
        ["childid", "schoolid"],
        {"(Intercept)": "g000", "year": "g100"},
    ),
}
RANDOM = {
    2: {"(Intercept)": "r0", "gcsecnt_cwc": "r1", "year": "r1"},
    3: {"(Intercept)": "u00", "year": "u10"},
}


@pytest.fixture(scope="module")
def golden() -> dict:
    return json.loads((REFERENCE / "issue9_three_level.json").read_text())["models"]


@pytest.fixture(scope="module")
def data() -> dict[str, pd.DataFrame]:
    return {name: pd.read_csv(DATA / f"{name}.csv.gz") for name in ("chem97", "egsingle")}


@pytest.fixture(scope="module")
def fits(data, golden) -> dict[str, NestedResults]:
    out = {}
    for key, (name, eqs, clusters, _) in MODELS.items():
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # none of these fits is singular or unconverged
            out[key] = mlmwrap.fit(eqs, data[name], cluster=clusters, reml=golden[key]["reml"])
    return out


@pytest.mark.parametrize("key", list(MODELS))
def test_against_lme4(key, fits, golden):
    res, ref = fits[key], golden[key]
    names = MODELS[key][3]
    clusters = MODELS[key][2]
    assert isinstance(res, NestedResults)
    g = res.gamma
    for r_name, label in names.items():
        assert g.loc[label, "estimate"] == pytest.approx(ref["fixef"][r_name], rel=1e-4)
        assert g.loc[label, "se"] == pytest.approx(ref["se"][r_name], rel=1e-3)
        assert g.loc[label, "df"] == pytest.approx(ref["df"][r_name], rel=1e-2)
    assert res.sigma2 == pytest.approx(ref["sigma2"], rel=1e-3)
    assert res.deviance == pytest.approx(ref["deviance"], abs=1e-3)
    assert res.deviance < ref["deviance"] + 1e-5  # never above lme4's optimum
    for factor, cluster in ref["levels"].items():
        level = clusters.index(cluster) + 2
        tau = res.tau_by_level[cluster]
        want = ref["tau"][factor]
        labels = [RANDOM[level][n] for n in want["names"]]
        assert list(tau.index) == labels
        np.testing.assert_allclose(
            tau.loc[labels, labels].to_numpy(),
            np.array(want["cov"]),
            rtol=1e-3,
            atol=1e-3 * max(np.diag(np.array(want["cov"]))),
        )
    assert res.converged and not res.singular
    assert list(res.tau.index) == [lab for t in res.tau_by_level.values() for lab in t.index]


def test_formulas_and_sample(fits):
    res = fits["chem97_cwc_slope"]
    assert res.formulas.lme4 == (
        "score ~ 1 + cmean_gcsecnt + cwc_gcsecnt + (1 + cwc_gcsecnt | lea:school) + (1 | lea)"
    )
    assert res.formulas.fixed == "score ~ 1 + cmean_gcsecnt + cwc_gcsecnt"
    assert res.n_units == (2410, 131) and res.n_obs == 31022
    assert not res.design.ids_repeat
    diag = fits["eg_growth_diag_child"]
    assert diag.formulas.lme4.endswith(
        "(1 | schoolid:childid) + (0 + year | schoolid:childid) + (1 + year | schoolid)"
    )
    assert diag.tau_by_level["childid"].loc["r0", "r1"] == 0.0


def test_repeated_ids_are_distinct_units(fits):
    rep, uniq = fits["chem97_null_school_in_lea"], fits["chem97_null"]
    assert rep.design.ids_repeat
    assert rep.n_units == uniq.n_units
    assert rep.deviance == pytest.approx(uniq.deviance, abs=1e-6)
    assert "ids repeat across lea units" in rep.summary()


def test_variance_partition(fits, golden):
    vp = fits["chem97_null"].variance_partition()
    ref = golden["chem97_null"]
    t2 = ref["tau"]["school:lea"]["cov"][0][0]
    t3 = ref["tau"]["lea"]["cov"][0][0]
    total = t2 + t3 + ref["sigma2"]
    assert vp["level 3"] == pytest.approx(t3 / total, rel=1e-3)
    assert vp["level 2"] == pytest.approx(t2 / total, rel=1e-3)
    assert vp["corr same level-2 unit"] == pytest.approx((t2 + t3) / total, rel=1e-3)
    assert vp[["level 1", "level 2", "level 3"]].sum() == pytest.approx(1.0)
    with pytest.raises(MLMError, match="random intercepts only"):
        fits["eg_growth"].variance_partition()


def test_summary_eb_predict_json(fits):
    res = fits["eg_growth"]
    text = res.summary()
    assert "Final estimation of fixed effects" in text and "u10" in text and "g100" in text
    r = res.random_effects(2)
    u = res.random_effects("schoolid")
    assert r.shape == (1721, 4) and u.shape == (60, 4)
    assert list(u.columns) == ["u00", "u10", "se_u00", "se_u10"]
    # the EB effects of each level have mean ~0 relative to their SD
    assert abs(u["u00"].mean()) < 0.05 * u["u00"].std()
    fitted = res.predict()
    resid = res.design.y - fitted
    assert np.var(resid) < res.sigma2  # shrunken residuals: variance below sigma^2
    np.testing.assert_allclose(
        res.predict(include_random=False), res.design.X @ res.gamma["estimate"].to_numpy()
    )
    out = json.loads(res.to_json())
    assert out["levels"] == 3 and out["gamma"]["g000"]["estimate"] == pytest.approx(
        res.gamma.loc["g000", "estimate"]
    )


@pytest.fixture(scope="module")
def anova() -> dict:
    """lme4's anova() of three-level models (reference/issue9_compare.R)."""
    return json.loads((REFERENCE / "issue9_compare.json").read_text())


def test_compare_refits_by_ml_when_fixed_parts_differ(fits, anova):
    # REML fits with different fixed parts: refit by ML, as lme4's anova() does
    want = anova["eg_growth_vs_pred"]
    cmp = mlmwrap.compare(fits["eg_growth"], fits["eg_growth_pred"], names=["g", "g+pred"])
    t = cmp.table
    assert list(t["method"]) == ["ML", "ML"] and t["refit"].all()
    for name, key in (("g", "small"), ("g+pred", "large")):
        assert t.loc[name, "deviance"] == pytest.approx(want[key]["deviance"], abs=1e-3)
        assert t.loc[name, "n_params"] == want[key]["npar"]
        assert t.loc[name, "aic"] == pytest.approx(want[key]["AIC"], abs=1e-3)
        assert t.loc[name, "bic"] == pytest.approx(want[key]["BIC"], abs=1e-3)
    assert t.loc["g+pred", "chi2"] == pytest.approx(want["large"]["Chisq"], abs=2e-3)
    assert t.loc["g+pred", "df"] == want["large"]["Df"]
    assert t.loc["g+pred", "p"] == pytest.approx(want["large"]["p"], rel=1e-2)
    assert "g010" in t.loc["g+pred", "added"]
    # the method on the results gives the same table
    same = fits["eg_growth"].compare(fits["eg_growth_pred"], names=["g", "g+pred"]).table
    pd.testing.assert_frame_equal(same, t)


def test_compare_diagonal_tau_is_nested_in_the_full_one(fits, anova):
    want = anova["eg_diag_child_vs_growth"]
    t = mlmwrap.compare(fits["eg_growth_diag_child"], fits["eg_growth"]).table
    assert list(t["method"]) == ["REML", "REML"]  # same fixed part: REML criteria compared
    assert t["chi2"].iloc[1] == pytest.approx(want["large"]["Chisq"], abs=2e-3)
    assert t["df"].iloc[1] == want["large"]["Df"] == 1
    assert "cov(r0, r1)" in t["added"].iloc[1]
    with pytest.raises(MLMError, match="not nested"):
        mlmwrap.compare(fits["eg_growth"], fits["eg_growth_diag_child"])


def test_compare_a_random_slope_at_level_2_uses_the_mixture(data, anova):
    want = anova["chem_ri_vs_slope"]
    ri = mlmwrap.fit(
        "score = p0 + p1*cwc(gcsecnt) + e\np0 = b00 + r0\np1 = b10\nb00 = g000 + u00\nb10 = g100",
        data["chem97"],
        cluster=["school", "lea"],
    )
    slope = ri.refit(
        "score = p0 + p1*cwc(gcsecnt) + e\np0 = b00 + r0\np1 = b10 + r1\n"
        "b00 = g000 + u00\nb10 = g100"
    )
    t = ri.compare(slope).table
    assert t["chi2"].iloc[1] == pytest.approx(want["large"]["Chisq"], abs=2e-3)
    assert t["df"].iloc[1] == want["large"]["Df"] == 2
    # one random effect added at level 2: 50:50 mixture of chi2(1) and chi2(2)
    assert t["reference"].iloc[1] == "0.5 chi2(1) + 0.5 chi2(2)"
    assert t["p_naive"].iloc[1] == pytest.approx(want["large"]["p"], rel=1e-2)


def test_compare_refuses_other_clusters_and_other_rows(fits, data):
    with pytest.raises(MLMError, match="different cluster columns"):
        mlmwrap.compare(fits["chem97_null"], fits["chem97_null_school_in_lea"])
    fewer = fits["eg_growth"].refit(data=data["egsingle"].iloc[100:])
    with pytest.raises(MLMError, match="different samples"):
        mlmwrap.compare(fewer, fits["eg_growth_pred"])
    two_level = mlmwrap.fit("math = b0 + e\nb0 = g00 + u0", data["egsingle"], cluster="childid")
    with pytest.raises(MLMError, match="different cluster columns"):
        mlmwrap.compare(two_level, fits["eg_growth"])


def test_unsupported_methods_raise(fits):
    res = fits["eg_growth"]
    for name in ("statsmodels", "robust", "plot", "confint", "effects"):
        with pytest.raises(MLMError, match="three-level"):
            getattr(res, name)() if name != "statsmodels" else res.statsmodels


# -- mistakes: caret-and-tip errors --------------------------------------------------------
SPEC_ERRORS = {
    "y = p0 + e\np0 = b00 + b01*w + r0\nb00 = g000 + u00\n": (
        "b01 has no level-3 equation",
        "add the line: b01 = g010",
    ),
    "y = p0 + e\np0 = b00 + r0\nb00 = g000 + r0\n": ("level-2 random effect 'r0'", "u00"),
    "y = p0 + e\np0 = b00 + u00\nb00 = g000 + u00\n": ("level-3 random effect 'u00'", "r0"),
    "y = p0 + p1*x + e\np0 = b00 + r0\np1 = b00 + r1\nb00 = g000 + u00\n": (
        "wrong subscripts",
        "did you mean 'b10'?",
    ),
    "y = p0 + e\np0 = b00 + r0\nb00 = g100 + u00\n": ("wrong subscripts", "'g000'"),
    "y = p0 + b1*x + e\np0 = b00 + r0\nb00 = g000 + u00\n": ("level-2 coefficient 'b1'", "pK"),
    "y = p0 + e\np0 = g000 + r0\n": ("a gamma 'g000'", "level-3 equations"),
    "y = p0 + p1*x + e\np0 = b00 + r0\nb00 = g000 + u00\n": (
        "p1 has no level-2 equation",
        "p1 = b10 + r1",
    ),
    "y = p0 + e\np0 = b00 + r0\nb00 = g000 + u00\ncov(r0, u00) = 0\n": (
        "across two levels",
        "within a level",
    ),
    "y = p0 + e\np0 = b0 + r0\nb00 = g000 + u00\n": ("needs 2 subscripts", "'_'"),
    "y = p0 + e\np0 = b00\nb00 = g000\n": ("no random effect", "r0"),
}


@pytest.mark.parametrize("text", list(SPEC_ERRORS))
def test_specification_errors(text):
    from mlmwrap.errors import SpecificationError
    from mlmwrap.language.levels import parse_model

    message, tip = SPEC_ERRORS[text]
    with pytest.raises(SpecificationError) as info:
        parse_model(text)
    err = info.value
    assert message in err.message and tip in str(err.hint)
    assert err.lineno is not None and "^" in str(err)


def _toy(seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n3, n2, n1 = 12, 5, 6  # level-2 ids 0..4 repeat in every level-3 unit
    s = np.repeat(np.arange(n3), n2 * n1)
    c = np.tile(np.repeat(np.arange(n2), n1), n3)
    key = s * n2 + c
    w2 = rng.normal(size=n3 * n2)[key]
    z3 = rng.normal(size=n3)[s]
    x = rng.normal(size=len(s)) + w2
    y = (
        1
        + x
        + w2
        + z3
        + rng.normal(size=n3)[s]
        + rng.normal(size=n3 * n2)[key]
        + rng.normal(size=len(s))
    )
    return pd.DataFrame({"y": y, "x": x, "w": w2, "z": z3, "c": c, "s": s})


def test_data_checks_and_clusters():
    df = _toy()
    ok = "y = p0 + e\np0 = b00 + b01*{w} + r0\nb01 = g010\nb00 = g000 + g001*{z} + u00\n"
    with pytest.raises(mlmwrap.DataError, match="varies within") as info:
        mlmwrap.fit(ok.format(w="x", z="z"), df, cluster=["c", "s"])
    assert "cmean(x)" in info.value.hint and info.value.lineno == 2
    with pytest.raises(mlmwrap.DataError, match="not a level-3 predictor") as info:
        mlmwrap.fit(ok.format(w="w", z="w"), df, cluster=["c", "s"])
    assert info.value.lineno == 4
    with pytest.raises(MLMError, match="three-level model"):
        mlmwrap.fit(ok.format(w="w", z="z"), df, cluster="c")
    with pytest.raises(MLMError, match="two-level model"):
        mlmwrap.fit("y = b0 + e\nb0 = g00 + u0", df, cluster=["c", "s"])
    res = mlmwrap.fit("y = b0 + e\nb0 = g00 + u0", df, cluster=["s"])  # a list of one
    assert res.n_clusters == 12


def test_centering_per_level():
    """cwc/cgm/cmean at each level, as HLM defines them (module doc of nested_design)."""
    df = _toy()
    df = df.iloc[np.random.default_rng(0).permutation(len(df))[: len(df) - 37]]  # unbalanced
    res = mlmwrap.fit(
        """y = p0 + p1*cwc(x) + e
        p0 = b00 + b01*cwc(w) + b02*cgm(cmean(x)) + r0
        p1 = b10
        b00 = g000 + g001*cmean(w) + g002*cmean(x) + u00
        b01 = g010
        b02 = g020
        b10 = g100""",
        df,
        cluster=["c", "s"],
    )
    d = res.design
    unit = df.groupby(["s", "c"])
    frame = df.assign(
        cwc_x=df.x - unit.x.transform("mean"),
        xbar=unit.x.transform("mean"),
    )
    units = frame.drop_duplicates(["s", "c"])  # each level-2 unit once
    w_mean3 = units.groupby("s").w.mean()
    expect = {
        "g100": frame.cwc_x,
        "g010": frame.w - frame.s.map(w_mean3),
        "g020": frame.xbar - units.xbar.mean(),
        "g001": frame.s.map(w_mean3),
        "g002": frame.s.map(df.groupby("s").x.mean()),  # level-1 x: over rows
    }
    for label, values in expect.items():
        col = d.fixed_labels.index(label)
        np.testing.assert_allclose(d.X[:, col], values.to_numpy(), atol=1e-12)
    assert d.ids_repeat and res.n_units == (60, 12)


def test_tables_latex_and_plot(fits):
    import matplotlib

    matplotlib.use("Agg")
    res = fits["eg_growth_pred"]
    tex = res.equations("latex")
    assert r"\pi_{1jk} = \beta_{10k} + \beta_{11k}\,\mathrm{black}_{jk} + r_{1jk}" in tex
    assert r"\beta_{00k} = \gamma_{000} + \gamma_{001}\,\mathrm{lowinc}_{k} + u_{00k}" in tex
    assert list(res.fixed_table().index) == ["g000", "g001", "g010", "g100", "g101", "g110"]
    vt = res.variance_table()
    assert list(vt.index) == ["r0", "r1", "u00", "u10", "e"]
    assert vt.loc["e", "variance"] == pytest.approx(res.sigma2, abs=1e-4)
    fig = res.caterpillar(3)
    assert len(fig.axes) == 2 and "u10" in fig.axes[1].get_title()
    fig2 = res.caterpillar("childid")
    assert len(fig2.axes[0].lines[0].get_xdata()) == 1721


def test_empirical_bayes_against_lme4(fits):
    """ranef(condVar = TRUE) of eg_growth (reference/issue9_eb_egsingle.R): conditional
    modes within 1e-3 of their SD, conditional SDs 1e-3 relative, at both levels."""
    res = fits["eg_growth"]
    u = res.random_effects(3)
    ref_u = pd.read_csv(REFERENCE / "issue9_eb_school.csv").set_index("id").loc[u.index]
    np.testing.assert_allclose(u.u00, ref_u.u00, atol=1e-3 * ref_u.u00.std())
    np.testing.assert_allclose(u.u10, ref_u.u10, atol=1e-3 * ref_u.u10.std())
    np.testing.assert_allclose(u.se_u00, ref_u.se00, rtol=1e-3)
    np.testing.assert_allclose(u.se_u10, ref_u.se10, rtol=1e-3)
    r = res.random_effects(2).droplevel(0)
    ref_r = pd.read_csv(REFERENCE / "issue9_eb_child.csv").set_index("id")
    r = r.loc[ref_r.index]
    np.testing.assert_allclose(r.r0, ref_r.r0, atol=1e-3 * ref_r.r0.std())
    np.testing.assert_allclose(r.r1, ref_r.r1, atol=1e-3 * ref_r.r1.std())
    np.testing.assert_allclose(r.se_r0, ref_r.se0, rtol=1e-3)
    np.testing.assert_allclose(r.se_r1, ref_r.se1, rtol=1e-3)


def test_readme_section_is_the_real_output(fits):
    from pathlib import Path

    readme = (Path(__file__).parent.parent / "README.md").read_text()
    section = readme.split("## Three levels")[1].split("\n## ")[0]
    shown = section.split("```text\n")[1].split("```")[0]
    assert shown.strip() == fits["chem97_cwc_slope"].summary().strip()


def test_build_up_refits_by_ml(data, golden):
    bu = mlmwrap.build_up(
        [GROWTH, GROWTH_PRED],
        data["egsingle"],
        cluster=["childid", "schoolid"],
        names=["growth", "+black, lowinc"],
    )
    table = bu.table
    assert table.loc["growth", "deviance"] == pytest.approx(
        golden["eg_growth_ml"]["deviance"], abs=1e-3
    )
    assert table.loc["+black, lowinc", "deviance"] == pytest.approx(
        golden["eg_growth_pred_ml"]["deviance"], abs=1e-3
    )
    assert table.loc["+black, lowinc", "df"] == 4
    # the variance table: as fit (REML), every level's intercept variance and its PRV
    v = bu.variance
    assert v.loc["growth", "sigma2"] == pytest.approx(golden["eg_growth"]["sigma2"], rel=1e-3)
    tau_r0 = v.loc["+black, lowinc", "tau_r0"]
    prev = v.loc["growth", "tau_r0"]
    assert v.loc["+black, lowinc", "tau_r0_reduction"] == pytest.approx((prev - tau_r0) / prev)
    assert np.isnan(v.loc["growth", "tau_u00_reduction"])
    text = str(bu)
    assert "PRV tau_u00" in text and "R2 marg." in text
    assert v.loc["+black, lowinc", "delta_r2_marginal"] > 0
    assert "<table" in bu._repr_html_()


def test_categorical_predictors_at_levels_2_and_3():
    df = _toy()
    df["cat"] = np.where(df.w > 0, "hi", "lo")  # a level-2 variable
    df["cat3"] = np.where(df.z > 0, "a", "b")  # a level-3 variable
    res = mlmwrap.fit(
        "y = p0 + e\np0 = b00 + b01*C(cat) + r0\nb00 = g000 + g001*cat3 + u00\nb01 = g010",
        df,
        cluster=["c", "s"],
    )
    assert list(res.gamma.index) == ["g000", "g001[b]", "g010[lo]"]
    assert res.formulas.lme4 == "y ~ 1 + factor(cat3) + factor(cat) + (1 | s:c) + (1 | s)"
    with pytest.raises(mlmwrap.DataError, match="not a level-3 predictor"):
        mlmwrap.fit(
            "y = p0 + e\np0 = b00 + r0\nb00 = g000 + g001*cat + u00", df, cluster=["c", "s"]
        )


def test_a_level_without_random_effects():
    df = _toy()
    res = mlmwrap.fit(
        "y = p0 + p1*x + e\np0 = b00 + r0\np1 = b10\nb00 = g000\nb10 = g100", df, cluster=["c", "s"]
    )
    assert res.tau_by_level["s"].shape == (0, 0)
    assert list(res.tau.index) == ["r0"]
    assert res.formulas.lme4 == "y ~ 1 + x + (1 | s:c)"


def test_cgm_of_a_level_3_mean_centers_it_over_level_3_units(data):
    """cgm() and cwc() read their argument at their own level; cmean() one level down."""
    chem = data["chem97"]
    school_means = chem.groupby("school")["gcsecnt"].mean()
    lea_of_school = chem.groupby("school")["lea"].first()
    lea_rows = chem.groupby("lea")["gcsecnt"].mean()  # over pupils
    lea_schools = school_means.groupby(lea_of_school).mean()  # over schools
    for inner, means in (("cmean(gcsecnt)", lea_rows), ("cmean(cmean(gcsecnt))", lea_schools)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = mlmwrap.fit(
                f"score = p0 + e\np0 = b00 + r0\nb00 = g000 + g001*cgm({inner}) + u00",
                chem,
                cluster=["school", "lea"],
            )
        want = chem["lea"].map(means) - means.mean()  # each LEA counted once
        np.testing.assert_allclose(res.design.X[:, 1], want.to_numpy(), rtol=1e-10, atol=1e-12)


R2_MODELS = {
    "chem97_cwc_slope": ("chem97", CWC, ["school", "lea"], True),
    "eg_growth_pred": ("egsingle", GROWTH_PRED, ["childid", "schoolid"], True),
    "eg_intercepts": (
        "egsingle",
        "math = p0 + p1*year + e\np0 = b00 + r0\np1 = b10\nb00 = g000 + u00\nb10 = g100",
        ["childid", "schoolid"],
        False,
    ),
}


@pytest.mark.parametrize("key", list(R2_MODELS))
def test_nakagawa_r2_matches_performance(data, key):
    """performance::r2_nakagawa (reference/issue9_r2.R); tolerance 1e-4 relative (the
    variances it divides are within 1e-3 of lme4's, measured ~2e-5)."""
    want = json.loads((REFERENCE / "issue9_r2.json").read_text())[key]
    name, eqs, clusters, reml = R2_MODELS[key]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = mlmwrap.fit(eqs, data[name], cluster=clusters, reml=reml)
    got = res.r2()
    for field in ("marginal", "conditional", "var_fixed", "var_random", "var_residual"):
        assert got[field] == pytest.approx(want[field], rel=1e-4), field
    assert "not available for three-level" in got.attrs["notes"][0]


def test_variance_explained_against_a_reference(fits):
    table = fits["eg_growth_pred"].variance_explained(fits["eg_growth"])
    assert list(table.index) == ["r0", "r1", "u00", "u10", "sigma2"]
    tau = fits["eg_growth"].tau_by_level["schoolid"].loc["u00", "u00"]
    tau_pred = fits["eg_growth_pred"].tau_by_level["schoolid"].loc["u00", "u00"]
    assert table.loc["u00", "reduction"] == pytest.approx((tau - tau_pred) / tau)
    with pytest.raises(MLMError, match="different cluster columns"):
        fits["eg_growth_pred"].variance_explained(fits["chem97_null"])


def test_z_tests_and_with_inference(fits, data, golden):
    res = fits["eg_growth"]
    z = mlmwrap.fit(GROWTH, data["egsingle"], cluster=["childid", "schoolid"], df="z")
    assert "df" not in z.gamma.columns and "z" in z.gamma.columns
    np.testing.assert_allclose(z.gamma["estimate"], res.gamma["estimate"], rtol=1e-8)
    np.testing.assert_allclose(z.gamma["z"], res.gamma["t"], rtol=1e-8)
    two_sided = 2 * stats.norm.sf(np.abs(z.gamma["z"]))
    np.testing.assert_allclose(z.gamma["p"], two_sided, rtol=1e-10)
    assert z.gamma.attrs["df_method"] == "z"
    back = z.with_inference("satterthwaite")
    np.testing.assert_allclose(back.gamma["df"], res.gamma["df"], rtol=1e-6)
    assert "z-ratio" in z.summary() and "z" in z.fixed_table().columns
    with pytest.raises(MLMError, match="three-level"):
        mlmwrap.fit(GROWTH, data["egsingle"], cluster=["childid", "schoolid"], df="hlm")
