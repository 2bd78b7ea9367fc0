"""The reduced form as formulas (language/formulas.py) and the patsy / statsmodels round trip.

The round trip (issue 8): plain ``statsmodels.formula.api.mixedlm`` with ``res.formulas`` on
``res.model_frame``, started at mlmwrap's estimates, gives the same fixed-effect names and
the same deviance (within 1e-6) on all eight HSB reference models; mlmwrap's deviances are
themselves lme4's (tests/reference/hsb_lme4.json, within 1e-3).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from test_fit_lme4 import HSB_MODELS, ISAO

import mlmwrap
from mlmwrap.language.equations import parse_equations
from mlmwrap.language.formulas import reduced_formulas

REFERENCE = json.loads((Path(__file__).parent / "reference" / "hsb_lme4.json").read_text())
ROUND_TRIP = {name: (eqs, REFERENCE[name]["reml"]) for name, (eqs, _) in HSB_MODELS.items()}
ROUND_TRIP["isao_ml"] = (ISAO, False)

# equations -> (fixed formula, re_formula, lme4 formula, derived columns)
CASES = [
    (
        "y = b0 + e\nb0 = g00 + u0",
        "y ~ 1",
        "~1",
        "y ~ 1 + (1 | g)",
        {},
    ),
    (
        "y = b0 + b1*cwc(x) + e\nb0 = g00 + g01*w + u0\nb1 = g10 + g11*w + u1",
        "y ~ 1 + w + cwc_x + cwc_x:w",
        "~1 + cwc_x",
        "y ~ 1 + w + cwc_x + cwc_x:w + (1 + cwc_x | g)",
        {"cwc_x": "cwc(x)"},
    ),
    (  # cluster means, grand-mean centering, a shift, a transform and a power
        "y = b0 + b1*cgm(x) + b2*center(z, -1.5) + b3*log(v) + b4*x^2\n"
        "b0 = g00 + g01*cmean(x) + u0\nb1 = g10\nb2 = g20\nb3 = g30\nb4 = g40",
        "y ~ 1 + cmean_x + cgm_x + center_z_m1p5 + log_v + x_pow2",
        "~1",
        "y ~ 1 + cmean_x + cgm_x + center_z_m1p5 + log_v + x_pow2 + (1 | g)",
        {
            "cmean_x": "cmean(x)",
            "cgm_x": "cgm(x)",
            "center_z_m1p5": "center(z, -1.5)",
            "log_v": "log(v)",
            "x_pow2": "x^2",
        },
    ),
    (  # a categorical level-2 predictor and a level-1 product; a transformed outcome
        "log(y) = b0 + b1*(x*z) + e\nb0 = g00 + g01*C(s) + u0\nb1 = g10 + g11*C(s)",
        "log_y ~ 1 + C(s) + x:z + x:z:C(s)",
        "~1",
        "log_y ~ 1 + factor(s) + x:z + x:z:factor(s) + (1 | g)",
        {"log_y": "log(y)"},
    ),
    (  # no random intercept
        "y = b0 + b1*x + e\nb0 = g00\nb1 = g10 + u1",
        "y ~ 1 + x",
        "~0 + x",
        "y ~ 1 + x + (0 + x | g)",
        {},
    ),
]


@pytest.mark.parametrize("equations, fixed, re_formula, lme4, derived", CASES)
def test_reduced_formulas(equations, fixed, re_formula, lme4, derived):
    f = reduced_formulas(parse_equations(equations), cluster="g")
    assert (f.fixed, f.re_formula, f.groups, f.lme4, f.derived) == (
        fixed,
        re_formula,
        "g",
        lme4,
        derived,
    )


def test_names_as_written_or_as_resolved():
    spec = parse_equations("y_ij = b0 + b1*cwc(x_ij) + e\nb0 = g00 + u0\nb1 = g10")
    assert spec.formulas.fixed == "y_ij ~ 1 + cwc_x_ij"
    resolved = reduced_formulas(spec, "school", columns={"y_ij": "y", "x_ij": "x"})
    assert resolved.fixed == "y ~ 1 + cwc_x"
    assert resolved.term_of_gamma == {"g00": "1", "g10": "cwc_x"}


def test_awkward_column_names_are_quoted():
    spec = parse_equations("y = b0 + b1*x + e\nb0 = g00 + g01*w + u0\nb1 = g10")
    f = reduced_formulas(spec, "my school", columns={"y": "math score", "x": "x", "w": "if"})
    assert f.fixed == "Q('math score') ~ 1 + Q('if') + x"
    assert f.lme4 == "`math score` ~ 1 + `if` + x + (1 | `my school`)"


def test_derived_names_never_clash_with_the_models_columns(hsb):
    # A model column already called cwc_ses: the derived column gets another name.
    data = hsb.assign(cwc_ses=hsb["meanses"])
    res = mlmwrap.fit(
        "mathach = b0 + b1*cwc(ses) + e\nb0 = g00 + g01*cwc_ses + u0\nb1 = g10",
        data,
        cluster="school",
    )
    assert res.formulas.derived == {"cwc_ses_": "cwc(ses)"}
    assert res.formulas.fixed == "mathach ~ 1 + cwc_ses + cwc_ses_"
    np.testing.assert_allclose(res.model_frame["cwc_ses"], hsb["meanses"])
    spec = parse_equations("y = b0 + b1*cwc(cwc_x) + e\nb0 = g00 + u0\nb1 = g10")
    assert reduced_formulas(spec).derived == {"cwc_cwc_x": "cwc(cwc_x)"}


def test_categorical_levels_code_as_in_the_gamma_labels(hsb):
    data = hsb.assign(sector_name=hsb["sector"].map({0: "Public", 1: "Catholic"}))
    res = mlmwrap.fit(
        "mathach = b0 + b1*cwc(ses) + e\nb0 = g00 + g01*sector_name + u0\n"
        "b1 = g10 + g11*C(sector_name)",
        data,
        cluster="school",
    )
    assert list(res.gamma.index) == ["g00", "g01[Public]", "g10", "g11[Public]"]
    assert res.design.patsy_fixed_names == [
        "Intercept",
        "C(sector_name)[T.Public]",
        "cwc_ses",
        "cwc_ses:C(sector_name)[T.Public]",
    ]
    assert list(res.model_frame["sector_name"].cat.categories) == ["Catholic", "Public"]
    assert not isinstance(data["sector_name"].dtype, pd.CategoricalDtype)  # data unmodified


@pytest.mark.parametrize("name", list(ROUND_TRIP))
def test_statsmodels_formula_round_trip(name, hsb):
    equations, reml = ROUND_TRIP[name]
    res = mlmwrap.fit(equations, hsb, cluster="school", reml=reml)
    f = res.formulas
    assert res.deviance == pytest.approx(REFERENCE[name]["deviance"], abs=1e-3)  # lme4's
    # res.statsmodels is MixedLM.from_formula with the same formulas, at mlmwrap's optimum.
    assert res.statsmodels.model.formula == f.fixed
    assert -2 * res.statsmodels.llf == pytest.approx(res.deviance, abs=1e-6)
    # A user's own statsmodels fit from the formulas, started at mlmwrap's estimates.
    model = smf.mixedlm(f.fixed, res.model_frame, re_formula=f.re_formula, groups=f.groups)
    own = model.fit(start_params=res.statsmodels.params_object, reml=reml)
    assert list(own.fe_params.index) == list(res.statsmodels.fe_params.index)
    assert sorted(own.fe_params.index) == sorted(res.design.patsy_fixed_names)
    assert -2 * own.llf == pytest.approx(res.deviance, abs=1e-6)
    np.testing.assert_allclose(
        own.fe_params[res.design.patsy_fixed_names], res.gamma["estimate"], rtol=1e-5
    )
    # The lme4 formula names the same columns as R's reference script (up to its names).
    lme4_terms = set(re.split(r"[ ~+|()]+", f.lme4)) - {""}
    assert lme4_terms <= set(res.model_frame.columns) | {"1", "0"} | {
        t for t in lme4_terms if ":" in t
    }


def test_summary_and_cli_show_the_formulas(hsb):
    res = mlmwrap.fit(HSB_MODELS["isao"][0], hsb, cluster="school")
    text = res.summary()
    assert f"Mixed (formula): {res.formulas.fixed}" in text
    assert "lme4:" in text and "(1 + cwc_ses | school)" in text
    assert res.formulas.fixed in res._repr_html_()
