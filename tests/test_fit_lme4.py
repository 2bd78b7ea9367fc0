"""mlmwrap's fits against lme4's, from the equations a researcher would type.

Golden numbers: reference/hsb_lme4.json (eight HSB models, made by reference/hsb_lme4.R)
and reference/lme4_extra.json (ML fits, q = 3, listwise deletion, categorical predictors,
transforms and boundary fits; made by reference/lme4_extra.R). Tolerances, from the core
issue: gammas 1e-4 relative, their SEs 1e-3 relative, tau and sigma2 1e-3 relative or
1e-4 absolute, deviance 1e-3 absolute.
"""

import warnings

import numpy as np
import pandas as pd
import pytest

import mlmwrap

ISAO = """
mathach = b0 + b1*cwc(ses) + e
b0 = g00 + g01*meanses + g02*sector + u0
b1 = g10 + g11*meanses + g12*sector + u1
"""
ISAO_MAP = {
    "(Intercept)": "g00",
    "meanses": "g01",
    "sector": "g02",
    "cwc_ses": "g10",
    "meanses:cwc_ses": "g11",
    "sector:cwc_ses": "g12",
}

# name -> (equations, lme4 coefficient -> gamma label)
HSB_MODELS = {
    "null": ("mathach = b0 + e\nb0 = g00 + u0", {"(Intercept)": "g00"}),
    "means_as_outcomes": (
        "mathach = b0 + e\nb0 = g00 + g01*meanses + u0",
        {"(Intercept)": "g00", "meanses": "g01"},
    ),
    "random_coefficient": (
        "mathach = b0 + b1*cwc(ses) + e\nb0 = g00 + u0\nb1 = g10 + u1",
        {"(Intercept)": "g00", "cwc_ses": "g10"},
    ),
    "isao": (ISAO, ISAO_MAP),
    "rancova_cgm": (
        "mathach = b0 + b1*cgm(ses) + e\nb0 = g00 + u0\nb1 = g10",
        {"(Intercept)": "g00", "cgm_ses": "g10"},
    ),
    "within_between": (
        "mathach = b0 + b1*cwc(ses) + e\nb0 = g00 + g01*cmean(ses) + u0\nb1 = g10",
        {"(Intercept)": "g00", "cwc_ses": "g10", "cm_ses": "g01"},
    ),
    "contextual": (
        "mathach = b0 + b1*cgm(ses) + e\nb0 = g00 + g01*cmean(ses) + u0\nb1 = g10",
        {"(Intercept)": "g00", "cgm_ses": "g10", "cm_ses": "g01"},
    ),
}

EXTRA_MODELS = {
    "three_random": (
        """
        mathach = b0 + b1*cwc(ses) + b2*female + b3*minority + e
        b0 = g00 + g01*sector + u0
        b1 = g10 + u1
        b2 = g20 + u2
        b3 = g30 + u3
        """,
        {
            "(Intercept)": "g00",
            "sector": "g01",
            "cwc_ses": "g10",
            "female": "g20",
            "minority": "g30",
        },
    ),
    "categorical": (
        """
        mathach = b0 + b1*cwc(ses) + e
        b0 = g00 + g01*sectorc + g02*sizecat + u0
        b1 = g10 + g11*sectorc + u1
        """,
        {
            "(Intercept)": "g00",
            "sectorcPublic": "g01[Public]",
            "sizecatmedium": "g02[medium]",
            "sizecatsmall": "g02[small]",
            "cwc_ses": "g10",
            "sectorcPublic:cwc_ses": "g11[Public]",
        },
    ),
    "transforms": (
        """
        mathach = b0 + b1*cgm(ses) + b2*cgm(ses)^2 + e
        b0 = g00 + g01*cgm(log(size)) + u0
        b1 = g10
        b2 = g20
        """,
        {"(Intercept)": "g00", "lsize_c": "g01", "cgm_ses": "g10", "I(cgm_ses^2)": "g20"},
    ),
    "listwise": (ISAO, ISAO_MAP),
}


def hsb_with_categories(hsb: pd.DataFrame) -> pd.DataFrame:
    """The columns lme4_extra.R adds for the categorical model."""
    d = hsb.copy()
    d["sectorc"] = np.where(d["sector"] == 1, "Catholic", "Public")
    d["sizecat"] = pd.cut(d["size"], [0, 700, 1400, np.inf], labels=["small", "medium", "large"])
    d["sizecat"] = d["sizecat"].astype(str)
    return d


def hsb_with_missing(hsb: pd.DataFrame) -> pd.DataFrame:
    """The missing values lme4_extra.R puts in (1-based row numbers)."""
    d = hsb.copy()
    rows = np.arange(1, len(d) + 1)
    d.loc[rows % 37 == 0, "ses"] = np.nan
    d.loc[rows % 53 == 0, "mathach"] = np.nan
    d.loc[d["school"] == 1224, "sector"] = np.nan
    return d


def assert_matches_lme4(
    res: mlmwrap.MLMResults, ref: dict, mapping: dict, tau_rtol: float = 1e-3
) -> None:
    labels = [mapping[name] for name in ref["fixef"]]
    assert sorted(labels) == sorted(res.gamma.index), "every gamma is compared"
    est = res.gamma.loc[labels, "estimate"].to_numpy()
    se = res.gamma.loc[labels, "se"].to_numpy()
    np.testing.assert_allclose(est, list(ref["fixef"].values()), rtol=1e-4, atol=1e-8)
    np.testing.assert_allclose(se, list(ref["se"].values()), rtol=1e-3)
    tau_ref = np.atleast_2d(np.array(ref["tau"], dtype=float))
    np.testing.assert_allclose(res.tau.to_numpy(), tau_ref, rtol=tau_rtol, atol=1e-4)
    np.testing.assert_allclose(res.sigma2, ref["sigma2"], rtol=1e-3, atol=1e-4)
    assert res.deviance == pytest.approx(ref["deviance"], abs=1e-3)
    assert res.method == ("REML" if ref["reml"] else "ML")


@pytest.mark.parametrize("name", list(HSB_MODELS))
def test_hsb_models_match_lme4(name, hsb, lme4_hsb):
    equations, mapping = HSB_MODELS[name]
    res = mlmwrap.fit(equations, hsb, cluster="school", reml=lme4_hsb[name]["reml"])
    assert_matches_lme4(res, lme4_hsb[name], mapping)
    assert res.converged and not res.singular and res.hessian_pd


def test_isao_ml_matches_lme4(hsb, lme4_hsb):
    res = mlmwrap.fit(ISAO, hsb, cluster="school", reml=False)
    assert_matches_lme4(res, lme4_hsb["isao_ml"], ISAO_MAP)


@pytest.mark.parametrize("name", [n for n in HSB_MODELS if n != "isao"])
def test_hsb_models_by_ml_match_lme4(name, hsb, lme4_extra):
    equations, mapping = HSB_MODELS[name]
    res = mlmwrap.fit(equations, hsb, cluster="school", reml=False)
    assert_matches_lme4(res, lme4_extra[f"{name}_ml"], mapping)


@pytest.mark.parametrize("name", list(EXTRA_MODELS))
def test_extra_models_match_lme4(name, hsb, lme4_extra):
    equations, mapping = EXTRA_MODELS[name]
    data = {"categorical": hsb_with_categories, "listwise": hsb_with_missing}.get(
        name, lambda d: d
    )(hsb)
    res = mlmwrap.fit(equations, data, cluster="school", reml=lme4_extra[name]["reml"])
    ref = lme4_extra[name]
    assert (res.nobs, res.n_clusters) == (ref["nobs"], ref["ngroups"])
    # lme4 stops short on three_random ('failed to converge', max|grad| 0.004; its deviance
    # is 4e-6 above mlmwrap's, whose gradient is 1e-11): tau is flat there, so 5e-3.
    assert_matches_lme4(res, ref, mapping, tau_rtol=5e-3 if name == "three_random" else 1e-3)


def test_listwise_deletion_is_reported(hsb):
    data = hsb_with_missing(hsb)
    res = mlmwrap.fit(ISAO, data, cluster="school")
    s = res.sample
    assert (s.rows_total, s.rows_used, s.rows_dropped) == (7185, 6813, 372)
    assert (s.clusters_total, s.clusters_used, s.clusters_dropped) == (160, 159, 1)
    assert s.dropped_by_variable == {
        "ses": int(data["ses"].isna().sum()),
        "mathach": int(data["mathach"].isna().sum()),
        "sector": int(data["sector"].isna().sum()),
    }
    assert "Dropped: 372 of 7185 rows" in res.summary()


def test_centering_uses_the_estimation_sample(hsb):
    """cwc(ses) after deletion equals ses minus the mean of the rows kept."""
    data = hsb_with_missing(hsb)
    res = mlmwrap.fit(ISAO, data, cluster="school")
    kept = data.dropna(subset=["mathach", "ses", "meanses", "sector"])
    manual = kept.assign(c=kept["ses"] - kept.groupby("school")["ses"].transform("mean"))
    manual_res = mlmwrap.fit(ISAO.replace("cwc(ses)", "c"), manual, cluster="school")
    np.testing.assert_allclose(res.gamma["estimate"], manual_res.gamma["estimate"], rtol=1e-10)


def test_three_random_effects_reach_at_least_lme4s_optimum(hsb, lme4_extra):
    # lme4 reports 'failed to converge' (max|grad| 0.004) on this model even with tight
    # tolerances; mlmwrap must not do worse.
    equations, _ = EXTRA_MODELS["three_random"]
    res = mlmwrap.fit(equations, hsb, cluster="school")
    assert res.deviance <= lme4_extra["three_random"]["deviance"] + 1e-6
    assert res.converged


@pytest.mark.parametrize("name,reml", [("boundary_reml", True), ("boundary_ml", False)])
def test_boundary_fit_keeps_the_right_gammas(name, reml, boundary_data, lme4_extra):
    """statsmodels issue #10239: a zero variance must not zero the gammas."""
    eq = "y = b0 + b1*x + e\nb0 = g00 + g01*w + u0\nb1 = g10"
    with pytest.warns(mlmwrap.BoundaryWarning, match="variance of u0 is estimated as 0"):
        res = mlmwrap.fit(eq, boundary_data, cluster="cluster", reml=reml)
    assert res.singular and res.tau.loc["u0", "u0"] == pytest.approx(0.0, abs=1e-8)
    assert_matches_lme4(res, lme4_extra[name], {"(Intercept)": "g00", "w": "g01", "x": "g10"})
    # With tau = 0 the GLS estimates are the OLS ones.
    X = np.column_stack([np.ones(len(boundary_data)), boundary_data["w"], boundary_data["x"]])
    ols = np.linalg.lstsq(X, boundary_data["y"], rcond=None)[0]
    np.testing.assert_allclose(res.gamma["estimate"], ols, rtol=1e-6)
    # ... and the statsmodels object underneath carries them too.
    with pytest.warns(mlmwrap.ConvergenceWarning, match="bse_re"):
        sm = res.statsmodels
    np.testing.assert_allclose(sm.fe_params, ols, rtol=1e-6)
    assert "Singular fit" in res.summary() and "boundary" in res.messages[0]
    assert "[singular]" in repr(res)


def test_boundary_with_random_slope(boundary_data, lme4_extra):
    eq = "y = b0 + b1*x + e\nb0 = g00 + g01*w + u0\nb1 = g10 + u1"
    with pytest.warns(mlmwrap.BoundaryWarning):
        res = mlmwrap.fit(eq, boundary_data, cluster="cluster")
    assert res.singular
    assert_matches_lme4(
        res, lme4_extra["boundary_slope"], {"(Intercept)": "g00", "w": "g01", "x": "g10"}
    )
    # Both variances are 0: no correlation is reported (lme4 prints NaN too).
    assert np.isnan(res.tau_corr.loc["u1", "u0"])


def test_no_warning_on_a_clean_fit(hsb):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = mlmwrap.fit(ISAO, hsb, cluster="school")
    assert res.messages == ()
