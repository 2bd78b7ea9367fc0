"""Predictions of three-level models on new rows: the fit's centering constants, EB effects
of known units, the fixed part for unknown ones (issue 9: predict for three levels).

The expected values are computed by hand from the fit's gammas, its EB estimates and the
estimation sample's means, following the rules in mlmwrap/model/nested_predict.py.
"""

import warnings

import numpy as np
import pandas as pd
import pytest
from conftest import DATA

import mlmwrap
from mlmwrap.errors import DataError, PredictionWarning

CWC = """
score = p0 + p1*cwc(gcsecnt) + e
p0 = b00 + b01*cmean(gcsecnt) + r0
p1 = b10 + r1
b00 = g000 + g001*cmean(cmean(gcsecnt)) + u00
b01 = g010
b10 = g100
"""


@pytest.fixture(scope="module")
def chem() -> pd.DataFrame:
    return pd.read_csv(DATA / "chem97.csv.gz")


@pytest.fixture(scope="module")
def res(chem):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return mlmwrap.fit(CWC, chem, cluster=["school", "lea"])


def test_the_fit_data_reproduce_the_fitted_values(res, chem):
    fitted = res.predict()
    again = res.predict(chem)
    np.testing.assert_allclose(again.to_numpy(), fitted.to_numpy(), rtol=1e-12, atol=1e-12)
    fixed = res.predict(chem, include_random=False)
    np.testing.assert_allclose(fixed.to_numpy(), res.design.X @ res.gamma["estimate"].to_numpy())


def _by_hand(res, chem, school, lea, x):
    """The gammas, the fit's mean of the school and the fit's LEA mean of school means."""
    g = res.gamma["estimate"]
    school_means = chem.groupby("school")["gcsecnt"].mean()
    # cmean(cmean(x)) at level 3: the LEA mean of the school means, each school once
    lea_means = school_means.groupby(chem.groupby("school")["lea"].first()).mean()
    return g, school_means.get(school, np.nan), lea_means.get(lea, np.nan)


def test_a_new_pupil_of_a_known_school_is_centered_at_the_fits_school_mean(res, chem):
    school, lea = int(chem["school"].iloc[0]), int(chem["lea"].iloc[0])
    new = pd.DataFrame({"school": [school], "lea": [lea], "gcsecnt": [1.5]}, index=["kid"])
    g, m, m3 = _by_hand(res, chem, school, lea, 1.5)
    fixed = g["g000"] + g["g001"] * m3 + g["g010"] * m + g["g100"] * (1.5 - m)
    r = res.random_effects(2).loc[(lea, school)]
    u = res.random_effects(3).loc[lea]
    random = r["r0"] + r["r1"] * (1.5 - m) + u["u00"]
    out = res.predict(new, detail=True)
    assert list(out.index) == ["kid"]
    assert out.loc["kid", "fixed"] == pytest.approx(fixed, rel=1e-10)
    assert out.loc["kid", "random"] == pytest.approx(random, rel=1e-10)
    assert out.loc["kid", "known_school"] and out.loc["kid", "known_lea"]


def test_a_new_school_is_centered_on_its_own_rows_and_gets_no_school_effect(res, chem):
    lea = int(chem["lea"].iloc[0])
    new = pd.DataFrame({"school": [-1, -1], "lea": [lea, lea], "gcsecnt": [1.0, 3.0]})
    g, _, m3 = _by_hand(res, chem, -1, lea, None)
    own = 2.0  # the new school's mean over its own rows
    with pytest.warns(PredictionWarning, match="2 rows in 'school' units not in the fit"):
        out = res.predict(new, detail=True)
    want = g["g000"] + g["g001"] * m3 + g["g010"] * own + g["g100"] * (new.gcsecnt - own)
    np.testing.assert_allclose(out["fixed"], want, rtol=1e-10)
    # the LEA is known: its EB effect is added, the school's is not
    np.testing.assert_allclose(out["random"], res.random_effects(3).loc[lea, "u00"])
    assert not out["known_school"].any() and out["known_lea"].all()
    # the LEA mean of school means is the fit's: the new school does not move it
    assert np.isfinite(m3)


def test_ids_repeat_across_lea_a_school_id_of_another_lea_is_a_new_school(res, chem):
    school, lea = int(chem["school"].iloc[0]), int(chem["lea"].iloc[0])
    other = int(chem.loc[chem["lea"] != lea, "lea"].iloc[0])
    new = pd.DataFrame({"school": [school], "lea": [other], "gcsecnt": [0.0]})
    with pytest.warns(PredictionWarning):
        out = res.predict(new, detail=True)
    assert not out["known_school"].iloc[0] and out["known_lea"].iloc[0]


def test_missing_values_and_mistakes(res, chem):
    new = pd.DataFrame({"school": [1, 1], "lea": [1, 1], "gcsecnt": [np.nan, 0.2]})
    with pytest.warns(PredictionWarning, match="1 rows with a missing predictor"):
        out = res.predict(new)
    assert np.isnan(out.iloc[0]) and np.isfinite(out.iloc[1])
    with pytest.raises(DataError, match="gcsecnt"):
        res.predict(pd.DataFrame({"school": [1], "lea": [1]}))
    with pytest.raises(DataError, match="no cluster column 'lea'"):
        res.predict(pd.DataFrame({"school": [1], "gcsecnt": [0.0]}))
    with pytest.raises(DataError, match="DataFrame"):
        res.predict({"school": [1]})
    before = new.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res.predict(new)
    pd.testing.assert_frame_equal(new, before)  # the user's data is not modified


def test_a_category_the_fit_did_not_see_is_an_error(chem):
    chem = chem.assign(kind=np.where(chem["school"] % 3 == 0, "odd", "even"))  # per school
    eqs = """
    score = p0 + e
    p0 = b00 + b01*C(kind) + r0
    b00 = g000 + u00
    b01 = g010
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = mlmwrap.fit(eqs, chem, cluster=["school", "lea"])
        ok = res.predict(chem.iloc[:5])
    np.testing.assert_allclose(ok.to_numpy(), res.predict().to_numpy()[:5])
    new = chem.iloc[:1].assign(kind="other", school=-5)  # a new school of a new kind
    with pytest.raises(DataError, match="categories the fit did not see"):
        res.predict(new)
