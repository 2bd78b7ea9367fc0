"""Block-diagonal tau (``cov(u0, u1) = 0``) and random effects with mean 0 (``b1 = u1``).

Golden numbers: reference/issue9_three_level.json (lme4 1.1-31 and lmerTest, made by
reference/issue9_three_level.R; the HSB models written with ``||`` and ``(0 + x | g)``) and
reference/issue9_tau_structures.json (lme4's profile intervals, made by
reference/issue9_tau_structures.R). Tolerances: gammas 1e-4 relative, SEs, tau and sigma2
1e-3 relative, deviance 1e-3 absolute, Satterthwaite df 1e-4 relative, profile bounds 1e-3
relative.
"""

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from conftest import DATA, REFERENCE
from test_equations import unmark

import mlmwrap
from mlmwrap.errors import EquationSyntaxError, SpecificationError
from mlmwrap.language.equations import parse_equations
from mlmwrap.model.engine import (
    ClusterStats,
    L_to_theta,
    block_pattern,
    evaluate,
    optimize,
    theta_to_L,
)
from mlmwrap.report.export import from_json

RC = "mathach = b0 + b1*cwc(ses) + e\nb0 = g00 + u0\n"
MODELS = {  # golden key -> equations (lme4 formula in the JSON)
    "hsb_diag": RC + "b1 = g10 + u1\ncov(u0, u1) = 0",
    "hsb_zero_mean_diag": RC + "b1 = u1\ncov(u0, u1) = 0",
    "hsb_zero_mean_slope": RC + "b1 = 0 + u1",
}
NAMES = {"(Intercept)": "g00", "cwc_ses": "g10"}


@pytest.fixture(scope="module")
def golden() -> dict:
    return json.loads((REFERENCE / "issue9_three_level.json").read_text())["models"]


@pytest.fixture(scope="module")
def hsb_cat() -> pd.DataFrame:
    return pd.read_csv(DATA / "hsb_level1_cat.csv.gz")


# -- the language ---------------------------------------------------------------------------
def test_cov_lines_give_blocks_in_beta_order():
    spec = parse_equations(
        "y = b0 + b1*x + b2*z + e\nb0 = g00 + u0\nb1 = g10 + u1\nb2 = g20 + u2\n"
        "cov(u2, u0) = 0\ncov(u0,u1)=0  # intercept uncorrelated"
    )
    assert spec.zero_covariances == (("u0", "u1"), ("u0", "u2"))
    assert spec.tau_blocks == (("u0",), ("u1", "u2"))
    assert "cov(u0, u1) = 0" in spec.level2_text()
    diag = parse_equations(
        "y = b0 + b1*x + b2*z + e\nb0 = g00 + u0\nb1 = g10 + u1\nb2 = g20 + u2\n"
        "cov(u0, u1) = 0\ncov(u0, u2) = 0\ncov(u1, u2) = 0\ncov(u1, u0) = 0"  # repeated: same
    )
    assert diag.tau_blocks == (("u0",), ("u1",), ("u2",))


def test_notations_for_cov_and_zero_mean_are_equal():
    a = parse_equations("y = b0 + b1*x + e\nb0 = g00 + u0\nb1 = u1\ncov(u0, u1) = 0")
    b = parse_equations(
        "y_ij = β0j + β1j*x + r_ij\nβ0j = γ00 + u0j\nβ1j = 0 + u1j\nCOV(u1j, u0j) = 0"
    )
    assert a.zero_covariances == b.zero_covariances == (("u0", "u1"),)
    assert [x.gammas for x in a.betas] == [x.gammas for x in b.betas]
    assert a.zero_mean_betas[0].label == "b1" and a.beta(1).gammas == ()
    assert a.reduced_text() == "y = g00 + u0 + u1*x + e"


BASE = "y = b0 + b1*x + b2*z + e\nb0 = g00 + u0\nb1 = g10 + u1\nb2 = g20 + u2\n"
ERRORS = [
    (BASE + "<cov(u0,u2)>=0", "not block-diagonal: u0 and u2 are still tied", "u1"),
    (BASE + "cov(u0,u1)=<0.5>", "can only be fixed at 0, not at '0.5'", "remove the line"),
    (BASE + "cov(u0,<u5>)=0", "'u5' is not a random effect of the model", "check the number"),
    (BASE + "<cov(u1,u1)>=0", "is the variance of u1, not a covariance", "remove '+ u1'"),
    (BASE + "cov(u0,<x>)=0", "'x' is not a random effect", "between two random effects"),
    (BASE + "cov(u0,u1)=<0 + u1>", "must be followed by 0", "remove the line"),
    (
        "y = b0 + b1*x + b2*z + e\nb0 = g00 + u0\nb1 = g10 + u1\nb2 = g20\ncov(u0,<u2>)=0",
        "b2 is fixed (its equation has no u2)",
        "add '+ u2' to the b2 equation",
    ),
    (BASE + "<cov(u0,u1)>+b1=0", "must stand alone on the left", None),
    (
        "y = b0 + b1*<cov(u0,u1)> + e\nb0 = g00 + u0\nb1 = g10",
        "is not a predictor",
        "a line of its own",
    ),
    (
        "y = b0 + b1*x + e\nb0 = g00 + u0\nb1 = 0 + <g10> + u1",
        "'0' fixes the mean of b1 at 0, but g10 estimates it",
        "remove '0 +' or remove g10",
    ),
    (
        "y = b0 + b1*x + e\nb0 = g00 + u0\nb1 = <0>",
        "b1 = 0 takes its predictor out of the model",
        "write b1 = u1",
    ),
    ("y = b0 + e\n<b0 = u0>", "the model has no gamma", "needs other terms with a gamma"),
    ("y = b0 + b1*x + e\nb0 = g00 + u0\nb1 = 0 + <0> + u1", "'0' appears twice", None),
]


@pytest.mark.parametrize(("marked", "message", "hint"), ERRORS)
def test_errors_point_at_the_mistake(marked, message, hint):
    text, lineno, span = unmark(marked)
    with pytest.raises(SpecificationError) as info:
        parse_equations(text)
    err = info.value
    assert message in err.message
    assert (err.lineno, err.span) == (lineno, span)
    if hint is not None:
        assert hint in err.hint
    assert "^" in str(err)


def test_cov_with_wrong_arity_is_a_syntax_error():
    with pytest.raises(EquationSyntaxError, match=r"cov\(\) takes 2 arguments, got 3"):
        parse_equations(BASE + "cov(u0, u1, u2) = 0")


# -- the engine -----------------------------------------------------------------------------
def test_block_pattern_and_theta_round_trip():
    free = block_pattern([[0, 2], [1]], 3)
    assert free.tolist() == [[True, False, False], [False, True, False], [True, False, True]]
    assert block_pattern([[0, 1]], 2) is None
    theta = np.array([0.5, -0.2, 0.7, 0.3])  # L00, L20, L11, L22: column-major, free only
    L = theta_to_L(theta, 3, free)
    assert L[2, 0] == -0.2 and L[1, 0] == 0 and L[2, 1] == 0
    np.testing.assert_array_equal(L_to_theta(L, free), theta)
    tau = L @ L.T
    assert tau[0, 1] == tau[1, 2] == 0.0  # exact zeros between the blocks


def test_gradient_with_a_pattern_matches_finite_differences():
    rng = np.random.default_rng(3)
    groups = np.repeat(np.arange(40), 12)
    X = np.column_stack([np.ones(480), rng.normal(size=(480, 2))])
    y = X @ [1.0, 0.5, -0.3] + rng.normal(size=(40, 3))[groups].sum(1) + rng.normal(size=480)
    free = block_pattern([[0, 2], [1]], 3)
    stats = ClusterStats.from_arrays(X, X, y, groups, free=free)
    assert stats.n_theta == 4
    theta = np.array([0.8, 0.3, 0.6, 0.5])
    for reml in (True, False):
        grad = L_to_theta(evaluate(stats, theta_to_L(theta, 3, free), reml).gradient, free)
        h = 1e-6
        num = [
            (
                evaluate(stats, theta_to_L(theta + h * e, 3, free), reml).deviance
                - evaluate(stats, theta_to_L(theta - h * e, 3, free), reml).deviance
            )
            / (2 * h)
            for e in np.eye(4)
        ]
        np.testing.assert_allclose(grad, num, rtol=1e-5, atol=1e-6)
    opt = optimize(stats)
    assert opt.converged and opt.tau[0, 1] == 0.0 and opt.tau[1, 2] == 0.0


# -- fits against lme4 ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("key", "reml"),
    [
        ("hsb_diag", True),
        ("hsb_diag", False),
        ("hsb_zero_mean_diag", True),
        ("hsb_zero_mean_slope", True),
    ],
)
def test_against_lme4(golden, hsb_cat, key, reml):
    g = golden[key if reml else key + "_ml"]
    res = mlmwrap.fit(MODELS[key], hsb_cat, cluster="school", reml=reml)
    assert res.converged
    fixef = {NAMES[k]: v for k, v in g["fixef"].items()}
    assert list(res.gamma.index) == list(fixef)
    np.testing.assert_allclose(res.gamma["estimate"], list(fixef.values()), rtol=1e-4)
    np.testing.assert_allclose(res.gamma["se"], list(g["se"].values()), rtol=1e-3)
    np.testing.assert_allclose(res.gamma["df"], list(g["df"].values()), rtol=1e-4)
    tau = np.array(g["tau"]["school"]["cov"])
    np.testing.assert_allclose(res.tau.to_numpy(), tau, rtol=1e-3, atol=1e-3 * tau.max())
    if g["tau"]["school"]["diagonal"]:
        assert res.tau.loc["u0", "u1"] == 0.0 and res.tau_fixed.loc["u0", "u1"]
    assert res.sigma2 == pytest.approx(g["sigma2"], rel=1e-3)
    assert res.deviance == pytest.approx(g["deviance"], abs=1e-3)
    # the lme4 formula a researcher would check the fit with: one (... | g) term per block
    lme4 = res.formulas.lme4
    if key != "hsb_diag":
        assert lme4 == g["formula"]
    else:
        assert lme4 == "mathach ~ 1 + cwc_ses + (1 | school) + (0 + cwc_ses | school)"
    if g["tau"]["school"]["diagonal"]:  # statsmodels' bse_re: no SE for a fixed covariance
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            assert res.statsmodels.bse_re.iloc[1] == 0.0
    n_params = len(fixef) + len(g["theta"]) + 1  # covariances fixed at 0 are not parameters
    assert res.n_params == n_params
    assert res.aic == pytest.approx(g["deviance"] + 2 * n_params, abs=1e-3)


@pytest.fixture(scope="module")
def fits(hsb):
    eqs = {
        "full": "mathach = b0 + b1*cwc(ses) + e\nb0 = g00 + g01*sector + u0\nb1 = g10 + u1",
        "diag": "mathach = b0 + b1*cwc(ses) + e\nb0 = g00 + g01*sector + u0\nb1 = g10 + u1\n"
        "cov(u0, u1) = 0",
        "zero_mean": "mathach = b0 + b1*cwc(ses) + e\nb0 = g00 + g01*sector + u0\nb1 = u1",
        "block": "mathach = b0 + b1*cwc(ses) + b2*female + e\nb0 = g00 + g01*sector + u0\n"
        "b1 = u1\nb2 = g20 + u2\ncov(u0, u1) = 0\ncov(u1, u2) = 0",
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {k: mlmwrap.fit(e, hsb, cluster="school") for k, e in eqs.items()}


def test_profile_intervals_against_lme4(fits):
    ref = json.loads((REFERENCE / "issue9_tau_structures.json").read_text())["models"]
    names = {
        "sd_(Intercept)|school": "sd(u0)",
        "sd_cwc_ses|school": "sd(u1)",
        "sd_female|school": "sd(u2)",
        "cor_female.(Intercept)|school": "cor(u0,u2)",
        "sigma": "sigma",
        "(Intercept)": "g00",
        "sector": "g01",
        "cwc_ses": "g10",
        "female": "g20",
    }
    for key, model in (("diag_sector", "diag"), ("block_female", "block")):
        r = ref[key]["confint"]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ci = fits[model].confint()
        labels = [names[n] for n in r["names"]]
        assert sorted(ci.index) == sorted(labels)  # no interval for a covariance fixed at 0
        got = ci.loc[labels]
        np.testing.assert_allclose(got["lower"], r["lower"], rtol=1e-3, atol=1e-4)
        np.testing.assert_allclose(got["upper"], r["upper"], rtol=1e-3, atol=1e-4)


def test_compare_knows_the_nesting(fits):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cmp = mlmwrap.compare(fits["diag"], fits["full"], names=["diag", "full"])
        row = cmp.table.loc["full"]
        assert row["df"] == 1 and row["added"] == "covariances cov(u0, u1)"
        assert row["method"] == "REML" and row["reference"] == "chi2(1)"
        assert row["chi2"] == pytest.approx(fits["diag"].deviance - fits["full"].deviance)
        zm = mlmwrap.compare(fits["zero_mean"], fits["full"], names=["zm", "full"]).table
        assert zm.loc["full", "df"] == 1 and zm.loc["full", "added"] == "gammas g10"
        assert zm.loc["full", "method"] == "ML"
    for small, large in (("full", "diag"), ("zero_mean", "block")):
        with pytest.raises(SpecificationError, match="fixes the covariance of u0 and u1 at 0"):
            mlmwrap.compare(fits[small], fits[large])


def test_everything_downstream_works(fits, hsb):
    res = fits["block"]
    assert res.tau_fixed.to_numpy().tolist() == [
        [False, True, False],
        [True, False, True],
        [False, True, False],
    ]
    summary = res.summary()
    assert "b1 (slope of cwc(ses)): mean fixed at 0 (random effect u1 only)" in summary
    assert "fixed at 0 (not estimated): the covariances of (u0, u1), (u1, u2)" in summary
    assert "cov(u0, u1) = 0" in summary
    text = res.equations()
    assert "b1 = u1" in text
    latex = res.equations("latex")
    assert r"\tau_{00} &  &  \\ 0 & \tau_{11}" in latex
    exported = json.loads(res.to_json())
    assert exported["tau"]["zero_covariances"] == [["u0", "u1"], ["u1", "u2"]]
    back = from_json(res.to_json())
    assert back.zero_covariances == (("u0", "u1"), ("u1", "u2"))
    flat = res.to_frame()
    assert flat.loc[flat["term"] == "tau10", "effect"].item().endswith("(fixed at 0)")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert res.confint(method="wald").shape[0] == 4 + 1 + 3  # 3 sd, 1 cor, sigma, gammas
        assert np.isfinite(res.robust()["se"]).all()
        assert np.isfinite(res.with_inference("kenward-roger").gamma["df"]).all()
        assert np.isfinite(res.with_inference("hlm").gamma["df"]).all()
    cc = res.cluster_coefficients()
    assert len(cc) == 160 and {"u0", "u1", "u2"} <= set(cc.columns)
    pred = res.predict(hsb.head(20))
    assert np.isfinite(np.asarray(pred)).all()
    for name in ("fixed_table", "variance_table", "report", "to_frame"):
        assert getattr(res, name)() is not None
    assert res._repr_html_() and res._repr_latex_()


def test_wald_intervals_of_a_fit_with_a_correlation_of_one(hsb):
    # A random slope of a level-2 variable is not identified: tau is singular with a
    # correlation of +-1; the Wald intervals are NaN where undefined instead of crashing
    # (cholesky of a singular correlation matrix used to raise LinAlgError).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = mlmwrap.fit(
            "mathach = b0 + b1*ses*female + b2*female + b3*meanses + e\nb0 = g00 + u0\n"
            "b1 = g10 + u1\nb2 = g20 + u2\nb3 = g30 + u3",
            hsb,
            cluster="school",
        )
        assert res.singular
        ci = res.confint(method="wald", gammas=False)
    assert len(ci) == 4 + 6 + 1 and np.isfinite(ci["estimate"]).all()
