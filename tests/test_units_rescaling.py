"""Equivariance under units, Wald intervals included: rescaling the outcome or a predictor
by a power of ten changes the estimates and the interval bounds only by the implied factors
and leaves every verdict unchanged (complements test_units.py).

Before the Wald intervals were made units-free, ``ses * 1e4`` made sd(u1) and cor(u0,u1)
NaN (an absolute zero-SD threshold) and ``mathach * 1e-6`` moved the sd(u1) bounds by 0.6%
(finite-difference steps proportional to log SD).

Implied factors: a design column multiplied by ``c_k`` (read off the two designs) and the
outcome by ``f`` give ``gamma_k * f / c_k``, ``se_k * f / c_k``, ``tau_kl * f^2 / (d_k d_l)``
(``d`` for the random-effect columns), ``sigma2 * f^2``; df, p, correlations, the
singular/converged/Hessian verdicts and the zero-variance flags are unchanged; the deviance
moves by the constant ``nu log f^2 + 2 sum log|c_k|`` (REML: ``nu = n - p``, the log det A
term; ML: ``nu = n`` and no ``c`` term), the same for every model fitted to the rescaled
data, so deviance differences between models are unchanged.

Tolerances: gammas within 1e-4 of their SE, SEs 1e-5 relative, tau and sigma2 1e-4
relative (of the largest tau entry for covariances), df 2e-3 relative (numerical second
derivatives), p 1e-3 absolute, Wald interval bounds 1e-3 relative, correlations 1e-4
absolute, deviance shift 1e-6 relative to the deviance.
"""

import warnings
from functools import cache

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import mlmwrap

MODELS = {
    # outcome, random-slope predictor (cwc(ses)), level-2 predictor, cluster mean
    "contextual": """
        mathach = b0 + b1*cwc(ses) + e
        b0 = g00 + g01*meanses + g02*cmean(ses) + u0
        b1 = g10 + g11*meanses + u1
    """,
    # uncentered random slope and a binary level-2 predictor
    "slope": """
        mathach = b0 + b1*ses + e
        b0 = g00 + g01*sector + u0
        b1 = g10 + u1
    """,
}
COLUMNS = ["mathach", "ses", "meanses"]

_HSB = mlmwrap.datasets.load_hsb()
_DATA = _HSB[_HSB["school"].isin(_HSB["school"].unique()[::4])].reset_index(drop=True)


def _fit(model: str, column: str | None, power: int, reml: bool):
    data = _DATA.copy()
    if column is not None:
        data[column] = data[column] * 10.0**power
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return mlmwrap.fit(MODELS[model], data, cluster="school", reml=reml)


@cache
def _base(model: str, reml: bool):
    return _fit(model, None, 0, reml)


def _ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per column: the factor that takes b's column to a's (1 for an all-zero column)."""
    k = np.argmax(np.abs(b), axis=0)
    cols = np.arange(b.shape[1])
    return np.where(b[k, cols] != 0, a[k, cols] / np.where(b[k, cols] != 0, b[k, cols], 1), 1)


def _corr(tau: np.ndarray) -> np.ndarray:
    sd = np.sqrt(np.diag(tau))
    with np.errstate(invalid="ignore", divide="ignore"):
        return tau / np.outer(sd, sd)


@settings(max_examples=14, derandomize=True, deadline=None)
@given(
    model=st.sampled_from(sorted(MODELS)),
    column=st.sampled_from(COLUMNS),
    power=st.sampled_from([-6, -4, -2, 2, 4, 6]),
    reml=st.booleans(),
)
def test_rescaling_changes_estimates_only_by_the_implied_factors(model, column, power, reml):
    if model == "slope" and column == "meanses":
        column = "sector"  # the level-2 predictor of that model
    base, res = _base(model, reml), _fit(model, column, power, reml)
    f = 10.0**power if column == "mathach" else 1.0
    c = _ratio(res.design.X, base.design.X)
    d = _ratio(res.design.Z, base.design.Z)

    g0, g1 = base.gamma, res.gamma
    implied = f / c
    se0 = g0["se"].to_numpy()
    np.testing.assert_array_less(
        np.abs(g1["estimate"].to_numpy() / implied - g0["estimate"].to_numpy()), 1e-4 * se0
    )
    np.testing.assert_allclose(g1["se"].to_numpy() / implied, se0, rtol=1e-5)
    np.testing.assert_allclose(g1["df"], g0["df"], rtol=2e-3)
    np.testing.assert_allclose(g1["p"], g0["p"], atol=1e-3)

    tau0, tau1 = base.tau.to_numpy(), res.tau.to_numpy() * np.outer(d, d) / f**2
    np.testing.assert_allclose(tau1, tau0, rtol=1e-4, atol=1e-4 * np.abs(tau0).max())
    np.testing.assert_allclose(res.sigma2 / f**2, base.sigma2, rtol=1e-4)
    np.testing.assert_allclose(_corr(tau1), _corr(tau0), atol=1e-4)

    # Wald intervals of the SDs scale like the SDs; those of correlations do not move.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        w0, w1 = base.confint("wald", gammas=False), res.confint("wald", gammas=False)
    factor = np.ones(len(w0))
    for i, label in enumerate(w0.index):
        if label == "sigma":
            factor[i] = f
        elif label.startswith("sd("):
            factor[i] = f / d[list(base.tau.index).index(label[3:-1])]
    np.testing.assert_allclose(
        w1[["lower", "upper"]].to_numpy() / factor[:, None],
        w0[["lower", "upper"]].to_numpy(),
        rtol=1e-3,
        atol=1e-4,
    )

    assert res.converged == base.converged and res.singular == base.singular
    assert res.hessian_pd == base.hessian_pd
    np.testing.assert_array_equal(res.optimum.zero_variances, base.optimum.zero_variances)

    n, p = base.nobs, len(g0)
    shift = (n - p if reml else n) * np.log(f**2)
    if reml:
        shift += 2.0 * np.sum(np.log(np.abs(c)))
    assert abs(res.deviance - base.deviance - shift) <= 1e-6 * abs(base.deviance)


def test_a_large_offset_plus_noise_varies_within_clusters():
    # 1e10 plus noise is a level-1 variable: cwc() of it is allowed and equals cwc(noise).
    rng = np.random.default_rng(2)
    data = _DATA.assign(big=1e10 + rng.normal(size=len(_DATA)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = mlmwrap.fit("mathach = b0 + b1*cwc(big)\nb0 = g00 + u0\nb1 = g10", data, "school")
    assert np.isfinite(res.gamma.loc["g10", "se"])


def test_a_tiny_outcome_has_the_same_df_and_correlation():
    # The example: the HSB random-slope model with mathach / 10,000.
    eq = "mathach = b0 + b1*cwc(ses)\nb0 = g00 + u0\nb1 = g10 + u1"
    a = mlmwrap.fit(eq, _HSB, cluster="school")
    b = mlmwrap.fit(eq, _HSB.assign(mathach=_HSB["mathach"] / 1e4), cluster="school")
    np.testing.assert_allclose(b.gamma["df"], a.gamma["df"], rtol=2e-3)
    np.testing.assert_allclose(_corr(b.tau.to_numpy()), _corr(a.tau.to_numpy()), atol=1e-4)
