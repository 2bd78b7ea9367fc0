"""decompose(): within/between parts of level-1 variables, missing values, bad input."""

import numpy as np
import pandas as pd
import pytest

from mlmwrap.errors import DataError
from mlmwrap.model.centering import decompose


def test_parts_match_groupby_means(hsb):
    parts = decompose(hsb, ["mathach", "ses"], cluster="school")
    assert list(parts.columns) == ["mathach_within", "mathach_between", "ses_within", "ses_between"]
    for v in ("mathach", "ses"):
        means = hsb.groupby("school")[v].transform("mean")
        np.testing.assert_allclose(parts[f"{v}_between"], means, rtol=0, atol=1e-12)
        np.testing.assert_allclose(parts[f"{v}_within"], hsb[v] - means, rtol=0, atol=1e-12)
        # the within part has mean 0 in every cluster and sums back to x
        by = parts[f"{v}_within"].groupby(hsb["school"]).mean()
        assert np.abs(by).max() < 1e-12
        np.testing.assert_allclose(parts[f"{v}_within"] + parts[f"{v}_between"], hsb[v])


def test_aligned_to_a_shuffled_string_index(hsb):
    data = hsb.sample(frac=1.0, random_state=3).head(500)
    data.index = [f"row{i}" for i in range(len(data))]
    parts = decompose(data, "ses", cluster="school")
    assert parts.index.equals(data.index)
    expected = data["ses"] - data.groupby("school")["ses"].transform("mean")
    np.testing.assert_allclose(parts["ses_within"], expected, atol=1e-12)


def test_missing_values_use_observed_rows_and_give_nan_parts():
    data = pd.DataFrame(
        {"g": [1, 1, 1, 2, 2, 3, 3], "x": [1.0, np.nan, 5.0, 2.0, 4.0, np.nan, np.nan]}
    )
    parts = decompose(data, ["x"], cluster="g")
    # cluster 1's mean over its observed rows is 3; the row with missing x gets NaN parts
    np.testing.assert_allclose(parts["x_between"], [3, np.nan, 3, 3, 3, np.nan, np.nan])
    np.testing.assert_allclose(parts["x_within"], [-2, np.nan, 2, -1, 1, np.nan, np.nan])


def test_nullable_integer_and_bool_columns():
    data = pd.DataFrame(
        {
            "g": ["a", "a", "b", "b"],
            "n": pd.array([1, None, 3, 5], dtype="Int64"),
            "flag": [True, False, True, True],
        }
    )
    parts = decompose(data, ["n", "flag"], cluster="g")
    np.testing.assert_allclose(parts["n_between"], [1, np.nan, 4, 4])
    np.testing.assert_allclose(parts["flag_between"], [0.5, 0.5, 1, 1])


def test_caller_data_not_modified(hsb):
    data = hsb.head(300).copy()
    data.loc[data.index[:5], "ses"] = np.nan
    before = data.copy()
    decompose(data, ["mathach", "ses"], cluster="school")
    pd.testing.assert_frame_equal(data, before)


@pytest.mark.parametrize(
    "variables, cluster, message, hint",
    [
        (["sess"], "school", "no column 'sess'", "did you mean 'ses'"),
        (["ses"], "schol", "no column 'schol'", "did you mean 'school'"),
        (["label"], "school", "'label' is not numeric", "pd.to_numeric"),
        ([], "school", "no variables", None),
        (["school"], "school", "is the cluster column", None),
    ],
)
def test_bad_input_gets_a_data_error(hsb, variables, cluster, message, hint):
    data = hsb.head(200).assign(label="x")
    with pytest.raises(DataError) as info:
        decompose(data, variables, cluster=cluster)
    assert message in str(info.value)
    if hint:
        assert hint in str(info.value)


def test_cluster_with_missing_values_and_single_cluster(hsb):
    data = hsb.head(100).copy()
    data["school"] = data["school"].astype(float)
    data.loc[data.index[3], "school"] = np.nan
    with pytest.raises(DataError, match="1 missing value"):
        decompose(data, "ses", cluster="school")
    one = hsb[hsb["school"] == hsb["school"].iloc[0]]
    with pytest.raises(DataError, match="only 1 cluster"):
        decompose(one, "ses", cluster="school")
    with pytest.raises(DataError, match="must be a pandas DataFrame"):
        decompose(hsb.to_dict(), "ses", cluster="school")


def test_cluster_means_and_sums_are_per_cluster():
    from mlmwrap.model.centering import cluster_means, cluster_sums

    codes = np.array([0, 0, 1, 1, 1, 2])
    x = np.array([1.0, 3.0, np.nan, 2.0, 4.0, np.nan])
    np.testing.assert_allclose(cluster_means(x, codes, 3, skipna=True), [2.0, 3.0, np.nan])
    assert np.isnan(cluster_means(x, codes, 3)[1])  # without skipna a NaN spreads
    two = np.column_stack([np.arange(6.0), np.ones(6)])
    np.testing.assert_allclose(cluster_sums(two, codes, 3), [[1, 2], [9, 3], [5, 1]])
    np.testing.assert_allclose(cluster_means(two, codes, 3)[:, 0], [0.5, 3.0, 5.0])
