"""effects(): within, between and contextual effects under every parametrization.

Golden numbers: `effects_ses` in reference/hsb_inference.json (lme4, mathach ~ cwc_ses +
cm_ses + (1 | school)) and reference/issue3_centering.json (raw ses + cm_ses, a random slope,
sector with a cross-level interaction; issue3_centering.R). Tolerances: estimates 1e-5 and
SEs 1e-4 relative (both sides stop an optimizer at the same REML optimum).
"""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mlmwrap
from mlmwrap.analysis.effects import effects, effects_section

REFERENCE = Path(__file__).parent / "reference"

WITHIN_BETWEEN = """
mathach = b0 + b1*cwc(ses) + e
b0 = g00 + g01*cmean(ses) + u0
b1 = g10
"""


@pytest.fixture(scope="module")
def golden():
    inference = json.loads((REFERENCE / "hsb_inference.json").read_text())
    issue3 = json.loads((REFERENCE / "issue3_centering.json").read_text())
    return inference["effects_ses"], issue3


def _check(table, ref, variable="ses"):
    for effect in ("within", "between", "contextual"):
        row = table.loc[(variable, effect)]
        assert row["estimate"] == pytest.approx(ref[effect]["estimate"], rel=1e-5)
        assert row["se"] == pytest.approx(ref[effect]["se"], rel=1e-4)
        assert row["z"] == pytest.approx(row["estimate"] / row["se"])
        assert row["ci_lower"] < row["estimate"] < row["ci_upper"]


@pytest.mark.parametrize(
    "equations, sources",
    [
        (WITHIN_BETWEEN, ["g10", "g01", "g01 - g10"]),
        (  # the contextual parametrization, uncentered and grand-mean centered
            "mathach = b0 + b1*ses + e\nb0 = g00 + g01*cmean(ses) + u0\nb1 = g10",
            ["g10", "g10 + g01", "g01"],
        ),
        (
            "mathach = b0 + b1*cgm(ses) + e\nb0 = g00 + g01*cmean(ses) + u0\nb1 = g10",
            ["g10", "g10 + g01", "g01"],
        ),
    ],
)
def test_every_parametrization_gives_the_golden_effects(hsb, golden, equations, sources):
    ref = golden[0]
    res = mlmwrap.fit(equations, hsb, cluster="school")
    table = effects(res)
    assert list(table.index) == [("ses", e) for e in ("within", "between", "contextual")]
    assert list(table["source"]) == sources
    as_lists = {
        e: {"estimate": ref[e], "se": ref[f"{e}_se"]} for e in ("within", "between", "contextual")
    }
    _check(table, as_lists)
    assert (table["note"] == "").all()


def test_raw_slope_and_sector_models(hsb, golden):
    issue3 = golden[1]
    raw = mlmwrap.fit(
        "mathach = b0 + b1*ses + e\nb0 = g00 + g01*cmean(ses) + u0\nb1 = g10", hsb, "school"
    )
    _check(effects(raw), issue3["effects_raw"])
    slope = mlmwrap.fit(
        "mathach = b0 + b1*cwc(ses) + e\nb0 = g00 + g01*cmean(ses) + u0\nb1 = g10 + u1",
        hsb,
        "school",
    )
    _check(effects(slope), issue3["effects_random_slope"])
    sector = mlmwrap.fit(
        """mathach = b0 + b1*cwc(ses) + e
        b0 = g00 + g01*cmean(ses) + g02*sector + u0
        b1 = g10 + g11*sector + u1""",
        hsb,
        "school",
    )
    table = effects(sector)
    _check(table, issue3["effects_sector"])
    assert "slope where it is 0" in table.loc[("ses", "within"), "note"]


def test_within_alone_says_between_is_missing(hsb):
    res = mlmwrap.fit(
        "mathach = b0 + b1*cwc(ses) + e\nb0 = g00 + u0\nb1 = g10", hsb, cluster="school"
    )
    table = effects(res)
    assert table.loc[("ses", "within"), "estimate"] == pytest.approx(
        res.gamma.loc["g10", "estimate"]
    )
    for effect in ("between", "contextual"):
        assert np.isnan(table.loc[("ses", effect), "estimate"])
        assert table.loc[("ses", effect), "source"] == ""
    assert "between effect is not in the model" in table.loc[("ses", "between"), "note"]
    assert "cmean(ses)" in table.loc[("ses", "between"), "note"]
    assert effects_section(res) == []


def test_between_alone_and_uncentered_alone(hsb):
    res = mlmwrap.fit(
        "mathach = b0 + b1*minority + e\nb0 = g00 + g01*cmean(ses) + u0\nb1 = g10", hsb, "school"
    )
    table = effects(res)
    # minority enters uncentered without its mean: nothing to separate, not listed
    assert list(table.index.get_level_values(0).unique()) == ["ses"]
    assert table.loc[("ses", "between"), "source"] == "g01"
    assert np.isnan(table.loc[("ses", "within"), "estimate"])
    assert "within effect is not in the model" in table.loc[("ses", "within"), "note"]


def test_no_decomposition_gives_an_empty_table(hsb):
    res = mlmwrap.fit("mathach = b0 + b1*ses + e\nb0 = g00 + u0\nb1 = g10", hsb, "school")
    table = effects(res)
    assert table.empty and list(table.columns)[:2] == ["estimate", "se"]
    assert effects_section(res) == []


def test_two_variables_and_a_subscripted_name(hsb):
    res = mlmwrap.fit(
        """mathach_ij = b0 + b1*cwc(ses_ij) + b2*cwc(minority) + e
        b0 = g00 + g01*cmean(ses) + g02*cmean(minority) + u0
        b1 = g10
        b2 = g20""",
        hsb,
        "school",
    )
    table = effects(res)
    assert set(table.index.get_level_values(0)) == {"ses", "minority"}
    assert table.loc[("minority", "contextual"), "source"] == "g02 - g20"
    ctx = table.loc[("minority", "contextual")]
    cov = res.cov_gamma
    se = np.sqrt(cov.loc["g02", "g02"] + cov.loc["g20", "g20"] - 2 * cov.loc["g02", "g20"])
    assert ctx["se"] == pytest.approx(se)
    lines = effects_section(res)
    assert lines[0].startswith("Within, between and contextual effects")
    assert sum(line.strip().startswith(("ses", "minority")) for line in lines) == 2


def test_section_text(hsb):
    res = mlmwrap.fit(WITHIN_BETWEEN, hsb, cluster="school")
    text = "\n".join(effects_section(res))
    assert "contextual" in text and "g01 - g10" in text and "3.675" in text
    before = hsb.copy()
    effects(res)
    pd.testing.assert_frame_equal(hsb, before)
