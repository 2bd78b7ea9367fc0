"""icc() and within_between() against psych::statsBy and performance::icc.

Golden numbers: reference/hsb_inference.json (`statsby`, `icc_null`; hsb_inference.R) and
reference/issue3_centering.json (per-variable null-model ICCs, statsBy with missing values;
issue3_centering.R). Tolerances: psych's ANOVA quantities and correlations are closed-form,
1e-8; model-based ICCs come from an optimizer on both sides, 1e-5 relative.
"""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlmwrap.analysis.describe import icc, within_between
from mlmwrap.errors import DataError

REFERENCE = Path(__file__).parent / "reference"
VARS = ["mathach", "ses", "minority", "female"]


@pytest.fixture(scope="module")
def inference():
    return json.loads((REFERENCE / "hsb_inference.json").read_text())


@pytest.fixture(scope="module")
def issue3():
    return json.loads((REFERENCE / "issue3_centering.json").read_text())


@pytest.fixture(scope="module")
def hsb_missing(hsb):
    """The missing-value pattern of issue3_centering.R (1-based row numbers)."""
    data = hsb.copy()
    i = np.arange(1, len(data) + 1)
    data.loc[i % 7 == 0, "ses"] = np.nan
    data.loc[i % 11 == 3, "mathach"] = np.nan
    data.loc[data["school"] == data["school"].min(), "minority"] = np.nan
    return data


@pytest.fixture(scope="module")
def table(hsb):
    return icc(hsb, VARS, cluster="school")


def test_icc_matches_statsby_and_performance(table, inference, issue3):
    sb = inference["statsby"]  # statsBy's first entry is the grouping column itself
    np.testing.assert_allclose(table["icc1_anova"], sb["icc1"][1:], rtol=0, atol=1e-8)
    np.testing.assert_allclose(table["icc2_anova"], sb["icc2"][1:], rtol=0, atol=1e-8)
    assert table.loc["mathach", "icc"] == pytest.approx(inference["icc_null"]["icc"], rel=1e-5)
    for v in VARS:
        ref = issue3["icc_model"][v]
        assert table.loc[v, "icc"] == pytest.approx(ref["icc"], rel=1e-5)
        assert table.loc[v, "tau00"] == pytest.approx(ref["tau00"], rel=1e-5)
        assert table.loc[v, "sigma2"] == pytest.approx(ref["sigma2"], rel=1e-5)


def test_sizes_reliability_and_design_effect(table, hsb):
    sizes = hsb.groupby("school").size().to_numpy()
    row = table.loc["ses"]
    assert row["n"] == len(hsb) and row["n_clusters"] == 160
    assert row["mean_cluster_size"] == pytest.approx(len(hsb) / 160)
    rho = row["icc"]
    assert row["reliability"] == pytest.approx(np.mean(sizes * rho / (1 + (sizes - 1) * rho)))
    assert row["design_effect"] == pytest.approx(1 + (len(hsb) / 160 - 1) * rho)


def test_within_between_matches_statsby(hsb, inference):
    sb = inference["statsby"]
    rw, rb = within_between(hsb, VARS, cluster="school")
    assert list(rw.index) == VARS and list(rb.columns) == VARS
    np.testing.assert_allclose(rw.to_numpy(), sb["rwg"], atol=1e-8)
    np.testing.assert_allclose(rb.to_numpy(), sb["rbg"], atol=1e-8)


def test_missing_values_match_statsby(hsb_missing, issue3):
    ref = issue3["statsby_missing"]
    before = hsb_missing.copy()
    t = icc(hsb_missing, VARS, cluster="school")
    rw, rb = within_between(hsb_missing, VARS, cluster="school")
    np.testing.assert_allclose(t["icc1_anova"], ref["icc1"], atol=1e-8)
    np.testing.assert_allclose(t["icc2_anova"], ref["icc2"], atol=1e-8)
    np.testing.assert_allclose(rw.to_numpy(), ref["rwg"], atol=1e-8)
    np.testing.assert_allclose(rb.to_numpy(), ref["rbg"], atol=1e-8)
    for v in VARS:
        assert t.loc[v, "icc"] == pytest.approx(issue3["icc_model_missing"][v]["icc"], rel=1e-5)
    assert t.loc["minority", "n_clusters"] == 159  # one school has no observed minority
    assert t.loc["ses", "n"] == hsb_missing["ses"].notna().sum()
    pd.testing.assert_frame_equal(hsb_missing, before)


def test_unweighted_between_correlation_is_over_clusters(hsb):
    _, rb = within_between(hsb, ["mathach", "ses"], cluster="school", weighted=False)
    means = hsb.groupby("school")[["mathach", "ses"]].mean()
    assert rb.loc["mathach", "ses"] == pytest.approx(means.corr().loc["mathach", "ses"], abs=1e-12)
    _, weighted = within_between(hsb, ["mathach", "ses"], cluster="school")
    assert abs(weighted.loc["mathach", "ses"] - rb.loc["mathach", "ses"]) > 1e-4


def test_level2_and_zero_variance_between_clusters():
    rng = np.random.default_rng(0)
    g = np.repeat(np.arange(30), 4)
    data = pd.DataFrame(
        {
            "g": g,
            "w": np.repeat(rng.normal(size=30), 4),  # constant within clusters
            "noise": np.tile([-1.0, 1.0, 2.0, -2.0], 30),  # same values in every cluster
        }
    )
    t = icc(data, ["w", "noise"], cluster="g")
    assert t.loc["w", "icc"] == 1.0 and "level-2" in t.loc["w", "note"]
    assert t.loc["noise", "icc"] == pytest.approx(0.0, abs=1e-8)
    assert "estimated as 0" in t.loc["noise", "note"]


def test_bad_input(hsb):
    with pytest.raises(DataError, match="did you mean 'mathach'"):
        icc(hsb, ["mathach", "mathac"], cluster="school")
    with pytest.raises(DataError, match="not numeric"):
        icc(hsb.assign(s=hsb["school"].astype(str)), ["s"], cluster="school")
    with pytest.raises(DataError, match="at least two variables"):
        within_between(hsb, ["ses"], cluster="school")
    bad = hsb.head(50).assign(school=lambda d: d["school"].where(d.index > 2))
    with pytest.raises(DataError, match="missing value"):
        within_between(bad, ["ses", "mathach"], cluster="school")
    with pytest.raises(DataError, match="only 1 cluster"):
        icc(hsb.head(10), ["ses"], cluster="school")
