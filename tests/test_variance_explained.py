"""mlmwrap.variance_explained against R (performance, mitml) and against closed forms.

Golden numbers: reference/hsb_inference.json (r2_nakagawa_*, icc_null) and
reference/issue4_compare_r2.json (mitml::multilevelR2: RB1, RB2, SB, MVP). Tolerance 1e-3
relative. Rights & Sterba: r2mlm is not installable here, so the decomposition is checked
against mitml's MVP (= R2_t^(f) with the same n - 1 covariances), closed forms and identities.
"""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mlmwrap
from mlmwrap.analysis.variance_explained import (
    nakagawa_r2,
    proportional_reduction,
    r2,
    rights_sterba_r2,
    snijders_bosker_r2,
)
from mlmwrap.errors import DataError, MLMError

REFERENCE = Path(__file__).parent / "reference"
INFERENCE = json.loads((REFERENCE / "hsb_inference.json").read_text())
EXTRA = json.loads((REFERENCE / "issue4_compare_r2.json").read_text())

NULL = "mathach = b0 + e\nb0 = g00 + u0"
RI = "mathach = b0 + b1*cwc(ses) + e\nb0 = g00 + u0\nb1 = g10"
RIM = "mathach = b0 + b1*cwc(ses) + e\nb0 = g00 + g01*meanses + u0\nb1 = g10"
RC = "mathach = b0 + b1*cwc(ses) + e\nb0 = g00 + u0\nb1 = g10 + u1"
ISAO = """mathach = b0 + b1*cwc(ses) + e
b0 = g00 + g01*meanses + g02*sector + u0
b1 = g10 + g11*meanses + g12*sector + u1"""


@pytest.fixture(scope="module")
def fits(hsb):
    texts = {"null": NULL, "ri": RI, "rim": RIM, "rc": RC, "isao": ISAO}
    return {name: mlmwrap.fit(t, hsb, cluster="school") for name, t in texts.items()}


# -- Nakagawa & Schielzeth --------------------------------------------------------------------
@pytest.mark.parametrize("model", ["isao", "ri"])
def test_nakagawa_matches_performance(fits, model):
    gold = INFERENCE[f"r2_nakagawa_{model}"]
    r = nakagawa_r2(fits[model])
    assert r.marginal == pytest.approx(gold["marginal"], rel=1e-3)
    assert r.conditional == pytest.approx(gold["conditional"], rel=1e-3)


def test_nakagawa_of_the_null_model_is_zero_and_the_icc(fits):
    r = nakagawa_r2(fits["null"])
    assert r.marginal == pytest.approx(0.0, abs=1e-12)
    assert r.conditional == pytest.approx(INFERENCE["icc_null"]["icc"], rel=1e-3)
    assert r.var_random == pytest.approx(fits["null"].tau.iloc[0, 0])


# -- Raudenbush & Bryk, Snijders & Bosker -----------------------------------------------------
def test_proportional_reduction_matches_mitml(fits):
    gold = EXTRA["mitml_ri_meanses"]
    prv = proportional_reduction(fits["rim"], fits["null"])
    assert prv.loc["e", "reduction"] == pytest.approx(gold["RB1"], rel=1e-3)
    assert prv.loc["u0", "reduction"] == pytest.approx(gold["RB2"], rel=1e-3)


def test_proportional_reduction_matches_components_by_term(fits):
    prv = proportional_reduction(fits["isao"], fits["rc"])
    assert list(prv.index) == ["u0", "u1", "e"]
    assert list(prv["term"]) == ["(intercept)", "cwc(ses)", "(residual)"]
    tau_rc, tau = fits["rc"].tau.to_numpy(), fits["isao"].tau.to_numpy()
    assert prv.loc["u1", "reduction"] == pytest.approx(1 - tau[1, 1] / tau_rc[1, 1])
    # against a reference without the slope, only u0 and e are reduced
    assert list(proportional_reduction(fits["rc"], fits["null"]).index) == ["u0", "e"]


def test_proportional_reduction_checks_sample_and_method(hsb, fits):
    data = hsb.copy()
    data.loc[data.index[:10], "ses"] = np.nan
    fewer = mlmwrap.fit(RI, data, cluster="school")
    with pytest.raises(DataError, match="different samples"):
        proportional_reduction(fewer, fits["null"])
    null_ml = mlmwrap.fit(NULL, hsb, cluster="school", reml=False)
    with pytest.warns(UserWarning, match="different methods"):
        proportional_reduction(fits["ri"], null_ml)
    with pytest.raises(DataError, match="fitted model"):
        proportional_reduction(fits["ri"], "null")


def test_snijders_bosker_level1_matches_mitml_and_level2_follows_the_definition(hsb, fits):
    before = hsb.copy()
    sb = snijders_bosker_r2(fits["rim"])
    assert sb.level1 == pytest.approx(EXTRA["mitml_ri_meanses"]["SB"], rel=1e-3)
    null, rim = fits["null"], fits["rim"]
    n = len(hsb) / hsb["school"].nunique()
    t0, s0 = null.tau.iloc[0, 0], null.sigma2
    t1, s1 = rim.tau.iloc[0, 0], rim.sigma2
    assert sb.cluster_size == pytest.approx(n)
    assert sb.level2 == pytest.approx(1 - (s1 / n + t1) / (s0 / n + t0), rel=1e-6)
    assert sb.null_tau00 == pytest.approx(t0, rel=1e-6) and sb.notes == ()
    # the same with the null model given, and with the harmonic mean
    given = snijders_bosker_r2(rim, null=null, cluster_size="harmonic")
    assert given.level1 == pytest.approx(sb.level1, rel=1e-9)
    sizes = hsb.groupby("school").size().to_numpy()
    assert given.cluster_size == pytest.approx(len(sizes) / np.sum(1 / sizes))
    pd.testing.assert_frame_equal(hsb, before)


def test_snijders_bosker_with_random_slopes_uses_the_random_intercept_version(fits):
    sb_rc = snijders_bosker_r2(fits["rc"])
    sb_ri = snijders_bosker_r2(fits["ri"])
    assert sb_rc.level1 == pytest.approx(sb_ri.level1, rel=1e-6)
    assert "random-intercept version" in sb_rc.notes[0]


def test_snijders_bosker_needs_a_random_intercept_and_a_valid_size(hsb, fits):
    slope_only = mlmwrap.fit(
        "mathach = b0 + b1*cwc(ses) + e\nb0 = g00\nb1 = g10 + u1", hsb, cluster="school"
    )
    with pytest.raises(MLMError, match="random intercept"):
        snijders_bosker_r2(slope_only)
    with pytest.raises(DataError, match="cluster_size"):
        snijders_bosker_r2(fits["ri"], null=fits["null"], cluster_size="median")
    with pytest.raises(MLMError, match="empty model"):
        snijders_bosker_r2(fits["rim"], null=fits["ri"])


# -- Rights & Sterba --------------------------------------------------------------------------
@pytest.mark.parametrize("model, key", [("rim", "mitml_ri_meanses"), ("isao", "mitml_isao")])
def test_rights_sterba_fixed_share_matches_mitml_mvp(fits, model, key):
    rs = rights_sterba_r2(fits[model])
    assert rs.measures["R2_t_f"] == pytest.approx(EXTRA[key]["MVP"], rel=1e-3)


def test_rights_sterba_random_intercept_closed_form(fits):
    res = fits["ri"]
    rs = rights_sterba_r2(res)
    x = res.design.X[:, 1]  # cwc(ses)
    g10 = res.gamma.loc["g10", "estimate"]
    t = rs.table["variance"]
    assert t["f1"] == pytest.approx(g10**2 * np.var(x, ddof=1), rel=1e-10)
    assert t["f2"] == pytest.approx(0.0, abs=1e-12) and t["v"] == pytest.approx(0.0, abs=1e-12)
    assert t["m"] == pytest.approx(res.tau.iloc[0, 0]) and t["sigma2"] == res.sigma2
    assert rs.measures["R2_b_f2"] == pytest.approx(0.0, abs=1e-12)


def test_rights_sterba_decompositions_add_up(fits):
    res = fits["isao"]
    rs = rights_sterba_r2(res)
    tab = rs.table
    for col in ["total", "within", "between"]:
        assert tab[col].sum() == pytest.approx(1.0, rel=1e-12)
    # v is tr(T Sigma) over the slope predictor: tau11 var(cwc(ses))
    z = res.design.Z[:, 1]
    assert tab.loc["v", "variance"] == pytest.approx(res.tau.iloc[1, 1] * np.var(z, ddof=1))
    # the within part holds the level-1 terms, the between part the school predictors
    d = res.design
    within = np.array([c.term.startswith("cwc") for c in d.fixed_columns])
    b = res.optimum.beta
    assert tab.loc["f1", "variance"] == pytest.approx(np.var(d.X[:, within] @ b[within], ddof=1))
    assert tab.loc["f2", "variance"] == pytest.approx(np.var(d.X[:, ~within] @ b[~within], ddof=1))
    # total fixed + random shares are Nakagawa's R² up to the n - 1 denominator of v
    nak = nakagawa_r2(res)
    assert rs.measures["R2_t_f"] == pytest.approx(nak.marginal, rel=1e-3)
    assert rs.measures["R2_t_fvm"] == pytest.approx(nak.conditional, rel=1e-3)
    assert rs.centered_within and "f1" in str(rs)


def test_rights_sterba_uncentered_level1_predictor_gives_the_total_only(hsb):
    res = mlmwrap.fit(
        "mathach = b0 + b1*ses + e\nb0 = g00 + u0\nb1 = g10 + u1", hsb, cluster="school"
    )
    rs = rights_sterba_r2(res)
    assert not rs.centered_within and list(rs.table.index) == ["f", "v", "m", "sigma2"]
    assert rs.table["within"].isna().all() and np.isnan(rs.measures["R2_w_f1"])
    assert rs.table["total"].sum() == pytest.approx(1.0)
    assert "ses" in rs.notes[0] and "cwc()" in rs.notes[0]
    # with an uncentered slope predictor, m = mu' T mu, not tau00
    mu = res.design.Z.mean(axis=0)
    assert rs.table.loc["m", "variance"] == pytest.approx(mu @ res.tau.to_numpy() @ mu)


def test_r2_collects_the_measures(fits):
    out = r2(fits["rim"], refit=True)
    assert out["marginal"] == pytest.approx(nakagawa_r2(fits["rim"]).marginal)
    assert out["level1"] == pytest.approx(EXTRA["mitml_ri_meanses"]["SB"], rel=1e-3)
    assert out["R2_t_f"] == pytest.approx(EXTRA["mitml_ri_meanses"]["MVP"], rel=1e-3)
    assert list(out.index)[:2] == ["marginal", "conditional"]
    given = r2(fits["rim"], null=fits["null"])
    assert given["level1"] == pytest.approx(out["level1"], rel=1e-12)


ISSUE12 = json.loads((REFERENCE / "issue12_ecosystem.json").read_text())


@pytest.mark.parametrize(("model", "key"), [("rim", "nakagawa_rim"), ("isao", "nakagawa_isao")])
def test_r2_has_nakagawas_variance_parts_as_insight(fits, model, key):
    # insight::get_variance() of the same lmer fits (reference/issue12_ecosystem.R)
    res = fits[model]
    out = r2(res)
    for part in ("var_fixed", "var_random", "var_residual"):
        assert out[part] == pytest.approx(ISSUE12[key][part], rel=2e-4)
    total = out["var_fixed"] + out["var_random"] + out["var_residual"]
    assert out["marginal"] == pytest.approx(out["var_fixed"] / total, rel=1e-12)


def test_r2_does_not_refit_unless_asked(fits, monkeypatch):
    calls = []
    real = type(fits["rc"]).refit

    def counting(self, *args, **kwargs):
        calls.append(args)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(type(fits["rc"]), "refit", counting)
    out = fits["rc"].r2()
    assert not calls and np.isnan(out["level1"]) and np.isnan(out["level2"])
    assert "null=" in out.attrs["notes"][0]
    with_null = fits["rc"].r2(fits["null"])  # random slopes: still needs a refit
    assert (
        not calls and np.isnan(with_null["level1"]) and "refit=True" in with_null.attrs["notes"][0]
    )
    assert np.isfinite(fits["rc"].r2(refit=True)["level1"]) and len(calls) == 2
