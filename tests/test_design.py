"""Data preparation: name resolution, listwise deletion, level checks, data errors."""

import numpy as np
import pandas as pd
import pytest

import mlmwrap
from mlmwrap.language.equations import parse_equations
from mlmwrap.model.design import build_design, resolve_name

RC = "mathach = b0 + b1*cwc(ses) + e\nb0 = g00 + u0\nb1 = g10 + u1"


def data_error(equations: str, data: pd.DataFrame, cluster: str = "school") -> mlmwrap.DataError:
    with pytest.raises(mlmwrap.DataError) as info:
        mlmwrap.fit(equations, data, cluster=cluster)
    return info.value


def test_unknown_column_points_at_it_and_suggests(hsb):
    err = data_error("mathach = b0 + b1*cwc(sess) + e\nb0 = g00 + u0\nb1 = g10", hsb)
    assert err.message == "there is no column 'sess' in the data"
    assert err.lineno == 1 and err.source == "mathach = b0 + b1*cwc(sess) + e"
    assert err.source[slice(*err.span)] == "sess"
    assert "did you mean 'ses'?" in str(err)
    assert "^^^^" in str(err)


def test_unknown_cluster_column(hsb):
    err = data_error("mathach = b0 + e\nb0 = g00 + u0", hsb, cluster="schol")
    assert "cluster column 'schol'" in err.message and "'school'" in err.hint


def test_level2_predictor_varying_within_clusters(hsb):
    err = data_error("mathach = b0 + e\nb0 = g00 + g01*ses + u0", hsb)
    assert "varies within 160 of the 160 clusters" in err.message
    assert err.source[slice(*err.span)] == "ses" and err.lineno == 2
    assert "cmean(ses)" in err.hint


def test_cwc_of_a_level2_variable(hsb):
    err = data_error("mathach = b0 + b1*cwc(meanses) + e\nb0 = g00 + u0\nb1 = g10", hsb)
    assert "constant within every cluster" in err.message
    assert err.source[slice(*err.span)] == "cwc(meanses)"


def test_non_numeric_level1_predictor(hsb):
    data = hsb.assign(sectorc=np.where(hsb["sector"] == 1, "Catholic", "Public"))
    # alone, a text column is a categorical predictor (as C(sectorc)); in a product it is not
    bare = mlmwrap.fit("mathach = b0 + b1*sectorc + e\nb0 = g00 + u0\nb1 = g10", data, "school")
    coded = mlmwrap.fit("mathach = b0 + b1*C(sectorc) + e\nb0 = g00 + u0\nb1 = g10", data, "school")
    assert list(bare.gamma.index) == ["g00", "g10[Public]"]
    assert bare.gamma["estimate"].tolist() == coded.gamma["estimate"].tolist()
    err = data_error("mathach = b0 + b1*sectorc*ses + e\nb0 = g00 + u0\nb1 = g10", data)
    assert "'sectorc' is not numeric" in err.message and "b1*C(sectorc)" in err.hint


def test_transform_outside_its_domain(hsb):
    err = data_error("mathach = b0 + b1*log(ses) + e\nb0 = g00 + u0\nb1 = g10", hsb)
    assert "log() is undefined for" in err.message
    assert err.source[slice(*err.span)] == "log(ses)"


def test_collinear_term_is_named(hsb):
    data = hsb.assign(sector2=2 * hsb["sector"])
    err = data_error("mathach = b0 + e\nb0 = g00 + g01*sector + g02*sector2 + u0", data)
    assert "'sector2' (g02) is a linear combination" in err.message


def test_single_cluster(hsb):
    err = data_error("mathach = b0 + e\nb0 = g00 + u0", hsb[hsb["school"] == 1224])
    assert "only 1 cluster" in err.message


def test_all_rows_missing(hsb):
    err = data_error("mathach = b0 + e\nb0 = g00 + u0", hsb.assign(mathach=np.nan))
    assert "no rows are left" in err.message and "mathach: 7185" in err.hint


def test_single_category(hsb):
    data = hsb.assign(kind="school")
    err = data_error("mathach = b0 + e\nb0 = g00 + g01*C(kind) + u0", data)
    assert "single category" in err.message


def test_subscripts_are_dropped_only_when_the_full_name_is_missing(hsb):
    cols = pd.Index(["ses", "ses_j", "meanses"])
    assert resolve_name("ses_ij", cols) == "ses"
    assert resolve_name("ses_j", cols) == "ses_j"
    assert resolve_name("meansesj", cols) == "meanses"
    assert resolve_name("nothing_ij", cols) is None
    greek = mlmwrap.fit(
        "mathach_ij = β0j + β1j*cwc(ses_ij) + r_ij\nβ0j = γ00 + γ01*meanses_j + u0j\nβ1j = γ10",
        hsb,
        cluster="school",
    )
    ascii_ = mlmwrap.fit(
        "mathach = b0 + b1*cwc(ses) + e\nb0 = g00 + g01*meanses + u0\nb1 = g10",
        hsb,
        cluster="school",
    )
    cols = ["estimate", "se", "p"]
    pd.testing.assert_frame_equal(greek.gamma[cols], ascii_.gamma[cols])
    # Labels keep the names as written.
    assert greek.gamma.loc["g10", "term"] == "cwc(ses_ij)"


def test_the_callers_dataframe_is_never_modified(hsb):
    data = hsb.copy()
    data.loc[data.index[::50], "ses"] = np.nan
    data["sectorc"] = np.where(data["sector"] == 1, "Catholic", "Public")
    before = data.copy()
    mlmwrap.fit(
        "mathach = b0 + b1*cwc(ses) + b2*cgm(ses)^2 + e\n"
        "b0 = g00 + g01*sectorc + g02*cmean(ses) + u0\nb1 = g10 + u1\nb2 = g20",
        data,
        cluster="school",
    )
    pd.testing.assert_frame_equal(data, before)
    assert list(data.columns) == list(before.columns)


def test_non_default_index_and_cluster_labels(hsb):
    """Row labels and cluster ids of any type; results do not depend on them."""
    data = hsb.sample(frac=1.0, random_state=1)
    data.index = [f"row{i}" for i in range(len(data))]
    data["school"] = "s" + data["school"].astype(str)
    a = mlmwrap.fit(RC, data, cluster="school")
    b = mlmwrap.fit(RC, hsb, cluster="school")
    np.testing.assert_allclose(a.gamma["estimate"], b.gamma["estimate"], rtol=1e-8)
    assert a.deviance == pytest.approx(b.deviance, abs=1e-6)


def test_cgm_of_a_level2_variable_centers_over_clusters(hsb):
    spec = parse_equations("mathach = b0 + e\nb0 = g00 + g01*cgm(size) + u0")
    design = build_design(spec, hsb, cluster="school")
    school_sizes = hsb.groupby("school")["size"].first()
    expected = hsb["size"].to_numpy() - school_sizes.mean()
    np.testing.assert_allclose(design.X[:, 1], expected)
    # ... a level-1 variable over rows
    spec = parse_equations("mathach = b0 + b1*cgm(ses) + e\nb0 = g00 + u0\nb1 = g10")
    design = build_design(spec, hsb, cluster="school")
    np.testing.assert_allclose(design.X[:, 1], hsb["ses"] - hsb["ses"].mean())


def test_categorical_level2_predictor_rows_and_reference(hsb):
    data = hsb.assign(sectorc=np.where(hsb["sector"] == 1, "Catholic", "Public"))
    res = mlmwrap.fit(
        "mathach = b0 + b1*cwc(ses) + e\nb0 = g00 + g01*C(sectorc) + u0\nb1 = g10 + g11*sectorc",
        data,
        cluster="school",
    )
    assert list(res.gamma.index) == ["g00", "g01[Public]", "g10", "g11[Public]"]
    assert res.gamma.loc["g11[Public]", "term"] == "cwc(ses):sectorc[Public]"
    numeric = mlmwrap.fit(
        "mathach = b0 + b1*cwc(ses) + e\nb0 = g00 + g01*sector + u0\nb1 = g10 + g11*sector",
        hsb,
        cluster="school",
    )
    # Public vs Catholic is minus Catholic vs Public.
    assert res.gamma.loc["g01[Public]", "estimate"] == pytest.approx(
        -numeric.gamma.loc["g01", "estimate"], rel=1e-6
    )
