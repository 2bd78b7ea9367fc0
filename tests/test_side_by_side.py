"""mlmwrap.tables.side_by_side and the maketables plug-in protocol."""

import numpy as np
import pytest

import mlmwrap
from mlmwrap.cli import DEMO_EQUATIONS

BUILD_UP = [
    "mathach = b0 + e\nb0 = g00 + u0",
    "mathach = b0 + b1*cwc(ses) + e\nb0 = g00 + u0\nb1 = g10",
    "mathach = b0 + b1*cwc(ses) + e\nb0 = g00 + u0\nb1 = g10 + u1",
    DEMO_EQUATIONS,
]
NAMES = ["Null", "+ cwc(ses)", "+ random slope", "+ meanses, sector"]


@pytest.fixture(scope="module")
def models(hsb):
    return [mlmwrap.fit(e, hsb, cluster="school") for e in BUILD_UP]


EXPECTED_TEXT = """\
                                 Null    + cwc(ses)
Fixed effects
  g00  intercept             12.64***      12.64***
                             (0.24)        (0.24)
  g10  cwc(ses)                             2.19***
                                           (0.11)
Variance components
  u0   intercept              8.61          8.67
  e    level-1 residual      39.15         37.01
Model fit
  Deviance (REML)         47116.79      46724.00
  AIC                     47122.79      46732.00
  BIC                     47143.43      46759.51
  N (level-1 units)        7185          7185
  J (clusters)              160           160
Standard errors in parentheses; * p < .05, ** p < .01, *** p < .001.
REML deviances of models with different fixed effects are not
comparable: compare them with mlmwrap.compare(), which refits by ML."""

EXPECTED_MARKDOWN = """\
| | Null | + cwc(ses) |
|:---|---:|---:|
| **Fixed effects** | | |
| g00  intercept | 12.64\\*\\*\\* | 12.64\\*\\*\\* |
| | (0.24) | (0.24) |
| g10  cwc(ses) | | 2.19\\*\\*\\* |
| | | (0.11) |
| **Variance components** | | |
| u0  intercept | 8.61 | 8.67 |
| e  level-1 residual | 39.15 | 37.01 |
| **Model fit** | | |
| Deviance (REML) | 47116.79 | 46724.00 |
| AIC | 47122.79 | 46732.00 |
| BIC | 47143.43 | 46759.51 |
| N (level-1 units) | 7185 | 7185 |
| J (clusters) | 160 | 160 |"""


def test_text_and_markdown_are_the_expected_tables(models):
    # the numbers are lme4's for these models (tests/reference/hsb_lme4.json, test_fit_lme4)
    text = mlmwrap.tables.side_by_side(models[:2], names=NAMES[:2])
    assert text == EXPECTED_TEXT
    md = mlmwrap.tables.side_by_side(models[:2], names=NAMES[:2], format="markdown")
    assert md.split("\n\n*Note.*")[0] == EXPECTED_MARKDOWN


def test_rows_match_the_same_predictor_across_models(models):
    text = mlmwrap.tables.side_by_side(models, names=NAMES, stars=False)
    line = next(ln for ln in text.splitlines() if ln.strip().startswith("g10"))
    cells = line.split()[2:]
    assert cells == [f"{m.gamma.loc['g10', 'estimate']:.2f}" for m in models[1:]]
    u1 = next(ln for ln in text.splitlines() if ln.strip().startswith("u1"))
    assert u1.split()[2:] == [f"{m.tau.loc['u1', 'u1']:.2f}" for m in models[2:]]
    for stat in ("AIC", "BIC"):
        row = next(ln for ln in text.splitlines() if ln.strip().startswith(stat))
        assert row.split()[1:] == [f"{getattr(m, stat.lower()):.2f}" for m in models]


def test_confidence_intervals_instead_of_ses(models):
    text = mlmwrap.tables.side_by_side(models[:1], interval="ci", digits=3)
    g = models[0].gamma.loc["g00"]
    assert f"[{g['ci_lower']:.3f}, {g['ci_upper']:.3f}]" in text and "CIs in brackets" in text


def test_latex_and_html(models):
    tex = mlmwrap.tables.side_by_side(models, names=NAMES, format="latex", label="tab:bu")
    assert tex.startswith("\\begin{table}") and "\\label{tab:bu}" in tex
    assert "$\\gamma_{11}$ cwc(ses) x meanses" in tex and "$\\tau_{11}$ cwc(ses)" in tex
    assert "$-$1.64$^{***}$" in tex and tex.count("\\\\") > 20
    html = mlmwrap.tables.side_by_side(models, names=NAMES, format="html")
    assert html.count("<tr>") == tex.count(" \\\\")  # one row each, the header included
    assert "+ meanses, sector" in html and "46503.66" in html


def test_bad_input_is_an_mlmwrap_error(models):
    with pytest.raises(mlmwrap.DataError, match="not a fitted model"):
        mlmwrap.tables.side_by_side([models[0], "m2"])
    with pytest.raises(mlmwrap.DataError, match="2 names for 1 models"):
        mlmwrap.tables.side_by_side(models[:1], names=["a", "b"])
    with pytest.raises(mlmwrap.MLMError, match="unknown format"):
        mlmwrap.tables.side_by_side(models, format="docx")


# -- maketables, the real package -------------------------------------------------------------
def test_maketables_etable_reads_the_fits(models):
    maketables = pytest.importorskip("maketables")
    table = maketables.ETable(models, model_heads=NAMES)
    df = table.df
    text = df.to_string()
    assert "g11: cwc(ses) × meanses" in text and "J (clusters: school)" in text
    assert "var(u1): cwc(ses)" in text
    # one row per reduced-form term, whatever the gamma label
    coef_rows = [i for i in df.index if i[0] == "coef"]
    assert len(coef_rows) == 6
    tex = table.make(type="tex")
    assert "12.096" in tex and "46,503.66" in tex


def test_maketables_protocol_values(models):
    m = models[3]
    coef = m.__maketables_coef_table__
    assert (
        list(coef.index) == [t.replace(":", " × ") for t in m.gamma["term"]]
        and coef.index.name == "Coefficient"
    )
    np.testing.assert_array_equal(coef["b"], m.gamma["estimate"])
    np.testing.assert_array_equal(coef["se"], m.gamma["se"])
    assert m.__maketables_stat__("N") == 7185 and m.__maketables_stat__("n_clusters") == 160
    assert m.__maketables_stat__("var(u1)") == pytest.approx(m.tau.loc["u1", "u1"])
    assert m.__maketables_stat__("var(u1): cwc(ses)") == m.__maketables_stat__("var(u1)")
    assert m.__maketables_stat__("ll") == pytest.approx(-m.deviance / 2)
    assert m.__maketables_stat__("no such statistic") is None
    assert m.__maketables_depvar__ == "mathach"
