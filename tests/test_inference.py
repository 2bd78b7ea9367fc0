"""Satterthwaite, Kenward-Roger and HLM df for the gammas, against lmerTest / pbkrtest.

Golden numbers: reference/hsb_inference.json (hsb_inference.R: lmerTest's
``coef(summary(m, ddf = "Satterthwaite"))`` and ``ddf = "Kenward-Roger"``) and
reference/issue4b_inference.json (issue4b_inference.R: the same for an ML fit, a
random-intercept model, a model with four random effects and a singular fit).
Tolerances (issue 4): df within 1e-2 relative; p within 1e-3 relative or 1e-6 absolute;
SEs within 1e-3 relative.
"""

import warnings

import numpy as np
import pandas as pd
import pytest
from r_models import CASES, EXTRA, GOLDEN, ISAO, assert_p_close, in_r_order
from scipy import stats as sstats

import mlmwrap
from mlmwrap.analysis.inference import (
    gamma_table,
    hlm_df,
    kenward_roger,
    satterthwaite_df,
)
from mlmwrap.errors import MLMError
from mlmwrap.model.deviance import unprofiled_deviance


@pytest.fixture(scope="module")
def isao(hsb):
    return mlmwrap.fit(ISAO, hsb, cluster="school", df="z")  # res.gamma holds z-tests


@pytest.fixture(scope="module")
def fits(hsb, boundary_data):
    data = {"hsb": hsb, "boundary": boundary_data}
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the boundary fit warns; that is tested elsewhere
        for name, (eq, d, cluster, reml) in CASES.items():
            out[name] = mlmwrap.fit(eq, data[d], cluster=cluster, reml=reml)
    return out


def test_unprofiled_deviance_is_the_fit_deviance_at_sigma_hat(isao, hsb):
    ev = isao.optimum.evaluation
    stats = isao.cluster_stats
    dev = unprofiled_deviance(stats, ev.L, np.sqrt(ev.sigma2), reml=True)
    assert dev == pytest.approx(isao.deviance, rel=1e-12)
    # and sigma^2 = r2 / (n - p) minimizes it: moving sigma either way raises it
    assert unprofiled_deviance(stats, ev.L, 1.01 * np.sqrt(ev.sigma2), True) > dev
    assert unprofiled_deviance(stats, ev.L, 0.99 * np.sqrt(ev.sigma2), True) > dev
    ml = mlmwrap.fit(ISAO, hsb, cluster="school", reml=False)
    evm = ml.optimum.evaluation
    dev_ml = unprofiled_deviance(ml.cluster_stats, evm.L, np.sqrt(evm.sigma2), reml=False)
    assert dev_ml == pytest.approx(ml.deviance, rel=1e-12)


def test_satterthwaite_matches_lmertest(isao):
    ref = GOLDEN["satterthwaite_isao"]
    table = in_r_order(gamma_table(isao, df="satterthwaite"), ref["term"])
    np.testing.assert_allclose(table["df"], ref["df"], rtol=1e-2)
    np.testing.assert_allclose(table["t"], ref["t"], rtol=1e-4)
    assert_p_close(table["p"], ref["p"])
    # in fact much closer than the tolerance: within 2e-4 of lmerTest's numDeriv Hessian
    np.testing.assert_allclose(table["df"], ref["df"], rtol=2e-4)


def test_kenward_roger_matches_pbkrtest(isao):
    ref = GOLDEN["kenward_roger_isao"]
    table = in_r_order(gamma_table(isao, df="kenward-roger"), ref["term"])
    np.testing.assert_allclose(table["se"], ref["se"], rtol=1e-3)
    np.testing.assert_allclose(table["df"], ref["df"], rtol=1e-2)
    assert_p_close(table["p"], ref["p"])
    # the adjusted SE is larger than the model-based one, as Kenward-Roger inflates it
    assert (table["se"].to_numpy() > in_r_order(isao.gamma, ref["term"])["se"].to_numpy()).all()


@pytest.mark.parametrize("name", list(CASES))
def test_satterthwaite_and_kr_other_models(fits, name):
    ref = EXTRA[name]
    res = fits[name]
    table = in_r_order(gamma_table(res), ref["term"])
    np.testing.assert_allclose(table["estimate"], ref["estimate"], rtol=1e-4)
    np.testing.assert_allclose(table["se"], ref["se"], rtol=1e-3)
    np.testing.assert_allclose(table["df"], ref["satt_df"], rtol=1e-2)
    assert_p_close(table["p"], ref["satt_p"])
    if "kr_df" in ref:
        kr = in_r_order(gamma_table(res, df="kenward-roger"), ref["term"])
        np.testing.assert_allclose(kr["se"], ref["kr_se"], rtol=1e-3)
        np.testing.assert_allclose(kr["df"], ref["kr_df"], rtol=1e-2)
        assert_p_close(kr["p"], ref["kr_p"])


def test_contrasts_generalize_the_single_gammas(isao):
    df_each = satterthwaite_df(isao)
    contrast = np.zeros((2, len(isao.gamma)))
    contrast[0, 1] = 1.0  # g01 alone: the same df
    contrast[1, [1, 2]] = 1.0  # g01 + g02: a df of its own, still between 1 and N
    df = satterthwaite_df(isao, contrast)
    assert df[0] == pytest.approx(df_each[1], rel=1e-10)
    assert 1 < df[1] < isao.nobs
    cov, df_kr = kenward_roger(isao, contrast)
    assert df_kr[0] == pytest.approx(kenward_roger(isao)[1][1], rel=1e-10)
    assert np.allclose(cov, cov.T)


def test_hlm_df_convention(hsb):
    res = mlmwrap.fit(
        "mathach = b0 + b1*cwc(ses) + b2*female\nb0 = g00 + g01*meanses + g02*sector + u0\n"
        "b1 = g10 + g11*sector + u1\nb2 = g20",
        hsb,
        cluster="school",
    )
    J, N = res.n_clusters, res.nobs
    # b0 has S = 2 level-2 predictors, b1 has 1, b2 is fixed: N - p (p = 6 gammas)
    expected = {"g00": J - 3, "g01": J - 3, "g02": J - 3, "g10": J - 2, "g11": J - 2}
    expected["g20"] = N - 6
    assert dict(zip(res.gamma.index, hlm_df(res), strict=True)) == expected
    table = gamma_table(res, df="hlm")
    assert table.loc["g01", "p"] == pytest.approx(
        2 * sstats.t.sf(abs(table.loc["g01", "t"]), J - 3), rel=1e-12
    )


def test_hlm_df_counts_indicator_columns(hsb):
    data = hsb.assign(sectorc=np.where(hsb["sector"] == 1, "Catholic", "Public"))
    res = mlmwrap.fit(
        "mathach = b0 + b1*cwc(ses)\nb0 = g00 + g01*sectorc + g02*meanses + u0\nb1 = g10 + u1",
        data,
        cluster="school",
    )
    df = dict(zip(res.gamma.index, hlm_df(res), strict=True))
    assert df["g00"] == res.n_clusters - 3  # one indicator column + meanses
    assert df["g10"] == res.n_clusters - 1


def test_z_table_is_res_gamma(isao):
    z = gamma_table(isao, df="z")
    g = isao.gamma
    assert (z.index == g.index).all()
    np.testing.assert_allclose(z["p"], g["p"], rtol=1e-12)
    np.testing.assert_allclose(z["ci_lower"], g["ci_lower"], rtol=1e-12)
    np.testing.assert_allclose(z["z"], g["z"], rtol=1e-12)
    assert "df" not in z.columns


def test_table_layout_and_t_intervals(isao):
    table = gamma_table(isao, level=0.9)
    assert list(table.columns) == [
        "estimate", "se", "df", "t", "p", "ci_lower", "ci_upper",
        "beta", "level1", "predictor", "term",
    ]  # fmt: skip
    assert (table.index == isao.gamma.index).all()
    assert (table[["beta", "term"]] == isao.gamma[["beta", "term"]]).all().all()
    crit = sstats.t.ppf(0.95, table["df"])
    np.testing.assert_allclose(table["ci_upper"], table["estimate"] + crit * table["se"])
    assert "Satterthwaite" in table.attrs["inference"]
    # t intervals are wider than the z intervals of res.gamma at the same level
    wide = gamma_table(isao)
    assert (
        (wide["ci_upper"] - wide["ci_lower"]) > (isao.gamma["ci_upper"] - isao.gamma["ci_lower"])
    ).all()


def test_bad_input_is_a_clear_error(isao, hsb):
    with pytest.raises(MLMError, match="unknown df method"):
        gamma_table(isao, df="bonferroni")
    with pytest.raises(MLMError, match="level"):
        gamma_table(isao, level=95)
    ml = mlmwrap.fit(ISAO, hsb, cluster="school", reml=False)
    with pytest.raises(MLMError, match="REML") as err:
        gamma_table(ml, df="kenward-roger")
    assert "satterthwaite" in str(err.value)
    assert gamma_table(isao, df="KR").attrs["df_method"] == "kenward-roger"


def test_callers_data_unchanged(hsb):
    data = hsb.copy()
    before = data.copy()
    res = mlmwrap.fit(ISAO, data, cluster="school")
    for method in ("satterthwaite", "kenward-roger", "hlm"):
        gamma_table(res, df=method)
    pd.testing.assert_frame_equal(data, before)
