"""Issue 11, class 1: the results do not depend on the units of measurement.

Rescaling the outcome, a random-slope predictor, a level-2 predictor and the variable
behind a cluster mean by powers of ten (1e-6 .. 1e6) changes each estimate only by the
factor its units imply; df, p-values, correlations, boundary and convergence verdicts are
unchanged, and the deviance moves by exactly the constant the units imply (so deviance
differences between models are unchanged).

Tolerances: estimates, SEs, tau and sigma2 to 1e-5 relative (the optimizer's own
accuracy); Satterthwaite df to 1e-4 relative (finite differences of the gradient); p to
1e-4 relative (+1e-12); correlations to 1e-5; deviances to 1e-5 relative to n.
"""

import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mlmwrap
from mlmwrap.model.centering import varies_within

SLOPES = ["cwc(ses)", "ses", "cgm(ses)"]
LEVEL2 = ["meanses", "sector", "pracad"]
MEANS = ["female", "minority"]


def _equations(slope: str, w: str, m: str, random_slope: bool, w_on_slope: bool) -> str:
    return "\n".join(
        [
            f"mathach = b0 + b1*{slope}",
            f"b0 = g00 + g01*{w} + g02*cmean({m}) + u0",
            "b1 = g10" + (f" + g11*{w}" if w_on_slope else "") + (" + u1" if random_slope else ""),
        ]
    )


def _fit(eq, data, reml):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return mlmwrap.fit(eq, data, cluster="school", reml=reml)


def _corr(tau):
    sd = np.sqrt(np.diag(tau))
    with np.errstate(invalid="ignore", divide="ignore"):
        return tau / np.outer(sd, sd)


@settings(
    max_examples=12,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    seed=st.integers(0, 2**16),
    slope=st.sampled_from(SLOPES),
    w=st.sampled_from(LEVEL2),
    m=st.sampled_from(MEANS),
    random_slope=st.booleans(),
    w_on_slope=st.booleans(),
    reml=st.booleans(),
    exps=st.tuples(*[st.integers(-6, 6)] * 4),
)
def test_results_are_equivariant_under_units(
    hsb, seed, slope, w, m, random_slope, w_on_slope, reml, exps
):
    rng = np.random.default_rng(seed)
    schools = rng.choice(hsb["school"].unique(), size=int(rng.integers(25, 60)), replace=False)
    data = hsb[hsb["school"].isin(schools)]
    cy, cs, cw, cm = (10.0**e for e in exps)
    scaled = data.assign(
        mathach=data["mathach"] * cy, ses=data["ses"] * cs, **{w: data[w] * cw, m: data[m] * cm}
    )
    eq = _equations(slope, w, m, random_slope, w_on_slope)
    a, b = _fit(eq, data, reml), _fit(eq, scaled, reml)

    factor = {"g00": cy, "g01": cy / cw, "g02": cy / cm, "g10": cy / cs, "g11": cy / (cs * cw)}
    f = np.array([factor[g] for g in a.gamma.index])
    np.testing.assert_allclose(b.gamma["estimate"] / f, a.gamma["estimate"], rtol=1e-5, atol=0)
    np.testing.assert_allclose(b.gamma["se"] / f, a.gamma["se"], rtol=1e-5)
    np.testing.assert_allclose(b.gamma["df"], a.gamma["df"], rtol=1e-4)
    np.testing.assert_allclose(b.gamma["p"], a.gamma["p"], rtol=1e-4, atol=1e-12)
    z = np.array([1.0, cs])[: len(a.tau)]
    assert b.sigma2 / cy**2 == pytest.approx(a.sigma2, rel=1e-5)
    np.testing.assert_allclose(
        b.tau.to_numpy() * np.outer(z, z) / cy**2, a.tau.to_numpy(), rtol=1e-4, atol=1e-6 * a.sigma2
    )
    np.testing.assert_allclose(_corr(b.tau.to_numpy()), _corr(a.tau.to_numpy()), atol=1e-5)
    assert (b.converged, b.singular, b.hessian_pd) == (a.converged, a.singular, a.hessian_pd)
    assert list(b.optimum.zero_variances) == list(a.optimum.zero_variances)

    # The deviance moves by the constant the units imply: 2 n log c_y (ML), and under REML
    # 2 (n - p) log c_y plus log det of the rescaled X'V^-1X (2 log of each column's factor).
    n, p = a.nobs, len(f)
    shift = 2 * n * np.log(cy) if not reml else 2 * (n - p) * np.log(cy) + 2 * np.log(cy / f).sum()
    assert b.deviance - a.deviance == pytest.approx(shift, abs=1e-5 * n)


def test_deviance_differences_between_models_are_unchanged(hsb):
    data = hsb.assign(mathach=hsb["mathach"] * 1e-4, ses=hsb["ses"] * 1e5)
    big = "mathach = b0 + b1*cwc(ses)\nb0 = g00 + g01*meanses + u0\nb1 = g10 + u1"
    small = "mathach = b0 + b1*cwc(ses)\nb0 = g00 + u0\nb1 = g10 + u1"
    diff = [_fit(small, d, False).deviance - _fit(big, d, False).deviance for d in (hsb, data)]
    assert diff[1] == pytest.approx(diff[0], rel=1e-6)


def test_the_issue_example_outcome_over_ten_thousand(hsb):
    eq = "mathach = b0 + b1*cwc(ses)\nb0 = g00 + u0\nb1 = g10 + u1"
    a = _fit(eq, hsb, True)
    b = _fit(eq, hsb.assign(mathach=hsb["mathach"] / 1e4), True)
    np.testing.assert_allclose(b.gamma["df"], a.gamma["df"], rtol=1e-4)  # was ~528,000
    assert np.isfinite(_corr(b.tau.to_numpy())).all()


def test_a_large_offset_plus_noise_varies_within_clusters():
    codes = np.repeat(np.arange(4), 5)
    x = 1e10 + np.random.default_rng(0).normal(size=20)
    assert varies_within(x, codes).all()
    assert not varies_within(np.repeat(1e10 + np.arange(4.0), 5), codes).any()
    assert varies_within(1e-12 * np.arange(20.0), codes).all()  # tiny units vary too
