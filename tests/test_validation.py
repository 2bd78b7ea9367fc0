"""Issue 11, classes 2, 3 and 7: degenerate data and bad input get a clear mlmwrap error (or
a warning) before any fitting, and the summary never contradicts itself."""

import warnings

import numpy as np
import pandas as pd
import pytest

import mlmwrap
from mlmwrap.errors import DataError, DataWarning, MLMError, SpecificationError

EQ = "mathach = b0 + b1*cwc(ses)\nb0 = g00 + g01*meanses + u0\nb1 = g10 + u1"


def fit(data, eq=EQ, **kw):
    kw.setdefault("cluster", "school")
    return mlmwrap.fit(eq, data, **kw)


# -- class 3: validated input --------------------------------------------------------------
@pytest.mark.parametrize("value", ["ML", "no", 0, 1, None, "True"])
def test_reml_must_be_a_real_boolean(hsb, value):
    with pytest.raises(MLMError, match="reml must be True or False"):
        fit(hsb, reml=value)


def test_numpy_booleans_are_booleans(hsb):
    assert not fit(hsb, "mathach = b0\nb0 = g00 + u0", reml=np.False_).reml


def test_cluster_as_a_one_element_list_is_the_column(hsb):
    a = fit(hsb, "mathach = b0\nb0 = g00 + u0", cluster=["school"])
    b = fit(hsb, "mathach = b0\nb0 = g00 + u0", cluster="school")
    assert a.deviance == b.deviance and a.cluster == "school"


def test_two_cluster_columns_need_three_level_equations(hsb):
    with pytest.raises(SpecificationError, match="describe a two-level model"):
        fit(hsb, cluster=["school", "sector"])


def test_cluster_of_the_wrong_type(hsb):
    with pytest.raises(MLMError, match="name of a column"):
        fit(hsb, cluster=3)


def test_duplicated_column_names_are_named(hsb):
    data = hsb.copy()
    data.insert(0, "ses", 1.0, allow_duplicates=True)
    with pytest.raises(DataError, match="more than one column named 'ses'"):
        fit(data)


def test_ids_differing_only_by_blanks_warn(hsb):
    data = hsb.copy()
    data["school"] = data["school"].astype(str)
    data.loc[data.index[::50], "school"] += " "
    with pytest.warns(DataWarning, match="differ only by surrounding blanks"):
        fit(data, "mathach = b0\nb0 = g00 + u0")


def test_numbers_with_a_missing_value_code_show_the_code(hsb):
    data = hsb.copy()
    data["meanses"] = data["meanses"].astype(str)
    data.loc[data["school"] == data["school"].iloc[0], "meanses"] = "."
    before = data.copy()
    with pytest.raises(DataError) as err:
        fit(data)
    text = str(err.value)
    assert "'.'" in text and "na_values=['.']" in text and "--na-values" in text
    assert "^^^^^^^" in text and "g01*meanses" in text  # the caret under the column
    pd.testing.assert_frame_equal(data, before)  # the user's data is not modified


def test_level1_text_numbers_also_show_the_code(hsb):
    data = hsb.copy()
    data["ses"] = data["ses"].astype(str)
    data.loc[data.index[:3], "ses"] = "NA?"
    with pytest.raises(DataError, match="numbers except 'NA\\?' \\(3 rows\\)"):
        fit(data)


def test_a_real_text_category_is_still_a_category(hsb):
    data = hsb.copy()
    data["kind"] = np.where(data["sector"] == 1, "Catholic", "Public")
    res = fit(data, "mathach = b0\nb0 = g00 + g01*kind + u0")
    assert "g01[Public]" in res.gamma.index


def test_infinite_values_name_their_column_with_a_caret(hsb):
    data = hsb.copy()
    data.loc[3, "meanses"] = np.inf
    with pytest.raises(DataError, match="'meanses' has 1 infinite value") as err:
        fit(data)
    assert "line 2" in str(err.value) and "^" in str(err.value)


def test_a_two_valued_outcome_warns_that_the_model_is_linear(hsb):
    data = hsb.assign(passed=(hsb["mathach"] > 12).astype(int))
    with pytest.warns(DataWarning, match="only two values: this is a linear"):
        fit(data, EQ.replace("mathach", "passed"))


def test_ordinary_fits_raise_no_data_warning(hsb):
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)
        fit(hsb)


# -- class 2: degenerate data ----------------------------------------------------------------
def test_an_outcome_without_variation(hsb):
    with pytest.raises(DataError, match="no variation") as err:
        fit(hsb.assign(mathach=3.0))
    assert "line 1" in str(err.value)


@pytest.mark.parametrize("term", ["mathach", "cmean(mathach)", "cgm(mathach)", "log(mathach)"])
def test_the_outcome_on_the_right_hand_side(hsb, term):
    eq = f"mathach = b0 + b1*cwc(ses)\nb0 = g00 + g01*{term} + u0\nb1 = g10 + u1"
    if term != "cmean(mathach)":
        eq = f"mathach = b0 + b1*{term}\nb0 = g00 + u0\nb1 = g10"
    with pytest.raises(DataError, match="also on the right-hand side") as err:
        fit(hsb.assign(mathach=hsb["mathach"] + 10), eq)
    assert "^^^^^^^" in str(err.value)


def test_a_perfect_fit_of_the_fixed_part(hsb):
    data = hsb.assign(y=2 * hsb["ses"] + 1)
    with pytest.raises(DataError, match="perfect fit"):
        fit(data, "y = b0 + b1*ses\nb0 = g00 + u0\nb1 = g10")


def test_a_perfect_fit_within_clusters(hsb):
    codes = hsb["school"].astype("category").cat.codes
    data = hsb.assign(y=2 * hsb["ses"] + codes)
    with pytest.raises(DataError, match="perfect fit"):
        fit(data, "y = b0 + b1*ses\nb0 = g00 + u0\nb1 = g10")


def test_more_fixed_effects_than_rows(hsb):
    small = hsb.groupby("school").head(1).head(3)
    eq = (
        "mathach = b0 + b1*ses + b2*female + b3*minority\n"
        "b0 = g00 + g01*meanses + g02*sector + u0\nb1 = g10\nb2 = g20\nb3 = g30"
    )
    with pytest.raises(DataError, match="6 fixed effects but the estimation sample has only 3"):
        fit(small, eq)


# -- class 7: the summary -------------------------------------------------------------------
def test_labels_are_shown_as_written(hsb):
    eq = "mathach = b0 + b1*cwc(ses)\nb0 = g00 + u0\nb1 = g100 + u1"
    res = fit(hsb, eq)
    assert list(res.gamma.index) == ["g00", "g100"]
    assert "g100" in res.summary()


def test_labels_of_a_tenth_beta_are_as_written():
    from mlmwrap.language.equations import parse_equations

    lines = ["y = b0 + " + " + ".join(f"b{k}*x{k}" for k in range(1, 11)), "b0 = g00 + u0"]
    lines += [f"b{k} = g{k}0" for k in range(1, 10)] + ["b10 = g100 + g101*w"]
    spec = parse_equations("\n".join(lines))
    assert [g.label for g in spec.gammas][-2:] == ["g100", "g101"]


def test_the_summary_does_not_claim_a_checked_hessian_when_it_is_not(hsb):
    res = fit(hsb)
    object.__setattr__(res, "hessian_pd", False)
    status = [line for line in res.summary().splitlines() if line.startswith("Converged")]
    assert status and "Hessian checked" not in status[0] and "not positive definite" in status[0]
    res.hessian_pd = None
    status = [line for line in res.summary().splitlines() if line.startswith("Converged")]
    assert "Hessian checked" not in status[0]
