"""Several models side by side: the build-up table of a paper (Model 1 | Model 2 | Model 3).

One column per model, one row per fixed effect (matched across models by its reduced-form
term, so ``g01`` of one model and ``g02`` of another line up when they are the same
predictor), its SE or CI beneath; then the variance components (matched by the random
effect's term), and the fit: deviance, AIC, BIC, the number of level-1 units N and of
clusters J. As text, Markdown, LaTeX (booktabs) or HTML. Formatting only: every number comes
from the fits. What sjPlot's ``tab_model``, Stata's ``esttab`` and HLM users' tables show.

Examples
--------
>>> import mlmwrap
>>> hsb = mlmwrap.datasets.load_hsb()
>>> m1 = mlmwrap.fit("mathach = b0 + e\\nb0 = g00 + u0", hsb, cluster="school")
>>> m2 = mlmwrap.fit("mathach = b0 + b1*cwc(ses) + e\\nb0 = g00 + u0\\nb1 = g10", hsb,
...                  cluster="school")
>>> print(side_by_side([m1, m2], names=["Null", "+ SES"]))
                                 Null         + SES
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
comparable: compare them with mlmwrap.compare(), which refits by ML.
"""

from __future__ import annotations

import html
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from mlmwrap.errors import DataError, MLMError

if TYPE_CHECKING:  # pragma: no cover
    from mlmwrap.api.results import MLMResults

__all__ = ["side_by_side", "SIDE_BY_SIDE_FORMATS"]

SIDE_BY_SIDE_FORMATS = ("text", "markdown", "latex", "html")
_INTERCEPT = "(Intercept)"


@dataclass(frozen=True)
class _Row:
    kind: str  # "section", "estimate", "spread", "stat"
    label: str  # text label ("g00  intercept")
    cells: tuple[str, ...] = ()
    coef: str = ""  # gamma or random-effect label, for the typeset formats
    what: str = ""  # the predictor or term it stands for


def _term_text(term: str) -> str:
    return "intercept" if term in (_INTERCEPT, "(intercept)") else term.replace(":", " x ")


def _stars(p: float) -> str:
    if not np.isfinite(p):
        return ""
    return "***" if p < 0.001 else "**" if p < 0.01 else "*" if p < 0.05 else ""


def _check(models: Sequence[MLMResults], names: Sequence[str] | None) -> list[str]:
    from mlmwrap.model.fitted import FittedModel

    models = list(models)
    if not models:
        raise DataError("side_by_side() needs at least one fitted model")
    for k, m in enumerate(models):
        if not isinstance(m, FittedModel):
            raise DataError(
                f"model {k + 1} is a {type(m).__name__}, not a fitted model (MLMResults)",
                hint="side_by_side([mlmwrap.fit(...), mlmwrap.fit(...)], names=[...])",
            )
    if names is None:
        return [f"Model {k + 1}" for k in range(len(models))]
    names = [str(n) for n in names]
    if len(names) != len(models):
        raise DataError(f"{len(names)} names for {len(models)} models", hint="one name a model")
    return names


def _rows(models: Sequence[MLMResults], digits: int, interval: str, stars: bool) -> list[_Row]:
    n = len(models)
    rows: list[_Row] = [_Row("section", "Fixed effects")]
    # Fixed effects matched by term, in order of first appearance.
    terms: dict[str, tuple[str, str]] = {}
    for m in models:
        for label, g in m.gamma.iterrows():
            terms.setdefault(g["term"], (str(label), _term_text(g["term"])))
    for term, (label, what) in terms.items():
        est, spread = [""] * n, [""] * n
        for k, m in enumerate(models):
            hit = m.gamma[m.gamma["term"] == term]
            if hit.empty:
                continue
            g = hit.iloc[0]
            est[k] = f"{g['estimate']:.{digits}f}" + (_stars(g["p"]) if stars else "")
            if interval == "se":
                spread[k] = f"({g['se']:.{digits}f})"
            else:
                spread[k] = f"[{g['ci_lower']:.{digits}f}, {g['ci_upper']:.{digits}f}]"
        rows.append(_Row("estimate", f"{label}  {what}", tuple(est), label, what))
        rows.append(_Row("spread", "", tuple(spread)))
    # Variance components matched by the random effect's term; the residual last.
    rows.append(_Row("section", "Variance components"))
    random: dict[str, tuple[str, str]] = {}
    for m in models:
        vc = m.variance_components
        for label, v in vc.iloc[:-1].iterrows():
            random.setdefault(v["term"], (str(label), _term_text(v["term"])))
    for term, (label, what) in random.items():
        cells = [""] * n
        for k, m in enumerate(models):
            vc = m.variance_components.iloc[:-1]
            hit = vc[vc["term"] == term]
            if not hit.empty:
                cells[k] = f"{hit['variance'].iloc[0]:.{digits}f}"
        rows.append(_Row("estimate", f"{label}  {what}", tuple(cells), label, what))
    resid = [str(m.variance_components.index[-1]) for m in models]
    cells = tuple(f"{m.sigma2:.{digits}f}" for m in models)
    rows.append(
        _Row("estimate", f"{resid[0]}  level-1 residual", cells, resid[0], "level-1 residual")
    )
    rows.append(_Row("section", "Model fit"))
    methods = {m.method for m in models}
    crit = "REML" if methods == {"REML"} else "ML" if methods == {"ML"} else "REML/ML"
    rows.append(
        _Row("stat", f"Deviance ({crit})", tuple(f"{m.deviance:.{digits}f}" for m in models))
    )
    rows.append(_Row("stat", "AIC", tuple(f"{m.aic:.{digits}f}" for m in models)))
    rows.append(_Row("stat", "BIC", tuple(f"{m.bic:.{digits}f}" for m in models)))
    rows.append(_Row("stat", "N (level-1 units)", tuple(str(m.nobs) for m in models)))
    rows.append(_Row("stat", "J (clusters)", tuple(str(m.n_clusters) for m in models)))
    return rows


def _note(models: Sequence[MLMResults], interval: str, stars: bool, level: str) -> str:
    spread = "Standard errors in parentheses" if interval == "se" else f"{level} CIs in brackets"
    parts = [spread]
    if stars:
        parts.append("* p < .05, ** p < .01, *** p < .001")
    note = "; ".join(parts) + "."
    if len(models) > 1 and any(m.reml for m in models):
        fixed = {frozenset(m.gamma["term"]) for m in models}
        if len(fixed) > 1:
            note += (
                " REML deviances of models with different fixed effects are not comparable:"
                " compare them with mlmwrap.compare(), which refits by ML."
            )
    return note


# -- renderers ------------------------------------------------------------------------------
def _split(text: str) -> tuple[str, str]:
    """A cell cut at its decimal point, so a column lines up on it."""
    i = text.find(".")
    return (text, "") if i < 0 else (text[:i], text[i:])


def _label(r: _Row, coef_w: int) -> str:
    return f"{r.coef:<{coef_w}}  {r.what}" if r.coef else r.label


def _text(rows: list[_Row], names: list[str], note: str) -> str:
    coef_w = max(len(r.coef) for r in rows)
    label_w = max(len(_label(r, coef_w)) for r in rows if r.kind != "section") + 2
    plain = [r for r in rows if r.cells]
    columns = []
    for k, name in enumerate(names):
        parts = [_split(r.cells[k]) for r in plain if r.cells[k] and "[" not in r.cells[k]]
        left = max([len(a) for a, _ in parts] + [0])
        right = max([len(b) for _, b in parts] + [0])
        brackets = [len(r.cells[k]) for r in plain if "[" in r.cells[k]]
        columns.append((left, right, max([left + right, len(name), *brackets])))

    def cell(text: str, k: int) -> str:
        left, right, width = columns[k]
        if "[" in text:
            return f"{text:>{width}}"
        a, b = _split(text)
        return f"{a:>{left}}{b:<{right}}".rjust(width)

    head = " " * label_w + "".join(
        f"   {nm:>{w}}" for nm, (_, _, w) in zip(names, columns, strict=True)
    )
    lines = [head.rstrip()]
    for r in rows:
        if r.kind == "section":
            lines.append(r.label)
            continue
        body = "".join("   " + cell(c, k) for k, c in enumerate(r.cells))
        lines.append(f"  {_label(r, coef_w):<{label_w - 2}}{body}".rstrip())
    lines.extend(textwrap.wrap(note, width=max(len(lines[0]), 72)))
    return "\n".join(lines)


def _md_escape(text: str) -> str:
    for ch in ("\\", "|", "*", "_"):
        text = text.replace(ch, "\\" + ch)
    return text


def _markdown(rows: list[_Row], names: list[str], note: str) -> str:
    n = len(names)
    out = ["| | " + " | ".join(_md_escape(nm) for nm in names) + " |"]
    out.append("|:---|" + "---:|" * n)
    for r in rows:
        if r.kind == "section":
            out.append(f"| **{r.label}** |" + " |" * n)
        else:
            cells = " | ".join(_md_escape(c) for c in r.cells)
            line = f"| {_md_escape(_label(r, 0))} | {cells} |"
            while "|  |" in line:
                line = line.replace("|  |", "| |")
            out.append(line)
    return "\n".join(out) + f"\n\n*Note.* {_md_escape(note)}"


def _latex_escape(text: str) -> str:
    from mlmwrap.report.latex import latex_escape

    return latex_escape(text)


def _latex_label(r: _Row) -> str:
    if not r.coef:
        return _latex_escape(r.label)
    letter, digits = r.coef[0], r.coef[1:]
    symbol = {"g": "\\gamma", "u": "\\tau", "e": "\\sigma^2", "r": "\\sigma^2"}.get(letter)
    if symbol is None or (letter in "er" and digits):
        return _latex_escape(r.label)
    if letter == "u":
        sub = f"{digits.split('[')[0]}{digits.split('[')[0]}"
        head = f"${symbol}_{{{sub}}}$"
    elif letter == "g":
        base, _, rest = digits.partition("[")
        head = f"${symbol}_{{{base}}}$" + (_latex_escape("[" + rest) if rest else "")
    else:
        head = f"${symbol}$"
    return f"{head} {_latex_escape(r.what)}"


def _latex(rows: list[_Row], names: list[str], note: str, label: str | None) -> str:
    n = len(names)
    out = ["\\begin{table}[htbp]", "\\centering", "\\small", "\\caption{Multilevel models}"]
    if label:
        out.append(f"\\label{{{label}}}")
    out += [
        f"\\begin{{tabular}}{{l{'r' * n}}}",
        "\\toprule",
        " & " + " & ".join(_latex_escape(nm) for nm in names) + " \\\\",
        "\\midrule",
    ]
    for r in rows:
        if r.kind == "section":
            out.append(
                f"\\multicolumn{{{n + 1}}}{{l}}{{\\textit{{{_latex_escape(r.label)}}}}} \\\\"
            )
            continue
        cells = [c.replace("***", "$^{***}$") if "***" in c else c for c in r.cells]
        cells = [c if "$" in c else c.replace("**", "$^{**}$") if "**" in c else c for c in cells]
        cells = [c if "$" in c else c.replace("*", "$^{*}$") for c in cells]
        cells = [c.replace("-", "$-$") if c[:1] == "-" or c[1:2] == "-" else c for c in cells]
        out.append(_latex_label(r) + " & " + " & ".join(cells) + " \\\\")
    out += [
        "\\bottomrule",
        "\\end{tabular}",
        "",
        "\\smallskip",
        f"\\noindent\\parbox{{\\linewidth}}{{\\footnotesize \\textit{{Note.}} "
        f"{_latex_escape(note)}}}",
        "\\end{table}",
    ]
    return "\n".join(out)


def _html(rows: list[_Row], names: list[str], note: str) -> str:
    pad = "padding:0.1em 0.7em"
    head = f"<th style='{pad};border-bottom:1px solid'></th>" + "".join(
        f"<th style='text-align:right;{pad};border-bottom:1px solid'>{html.escape(nm)}</th>"
        for nm in names
    )
    body = []
    for r in rows:
        if r.kind == "section":
            body.append(
                f"<tr><td colspan='{len(names) + 1}' style='{pad};font-style:italic'>"
                f"{html.escape(r.label)}</td></tr>"
            )
            continue
        tds = "".join(f"<td style='text-align:right;{pad}'>{html.escape(c)}</td>" for c in r.cells)
        body.append(
            f"<tr><td style='text-align:left;{pad}'>{html.escape(_label(r, 0))}</td>{tds}</tr>"
        )
    return (
        "<table class='mlmwrap-side-by-side' style='border-collapse:collapse;"
        "border-top:2px solid;border-bottom:2px solid;margin:0.6em 0'>"
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
        f"<p style='font-size:90%'><i>Note.</i> {html.escape(note)}</p>"
    )


def side_by_side(
    models: Sequence[MLMResults],
    names: Sequence[str] | None = None,
    format: str = "text",
    *,
    interval: str = "se",
    digits: int = 2,
    stars: bool = True,
    label: str | None = None,
) -> str:
    """Models side by side, one column each: gammas, variance components, deviance, N, J.

    Parameters
    ----------
    models
        Fitted models, e.g. a build-up sequence (``build_up(...).results``).
    names
        Column headings (default ``Model 1``, ``Model 2``, ...).
    format
        ``"text"``, ``"markdown"``, ``"latex"`` (a booktabs ``table``) or ``"html"``.
    interval
        Beneath each estimate: ``"se"`` (its standard error in parentheses, default) or
        ``"ci"`` (its confidence interval, as in each model's gamma table).
    digits
        Decimals of the estimates, variances and fit statistics.
    stars
        Mark p < .05, .01, .001 with ``*``, ``**``, ``***`` (from each model's tests, e.g.
        Satterthwaite t-tests).
    label
        LaTeX ``\\label``.

    Returns
    -------
    str

    Notes
    -----
    Rows are matched by what they estimate: a fixed effect by its reduced-form term
    (``cwc(ses):meanses``), a variance by its random effect's term, and labelled with the
    first model's gamma or random-effect label. Deviances are each model's as fit (the REML
    criterion under REML); under REML they are comparable only between models with the same
    fixed effects, which the note says when they differ.
    """
    if format not in SIDE_BY_SIDE_FORMATS:
        raise MLMError(f"unknown format {format!r}: use one of {', '.join(SIDE_BY_SIDE_FORMATS)}")
    if interval not in ("se", "ci"):
        raise MLMError(f"interval must be 'se' or 'ci', not {interval!r}")
    if not isinstance(digits, int) or digits < 0:
        raise MLMError(f"digits must be a non-negative integer, not {digits!r}")
    labels = _check(models, names)
    rows = _rows(models, digits, interval, stars)
    note = _note(models, interval, stars, "95%")
    if format == "text":
        return _text(rows, labels, note)
    if format == "markdown":
        return _markdown(rows, labels, note)
    if format == "latex":
        return _latex(rows, labels, note, label)
    return _html(rows, labels, note)
