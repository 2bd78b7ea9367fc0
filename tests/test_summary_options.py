"""summary(): exact p-values, robust SE columns, subscripts dropped, the HTML has it all."""

import re

import numpy as np
import pytest

import mlmwrap
from mlmwrap.cli import DEMO_EQUATIONS


@pytest.fixture(scope="module")
def isao(hsb):
    return mlmwrap.fit(DEMO_EQUATIONS, hsb, cluster="school")


def _gamma_line(text: str, label: str) -> str:
    return next(ln for ln in text.splitlines() if ln.strip().startswith(label + " "))


def test_exact_p_values_below_001(isao):
    apa = _gamma_line(isao.summary(), "g00")
    exact = _gamma_line(isao.summary(p_format="exact"), "g00")
    assert "<.001" in apa
    # lmerTest: p of g00 is about 1.6e-112 (t = 60.87 on 159.9 df)
    assert f"{isao.gamma.loc['g00', 'p']:.1e}" in exact and "e-112" in exact
    assert "<.001" not in isao.summary(p_format="exact").split("Variance components")[0]
    with pytest.raises(mlmwrap.MLMError, match="p_format"):
        isao.summary(p_format="stars")


def test_robust_columns_are_the_cr2_ses(isao):
    text = isao.summary(robust=True)
    assert "robust SE" in text and "CR2" in text
    robust = isao.robust()
    for label in isao.gamma.index:
        line = _gamma_line(text, label)
        assert line.split()[-2] == f"{robust.loc[label, 'se']:.3f}"
    assert "robust SE" not in isao.summary()


def test_subscripts_are_dropped_in_every_label(hsb):
    written = mlmwrap.fit(
        "mathach_ij = β0j + β1j*cwc(ses_ij) + r_ij\n"
        "β0j = γ00 + γ01*meanses_j + u0j\n"
        "β1j = γ10 + u1j",
        hsb,
        cluster="school",
    )
    plain = mlmwrap.fit(
        "mathach = b0 + b1*cwc(ses) + r\nb0 = g00 + g01*meanses + u0\nb1 = g10 + u1",
        hsb,
        cluster="school",
    )
    for text in (written.summary(), written._repr_html_()):
        assert "_ij" not in text and "_j" not in text
    assert written.summary() == plain.summary()


def test_a_column_really_named_with_a_suffix_keeps_it(hsb):
    data = hsb.rename(columns={"meanses": "meanses_j"})
    res = mlmwrap.fit("mathach = b0 + e\nb0 = g00 + g01*meanses_j + u0", data, cluster="school")
    assert "meanses_j" in res.summary()


def test_html_has_every_number_of_the_text_summary(hsb):
    res = mlmwrap.fit(
        "mathach = b0 + b1*cwc(ses) + e\nb0 = g00 + g01*cmean(ses) + u0\nb1 = g10 + u1",
        hsb,
        cluster="school",
    )
    for kwargs in ({}, {"robust": True, "p_format": "exact"}):
        text = res.summary(**kwargs)
        html = res._repr_html_() if not kwargs else _html(res, **kwargs)
        numbers = set(re.findall(r"-?\d+\.\d+(?:e-\d+)?", text))
        missing = sorted(n for n in numbers if n not in html)
        assert not missing, missing
        assert np.isfinite(res.aic) and f"{res.aic:.3f}" in html


def _html(res, **kwargs):
    from mlmwrap.report.summary import summary_html

    return summary_html(res, **kwargs)
