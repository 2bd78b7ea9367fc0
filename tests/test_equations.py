"""Tests of the equation parser: equation sets -> reduced forms, and every error class."""

from __future__ import annotations

import re
from textwrap import dedent

import pytest

from mlmwrap.errors import EquationSyntaxError, MLMError, SpecificationError
from mlmwrap.language.equations import parse_equations, parse_tree, split_lines, tokenize
from mlmwrap.language.expr import Call, Num, Power, Product, Span, Var
from mlmwrap.language.spec import FixedTerm, Gamma

HSB = """
mathach = b0 + b1*cwc(ses) + e
b0 = g00 + g01*meanses + g02*sector + u0
b1 = g10 + g11*meanses + g12*sector + u1
"""
HSB_REDUCED = (
    "mathach = g00 + g01*meanses + g02*sector + g10*cwc(ses) + g11*cwc(ses)*meanses"
    " + g12*cwc(ses)*sector + u0 + u1*cwc(ses) + e"
)

# (id, equations, level-1 text, level-2 text, reduced text)
CASES = [
    (
        "hsb-ascii",
        HSB,
        "mathach = b0 + b1*cwc(ses) + e",
        "b0 = g00 + g01*meanses + g02*sector + u0\nb1 = g10 + g11*meanses + g12*sector + u1",
        HSB_REDUCED,
    ),
    (
        "greek-subscripts",
        """
        y_ij = β0j + β1j*x_ij + r_ij
        β0j = γ00 + γ01*w_j + u0j
        β1j = γ10 + γ11*w_j + u1j
        """,
        "y_ij = b0 + b1*x_ij + r",
        "b0 = g00 + g01*w_j + u0\nb1 = g10 + g11*w_j + u1",
        "y_ij = g00 + g01*w_j + g10*x_ij + g11*x_ij*w_j + u0 + u1*x_ij + r",
    ),
    (
        "greek-juxtaposition-seed",
        """
        y_ij = β0j + β1j x_1ij + β2j x_2ij + ε_ij
        β0j = γ00 + γ01 w_1j + u0j
        β1j = γ10 + γ11 w_1j + u1j
        β2j = γ20 + γ21 w_1j + u2j
        """,
        "y_ij = b0 + b1*x_1ij + b2*x_2ij + e",
        "b0 = g00 + g01*w_1j + u0\nb1 = g10 + g11*w_1j + u1\nb2 = g20 + g21*w_1j + u2",
        "y_ij = g00 + g01*w_1j + g10*x_1ij + g11*x_1ij*w_1j + g20*x_2ij + g21*x_2ij*w_1j"
        " + u0 + u1*x_1ij + u2*x_2ij + e",
    ),
    (
        "greek-underscores",
        """
        y = β_0j + β_1j*x + εij
        β_0j = γ_00 + γ_01*w + u_0j
        β_1j = γ_10
        """,
        "y = b0 + b1*x + e",
        "b0 = g00 + g01*w + u0\nb1 = g10",
        "y = g00 + g01*w + g10*x + u0 + e",
    ),
    (
        "words",
        """
        mathach = beta0 + beta1*cwc(ses) + e_ij
        beta0 = gamma00 + gamma01*meanses + u_0j
        beta1 = gamma10
        """,
        "mathach = b0 + b1*cwc(ses) + e",
        "b0 = g00 + g01*meanses + u0\nb1 = g10",
        "mathach = g00 + g01*meanses + g10*cwc(ses) + u0 + e",
    ),
    (
        "uppercase-underscore-ascii",
        """
        Y = B0 + B_1*X + rij
        b_0 = G_00 + U0
        B1 = g_10 + G11*W + u_1j
        """,
        "Y = b0 + b1*X + r",
        "b0 = g00 + u0\nb1 = g10 + g11*W + u1",
        "Y = g00 + g10*X + g11*X*W + u0 + u1*X + r",
    ),
    (
        "juxtaposition-and-reversed-order",
        """
        y = b0 + x1 b1 + b2 x2 + e
        b0 = g00 + meanses*g01 + g02 sector + u0
        b1 = g10
        b2 = g20 + u2
        """,
        "y = b0 + b1*x1 + b2*x2 + e",
        "b0 = g00 + g01*meanses + g02*sector + u0\nb1 = g10\nb2 = g20 + u2",
        "y = g00 + g01*meanses + g02*sector + g10*x1 + g20*x2 + u0 + u2*x2 + e",
    ),
    (
        "comments-indentation-no-residual",
        """
            # the random-coefficient model
            mathach = b0 + b1*cwc(ses)     # no residual written

            b1 = g10 + u1   # random slope
            b0 = g00 + u0
        """,
        "mathach = b0 + b1*cwc(ses) + e",
        "b0 = g00 + u0\nb1 = g10 + u1",
        "mathach = g00 + g10*cwc(ses) + u0 + u1*cwc(ses) + e",
    ),
    (
        "level2-before-level1-and-semicolons",
        "b0 = g00 + u0; b1 = g10\ny = b0 + b1*x + e",
        "y = b0 + b1*x + e",
        "b0 = g00 + u0\nb1 = g10",
        "y = g00 + g10*x + u0 + e",
    ),
    (
        "centering-functions",
        """
        y = b0 + b1*cwc(x) + b2*cgm(z) + b3*center(age, -1.5) + b4*center(ses, 0.5) + e
        b0 = g00 + g01*cmean(x) + g02*cgm(w) + u0
        b1 = g10
        b2 = g20
        b3 = g30 + u3
        b4 = g40
        """,
        "y = b0 + b1*cwc(x) + b2*cgm(z) + b3*center(age, -1.5) + b4*center(ses, 0.5) + e",
        "b0 = g00 + g01*cmean(x) + g02*cgm(w) + u0\nb1 = g10\nb2 = g20\nb3 = g30 + u3\nb4 = g40",
        "y = g00 + g01*cmean(x) + g02*cgm(w) + g10*cwc(x) + g20*cgm(z) + g30*center(age, -1.5)"
        " + g40*center(ses, 0.5) + u0 + u3*center(age, -1.5) + e",
    ),
    (
        "transforms",
        """
        log(y) = b0 + b1*log10(x) + b2*x^2 + b3*z**2 + b4*cwc(log(x)) + b5*sqrt(abs(exp(w))) + e
        b0 = g00 + u0
        b1 = g10; b2 = g20; b3 = g30; b4 = g40; b5 = g50
        """,
        "log(y) = b0 + b1*log10(x) + b2*x^2 + b3*z^2 + b4*cwc(log(x)) + b5*sqrt(abs(exp(w))) + e",
        "b0 = g00 + u0\nb1 = g10\nb2 = g20\nb3 = g30\nb4 = g40\nb5 = g50",
        "log(y) = g00 + g10*log10(x) + g20*x^2 + g30*z^2 + g40*cwc(log(x))"
        " + g50*sqrt(abs(exp(w))) + u0 + e",
    ),
    (
        "interactions",
        """
        y = b0 + b1*x + b2*z + b3*(x*z) + b4*x*w + b5 (z*w) + e
        b0 = g00 + g01*m*n + u0
        b1 = g10; b2 = g20; b3 = g30; b4 = g40; b5 = g50
        """,
        "y = b0 + b1*x + b2*z + b3*x*z + b4*x*w + b5*z*w + e",
        "b0 = g00 + g01*m*n + u0\nb1 = g10\nb2 = g20\nb3 = g30\nb4 = g40\nb5 = g50",
        "y = g00 + g01*m*n + g10*x + g20*z + g30*x*z + g40*x*w + g50*z*w + u0 + e",
    ),
    (
        "categorical",
        """
        mathach = b0 + b1*C(minority) + e
        b0 = g00 + g01*C(sector) + u0
        b1 = g10 + g11*C(sector)
        """,
        "mathach = b0 + b1*C(minority) + e",
        "b0 = g00 + g01*C(sector) + u0\nb1 = g10 + g11*C(sector)",
        "mathach = g00 + g01*C(sector) + g10*C(minority) + g11*C(minority)*C(sector) + u0 + e",
    ),
    (
        "multi-digit-indices",
        """
        y = b0 + b10*x + e
        b0 = g00 + u0
        b10 = g100 + g10_1*w + u10
        """,
        "y = b0 + b10*x + e",
        # labels as written (issue 11): g100 stays g100, g10_1 stays g10_1
        "b0 = g00 + u0\nb10 = g100 + g10_1*w + u10",
        "y = g00 + g100*x + g10_1*x*w + u0 + u10*x + e",
    ),
    (
        "gamma-numbers-as-written-and-unit-factors",
        """
        y = b0*1 + b1*x + e
        b0 = g00*1 + g02*sector + u0
        b1 = g10 + g13*meanses
        """,
        "y = b0 + b1*x + e",
        "b0 = g00 + g02*sector + u0\nb1 = g10 + g13*meanses",
        "y = g00 + g02*sector + g10*x + g13*x*meanses + u0 + e",
    ),
    (
        "no-intercept",
        "y = b1*x + e\nb1 = g10 + u1",
        "y = b1*x + e",
        "b1 = g10 + u1",
        "y = g10*x + u1*x + e",
    ),
    (
        "slope-without-constant",
        "y = b0 + b1*x\nb0 = g00 + u0\nb1 = g11*w + u1",
        "y = b0 + b1*x + e",
        "b0 = g00 + u0\nb1 = g11*w + u1",
        "y = g00 + g11*x*w + u0 + u1*x + e",
    ),
]


@pytest.mark.parametrize(
    ("text", "level1", "level2", "reduced"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_reduced_forms(text, level1, level2, reduced):
    spec = parse_equations(dedent(text))
    assert spec.level1_text() == level1
    assert spec.level2_text() == level2
    assert spec.reduced_text() == reduced


def test_unicode_multiplication_signs_and_crlf():
    spec = parse_equations("y = b0 + b1×x + b2·z + e\r\nb0 = g00 + u0\r\nb1 = g10\r\nb2 = g20")
    assert spec.reduced_text() == "y = g00 + g10*x + g20*z + u0 + e"
    assert spec.lines[2] == "b0 = g00 + u0"
    with pytest.raises(EquationSyntaxError, match="'-' is not supported"):
        parse_equations("y = b0 + b1×x − z\nb0 = g00 + u0\nb1 = g10")


def test_notations_give_equal_specs():
    ascii_ = parse_equations("y = b0 + b1*x + e\nb0 = g00 + g01*w + u0\nb1 = g10 + u1")
    greek = parse_equations("y = β0j + β1j x + εij\nβ0j = γ00 + γ01 w + u0j\nβ1j = γ10 + u_1j")
    words = parse_equations(
        "y = beta0 + beta1*x\nbeta0 = gamma00 + gamma01*w + U0\nbeta1 = gamma10 + u1"
    )
    assert ascii_ == greek
    assert ascii_.betas == words.betas
    assert words.residual is None and greek.residual == "e"


def test_gamma_and_beta_attributes():
    spec = parse_equations(HSB)
    assert [b.label for b in spec.betas] == ["b0", "b1"]
    assert [b.u_label for b in spec.random_betas] == ["u0", "u1"]
    b0, b1 = spec.betas
    assert b0.predictor is None and b1.predictor == Call("cwc", (Var("ses"),))
    assert b1.gammas == (
        Gamma("g10", 1, 0, None),
        Gamma("g11", 1, 1, Var("meanses")),
        Gamma("g12", 1, 2, Var("sector")),
    )
    assert [g.label for g in spec.gammas] == ["g00", "g01", "g02", "g10", "g11", "g12"]
    # spans point at the text as written
    assert b1.span == Span(2, 15, 17)
    assert spec.lines[2][b1.span.start : b1.span.end] == "b1"
    g11 = b1.gammas[1]
    assert g11.span == Span(4, 11, 14)
    assert b1.level2_lineno == 4
    assert b1.u_span == Span(4, 38, 40) and spec.lines[4][38:40] == "u1"
    assert spec.outcome == Var("mathach") and spec.outcome.span == Span(2, 0, 7)
    assert spec.source == HSB
    assert spec.lines[1] == "" and spec.lines[3].startswith("b0 =")


def test_fixed_terms():
    spec = parse_equations(HSB)
    terms = spec.fixed_terms
    assert terms[0] == FixedTerm(spec.gammas[0], None, None)
    assert terms[0].text() == "1" and terms[0].expr is None
    assert terms[1] == FixedTerm(spec.gammas[1], None, Var("meanses"))
    assert terms[3] == FixedTerm(spec.gammas[3], Call("cwc", (Var("ses"),)), None)
    t = terms[4]
    assert (t.label, t.level1.text(), t.level2.text()) == ("g11", "cwc(ses)", "meanses")
    assert t.expr == Product((Call("cwc", (Var("ses"),)), Var("meanses")))
    assert [t.text() for t in terms] == [
        "1",
        "meanses",
        "sector",
        "cwc(ses)",
        "cwc(ses)*meanses",
        "cwc(ses)*sector",
    ]


def test_expression_trees():
    spec = parse_equations(
        "log(y) = b0 + b1*center(x, -2) + b2*x^2 + b3*(x*z) + b4 x**0.5\n"
        "b0 = g00 + u0; b1 = g10; b2 = g20; b3 = g30; b4 = g40"
    )
    assert spec.outcome == Call("log", (Var("y"),))
    preds = [b.predictor for b in spec.betas[1:]]
    assert preds == [
        Call("center", (Var("x"), Num(-2.0))),
        Power(Var("x"), Num(2.0)),
        Product((Var("x"), Var("z"))),
        Power(Var("x"), Num(0.5)),
    ]
    assert [v.name for v in preds[2].variables()] == ["x", "z"]
    assert preds[0].args[1].span == Span(1, 27, 29)  # the "-2"


def test_str_shows_all_three_forms():
    text = str(parse_equations("y = b0 + e\nb0 = g00 + u0"))
    assert text == (
        "Level 1:\n  y = b0 + e\nLevel 2:\n  b0 = g00 + u0\nReduced form:\n  y = g00 + u0 + e"
    )


def test_stages():
    assert [t.kind for t in tokenize("b1 = g10 + u1 # c")] == [
        "NAME",
        "EQUALS",
        "NAME",
        "PLUS",
        "NAME",
    ]
    (eq,) = parse_tree("  y = b0 + b1 x")
    assert eq.lineno == 1 and eq.span == Span(1, 2, 15) and eq.equals == Span(1, 4, 5)
    assert split_lines("a\r\nb\rc\nd") == ["a", "b", "c", "d"]


# --------------------------------------------------------------------------------------
# Errors. The offending span is marked <like this> in the equations.
# --------------------------------------------------------------------------------------


def unmark(marked: str) -> tuple[str, int, tuple[int, int]]:
    """Remove the <...> marker; return the text, the marked line number and the span."""
    lines = split_lines(marked)
    for i, line in enumerate(lines, start=1):
        m = re.search(r"<(.*?)>", line)
        if m:
            start = m.start()
            lines[i - 1] = line[: m.start()] + m.group(1) + line[m.end() :]
            return "\n".join(lines), i, (start, start + len(m.group(1)))
    raise AssertionError("no <marker>")


ERRORS = [
    # --- syntax errors
    (
        "y = b0 + b1*<$>x\nb0 = g00 + u0",
        EquationSyntaxError,
        "unexpected character '$'",
        "a name, a number",
        None,
    ),
    ("y = b0 <~> x", EquationSyntaxError, "unexpected character '~'", None, "use '='"),
    ("y = b0 + <+> b1*x", EquationSyntaxError, "unexpected '+'", "a term", None),
    ("y = b0<,> b1*x", EquationSyntaxError, "unexpected ','", None, "center(x, 10)"),
    ("y = b0 <-> b1*x", EquationSyntaxError, "'-' is not supported", None, "'+'"),
    ("y = b0 + b1*<(>x*z", EquationSyntaxError, "unclosed '('", "a matching ')'", "add ')'"),
    ("y = b0 + b1*x<)>", EquationSyntaxError, "unmatched ')'", None, None),
    ("y = b0 + b1*<cwc(>ses", EquationSyntaxError, "unclosed '(' after cwc", None, None),
    ("y = b0 + b1*(x <+> z)", EquationSyntaxError, "a sum inside parentheses", None, None),
    ("<y b0 + e>", EquationSyntaxError, "missing '='", "'=' between", None),
    ("y = b0 <=> e", EquationSyntaxError, "a second '='", None, "its own line"),
    ("y <=>  # nothing", EquationSyntaxError, "nothing on the right of '='", "a term", None),
    ("<=> b0 + e", EquationSyntaxError, "nothing on the left of '='", None, None),
    ("y = b0 + e <+>", EquationSyntaxError, "trailing '+'", "a term", "remove the '+'"),
    (
        "y = b0 + b1*<cwx>(ses)",
        EquationSyntaxError,
        "unknown function 'cwx'",
        "cwc, cgm, cmean, center",
        "did you mean 'cwc'?",
    ),
    (
        "y = b0 + b1*<CWC>(ses)",
        EquationSyntaxError,
        "unknown function 'CWC'",
        None,
        "did you mean 'cwc'?",
    ),
    (
        "y = b0 + b1*<x>(z)",
        EquationSyntaxError,
        "unknown function 'x'",
        None,
        "to multiply, write x*(...)",
    ),
    (
        "y = b0 + b1*<cwc(x, z)>",
        EquationSyntaxError,
        "cwc() takes 1 argument, got 2",
        "cwc(x)",
        None,
    ),
    (
        "y = b0 + b1*<center(x)>",
        EquationSyntaxError,
        "center() takes 2 arguments, got 1",
        "center(x, value)",
        None,
    ),
    ("y = b0 + b1*center(x, <z>)", EquationSyntaxError, "must be a number", None, "cwc(x)"),
    ("y = b0 + b1*x^<z>", EquationSyntaxError, "unexpected 'z'", "exponent", None),
    ("y = b0 + b1*center(x, <1e999>)", EquationSyntaxError, "too large", None, None),
    # --- specification errors
    (
        "y = b0 + <b1>*x + e\nb0 = g00 + u0",
        SpecificationError,
        "b1 has no level-2 equation",
        "'b1 = g10 + u1' (random) or 'b1 = g10' (fixed)",
        "add the line: b1 = g10 + u1",
    ),
    (
        "y = b0 + e\nb0 = g00 + u0\n<b2> = g20",
        SpecificationError,
        "a level-2 equation for b2, which is not in the level-1 equation",
        None,
        "+ b2*x",
    ),
    (
        "y = b0 + <u0> + e\nb0 = g00",
        SpecificationError,
        "random effect 'u0' in the level-1 equation",
        None,
        "belong in level-2 equations",
    ),
    (
        "y = b0\nb0 = g00 + u0 + <e_ij>",
        SpecificationError,
        "residual 'e_ij' in a level-2",
        None,
        "belongs in the level-1 equation",
    ),
    (
        "y = b0 + b1*x + <b1>*z\nb0 = g00 + u0\nb1 = g10",
        SpecificationError,
        "b1 appears twice in the level-1 equation",
        None,
        None,
    ),
    (
        "y = b0 + e\nb0 = g00 + u0\n<β0j> = γ00",
        SpecificationError,
        "a second level-2 equation for b0 (line 2 is one already)",
        None,
        None,
    ),
    (
        "y = b0\nb0 = g00 + g01*w + <g01>*z + u0",
        SpecificationError,
        "g01 appears twice",
        None,
        None,
    ),
    ("y = b0\nb0 = g00 + u0 + <u0j>", SpecificationError, "u0 appears twice", None, None),
    ("y = b0 + e + <r>\nb0 = g00 + u0", SpecificationError, "a second residual", None, None),
    (
        "y = b0 + b1*x\nb0 = g00 + u0\nb1 = <g20> + u1",
        SpecificationError,
        "'g20' is not a gamma of b1",
        "g10 for the constant",
        "did you mean 'g10'?",
    ),
    (
        "y = b0 + b1*x\nb0 = g00 + u0\nb1 = g10 + <g01>*w",
        SpecificationError,
        "'g01' is not a gamma of b1",
        "g1M",
        "did you mean 'g11'?",
    ),
    (
        "y = b0 + b1*x\nb0 = g00 + u0\nb1 = g10 + <u2>",
        SpecificationError,
        "'u2' in the equation for b1",
        "u1",
        None,
    ),
    (
        "y = b0 + b1*x\n<b0 = g00 + g01*w>\nb1 = g10",
        SpecificationError,
        "the model has no random effect",
        None,
        "add '+ u0' to the b0 equation",
    ),
    (
        "y = b0 + <x> + e\nb0 = g00 + u0",
        SpecificationError,
        "the term 'x' has no beta",
        None,
        "write b1*x",
    ),
    (
        "y = b0 + <b1x> + e\nb0 = g00 + u0",
        SpecificationError,
        "the term 'b1x' has no beta",
        None,
        "b1*x",
    ),
    (
        "y = b0 + <g10>*x\nb0 = g00 + u0",
        SpecificationError,
        "gamma 'g10' times a predictor in the level-1 equation",
        "a beta",
        None,
    ),
    (
        "y = b0 + b1*x\nb0 = g00 + u0\nb1 = g10 + <b2>",
        SpecificationError,
        "beta 'b2' on the right side of a level-2 equation",
        None,
        None,
    ),
    (
        "y = b0 + e\nb0 = g00 + u0\n<z> = b0 + e",
        SpecificationError,
        "more than one level-1 equation (line 1 is one already)",
        None,
        None,
    ),
    ("<b0> = g00 + u0", SpecificationError, "no level-1 equation", None, "y = b0 + b1*x + e"),
    (  # b1 = u1 is a random effect with mean 0 (tests/test_tau_structures.py); b1 = 0 is not
        "y = b0 + b1*x\nb0 = g00 + u0\nb1 = <0>",
        SpecificationError,
        "b1 = 0 takes its predictor out of the model",
        None,
        "write b1 = u1",
    ),
    (
        "y = b0 + b1*cwc(<b2>)\nb0 = g00 + u0\nb1 = g10",
        SpecificationError,
        "'b2' is a coefficient and cannot stand inside 'cwc(b2)'",
        None,
        None,
    ),
    (
        "y = b0 + b1*x\nb0 = g00 + u0\nb1 = <g10>*w",
        SpecificationError,
        "g10 is the constant of b1",
        None,
        "g11*w",
    ),
    (
        "y = b0 + b1*x\nb0 = g00 + u0\nb1 = <g11> + u1",
        SpecificationError,
        "g11 has no predictor",
        None,
        "the constant of b1 is g10",
    ),
    ("y = <b0*x>\nb0 = g00 + u0", SpecificationError, "b0 is the intercept", None, "b1*x"),
    ("y = b0 + <b2> + e\nb0 = g00 + u0", SpecificationError, "'b2' has no predictor", None, None),
    (
        "<bb1> = g10 + u1\ny = b0 + e\nb0 = g00 + u0",
        SpecificationError,
        "'bb1' is not a beta",
        None,
        "b1 = ...",
    ),
    (
        "y = b0 + <2>*x\nb0 = g00 + u0",
        SpecificationError,
        "the number 2 cannot multiply",
        None,
        None,
    ),
    (
        "y = b0 + b1*<b2>*x\nb0 = g00 + u0",
        SpecificationError,
        "two coefficients multiplied",
        None,
        None,
    ),
    (
        "y = b0 + <e*x>\nb0 = g00 + u0",
        SpecificationError,
        "the residual 'e' cannot multiply",
        None,
        None,
    ),
    (
        "y = b0 + b1*x\nb0 = g00 + u0\nb1 = g10 + <u1*w>",
        SpecificationError,
        "the random effect 'u1' cannot multiply",
        None,
        None,
    ),
    ("y = b0 + b1*x + b2*<x>\nb0 = g00 + u0", SpecificationError, "'x' appears twice", None, None),
    ("y = b0 + b1*<log(2)>\nb0 = g00 + u0", SpecificationError, "is a constant", None, None),
    (
        "y = b0 + <1>\nb0 = g00 + u0",
        SpecificationError,
        "the number '1' alone is not a term",
        None,
        "the intercept is written b0",
    ),
    ("<y + z> = b0\nb0 = g00 + u0", SpecificationError, "must be a single name", None, None),
    ("<g00> = b0\nb0 = g00 + u0", SpecificationError, "cannot be on the left", None, None),
    (
        "y = <e>\nb0 = g00 + u0",
        SpecificationError,
        "the level-1 equation has no beta",
        None,
        "y = b0 + e",
    ),
]


@pytest.mark.parametrize(
    ("marked", "cls", "message", "expected", "hint"), ERRORS, ids=[e[2][:40] for e in ERRORS]
)
def test_error(marked, cls, message, expected, hint):
    text, lineno, span = unmark(marked)
    with pytest.raises(cls) as info:
        parse_equations(text)
    err = info.value
    assert message in err.message
    assert err.source == split_lines(text)[lineno - 1]
    assert err.lineno == lineno
    assert err.span == span
    if expected is not None:
        assert expected in err.expected
    if hint is not None:
        assert hint in err.hint
    # str() shows the line and the caret under the span
    shown = str(err).splitlines()
    assert shown[1] == f"  line {lineno} | {err.source}"
    caret = shown[2].split("| ", 1)[1]
    assert caret == " " * span[0] + "^" * (span[1] - span[0])


@pytest.mark.parametrize("text", ["", "   \n\t\n", "# only a comment\n  # another", ";;"])
def test_empty_text(text):
    with pytest.raises(EquationSyntaxError, match="no equations given") as info:
        parse_equations(text)
    assert info.value.source is None


def test_not_a_string():
    with pytest.raises(EquationSyntaxError, match="must be a string"):
        parse_equations(None)  # type: ignore[arg-type]


def test_deep_nesting_is_an_error_not_a_crash():
    text = "y = b0 + b1*" + "(" * 5000 + "x" + ")" * 5000
    with pytest.raises(EquationSyntaxError, match="nested too deeply"):
        parse_equations(text)


def test_error_messages_render_exactly():
    with pytest.raises(SpecificationError) as info:
        parse_equations("mathach = b0 + b1*cwc(ses) + e\nb0 = g00 + u0")
    assert str(info.value) == dedent("""\
        b1 has no level-2 equation
          line 1 | mathach = b0 + b1*cwc(ses) + e
                 |                ^^
        expected: a line 'b1 = g10 + u1' (random) or 'b1 = g10' (fixed)
        tip: add the line: b1 = g10 + u1""")
    with pytest.raises(EquationSyntaxError) as info:
        parse_equations("mathach = b0 + b1*cwx(ses) + e")
    assert str(info.value) == dedent("""\
        unknown function 'cwx'
          line 1 | mathach = b0 + b1*cwx(ses) + e
                 |                   ^^^
        expected: one of the functions cwc, cgm, cmean, center, log, log10, exp, sqrt, abs, C
        tip: did you mean 'cwc'?""")


def test_caret_follows_tabs():
    with pytest.raises(MLMError) as info:
        parse_equations("\ty = b0 + <u0>".replace("<", "").replace(">", ""))
    assert str(info.value).splitlines()[2].endswith("| \t         ^^")
