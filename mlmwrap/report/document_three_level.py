"""A whole report of a three-level fit, for the command line and for papers: title, the
equations in HLM3 notation, the fixed effects and the variance components of every level, in
Markdown, LaTeX (a document ``pdflatex`` compiles) or HTML.

Examples
--------
>>> import numpy as np, pandas as pd
>>> import mlmwrap
>>> rng = np.random.default_rng(5)
>>> s = np.repeat(np.arange(20), 30); c = np.repeat(np.arange(120), 5)
>>> y = rng.normal(size=20)[s] + rng.normal(size=120)[c] + rng.normal(size=600)
>>> df = pd.DataFrame({"y": y, "c": c, "s": s})
>>> res = mlmwrap.fit("y = p0 + e\\np0 = b00 + r0\\nb00 = g000 + u00", df, ["c", "s"])
>>> print(three_level_document(res, "markdown").splitlines()[0])
# Three-level model of y (REML)
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

import pandas as pd

from mlmwrap.errors import MLMError
from mlmwrap.report.latex import latex_escape
from mlmwrap.report.latex_three_level import three_level_latex
from mlmwrap.report.tables import format_p

if TYPE_CHECKING:  # pragma: no cover
    from mlmwrap.api.nested_results import NestedResults

__all__ = ["three_level_document"]

FORMATS = ("markdown", "latex", "html")


def _cell(value: object, digits: int) -> str:
    if isinstance(value, float):
        return "" if value != value else f"{value:.{digits}f}"
    return str(value)


def _markdown(frame: pd.DataFrame, digits: int) -> str:
    shown = frame.reset_index()
    lines = ["| " + " | ".join(map(str, shown.columns)) + " |"]
    lines.append("|" + "|".join("---" for _ in shown.columns) + "|")
    for row in shown.itertuples(index=False):
        lines.append("| " + " | ".join(_cell(v, digits) for v in row) + " |")
    return "\n".join(lines)


def _latex(frame: pd.DataFrame, digits: int) -> str:
    shown = frame.reset_index()
    spec = "l" * (shown.shape[1] - len(frame.columns)) + "r" * len(frame.columns)
    body = [" & ".join(latex_escape(str(c)) for c in shown.columns) + r" \\", r"\midrule"]
    for row in shown.itertuples(index=False):
        body.append(" & ".join(latex_escape(_cell(v, digits)) for v in row) + r" \\")
    return "\n".join(
        [rf"\begin{{tabular}}{{{spec}}}", r"\toprule", *body, r"\bottomrule", r"\end{tabular}"]
    )


def _html(frame: pd.DataFrame, digits: int) -> str:
    shown = frame.reset_index()
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in shown.columns)
    rows = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_cell(v, digits))}</td>" for v in row) + "</tr>"
        for row in shown.itertuples(index=False)
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"


def three_level_document(res: NestedResults, format: str = "markdown", digits: int = 3) -> str:
    """The fit as a document: ``"markdown"``, ``"latex"`` (complete, ``amsmath`` and
    ``booktabs``) or ``"html"`` (a fragment)."""
    if format not in FORMATS:
        raise MLMError(f"unknown format {format!r}", expected=" or ".join(FORMATS))
    title = f"Three-level model of {res.outcome} ({'REML' if res.reml else 'ML'})"
    units = ", ".join(f"{n} {c}" for n, c in zip(res.n_units, res.clusters, strict=True))
    sample = f"{res.n_obs} observations in {units}; deviance {res.deviance:.3f}"
    fixed, variance = res.fixed_table(digits), res.variance_table(digits + 1)
    fixed["p"] = [format_p(p) for p in res.gamma["p"]]  # APA style: "<.001", not 0.000
    messages = list(res.messages)
    if format == "markdown":
        parts = [f"# {title}", sample, f"```text\n{res.equations('text')}\n```"]
        parts += ["## Fixed effects", _markdown(fixed, digits)]
        parts += ["## Variance components", _markdown(variance, digits + 1)]
        if messages:
            parts += ["## Warnings", "\n".join(f"- {m}" for m in messages)]
        return "\n\n".join(parts)
    if format == "latex":
        lines = [
            r"\documentclass{article}",
            r"\usepackage{amsmath}",
            r"\usepackage{booktabs}",
            r"\begin{document}",
            rf"\section*{{{latex_escape(title)}}}",
            latex_escape(sample),
            r"\[",
            three_level_latex(res.spec, res.design.columns),
            r"\]",
            r"\subsection*{Fixed effects}",
            _latex(fixed, digits),
            r"\subsection*{Variance components}",
            _latex(variance, digits + 1),
        ]
        if messages:
            lines += [r"\subsection*{Warnings}", *(latex_escape(m) + r"\par" for m in messages)]
        return "\n".join([*lines, r"\end{document}"])
    parts = [f"<h3>{html.escape(title)}</h3>", f"<p>{html.escape(sample)}</p>"]
    parts += [f"<pre>{html.escape(res.equations('text'))}</pre>"]
    parts += ["<h4>Fixed effects</h4>", _html(fixed, digits)]
    parts += ["<h4>Variance components</h4>", _html(variance, digits + 1)]
    if messages:
        parts += ["<ul>" + "".join(f"<li>{html.escape(m)}</li>" for m in messages) + "</ul>"]
    return "<div class='mlmwrap-three-level'>" + "".join(parts) + "</div>"
