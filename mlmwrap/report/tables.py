"""APA-style tables for papers: fixed effects and variance components as Markdown, LaTeX
(booktabs) or HTML, and a whole report.

Built from :class:`mlmwrap.report.export.TableData` (a fit or JSON read back with
:func:`mlmwrap.report.export.from_json`). APA style: statistical symbols in italics, ``p`` without
a leading zero and ``p < .001`` below .001, correlations without a leading zero, CIs in
brackets. With degrees of freedom in the gamma table the tests are ``t`` with ``df``,
otherwise ``z`` (see :mod:`mlmwrap.report.export`).

Examples
--------
>>> import mlmwrap
>>> res = mlmwrap.fit('''
...     mathach = b0 + b1*cwc(ses) + e
...     b0 = g00 + g01*meanses + g02*sector + u0
...     b1 = g10 + g11*meanses + g12*sector + u1
... ''', data=mlmwrap.datasets.load_hsb(), cluster="school")
>>> print(fixed_table(res))
| Fixed effect | Coefficient | Estimate | *SE* | 95% CI | *t* | *df* | *p* |
|:---|:---|---:|---:|:---:|---:|---:|---:|
| **Intercept, β0** | | | | | | | |
| Intercept | γ00 | 12.10 | 0.20 | [11.70, 12.49] | 60.87 | 159.9 | < .001 |
| meanses | γ01 | 5.33 | 0.37 | [4.60, 6.06] | 14.45 | 151.0 | < .001 |
| sector | γ02 | 1.23 | 0.31 | [0.62, 1.83] | 4.00 | 149.6 | < .001 |
| **Slope of cwc(ses), β1** | | | | | | | |
| Intercept | γ10 | 2.94 | 0.16 | [2.63, 3.25] | 18.95 | 139.3 | < .001 |
| meanses | γ11 | 1.04 | 0.30 | [0.45, 1.63] | 3.48 | 160.6 | < .001 |
| sector | γ12 | -1.64 | 0.24 | [-2.12, -1.17] | -6.85 | 143.4 | < .001 |
<BLANKLINE>
*Note.* N = 7,185 level-1 units in 160 clusters (school); REML estimates. *SE* = model-based standard error; CI = t-based confidence interval; *t* tests with Satterthwaite degrees of freedom (as lmerTest).
>>> print(variance_table(res))
| Random effect | Parameter | Variance | *SD* | Corr. with u0 |
|:---|:---|---:|---:|---:|
| Intercept, u0 | τ00 | 2.38 | 1.54 | |
| Slope of cwc(ses), u1 | τ11 | 0.10 | 0.32 | .39 |
| Level-1 residual, e | σ² | 36.72 | 6.06 | |
<BLANKLINE>
*Note.* REML estimates. Deviance (REML criterion) = 46503.66; AIC = 46523.66; BIC = 46592.46. Residual ICC (at level-1 predictors = 0) = .06.
"""  # noqa: E501

from __future__ import annotations

import html
import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from mlmwrap.errors import MLMError
from mlmwrap.report.export import TableData, pair_label, table_data, test_statistic, uses_df
from mlmwrap.report.latex import latex_escape, snap_boundary

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from mlmwrap.api.results import MLMResults

__all__ = ["fixed_table", "variance_table", "document", "side_by_side", "format_p", "FORMATS"]

FORMATS = ("markdown", "latex", "html")


def _apa_tests(sentence: str, fmt: str) -> str:
    """Italicize the test's letter at the start of a sentence: 't-tests' -> '*t* tests'."""
    m = re.match(r"([tz])[- ]tests?\b", sentence)
    if m is None:
        return {"markdown": sentence, "latex": latex_escape(sentence)}.get(
            fmt, html.escape(sentence)
        )
    rest = sentence[m.end() :]
    letter = m.group(1)
    if fmt == "markdown":
        return f"*{letter}* tests{rest}"
    if fmt == "latex":
        return f"\\textit{{{letter}}} tests{latex_escape(rest)}"
    return f"<i>{letter}</i> tests{html.escape(rest)}"


def _percent(level: float) -> str:
    return f"{level * 100:g}"


# -- number formatting -----------------------------------------------------------------------
def format_p(p: float, digits: int = 3) -> str:
    """A p value in APA style: no leading zero, ``< .001`` below .001, ``> .999`` near 1.

    Examples
    --------
    >>> format_p(0.0000004), format_p(0.0123), format_p(0.5), format_p(1.0)
    ('< .001', '.012', '.500', '> .999')
    """
    if not math.isfinite(p):
        return "NA"
    floor = 10.0**-digits
    if p < floor:
        return f"< {floor:.{digits}f}".replace("0.", ".", 1)
    if p >= 1 - floor / 2:
        return f"> {1 - floor:.{digits}f}".replace("0.", ".", 1)
    return f"{p:.{digits}f}".replace("0.", ".", 1)


def _num(x: float, digits: int) -> str:
    """Fixed decimals; a tiny non-zero value keeps ``digits`` significant digits instead."""
    if not math.isfinite(x):
        return "NA"
    text = f"{x:.{digits}f}"
    if float(text) == 0.0 and x != 0.0:
        text = f"{x:.{digits}g}"
    return text.lstrip("-") if float(text) == 0.0 else text


def _corr(r: float, digits: int) -> str:
    """A correlation without the leading zero (APA): ``.39``, ``-.16``."""
    if not math.isfinite(r):
        return "NA"
    text = f"{r:.{digits}f}"
    if float(text) == 0.0:
        text = text.lstrip("-")
    return text.replace("0.", ".", 1) if abs(r) < 1 else text


def _df(df: float) -> str:
    if not math.isfinite(df):
        return "NA"
    return f"{df:.0f}" if abs(df - round(df)) < 1e-9 else f"{df:.1f}"


def _greek(label: str) -> str:
    """``'b1' -> 'β1'``, ``'g02[Catholic]' -> 'γ02'``, ``'u0' -> 'u0'``."""
    base = label.split("[")[0]
    return {"b": "β", "g": "γ"}.get(base[0], base[0]) + base[1:]


def level1_category(row: pd.Series) -> str | None:
    """The category of a gamma row of a categorical level-1 predictor (``g10[Black]``:
    term ``ethnicity[Black]``, level-1 predictor ``C(ethnicity)``), else None (a numeric
    predictor, or a level-2 category, which its predictor cell shows)."""
    level1 = str(row["level1"])
    base = level1[2:-1] if level1.startswith("C(") and level1.endswith(")") else level1
    term = str(row["term"])
    if not term.startswith(base + "["):
        return None
    end = term.find("]", len(base) + 1)
    return term[len(base) + 1 : end] if end > 0 else None


def _latex_symbol(label: str) -> str:
    base = label.split("[")[0]
    digits = base[1:].replace("_", ",")
    letter = {"b": r"\beta", "g": r"\gamma", "u": "u"}[base[0]]
    return f"${letter}_{{{digits}}}$"


def _html_symbol(label: str) -> str:
    base = label.split("[")[0]
    letter = {"b": "&beta;", "g": "&gamma;", "u": "u"}[base[0]]
    return f"{letter}<sub>{html.escape(base[1:])}</sub>"


# -- cells: one table as rows of Cell, rendered per format -----------------------------------
@dataclass(frozen=True)
class _Cell:
    text: str  # plain text (Markdown escapes it; LaTeX and HTML may use `latex`/`html`)
    latex: str | None = None
    html: str | None = None


@dataclass(frozen=True)
class _Table:
    caption: str
    headers: list[_Cell]
    aligns: str  # one of l/r/c per column
    rows: list[list[_Cell] | _Cell]  # a lone _Cell is a group heading spanning the row
    note: _Cell


def _number_cell(text: str) -> _Cell:
    """A number: LaTeX gets a real minus sign, HTML the Unicode minus."""
    return _Cell(text, latex=text.replace("-", "$-$"), html=text.replace("-", "&minus;"))


def _p_cell(p: float) -> _Cell:
    text = format_p(p)
    return _Cell(text, latex=text.replace("<", "$<$").replace(">", "$>$"), html=html.escape(text))


def _italic(text: str) -> _Cell:
    return _Cell(f"*{text}*", latex=f"\\textit{{{text}}}", html=f"<i>{text}</i>")


def _n(n: int) -> str:
    return f"{n:,}"


def _fixed(d: TableData, digits: int) -> _Table:
    g = d.gamma
    name, stat = test_statistic(g)
    with_df = uses_df(g)
    headers = [_Cell("Fixed effect"), _Cell("Coefficient"), _Cell("Estimate"), _italic("SE")]
    pct = _percent(d.level)
    headers += [_Cell(f"{pct}% CI", latex=f"{pct}\\% CI"), _italic(name)]
    if with_df:
        headers.append(_italic("df"))
    headers.append(_italic("p"))
    aligns = "llrrc" + "r" * (len(headers) - 5)
    rows: list[list[_Cell] | _Cell] = []
    current = None
    for label, row in g.iterrows():
        if row["beta"] != current:
            current = row["beta"]
            what = "Intercept" if row["level1"] == "(intercept)" else f"Slope of {row['level1']}"
            rows.append(
                _Cell(
                    f"{what}, {_greek(current)}",
                    latex=f"{latex_escape(what)}, {_latex_symbol(current)}",
                    html=f"{html.escape(what)}, {_html_symbol(current)}",
                )
            )
        pred = "Intercept" if row["predictor"] == "(constant)" else str(row["predictor"])
        ci = (
            f"[{_num(row['ci_lower'], digits)}, {_num(row['ci_upper'], digits)}]"
            if np.isfinite(row["ci_lower"])
            else "NA"
        )
        cat = level1_category(row)  # g10[Black]: the category goes with the coefficient
        tail = "" if cat is None else f"[{cat}]"
        cells = [
            _Cell(pred, latex=f"\\quad {latex_escape(pred)}"),
            _Cell(
                _greek(str(label)) + tail,
                latex=_latex_symbol(str(label)) + latex_escape(tail),
                html=_html_symbol(label) + html.escape(tail),
            ),
            _number_cell(_num(row["estimate"], digits)),
            _number_cell(_num(row["se"], digits)),
            _number_cell(ci),
            _number_cell(_num(stat[label], 2)),
        ]
        if with_df:
            cells.append(_Cell(_df(row["df"])))
        cells.append(_p_cell(row["p"]))
        rows.append(cells)
    if d.inference:
        tests = d.inference
    elif with_df:
        method = f"{d.df_method} " if d.df_method else "approximate "
        tests = f"t tests with {method}degrees of freedom"
    else:
        tests = "z tests (normal reference)"
    kr = "kenward" in str(d.df_method).lower()
    se_text = "standard error (Kenward-Roger adjusted)" if kr else "model-based standard error"
    ci_text = "t-based confidence interval" if with_df else "Wald confidence interval"
    lead = (
        f"N = {_n(d.nobs)} level-1 units in {_n(d.n_clusters)} clusters ({d.cluster}); "
        f"{d.method} estimates."
    )
    body = f"= {se_text}; CI = {ci_text};"
    note = _Cell(
        f"{lead} *SE* {body} {_apa_tests(tests, 'markdown')}." + _flags(d),
        latex=f"{latex_escape(lead)} \\textit{{SE}} {body} {_apa_tests(tests, 'latex')}."
        + latex_escape(_flags(d)),
        html=f"{html.escape(lead)} <i>SE</i> {body} {_apa_tests(tests, 'html')}."
        + html.escape(_flags(d)),
    )
    return _Table(f"Fixed effects ({d.outcome})", headers, aligns, rows, note)


def _flags(d: TableData) -> str:
    """Warnings a reader of the table must see (never a silently wrong table)."""
    out = ""
    if not d.converged:
        out += " WARNING: the fit did not converge; do not report these estimates."
    if d.singular:
        out += " Singular fit: a variance is 0 or a correlation is +-1."
    return out


def _random_name(term: str) -> str:
    return "Intercept" if term == "(intercept)" else f"Slope of {term}"


def _u_tex(label: str) -> str:
    """``'u1' -> '$u_{1}$'``, ``'u1[Black]' -> '$u_{1}$[Black]'``."""
    base, _, level = label.partition("[")
    return f"${base[0]}_{{{base[1:]}}}$" + (latex_escape(f"[{level}") if level else "")


def _variance(d: TableData, digits: int) -> _Table:
    labels = list(d.tau.index)
    tau = snap_boundary(d.tau.to_numpy(), d.sigma2)
    corr = d.tau_corr.to_numpy()
    idx = [lab[1:] for lab in labels]
    others = labels[:-1]
    headers = [_Cell("Random effect"), _Cell("Parameter"), _Cell("Variance"), _italic("SD")]
    headers += [_Cell(f"Corr. with {o}", latex=f"Corr.\\ with {_u_tex(o)}") for o in others]
    aligns = "llrr" + "r" * len(others)
    rows: list[list[_Cell] | _Cell] = []
    for i, lab in enumerate(labels):
        name = f"{_random_name(d.random_terms[i])}, {lab}"
        u_tex = _u_tex(lab)
        pair = pair_label(idx[i], idx[i])
        cells = [
            _Cell(name, latex=f"{latex_escape(name.rsplit(', ', 1)[0])}, {u_tex}"),
            _Cell(f"τ{pair}", latex=f"$\\tau_{{{pair}}}$", html=f"&tau;<sub>{pair}</sub>"),
            _number_cell(_num(tau[i, i], digits)),
            _number_cell(_num(math.sqrt(max(tau[i, i], 0.0)), digits)),
        ]
        cells += [
            _number_cell(_corr(corr[i, j], digits)) if j < i else _Cell("")
            for j in range(len(others))
        ]
        rows.append(cells)
    res_name = f"Level-1 residual, {d.residual}"
    rows.append(
        [
            _Cell(res_name, latex=f"Level-1 residual, ${d.residual}$"),
            _Cell("σ²", latex="$\\sigma^2$", html="&sigma;<sup>2</sup>"),
            _number_cell(_num(d.sigma2, digits)),
            _number_cell(_num(math.sqrt(d.sigma2), digits)),
        ]
        + [_Cell("") for _ in others]
    )
    crit = "REML criterion" if d.method == "REML" else "-2 log-likelihood"
    text = (
        f"{d.method} estimates. Deviance ({crit}) = {d.deviance:.2f}; AIC = {d.aic:.2f}; "
        f"BIC = {d.bic:.2f}."
    )
    if math.isfinite(d.icc):
        text += f" {d.icc_name[0].upper()}{d.icc_name[1:]} = {_corr(d.icc, max(digits, 3))}."
    text += _flags(d)
    note = _Cell(text, latex=latex_escape(text), html=html.escape(text))
    return _Table(f"Variance components ({d.outcome})", headers, aligns, rows, note)


# -- rendering --------------------------------------------------------------------------------
def _md_escape(text: str) -> str:
    for ch in ("\\", "|", "*", "_"):
        text = text.replace(ch, "\\" + ch)
    return text


def _markdown(t: _Table) -> str:
    def line(cells: list[str]) -> str:
        return "|" + "|".join(f" {c} " if c else " " for c in cells) + "|"

    # Header cells carry their own Markdown (italics); body text is escaped.
    rule = {"l": ":---", "r": "---:", "c": ":---:"}
    lines = [line([h.text for h in t.headers])]
    lines.append("|" + "|".join(rule[a] for a in t.aligns) + "|")
    for row in t.rows:
        if isinstance(row, _Cell):
            lines.append(line([f"**{_md_escape(row.text)}**"] + [""] * (len(t.headers) - 1)))
        else:
            lines.append(line([_md_escape(c.text) for c in row]))
    return "\n".join(lines) + f"\n\n*Note.* {t.note.text}"


def _latex(t: _Table, label: str | None) -> str:
    def tex(c: _Cell) -> str:
        return c.latex if c.latex is not None else latex_escape(c.text)

    n = len(t.headers)
    out = [
        "\\begin{table}[htbp]",
        "\\centering",
        "\\small",
        "\\setlength{\\tabcolsep}{4pt}",
        f"\\caption{{{latex_escape(t.caption)}}}",
    ]
    if label:
        out.append(f"\\label{{{label}}}")
    out += [
        f"\\begin{{tabular}}{{{t.aligns}}}",
        "\\toprule",
        " & ".join(tex(h) for h in t.headers) + " \\\\",
        "\\midrule",
    ]
    for row in t.rows:
        if isinstance(row, _Cell):
            out.append(f"\\multicolumn{{{n}}}{{l}}{{{tex(row)}}} \\\\")
        else:
            out.append(" & ".join(tex(c) for c in row) + " \\\\")
    out += [
        "\\bottomrule",
        "\\end{tabular}",
        "",
        "\\smallskip",
        f"\\noindent\\parbox{{\\linewidth}}{{\\footnotesize \\textit{{Note.}} {t.note.latex}}}",
        "\\end{table}",
    ]
    return "\n".join(out)


def _html(t: _Table) -> str:
    def h(c: _Cell) -> str:
        return c.html if c.html is not None else html.escape(c.text)

    align = {"l": "left", "r": "right", "c": "center"}
    pad = "padding:0.15em 0.6em"
    head = "".join(
        f"<th style='text-align:{align[a]};{pad};border-bottom:1px solid'>{h(c)}</th>"
        for c, a in zip(t.headers, t.aligns, strict=True)
    )
    body = []
    for row in t.rows:
        if isinstance(row, _Cell):
            body.append(
                f"<tr><td colspan='{len(t.headers)}' style='text-align:left;{pad};"
                f"font-style:italic'>{h(row)}</td></tr>"
            )
        else:
            tds = "".join(
                f"<td style='text-align:{align[a]};{pad}'>{h(c)}</td>"
                for c, a in zip(row, t.aligns, strict=True)
            )
            body.append(f"<tr>{tds}</tr>")
    return (
        "<table class='mlmwrap-table' style='border-collapse:collapse;border-top:2px solid;"
        "border-bottom:2px solid;margin:0.6em 0'>"
        f"<caption style='text-align:left;font-style:italic'>{html.escape(t.caption)}</caption>"
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
        f"<p style='font-size:90%'><i>Note.</i> {t.note.html}</p>"
    )


def _render(t: _Table, format: str, label: str | None) -> str:
    if format == "markdown":
        return _markdown(t)
    if format == "latex":
        return _latex(t, label)
    if format == "html":
        return _html(t)
    raise MLMError(f"unknown table format {format!r}: use one of {', '.join(FORMATS)}")


def _check_digits(digits: int) -> None:
    if not isinstance(digits, int) or isinstance(digits, bool) or digits < 0:
        raise MLMError(f"digits must be a non-negative integer, not {digits!r}")


def fixed_table(
    res: MLMResults | TableData,
    format: str = "markdown",
    *,
    digits: int = 2,
    label: str | None = None,
    gamma: pd.DataFrame | None = None,
) -> str:
    """The fixed effects (gammas) as an APA-style table.

    Rows are grouped by beta (the intercept's model, then each slope's model); columns are
    the estimate, model-based SE, 95% CI, z (or t and df, see the module notes) and p.

    Parameters
    ----------
    res : MLMResults or TableData
    format : {"markdown", "latex", "html"}
        LaTeX needs ``booktabs`` (``\\toprule``); HTML is a styled ``<table>`` and a note.
    digits : int
        Decimals of estimates, SEs and CIs (test statistics always 2, p 3).
    label : str, optional
        LaTeX ``\\label``.
    gamma : pandas.DataFrame, optional
        Replaces ``res.gamma``: e.g. ``mlmwrap.inference.gamma_table(res)`` for t-tests
        with df (see the module notes).

    Returns
    -------
    str
    """
    _check_digits(digits)
    return _render(_fixed(table_data(res, gamma), digits), format, label)


def variance_table(
    res: MLMResults | TableData,
    format: str = "markdown",
    *,
    digits: int = 2,
    label: str | None = None,
) -> str:
    """The variance components (tau's variances with SDs and correlations, sigma²) as an
    APA-style table, with the deviance, AIC, BIC and ICC in the note.

    Parameters are as for :func:`fixed_table`.
    """
    _check_digits(digits)
    return _render(_variance(table_data(res), digits), format, label)


def document(
    res: MLMResults | TableData,
    format: str = "markdown",
    *,
    digits: int = 2,
    gamma: pd.DataFrame | None = None,
) -> str:
    """A whole report: title, the equations with estimates, both tables.

    ``format="latex"`` gives a complete document (``amsmath``, ``booktabs``) that
    ``pdflatex`` compiles; ``"markdown"`` and ``"html"`` give fragments.

    Examples
    --------
    >>> import mlmwrap
    >>> res = mlmwrap.fit("mathach = b0 + e\\nb0 = g00 + u0",
    ...                   data=mlmwrap.datasets.load_hsb(), cluster="school")
    >>> print(document(res).splitlines()[0])
    # Multilevel model of mathach (REML)
    """
    if format not in FORMATS:
        raise MLMError(f"unknown format {format!r}: use one of {', '.join(FORMATS)}")
    d = table_data(res, gamma)
    title = f"Multilevel model of {d.outcome} ({d.method})"
    fixed = fixed_table(d, format, digits=digits)
    variance = variance_table(d, format, digits=digits)
    warnings = list(d.messages)
    if format == "markdown":
        parts = [f"# {title}", f"```text\n{d.equations_text}\n```", "## Fixed effects", fixed]
        parts += ["## Variance components", variance]
        if warnings:
            parts += ["## Warnings", "\n".join(f"- {_md_escape(w)}" for w in warnings)]
        return "\n\n".join(parts)
    if format == "latex":
        return "\n".join(
            [
                "\\documentclass{article}",
                "\\usepackage{amsmath}",
                "\\usepackage{booktabs}",
                "\\begin{document}",
                f"\\section*{{{latex_escape(title)}}}",
                "\\[",
                d.equations_latex,
                "\\]",
                fixed,
                variance,
                *[f"\\paragraph{{Warning.}} {latex_escape(w)}" for w in warnings],
                "\\end{document}",
            ]
        )
    if format == "html":
        eqs = html.escape(d.equations_latex, quote=False)
        return (
            f"<div class='mlmwrap-report'><h3>{html.escape(title)}</h3>"
            f"<div class='mlmwrap-equations'>$${eqs}$$</div>{fixed}{variance}"
            + "".join(f"<p><b>Warning:</b> {html.escape(w)}</p>" for w in warnings)
            + "</div>"
        )
    raise MLMError(f"unknown format {format!r}: use one of {', '.join(FORMATS)}")


# Several models in one table: its own module, offered here beside the one-model tables.
from mlmwrap.report.side_by_side import side_by_side  # noqa: E402
