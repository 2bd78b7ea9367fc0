"""Predictions: fitted values, new rows of known and new clusters (lme4's predict with
allow.new.levels), centering with the fit's constants, missing values and bad input."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mlmwrap
from mlmwrap.analysis.cluster import empirical_bayes
from mlmwrap.analysis.predict import PredictionWarning, new_design, predict

REFERENCE = Path(__file__).parent / "reference"
ISAO = """
mathach = b0 + b1*cwc(ses) + e
b0 = g00 + g01*meanses + g02*sector + u0
b1 = g10 + g11*meanses + g12*sector + u1
"""


@pytest.fixture(scope="module")
def isao(hsb):
    return mlmwrap.fit(ISAO, hsb, cluster="school")


def test_fitted_values_are_x_gamma_plus_z_u(isao):
    d = isao.design
    u, _ = empirical_bayes(isao)
    gamma = isao.gamma["estimate"].to_numpy()
    fitted = predict(isao)
    assert fitted.index.equals(d.row_index) and fitted.name == "prediction"
    assert fitted.to_numpy() == pytest.approx(d.X @ gamma + (d.Z * u[d.codes]).sum(1), rel=1e-12)
    assert predict(isao, random=False).to_numpy() == pytest.approx(d.X @ gamma, rel=1e-12)


def test_the_data_as_newdata_reproduces_the_fitted_values(isao, hsb):
    before = hsb.copy()
    again = predict(isao, hsb)
    assert again.to_numpy() == pytest.approx(predict(isao).to_numpy(), rel=1e-12)
    pd.testing.assert_frame_equal(hsb, before)


@pytest.mark.parametrize(
    "equations",
    [
        "mathach = b0 + b1*cgm(ses) + b2*log(center(ses, -4)) + e\n"
        "b0 = g00 + g01*C(sector) + g02*cgm(meanses) + g03*cmean(minority) + u0\n"
        "b1 = g10 + g11*cgm(cmean(ses)) + u1\nb2 = g20",
        "mathach = b0 + b1*female*cwc(ses) + b2*ses^2 + e\nb0 = g00 + g01*size + u0\n"
        "b1 = g10\nb2 = g20 + g21*sector",
    ],
)
def test_the_rebuilt_design_is_the_fits_design(hsb, equations):
    data = hsb.assign(sector=hsb["sector"].map({0: "Public", 1: "Catholic"}))
    data.loc[::7, "ses"] = np.nan  # listwise deletion changes the centering constants
    res = mlmwrap.fit(equations, data, cluster="school")
    nd = new_design(res, data.loc[res.design.row_index])
    np.testing.assert_allclose(nd.X, res.design.X, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(nd.Z, res.design.Z, rtol=1e-12, atol=1e-12)
    # Rows the fit dropped (missing ses) get NaN; the others their fitted values.
    with pytest.warns(PredictionWarning, match="rows get NaN"):
        full = predict(res, data)
    assert full.index.equals(data.index)
    assert full[data["ses"].isna()].isna().all()
    assert full[res.design.row_index].to_numpy() == pytest.approx(predict(res).to_numpy())


def test_known_and_new_schools_match_lme4(isao):
    # R: predict(isao, newdata, allow.new.levels = TRUE) and re.form = NA (issue5_eb.R); cwc
    # uses the fitted school mean for known schools and the new school's own mean for 9999.
    ref = json.loads((REFERENCE / "issue5_eb.json").read_text())["predict_isao"]
    new = pd.DataFrame({k: ref[k] for k in ("school", "ses", "meanses", "sector")})
    new["school"] = new["school"].astype(int)
    new.index = [10, 11, 12, 13, 14]
    with pytest.warns(PredictionWarning, match=r"2 rows in 1 cluster not in the fit \(9999\)"):
        got = predict(isao, new, detail=True)
    assert got.index.equals(new.index)
    assert got["prediction"].to_numpy() == pytest.approx(ref["random"], rel=1e-5)
    assert predict(isao, new, random=False).to_numpy() == pytest.approx(ref["fixed"], rel=1e-5)
    assert got["cluster_known"].tolist() == [True, True, True, False, False]
    assert (got.loc[[13, 14], "random"] == 0).all()


def test_a_single_new_row_is_centered_with_the_fits_constants(isao, hsb):
    row = hsb.iloc[[100]]
    assert predict(isao, row).iloc[0] == pytest.approx(predict(isao).iloc[100], rel=1e-12)


def test_cluster_ids_match_across_int_and_str(isao, hsb):
    import warnings

    as_int = predict(isao, hsb.head(3))
    for ids in (hsb.head(3)["school"].astype(str), hsb.head(3)["school"].astype(float)):
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # matched: no "clusters not in the fit" warning
            out = predict(isao, hsb.head(3).assign(school=ids))
        np.testing.assert_allclose(out, as_int, rtol=0, atol=0)
    # and the other way round: a fit on text ids, integers in the new data
    text_fit = mlmwrap.fit(ISAO, hsb.assign(school=hsb["school"].astype(str)), cluster="school")
    np.testing.assert_allclose(predict(text_fit, hsb.head(3)), as_int, rtol=1e-10)


def test_unknown_ids_still_warn(isao, hsb):
    new = hsb.head(3).assign(school="no such school")
    with pytest.warns(PredictionWarning, match="none of newdata's clusters is in the fit"):
        out = predict(isao, new)
    assert out.notna().all()


def test_missing_values_and_unseen_categories_give_nan(hsb):
    data = hsb.assign(kind=hsb["sector"].map({0: "public", 1: "catholic"}))
    res = mlmwrap.fit(
        "mathach = b0 + b1*cwc(ses) + e\nb0 = g00 + g01*C(kind) + u0\nb1 = g10",
        data,
        cluster="school",
    )
    new = data.head(4).copy()
    new.loc[new.index[1], "kind"] = "charter"
    new.loc[new.index[2], "ses"] = np.nan
    new.loc[new.index[3], "school"] = np.nan
    with pytest.warns(PredictionWarning, match="3 of 4 rows get NaN"):
        out = predict(res, new)
    assert np.isfinite(out.iloc[0]) and out.iloc[1:].isna().all()


def test_missing_columns_are_clear_errors(isao, hsb):
    with pytest.raises(mlmwrap.DataError, match="no column 'meanses'"):
        predict(isao, hsb[["school", "ses", "sector"]])
    with pytest.raises(mlmwrap.DataError, match="no cluster column 'school'"):
        predict(isao, hsb[["ses", "meanses", "sector"]], random=False)  # cwc needs clusters
    with pytest.raises(mlmwrap.DataError, match="must be a pandas DataFrame"):
        predict(isao, hsb.to_numpy())
    res = mlmwrap.fit("mathach = b0 + b1*cgm(ses) + e\nb0 = g00 + u0\nb1 = g10", hsb, "school")
    with pytest.raises(mlmwrap.DataError, match="or pass random=False"):
        predict(res, hsb[["ses"]])
    fixed = predict(res, hsb[["ses"]], random=False)
    assert fixed.to_numpy() == pytest.approx(predict(res, random=False).to_numpy())
