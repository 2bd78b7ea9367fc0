"""Profile and Wald intervals for the variance components, against lme4.

Golden numbers: reference/hsb_inference.json ``profile_ci_rc`` (``confint(rc, method =
"profile", oldNames = FALSE)``, REML random-coefficient model) and
reference/issue4b_inference.json (issue4b_inference.R): profile intervals of a
random-intercept model and of a singular fit, lme4's profile (zeta) of the correlation and the
slope SD on its own grid, and log-scale Wald intervals from numDeriv's Hessian of lmerTest's
REML deviance function.

Tolerance 1e-3 relative on the profile bounds, except the correlation's: for it lme4's
``confint`` warns "bad spline fit ... falling back to linear interpolation" and interpolates
linearly between grid points ~0.086 apart, which puts its bounds 1.0e-3 and 1.4e-3 (relative)
from the exact roots. We check the correlation's bounds to 2e-3 and, precisely, that our
profile goes through lme4's own profile points (zeta within 5e-4 inside the 99% region; where
they differ we found the lower deviance).
"""

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mlmwrap
from mlmwrap.analysis.intervals import _ml_values, _params, _Profiler, variance_intervals
from mlmwrap.errors import BoundaryWarning, MLMError

REFERENCE = Path(__file__).parent / "reference"
GOLDEN = json.loads((REFERENCE / "hsb_inference.json").read_text())
EXTRA = json.loads((REFERENCE / "issue4b_inference.json").read_text())

RC = "mathach = b0 + b1*cwc(ses) + e\nb0 = g00 + u0\nb1 = g10 + u1"
LME4_NAMES = {  # lme4's confint names -> ours
    "sd_(Intercept)|school": "sd(u0)",
    "cor_cwc_ses.(Intercept)|school": "cor(u0,u1)",
    "sd_cwc_ses|school": "sd(u1)",
    "sd_(Intercept)|cluster": "sd(u0)",
    "sigma": "sigma",
    "(Intercept)": "g00",
    "cwc_ses": "g10",
}


@pytest.fixture(scope="module")
def rc(hsb):
    return mlmwrap.fit(RC, hsb, cluster="school", df="z")  # res.gamma holds z-tests


@pytest.fixture(scope="module")
def rc_profile(rc):
    return variance_intervals(rc)


def test_profile_matches_lme4_confint(rc_profile):
    ref = GOLDEN["profile_ci_rc"]
    names = [LME4_NAMES[p] for p in ref["param"]]
    assert list(rc_profile.index) == names
    rtol = np.where(np.array(names) == "cor(u0,u1)", 2e-3, 1e-3)
    np.testing.assert_array_less(np.abs(rc_profile["lower"] / ref["lower"] - 1), rtol)
    np.testing.assert_array_less(np.abs(rc_profile["upper"] / ref["upper"] - 1), rtol)


def test_profile_goes_through_lme4s_profile_points(rc):
    prof = _Profiler(rc)
    params = {p.label: p for p in _params(rc, gammas=False)}
    centre = _ml_values(prof, list(params.values()))
    for lme4_name, grid in EXTRA["profile_grid_rc"].items():
        par = params[LME4_NAMES[lme4_name]]
        for value, zeta in zip(grid["value"], grid["zeta"], strict=True):
            rise = prof.deviance(par, value, centre[par.label]) - prof.dev_min
            ours = np.sign(zeta) * np.sqrt(max(rise, 0.0))
            assert abs(ours) <= abs(zeta) + 1e-5  # never a worse (higher) profile than lme4's
            if abs(zeta) < 2.6:
                assert ours == pytest.approx(zeta, abs=5e-4), (par.label, value)


def test_profile_random_intercept_model(hsb):
    res = mlmwrap.fit(
        "mathach = b0 + b1*cwc(ses)\nb0 = g00 + g01*meanses + u0\nb1 = g10", hsb, "school"
    )
    ref = EXTRA["ri"]["profile"]
    ci = variance_intervals(res)
    assert list(ci.index) == ["sd(u0)", "sigma", "g00", "g01", "g10"]
    np.testing.assert_allclose(ci["lower"], ref["lower"], rtol=1e-4)
    np.testing.assert_allclose(ci["upper"], ref["upper"], rtol=1e-4)


def test_profile_reaches_the_limits_as_lme4(hsb):
    # slopes-as-outcomes: the slope SD's profile stays below the cut-off down to 0 and the
    # correlation's all the way to -1 and 1, so those limits are the bounds (as lme4's)
    res = mlmwrap.fit(
        "mathach = b0 + b1*cwc(ses)\nb0 = g00 + g01*meanses + g02*sector + u0\n"
        "b1 = g10 + g11*meanses + g12*sector + u1",
        hsb,
        "school",
    )
    ref = EXTRA["isao_profile"]
    ci = variance_intervals(res)
    assert ci.loc["cor(u0,u1)", "lower"] == -1.0 and ci.loc["cor(u0,u1)", "upper"] == 1.0
    assert ci.loc["sd(u1)", "lower"] == 0.0
    np.testing.assert_allclose(ci["lower"], ref["lower"], rtol=1e-3, atol=1e-12)
    np.testing.assert_allclose(ci["upper"], ref["upper"], rtol=1e-3)


def test_profile_at_the_boundary(boundary_data):
    with pytest.warns(BoundaryWarning):
        res = mlmwrap.fit(
            "y = b0 + b1*x\nb0 = g00 + g01*w + u0\nb1 = g10", boundary_data, "cluster"
        )
    ref = EXTRA["boundary_ri_profile"]
    ci = variance_intervals(res)
    assert ci.loc["sd(u0)", "lower"] == 0.0  # the profile never rises far enough before 0
    np.testing.assert_allclose(ci["lower"].iloc[1:], ref["lower"][1:], rtol=1e-4)
    np.testing.assert_allclose(ci["upper"], ref["upper"], rtol=1e-4)


def test_ml_fit_gives_the_same_profile(hsb, rc_profile):
    # lme4 profiles the ML deviance whatever the fit: an ML fit has the same intervals.
    ml = mlmwrap.fit(RC, hsb, cluster="school", reml=False)
    ci = variance_intervals(ml, gammas=False)
    np.testing.assert_allclose(ci["lower"], rc_profile["lower"].iloc[:4], rtol=1e-6)
    np.testing.assert_allclose(ci["upper"], rc_profile["upper"].iloc[:4], rtol=1e-6)
    assert (ci["estimate"] < rc_profile["estimate"].iloc[:4]).iloc[[0, 2]].all()  # ML SDs smaller


def test_wald_on_the_log_scale_matches_numderiv(rc):
    ref = EXTRA["wald_rc"]
    ci = variance_intervals(rc, method="wald", gammas=False)
    assert list(ci.index) == ref["param"]
    np.testing.assert_allclose(ci["lower"], ref["lower"], rtol=1e-4)
    np.testing.assert_allclose(ci["upper"], ref["upper"], rtol=1e-4)
    # log scale: the SD's interval is asymmetric about the estimate, and stays positive
    sd = ci.loc["sd(u1)"]
    assert sd["upper"] - sd["estimate"] > sd["estimate"] - sd["lower"] > 0


def test_wald_gammas_are_res_gamma_intervals(rc):
    ci = variance_intervals(rc, method="wald")
    np.testing.assert_allclose(ci.loc[["g00", "g10"], "lower"], rc.gamma["ci_lower"], rtol=1e-12)
    assert "Wald" in ci.attrs["method"]


def test_wald_at_the_boundary_is_nan_with_a_warning(boundary_data):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = mlmwrap.fit(
            "y = b0 + b1*x\nb0 = g00 + g01*w + u0\nb1 = g10", boundary_data, "cluster"
        )
    with pytest.warns(BoundaryWarning, match="sd\\(u0\\)"):
        ci = variance_intervals(res, method="wald")
    assert np.isnan(ci.loc["sd(u0)", ["lower", "upper"]]).all()
    assert np.isfinite(ci.loc["sigma", ["lower", "upper"]]).all()


def test_level_and_bad_input(rc, hsb):
    ci90 = variance_intervals(rc, method="wald", level=0.9, gammas=False)
    ci95 = variance_intervals(rc, method="wald", gammas=False)
    assert (ci90["lower"] > ci95["lower"]).all() and (ci90["upper"] < ci95["upper"]).all()
    with pytest.raises(MLMError, match="interval method"):
        variance_intervals(rc, method="bootstrap")
    with pytest.raises(MLMError, match="level"):
        variance_intervals(rc, level=0)


def test_callers_data_unchanged(hsb):
    data = hsb.copy()
    before = data.copy()
    res = mlmwrap.fit("mathach = b0 + e\nb0 = g00 + u0", data, cluster="school")
    ci = variance_intervals(res)
    assert list(ci.index) == ["sd(u0)", "sigma", "g00"]
    assert (ci["lower"] < ci["estimate"]).all() and (ci["estimate"] < ci["upper"]).all()
    pd.testing.assert_frame_equal(data, before)
