r"""The model's equations with the estimates substituted: plain text, LaTeX and HTML.

The level-1 equation keeps its betas; each level-2 equation and the reduced (mixed) form
show the gamma estimates in place of the gammas, with their signs (``- 1.643``, never
``+ -1.643``); under the equations, the random effects' distribution with the estimated
tau matrix (lower triangle, as in the workshop notes) and sigma². Long equations wrap.

LaTeX uses the workshop's notation: :math:`\beta_{0j}`, :math:`u_{0j}`, :math:`e_{ij}`
(or :math:`r_{ij}` when the equations say ``r``), level-1 variables subscripted ``ij`` and
level-2 variables ``j``; multi-letter names are set upright (``\mathrm{meanses}_{j}``,
``\mathrm{cwc}(\mathrm{ses})_{ij}``) with LaTeX's special characters escaped.

Examples
--------
>>> import mlmwrap
>>> res = mlmwrap.fit('''
...     mathach = b0 + b1*cwc(ses) + e
...     b0 = g00 + g01*meanses + g02*sector + u0
...     b1 = g10 + g11*meanses + g12*sector + u1
... ''', data=mlmwrap.datasets.load_hsb(), cluster="school")
>>> print(equations(res))
Level 1:  mathach = b0 + b1*cwc(ses) + e
Level 2:  b0 = 12.096 + 5.333*meanses + 1.226*sector + u0
          b1 = 2.939 + 1.039*meanses - 1.643*sector + u1
Mixed:    mathach = 12.096 + 5.333*meanses + 1.226*sector + 2.939*cwc(ses)
                    + 1.039*cwc(ses)*meanses - 1.643*cwc(ses)*sector + u0 + u1*cwc(ses)
                    + e
Random:   (u0, u1) ~ MVN(0, T), e ~ N(0, sigma2)
          T =        u0     u1
              u0  2.379
              u1  0.192  0.101
          sigma2 = 36.721
>>> print(equations(res, "latex").splitlines()[2])
&\text{Level 2:} & \beta_{0j} &= 12.096 + 5.333\,\mathrm{meanses}_{j} + 1.226\,\mathrm{sector}_{j} + u_{0j} \\
"""  # noqa: E501

from __future__ import annotations

import html
import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from mlmwrap.errors import MLMError
from mlmwrap.language.expr import Call, Expr, Num, Power, Product, Var

if TYPE_CHECKING:  # pragma: no cover
    from mlmwrap.api.results import MLMResults
    from mlmwrap.language.spec import Beta

__all__ = [
    "equations",
    "repr_latex",
    "equations_html",
    "latex_escape",
    "expr_latex",
    "format_number",
    "snap_boundary",
    "text_in_math",
]

#: Default line widths: plain text (whole line) and LaTeX (the widest left-hand side plus a
#: right-hand side, in characters of the plain-text form; 60 fits an article's text width).
TEXT_WIDTH = 90
LATEX_WIDTH = 60

_CENTERING = {"cwc", "cgm", "cmean", "center"}
_LATEX_SPECIALS = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}
_MATH_SPECIALS = {**_LATEX_SPECIALS, "\\": r"\backslash{}", "~": r"\sim{}", "^": r"\hat{}"}


def latex_escape(text: str, math: bool = False) -> str:
    r"""Escape LaTeX's special characters, for text (default) or inside ``\mathrm{}``.

    Examples
    --------
    >>> latex_escape("x_ij & 50%")
    'x\\_ij \\& 50\\%'
    """
    table = _MATH_SPECIALS if math else _LATEX_SPECIALS
    return "".join(table.get(ch, ch) for ch in str(text))


def text_in_math(text: str) -> str:
    r"""Text inside math: plain runs in ``\text{}``, special characters as math symbols.

    MathJax does not read ``\&`` inside ``\text{}`` (it shows the backslash), so the
    special characters stay outside it; pdflatex typesets both the same way.

    Examples
    --------
    >>> text_in_math("Catholic & co")
    '\\text{Catholic }\\&\\text{ co}'
    """
    out, run = [], ""
    for ch in str(text):
        if ch in _MATH_SPECIALS:
            if run:
                out.append(f"\\text{{{run}}}")
                run = ""
            out.append(_MATH_SPECIALS[ch])
        else:
            run += ch
    if run:
        out.append(f"\\text{{{run}}}")
    return "".join(out) or "\\text{}"


def format_number(value: float, digits: int = 3, latex: bool = False) -> str:
    r"""A number rounded to ``digits`` decimals; tiny non-zero values keep ``digits``
    significant digits instead of showing as 0 (``1.2e-05``, or ``1.2 \times 10^{-5}``).

    Examples
    --------
    >>> format_number(-1.64262), format_number(0.0000123), format_number(0.0000123, latex=True)
    ('-1.643', '1.23e-05', '1.23 \\times 10^{-5}')
    >>> format_number(-0.0)
    '0.000'
    """
    if not math.isfinite(value):
        return "NA"
    text = f"{value:.{digits}f}"
    if float(text) == 0.0 and value != 0.0:
        text = f"{value:.{digits}g}"
    if float(text) == 0.0:
        text = text.lstrip("-")
    if latex and "e" in text:
        mantissa, exponent = text.split("e")
        text = f"{mantissa} \\times 10^{{{int(exponent)}}}"
    return text


def snap_boundary(tau: np.ndarray, sigma2: float) -> np.ndarray:
    """Tau for display: entries below 1e-8 of the largest variance are 0.

    A variance on the boundary comes out of the optimizer as, e.g., 1.8e-38; shown with
    significant digits it would look like an estimate. The fit flags it as singular.

    Examples
    --------
    >>> snap_boundary(np.array([[2.0, 1e-20], [1e-20, 1.8e-38]]), 36.0).tolist()
    [[2.0, 0.0], [0.0, 0.0]]
    """
    tau = np.array(tau, dtype=float)
    finite = tau[np.isfinite(tau)]
    scale = max(abs(sigma2), float(np.abs(finite).max()) if finite.size else 0.0)
    tau[np.abs(tau) < 1e-8 * scale] = 0.0
    return tau


# -- expressions -----------------------------------------------------------------------------
def _name_latex(name: str, sub: str, columns: dict[str, str] | None) -> str:
    """A variable: ``x1`` -> ``x_{1ij}``; ``meanses`` -> ``\\mathrm{meanses}_{j}``.

    A name written with a level subscript that the data lacks (``ses_ij`` for the column
    ``ses``) is shown as the column with the subscript.
    """
    base = name
    column = (columns or {}).get(name)
    if column is not None and column != name and name.startswith(column):
        base = column
    m = re.fullmatch(r"([A-Za-z])_?(\d*)", base)
    if m:
        letter, digits = m.groups()
        return f"{letter}_{{{digits}{sub}}}" if digits or sub else letter
    body = f"\\mathrm{{{latex_escape(base, math=True)}}}"
    return f"{body}_{{{sub}}}" if sub else body


def expr_latex(expr: Expr, sub: str = "", columns: dict[str, str] | None = None) -> str:
    r"""LaTeX for a predictor expression, its variables subscripted ``sub`` (``'ij'``, ``'j'``).

    Centering functions carry the subscript outside (the centered value is what varies);
    other functions subscript their variables.

    Examples
    --------
    >>> from mlmwrap.language.expr import Call, Product, Var
    >>> expr_latex(Product((Call("cwc", (Var("ses"),)), Var("meanses"))), "ij")
    '\\mathrm{cwc}(\\mathrm{ses})_{ij}\\,\\mathrm{meanses}_{ij}'
    >>> expr_latex(Call("log", (Var("size"),)), "j")
    '\\log(\\mathrm{size}_{j})'
    >>> expr_latex(Var("x_ij"), "ij", columns={"x_ij": "x"})
    'x_{ij}'
    """
    if isinstance(expr, Var):
        return _name_latex(expr.name, sub, columns)
    if isinstance(expr, Num):
        return format_number(expr.value, digits=12, latex=True).rstrip("0").rstrip(".") or "0"
    if isinstance(expr, Product):
        return r"\,".join(_factor_latex(f, sub, columns) for f in expr.factors)
    if isinstance(expr, Power):
        base = expr_latex(expr.base, sub, columns)
        if isinstance(expr.base, (Product, Power, Num)):
            base = f"\\left({base}\\right)"
        elif isinstance(expr.base, Var) and "_" in base:
            base = f"{{{base}}}"  # x_{ij}^{2}: brace the base so the exponent attaches cleanly
        return f"{base}^{{{expr_latex(expr.exponent)}}}"
    if isinstance(expr, Call):
        return _call_latex(expr, sub, columns)
    raise TypeError(f"not an expression: {expr!r}")  # pragma: no cover


def _factor_latex(expr: Expr, sub: str, columns: dict[str, str] | None) -> str:
    text = expr_latex(expr, sub, columns)
    return f"\\left({text}\\right)" if isinstance(expr, Product) else text


def _call_latex(expr: Call, sub: str, columns: dict[str, str] | None) -> str:
    func = expr.func
    if func == "C":  # categorical marker: show the variable
        return expr_latex(expr.args[0], sub, columns)
    if func in _CENTERING:
        inner = ", ".join(expr_latex(a, "", columns) for a in expr.args)
        outer = "j" if func == "cmean" else sub
        tail = f"_{{{outer}}}" if outer else ""
        return f"\\mathrm{{{func}}}({inner}){tail}"
    inner = ", ".join(expr_latex(a, sub, columns) for a in expr.args)
    if func == "sqrt":
        return f"\\sqrt{{{inner}}}"
    if func == "abs":
        return f"\\left|{inner}\\right|"
    if func == "log10":
        return f"\\log_{{10}}({inner})"
    if func in ("log", "exp"):
        return f"\\{func}({inner})"
    return f"\\mathrm{{{latex_escape(func, math=True)}}}({inner})"


# -- the equations as terms -------------------------------------------------------------------
@dataclass(frozen=True)
class _Term:
    """One additive term: a signed number and/or a symbol, in text and in LaTeX."""

    value: float | None  # the estimate, or None for a symbol alone (b1, u0, e)
    text: str  # the symbol part: 'cwc(ses)*meanses', 'u0', '' for a constant
    latex: str


@dataclass(frozen=True)
class _Equation:
    lhs_text: str
    lhs_latex: str
    terms: tuple[_Term, ...]


def _sub(*indices: str) -> str:
    """Subscript indices: ``('0', '1') -> '01'``, ``('10', '2') -> '10,2'``."""
    return "".join(indices) if all(len(i) == 1 for i in indices) else ",".join(indices)


def _index(label: str) -> str:
    """The digits of a coefficient label: ``'u1' -> '1'``, ``'g10_2' -> '10_2'``."""
    return label[1:]


def _split(label: str) -> tuple[str, str]:
    """``'u1[Black]' -> ('u1', '[\\text{Black}]')`` for a category, else ``(label, '')``."""
    if label.endswith("]") and "[" in label:
        base, level = label[:-1].split("[", 1)
        return base, f"[{text_in_math(level)}]"
    return label, ""


def _beta_latex(label: str) -> str:
    base, level = _split(label)
    return f"\\beta_{{{_sub(_index(base), 'j')}}}{level}"


def _u_latex(label: str) -> str:
    base, level = _split(label)
    return f"u_{{{_sub(_index(base), 'j')}}}{level}"


def _tau_latex(a: str, b: str, hat: bool = False) -> str:
    symbol = "\\hat{\\tau}" if hat else "\\tau"
    (a, la), (b, lb) = _split(a), _split(b)
    if la or lb:
        return f"{symbol}_{{{_index(a)}{la},{_index(b)}{lb}}}"
    return f"{symbol}_{{{_sub(_index(a), _index(b))}}}"


def level1_categories(res: MLMResults, beta: Beta) -> list[str]:
    """The categories with a coefficient of a categorical level-1 predictor (its
    non-reference categories, as in ``g10[Black]``), or ``[]`` for a numeric one."""
    design = res.design
    found = [
        c.category
        for c in design.fixed_columns
        if c.beta == beta.label and getattr(c, "category", None) is not None
    ]
    u = str(beta.u_label)
    found += [lab[len(u) + 1 : -1] for lab in design.random_labels if lab.startswith(u + "[")]
    return list(dict.fromkeys(found))


def _gamma_rows(res: MLMResults, label: str) -> list[tuple[str, str | None]]:
    """The rows of ``res.gamma`` a spec gamma became, with the category of each (or None)."""
    rows = []
    for idx in res.gamma.index:
        if idx == label:
            rows.append((idx, None))
        elif idx.startswith(label + "[") and idx.endswith("]"):
            rows.append((idx, idx[len(label) + 1 : -1]))
    return rows


def _w_parts(w: Expr | None, level: str | None, columns) -> tuple[str, str]:
    """Text and LaTeX of a level-2 predictor (with its category for an indicator)."""
    if w is None:
        return "", ""
    text, tex = w.text(), expr_latex(w, "j", columns)
    if level is not None:
        if isinstance(w, Call) and w.func == "C":
            text = w.args[0].text()
        text += f"[{level}]"
        tex += f"[{text_in_math(level)}]"
    return text, tex


def _build(res: MLMResults) -> tuple[_Equation, list[_Equation], _Equation]:
    spec = res.spec
    columns = dict(getattr(res.design, "columns", {}) or {})
    resid = spec.residual or "e"
    resid_term = _Term(None, resid, f"{resid}_{{ij}}")
    y_text, y_tex = spec.outcome.text(), expr_latex(spec.outcome, "ij", columns)

    # A categorical level-1 predictor is one indicator per non-reference category, each
    # with its own beta, level-2 equation and random effect: b1[Black]*ethnicity[Black].
    parts = []  # (beta, category or None, x_text, x_tex)
    for b in spec.betas:
        x_text = b.predictor.text() if b.predictor is not None else ""
        x_tex = expr_latex(b.predictor, "ij", columns) if b.predictor is not None else ""
        categories = level1_categories(res, b) if b.predictor is not None else []
        if not categories:
            parts.append((b, None, x_text, x_tex))
            continue
        assert b.predictor is not None
        inner = b.predictor.args[0] if isinstance(b.predictor, Call) else b.predictor
        for c in categories:
            parts.append((b, c, f"{inner.text()}[{c}]", f"{x_tex}[{text_in_math(c)}]"))

    def own(label: str, category: str | None) -> str:
        return label if category is None else f"{label}[{category}]"

    l1_terms = []
    for b, c, x_text, x_tex in parts:
        label = own(b.label, c)
        text = f"{label}*{x_text}" if x_text else label
        tex = _beta_latex(label) + (f"\\,{x_tex}" if x_tex else "")
        l1_terms.append(_Term(None, text, tex))
    level1 = _Equation(y_text, y_tex, (*l1_terms, resid_term))

    level2, fixed, random = [], [], []
    for b, c, x_text, x_tex in parts:
        terms = []
        for g in b.gammas:
            rows = [(own(g.label, c), None)] if c is not None else _gamma_rows(res, g.label)
            for row, level in rows:
                value = float(res.gamma.at[row, "estimate"])
                w_text, w_tex = _w_parts(g.predictor, level, columns)
                terms.append(_Term(value, w_text, w_tex))
                text = "*".join(t for t in (x_text, w_text) if t)
                tex = r"\,".join(t for t in (x_tex, w_tex) if t)
                fixed.append(_Term(value, text, tex))
        if b.random:
            u = own(str(b.u_label), c)
            terms.append(_Term(None, u, _u_latex(u)))
            random.append(
                _Term(
                    None,
                    f"{u}*{x_text}" if x_text else u,
                    _u_latex(u) + (f"\\,{x_tex}" if x_tex else ""),
                )
            )
        label = own(b.label, c)
        level2.append(_Equation(label, _beta_latex(label), tuple(terms)))
    reduced = _Equation(y_text, y_tex, (*fixed, *random, resid_term))
    return level1, level2, reduced


def _pieces(eq: _Equation, digits: int, latex: bool) -> list[str]:
    """The right-hand side as pieces, each with its joining sign (' + 1.2*x', ' - u0')."""
    out = []
    for i, t in enumerate(eq.terms):
        symbol = t.latex if latex else t.text
        if t.value is None:
            sign, body = "+", symbol
        else:
            number = format_number(abs(t.value), digits, latex)
            sign = "-" if t.value < 0 and float(format_number(t.value, digits)) != 0 else "+"
            if not symbol:
                body = number
            else:
                body = f"{number}\\,{symbol}" if latex else f"{number}*{symbol}"
        if i == 0:
            out.append(("-" if sign == "-" else "") + body)
        else:
            out.append(f" {sign} {body}")
    return out


def _plain_width(eq: _Equation, digits: int) -> list[int]:
    return [len(p) for p in _pieces(eq, digits, latex=False)]


def _break(widths: list[int], width: int) -> list[tuple[int, int]]:
    """Split pieces into lines of at most ``width`` characters (at least one piece each)."""
    lines, start, used = [], 0, 0
    for i, w in enumerate(widths):
        if i > start and used + w > width:
            lines.append((start, i))
            start, used = i, 0
        used += w
    lines.append((start, len(widths)))
    return lines


# -- the distribution of the random effects ---------------------------------------------------
def _tau_text(res: MLMResults, digits: int, indent: str) -> list[str]:
    labels = list(res.tau.index)
    resid = res.spec.residual or "e"
    tau = snap_boundary(res.tau.to_numpy(), res.sigma2)
    if len(labels) == 1:
        u = labels[0]
        tau_name = f"tau{_sub(_index(u), _index(u))}"
        return [
            f"{u} ~ N(0, {tau_name}), {resid} ~ N(0, sigma2)",
            f"{indent}{tau_name} = {format_number(tau[0, 0], digits)}   "
            f"sigma2 = {format_number(res.sigma2, digits)}",
        ]
    fixed = res.tau_fixed.to_numpy()  # cov(uK, uM) = 0: an exact, not estimated, 0
    cells = [
        ["0" if fixed[i, j] else format_number(tau[i, j], digits) for j in range(i + 1)]
        for i in range(len(labels))
    ]
    w = max([len(c) for row in cells for c in row] + [len(lab) for lab in labels]) + 2
    lw = max(len(lab) for lab in labels)
    lines = [f"({', '.join(labels)}) ~ MVN(0, T), {resid} ~ N(0, sigma2)"]
    lines.append(f"{indent}T = {' ' * lw}" + "".join(f"{lab:>{w}}" for lab in labels))
    for lab, row in zip(labels, cells, strict=True):
        lines.append(f"{indent}    {lab:<{lw}}" + "".join(f"{c:>{w}}" for c in row))
    lines.append(f"{indent}sigma2 = {format_number(res.sigma2, digits)}")
    return lines


def _bmatrix(rows: list[list[str]]) -> str:
    body = r" \\ ".join(" & ".join(r) for r in rows)
    return f"\\begin{{bmatrix}} {body} \\end{{bmatrix}}"


def _tau_latex_rows(res: MLMResults, digits: int) -> list[str]:
    labels = list(res.tau.index)
    q = len(labels)
    tau = snap_boundary(res.tau.to_numpy(), res.sigma2)
    resid = res.spec.residual or "e"
    sigma = format_number(res.sigma2, digits, latex=True)
    if q == 1:
        u = labels[0]
        return [
            f"&\\text{{Random:}} & {_u_latex(u)} &\\sim N(0, {_tau_latex(u, u)}), "
            f"\\quad {_tau_latex(u, u, hat=True)} = {format_number(tau[0, 0], digits, latex=True)}",
            f"&& {resid}_{{ij}} &\\sim N(0, \\sigma^2), \\quad \\hat{{\\sigma}}^2 = {sigma}",
        ]

    def lower(cell) -> list[list[str]]:
        return [[cell(i, j) if j <= i else "" for j in range(q)] for i in range(q)]

    fixed = res.tau_fixed.to_numpy()  # cov(uK, uM) = 0: an exact, not estimated, 0
    symbols = _bmatrix(lower(lambda i, j: "0" if fixed[i, j] else _tau_latex(labels[i], labels[j])))
    values = _bmatrix(
        lower(lambda i, j: "0" if fixed[i, j] else format_number(tau[i, j], digits, latex=True))
    )
    u_vec = _bmatrix([[_u_latex(u)] for u in labels])
    zeros = _bmatrix([["0"] for _ in labels])
    return [
        f"&\\text{{Random:}} & {u_vec} &\\sim \\mathrm{{MVN}}\\left({zeros}, \\mathbf{{T}}\\right)",
        f"&& \\mathbf{{T}} &= {symbols}",
        f"&& \\hat{{\\mathbf{{T}}}} &= {values}",
        f"&& {resid}_{{ij}} &\\sim N(0, \\sigma^2), \\quad \\hat{{\\sigma}}^2 = {sigma}",
    ]


# -- public API -------------------------------------------------------------------------------
def _text(res: MLMResults, digits: int, width: int) -> str:
    level1, level2, reduced = _build(res)
    out: list[str] = []

    def emit(title: str, eq: _Equation) -> None:
        head = f"{title:<10}{eq.lhs_text} = "
        pieces = _pieces(eq, digits, latex=False)
        # Continuation lines start under the first term, with their sign.
        for k, (a, b) in enumerate(_break([len(p) for p in pieces], width - len(head))):
            chunk = "".join(pieces[a:b])
            out.append((head if k == 0 else " " * (len(head) - 1)) + chunk)

    emit("Level 1:", level1)
    for i, eq in enumerate(level2):
        emit("Level 2:" if i == 0 else "", eq)
    emit("Mixed:", reduced)
    tau = _tau_text(res, digits, " " * 10)
    out.append(f"{'Random:':<10}{tau[0]}")
    out.extend(tau[1:])
    return "\n".join(out)


def _aligned(res: MLMResults, digits: int, width: int) -> str:
    level1, level2, reduced = _build(res)
    rows: list[str] = []

    def emit(title: str, eq: _Equation) -> None:
        pieces = _pieces(eq, digits, latex=True)
        widths = _plain_width(eq, digits)
        label = f"&\\text{{{title}}}" if title else "&"
        for k, (a, b) in enumerate(_break(widths, budget)):
            chunk = "".join(pieces[a:b])
            if k == 0:
                rows.append(f"{label} & {eq.lhs_latex} &= {chunk}")
            else:
                rows.append(f"&&& \\quad {chunk.lstrip()}")

    # All left-hand sides share one column, so the widest one narrows every right-hand side.
    lhs = max(len(eq.lhs_text) for eq in (level1, *level2, reduced))
    budget = max(width - lhs, 20)
    emit("Level 1:", level1)
    for i, eq in enumerate(level2):
        emit("Level 2:" if i == 0 else "", eq)
    emit("Mixed:", reduced)
    rows.extend(_tau_latex_rows(res, digits))
    return "\\begin{aligned}\n" + " \\\\\n".join(rows) + "\n\\end{aligned}"


def equations(
    res: MLMResults, format: str = "text", *, digits: int = 3, width: int | None = None
) -> str:
    r"""The level-1, level-2 and reduced-form equations with the estimates substituted.

    Parameters
    ----------
    res : MLMResults
        A fitted model.
    format : {"text", "latex", "html"}
        ``"text"``: lines for a terminal. ``"latex"``: an ``aligned`` environment (needs
        ``amsmath``; put it inside ``\[ ... \]`` or ``$$ ... $$``). ``"html"``: the LaTeX
        in ``$$ ... $$`` inside a ``<div>``, for MathJax (see :func:`equations_html`).
    digits : int
        Decimals of the estimates.
    width : int, optional
        Wrap long equations: the whole line in text (default 90 characters); in LaTeX the
        right-hand side, counted in characters of its plain-text form (default 64).

    Returns
    -------
    str

    Examples
    --------
    >>> import mlmwrap
    >>> res = mlmwrap.fit("mathach = b0 + r\nb0 = g00 + u0",
    ...                   data=mlmwrap.datasets.load_hsb(), cluster="school")
    >>> print(equations(res))
    Level 1:  mathach = b0 + r
    Level 2:  b0 = 12.637 + u0
    Mixed:    mathach = 12.637 + u0 + r
    Random:   u0 ~ N(0, tau00), r ~ N(0, sigma2)
              tau00 = 8.614   sigma2 = 39.148
    """
    if not isinstance(digits, int) or digits < 0:
        raise MLMError(f"digits must be a non-negative integer, not {digits!r}")
    if format == "text":
        return _text(res, digits, width or TEXT_WIDTH)
    if format == "latex":
        return _aligned(res, digits, width or LATEX_WIDTH)
    if format == "html":
        return equations_html(res, digits=digits, width=width)
    raise MLMError(f"unknown format {format!r}: use 'text', 'latex' or 'html'")


def repr_latex(res: MLMResults, *, digits: int = 3) -> str:
    r"""The equations as ``$$\begin{aligned}...\end{aligned}$$``, for ``_repr_latex_``.

    Examples
    --------
    >>> import mlmwrap
    >>> res = mlmwrap.fit("mathach = b0 + e\nb0 = g00 + u0",
    ...                   data=mlmwrap.datasets.load_hsb(), cluster="school")
    >>> repr_latex(res).startswith("$$\\begin{aligned}")
    True
    """
    return f"$${equations(res, 'latex', digits=digits)}$$"


def equations_html(res: MLMResults, *, digits: int = 3, width: int | None = None) -> str:
    r"""The LaTeX equations in ``$$...$$`` inside ``<div class="mlmwrap-equations">``.

    MathJax (Jupyter, most documentation sites) typesets it; the text is HTML-escaped
    (``&`` becomes ``&amp;``), which MathJax reads back as ``&``.

    Examples
    --------
    >>> import mlmwrap
    >>> res = mlmwrap.fit("mathach = b0 + e\nb0 = g00 + u0",
    ...                   data=mlmwrap.datasets.load_hsb(), cluster="school")
    >>> equations_html(res)[:48]
    '<div class="mlmwrap-equations">$$\\begin{aligned}'
    """
    tex = equations(res, "latex", digits=digits, width=width)
    return f'<div class="mlmwrap-equations">$${html.escape(tex, quote=False)}$$</div>'
