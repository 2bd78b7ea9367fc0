"""Equations with estimates (mlmwrap.latex): text, LaTeX and HTML."""

import re
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest

import mlmwrap
from mlmwrap.errors import MLMError
from mlmwrap.language.expr import Call, Num, Power, Product, Var
from mlmwrap.report.latex import (
    equations,
    equations_html,
    expr_latex,
    format_number,
    latex_escape,
    repr_latex,
    text_in_math,
)

ISAO = """\
mathach = b0 + b1*cwc(ses) + e
b0 = g00 + g01*meanses + g02*sector + u0
b1 = g10 + g11*meanses + g12*sector + u1
"""

# Five random effects (q = 5), underscores in names and an 'r' residual.
LONG = """\
score_total = b0 + b1*x_1 + b2*x2 + b3*x3 + b4*x4 + r
b0 = g00 + g01*w_school + u0
b1 = g10 + g11*w_school + u1
b2 = g20 + g21*w_school + u2
b3 = g30 + u3
b4 = g40 + u4
"""


@pytest.fixture(scope="module")
def isao(hsb):
    return mlmwrap.fit(ISAO, hsb, cluster="school")


def _long_data() -> pd.DataFrame:
    rng = np.random.default_rng(1)
    n_clusters, size = 60, 12
    g = np.repeat(np.arange(n_clusters), size)
    x = rng.normal(size=(n_clusters * size, 4))
    u = rng.normal(size=(n_clusters, 5)) * [1.0, 0.5, 0.5, 0.5, 0.5]
    w = rng.normal(size=n_clusters)
    y = 1 + u[g, 0] + 0.3 * w[g] + rng.normal(size=len(g))
    y += sum((0.5 + u[g, k + 1]) * x[:, k] for k in range(4))
    return pd.DataFrame(
        {"score_total": y, "x_1": x[:, 0], "x2": x[:, 1], "x3": x[:, 2], "x4": x[:, 3]}
        | {"w_school": w[g], "cl": g}
    )


@pytest.fixture(scope="module")
def long_fit():
    return mlmwrap.fit(LONG, _long_data(), cluster="cl")


@pytest.fixture(scope="module")
def special_fit(hsb):
    """Seed-style subscripts resolved against the data, a transform and a categorical."""
    data = hsb.assign(sector_name=np.where(hsb["sector"] == 1, "Catholic", "Public_50% & co"))
    return mlmwrap.fit(
        "mathach_ij = b0 + b1*cwc(ses_ij) + r_ij\n"
        "b0 = g00 + g01*log(size) + g02*sector_name + u0\n"
        "b1 = g10 + u1\n",
        data,
        cluster="school",
    )


# -- structural checks ----------------------------------------------------------------------
def assert_balanced(tex: str) -> None:
    """Braces balance (ignoring escaped ones), environments and \\left/\\right pair up."""
    depth = 0
    for m in re.finditer(r"\\.|[{}]", tex):
        tok = m.group()
        if tok == "{":
            depth += 1
        elif tok == "}":
            depth -= 1
            assert depth >= 0, "a '}' closes nothing"
    assert depth == 0, "unclosed '{'"
    stack = []
    for kind, name in re.findall(r"\\(begin|end)\{([^}]*)\}", tex):
        if kind == "begin":
            stack.append(name)
        else:
            assert stack and stack.pop() == name, f"\\end{{{name}}} does not match"
    assert not stack
    assert len(re.findall(r"\\left\b", tex)) == len(re.findall(r"\\right\b", tex))


def _rows(tex: str) -> list[str]:
    body = tex.split("\\begin{aligned}\n", 1)[1].rsplit("\n\\end{aligned}", 1)[0]
    return body.split(" \\\\\n")


def _numbers(text: str) -> list[float]:
    return [float(x) for x in re.findall(r"(?<![\w{])-?\d+\.\d+", text)]


# -- plain text -------------------------------------------------------------------------------
def test_text_level2_substitutes_the_rounded_estimates(isao):
    text = equations(isao)
    est = isao.gamma["estimate"]

    def term(label, name):
        v = est[label]
        return f" {'-' if v < 0 else '+'} {abs(v):.3f}*{name}"

    b0 = f"b0 = {est['g00']:.3f}" + term("g01", "meanses") + term("g02", "sector") + " + u0"
    b1 = f"b1 = {est['g10']:.3f}" + term("g11", "meanses") + term("g12", "sector") + " + u1"
    assert b0 in text and b1 in text
    assert "Level 1:  mathach = b0 + b1*cwc(ses) + e" in text


def test_text_signs_are_never_plus_minus(isao):
    text = equations(isao)
    assert "+ -" not in text and "- -" not in text
    assert est_line(text, "b1").count(" - ") == 1  # g12 is the only negative gamma here
    assert isao.gamma.loc["g12", "estimate"] < 0


def est_line(text: str, beta: str) -> str:
    return next(line for line in text.splitlines() if line.strip().startswith(f"{beta} ="))


def test_text_shows_tau_lower_triangle_and_sigma2(isao):
    text = equations(isao)
    assert "(u0, u1) ~ MVN(0, T), e ~ N(0, sigma2)" in text
    tau = isao.tau.to_numpy()
    row_u1 = next(line for line in text.splitlines() if line.strip().startswith("u1 "))
    assert _numbers(row_u1) == [round(tau[1, 0], 3), round(tau[1, 1], 3)]
    row_u0 = next(line for line in text.splitlines() if line.strip().startswith("u0 "))
    assert _numbers(row_u0) == [round(tau[0, 0], 3)]  # lower triangle only
    assert f"sigma2 = {isao.sigma2:.3f}" in text


def test_text_wraps_long_models_at_90_characters(long_fit):
    text = equations(long_fit)
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 90
    mixed = lines.index(next(line for line in lines if line.startswith("Mixed:")))
    continuation = [line for line in lines[mixed + 1 :] if line.lstrip().startswith(("+", "-"))]
    assert len(continuation) >= 2
    # Continuation lines start under the first term of the right-hand side.
    start = lines[mixed].index("= ") + 2
    assert all(line[start] in "+-" for line in continuation)
    # Every term survives the wrapping, in order.
    joined = " ".join(line.strip() for line in lines[mixed : mixed + 1 + len(continuation)])
    for label in long_fit.gamma.index:
        assert f"{abs(long_fit.gamma.at[label, 'estimate']):.3f}" in joined
    assert joined.endswith("u3*x3 + u4*x4 + r")


def test_text_width_and_digits_are_options(isao):
    narrow = equations(isao, width=60)
    assert max(len(line) for line in narrow.splitlines()) <= 60
    assert f"{isao.gamma.at['g00', 'estimate']:.5f}" in equations(isao, digits=5)


# -- LaTeX ------------------------------------------------------------------------------------
def test_latex_is_balanced_and_uses_the_seed_notation(isao):
    tex = equations(isao, "latex")
    assert_balanced(tex)
    for symbol in [
        r"\beta_{0j}",
        r"\beta_{1j}",
        r"u_{0j}",
        r"u_{1j}",
        r"e_{ij}",
        r"\tau_{00}",
        r"\tau_{10}",
        r"\tau_{11}",
        r"\sigma^2",
        r"\mathrm{MVN}",
        r"\begin{bmatrix}",
        r"\mathrm{mathach}_{ij}",
        r"\mathrm{meanses}_{j}",
        r"\mathrm{cwc}(\mathrm{ses})_{ij}",
    ]:
        assert symbol in tex, symbol
    assert r"\gamma" not in tex  # substituted by numbers
    assert r"\tau_{01}" not in tex  # lower triangle, as in the seed


def test_latex_level2_numbers_equal_the_rounded_gammas(isao):
    rows = _rows(equations(isao, "latex"))
    b0 = next(r for r in rows if r"\beta_{0j} &=" in r)
    b1 = next(r for r in rows if r"\beta_{1j} &=" in r)
    est = isao.gamma["estimate"].round(3)
    assert _numbers(b0.split("&=")[1]) == [est["g00"], abs(est["g01"]), abs(est["g02"])]
    assert _numbers(b1.split("&=")[1]) == [est["g10"], abs(est["g11"]), abs(est["g12"])]
    assert f"- {abs(est['g12']):.3f}" in b1 and "+ -" not in b1


def test_latex_tau_values_and_sigma2(isao):
    rows = _rows(equations(isao, "latex"))
    that = next(r for r in rows if r"\hat{\mathbf{T}}" in r)
    tau = isao.tau.to_numpy().round(3)
    assert _numbers(that) == [tau[0, 0], tau[1, 0], tau[1, 1]]
    sigma = next(r for r in rows if r"\sigma^2" in r)
    assert _numbers(sigma) == [round(isao.sigma2, 3)]


def test_latex_single_random_effect(hsb):
    res = mlmwrap.fit("mathach = b0 + e\nb0 = g00 + u0", hsb, cluster="school")
    tex = equations(res, "latex")
    assert_balanced(tex)
    assert f"\\hat{{\\tau}}_{{00}} = {res.tau.iloc[0, 0]:.3f}" in tex
    assert f"\\hat{{\\sigma}}^2 = {res.sigma2:.3f}" in tex
    assert "bmatrix" not in tex and f"b0 = {res.gamma.iloc[0, 0]:.3f} + u0" in equations(res)


def test_boundary_variance_shows_as_zero(hsb):
    with pytest.warns(mlmwrap.BoundaryWarning):
        res = mlmwrap.fit("mathach = b1*cwc(ses) + e\nb1 = g10 + u1", hsb, cluster="school")
    assert res.singular and res.tau.iloc[0, 0] < 1e-20  # 1.8e-38 here
    assert "tau11 = 0.000 " in equations(res)
    assert "e-" not in equations(res, "latex") and "10^{" not in equations(res, "latex")


def test_latex_long_model_wraps_and_keeps_five_random_effects(long_fit):
    tex = equations(long_fit, "latex")
    assert_balanced(tex)
    rows = _rows(tex)
    mixed = next(i for i, r in enumerate(rows) if r.startswith(r"&\text{Mixed:}"))
    cont = 0
    while rows[mixed + 1 + cont].startswith("&&& \\quad"):
        cont += 1
    assert cont >= 2
    that = next(r for r in rows if r"\hat{\mathbf{T}}" in r)
    matrix = that.split(r"\begin{bmatrix}")[1].split(r"\end{bmatrix}")[0]
    assert len(matrix.split(r" \\ ")) == 5
    assert len(_numbers(that)) == 15  # 5 x 5 lower triangle
    assert r"r_{ij}" in tex and r"e_{ij}" not in tex  # the residual as written
    assert r"\tau_{43}" in tex and r"u_{4j}" in tex


def test_latex_escapes_names(long_fit, special_fit):
    tex = equations(long_fit, "latex")
    assert r"\mathrm{score\_total}_{ij}" in tex
    assert r"\mathrm{w\_school}_{j}" in tex
    assert r"x_{1ij}" in tex  # x_1: a letter with a numeric subscript
    for body in re.findall(r"\\mathrm\{((?:[^{}]|\\[{}])*)\}", tex):
        assert re.search(r"(?<!\\)_", body) is None, body
    tex = equations(special_fit, "latex")
    assert_balanced(tex)
    # 'ses_ij' and 'mathach_ij' name the data's 'ses' and 'mathach' with a subscript.
    assert r"\mathrm{cwc}(\mathrm{ses})_{ij}" in tex and r"\mathrm{mathach}_{ij}" in tex
    assert r"\log(\mathrm{size}_{j})" in tex
    level = r"\text{Public}\_\text{50}\%\text{ }\&\text{ co}"
    assert rf"\mathrm{{sector\_name}}_{{j}}[{level}]" in tex
    assert r"r_{ij}" in tex


def test_categorical_levels_are_escaped_in_text_and_latex(hsb):
    data = hsb.assign(kind=np.where(hsb["sector"] == 1, "50% public", "A & B"))
    res = mlmwrap.fit("mathach = b0 + e\nb0 = g00 + g01*kind + u0", data, cluster="school")
    (label,) = [lab for lab in res.gamma.index if lab.startswith("g01[")]
    level = label[4:-1]
    assert f"kind[{level}]" in equations(res)
    tex = equations(res, "latex")
    assert_balanced(tex)
    assert f"[{text_in_math(level)}]" in tex
    assert "%" not in tex.replace(r"\%", "")


def test_expr_latex_units():
    assert expr_latex(Var("x_ij"), "ij") == r"\mathrm{x\_ij}_{ij}"  # a column named x_ij
    assert expr_latex(Var("x_ij"), "ij", columns={"x_ij": "x"}) == "x_{ij}"
    assert expr_latex(Var("w1j"), "j", columns={"w1j": "w1"}) == "w_{1j}"
    assert expr_latex(Call("cmean", (Var("ses"),)), "ij") == r"\mathrm{cmean}(\mathrm{ses})_{j}"
    assert expr_latex(Call("center", (Var("age"), Num(10.0))), "ij") == (
        r"\mathrm{center}(\mathrm{age}, 10)_{ij}"
    )
    assert expr_latex(Power(Var("x"), Num(2.0)), "ij") == "{x_{ij}}^{2}"
    assert expr_latex(Call("sqrt", (Var("n"),)), "j") == r"\sqrt{n_{j}}"
    assert expr_latex(Call("C", (Var("region"),)), "j") == r"\mathrm{region}_{j}"
    prod = Product((Var("a_b"), Call("log", (Var("size"),))))
    assert expr_latex(prod, "j") == r"\mathrm{a\_b}_{j}\,\log(\mathrm{size}_{j})"


def test_latex_escape_and_numbers():
    assert latex_escape("a_b & c% $d #e {f} ~ ^ \\") == (
        r"a\_b \& c\% \$d \#e \{f\} \textasciitilde{} \textasciicircum{} \textbackslash{}"
    )
    assert format_number(-1.6426) == "-1.643"
    assert format_number(-0.0001) == "-0.0001"  # not '-0.000'
    assert format_number(2.5e-7, latex=True) == r"2.5 \times 10^{-7}"
    assert format_number(float("nan")) == "NA"
    assert text_in_math("50% & co") == r"\text{50}\%\text{ }\&\text{ co}"
    assert text_in_math("a_b") == r"\text{a}\_\text{b}"


def test_tiny_estimate_keeps_its_sign(isao):
    import copy

    res = copy.copy(isao)
    res.gamma = isao.gamma.copy()
    res.gamma.loc["g11", "estimate"] = -0.00004
    assert "- 4e-05*meanses" in equations(res)
    assert r"- 4 \times 10^{-5}\,\mathrm{meanses}_{j}" in equations(res, "latex")


def test_html_and_repr_latex(isao):
    tex = equations(isao, "latex")
    out = equations_html(isao)
    assert out == equations(isao, "html")
    assert out.startswith('<div class="mlmwrap-equations">$$') and out.endswith("$$</div>")
    assert "&amp;" in out and re.search(r"&(?!amp;|lt;|gt;)", out) is None
    inner = out[len('<div class="mlmwrap-equations">$$') : -len("$$</div>")]
    assert inner.replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">") == tex
    rl = repr_latex(isao)
    assert rl == f"$${tex}$$"


def test_bad_arguments_raise_mlmerror(isao):
    with pytest.raises(MLMError, match="unknown format 'pdf'"):
        equations(isao, "pdf")
    with pytest.raises(MLMError, match="digits"):
        equations(isao, digits=-1)


def test_results_are_not_modified(isao):
    before = isao.gamma.copy()
    equations(isao, "latex")
    pd.testing.assert_frame_equal(isao.gamma, before)


# -- compile with pdflatex when it is installed ------------------------------------------------
@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex not installed")
@pytest.mark.parametrize("which", ["isao", "long_fit", "special_fit"])
def test_pdflatex_compiles_without_overfull_lines(which, request, tmp_path):
    res = request.getfixturevalue(which)
    doc = (
        "\\documentclass{article}\n\\usepackage{amsmath}\n\\begin{document}\n"
        f"\\[\n{equations(res, 'latex')}\n\\]\n\\end{{document}}\n"
    )
    (tmp_path / "eq.tex").write_text(doc)
    done = subprocess.run(
        ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "eq.tex"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    log = (tmp_path / "eq.log").read_text(errors="replace")
    assert done.returncode == 0, log[-2000:]
    assert "Overfull \\hbox" not in log  # wrapped to fit an article's text width
