"""The notebook display typesets equations as MathML (no MathJax, no network), never LaTeX."""

import re
import sys

import pytest

import mlmwrap
from mlmwrap.cli import DEMO_EQUATIONS
from mlmwrap.report import mathml


@pytest.fixture(scope="module")
def isao(hsb):
    return mlmwrap.fit(DEMO_EQUATIONS, hsb, cluster="school")


def _text(markup: str) -> str:
    return re.sub(r"<[^>]+>", "", markup)


def test_html_display_has_mathml_and_no_latex_source(isao):
    pytest.importorskip("latex2mathml")
    out = isao._repr_html_()
    assert "<math" in out and "mlmwrap-equations" in out
    visible = _text(out)
    for latex in ("\\beta", "\\mathrm", "\\begin", "$$", "\\\\"):
        assert latex not in visible
    table = mathml.equations_mathml(isao)
    assert table.count("<tr>") == len(isao.equations("latex").split(" \\\\\n"))
    assert "12.096" in table and "&#x003B2;" in table  # beta, typeset


def test_without_latex2mathml_the_display_is_readable_text(isao, monkeypatch):
    monkeypatch.setitem(sys.modules, "latex2mathml", None)
    monkeypatch.setitem(sys.modules, "latex2mathml.converter", None)
    assert mathml.equations_mathml(isao) is None
    out = isao._repr_html_()
    assert "<math" not in out and "$$" not in out and "\\beta" not in out
    assert "b0 = g00 + g01*meanses + g02*sector + u0" in out
