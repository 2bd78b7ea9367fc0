"""The typeset equations as MathML, which browsers render without MathJax or a network.

The LaTeX of :func:`mlmwrap.report.latex.equations` is an ``aligned`` environment, which
LaTeX-to-MathML converters do not read; so each of its rows is cut at the alignment points
``&`` and each cell converted on its own (with the optional ``latex2mathml`` package,
``pip install "mlmwrap[mathml]"``), the cells laid out in an HTML table. Without the package
:func:`equations_mathml` returns None and the displays show the equations as plain text only
(never raw LaTeX source).

Examples
--------
>>> import mlmwrap
>>> res = mlmwrap.fit("mathach = b0 + e\\nb0 = g00 + u0",
...                   data=mlmwrap.datasets.load_hsb(), cluster="school")
>>> html = equations_mathml(res)
>>> html is None or (html.startswith("<table class='mlmwrap-equations'") and "<math" in html)
True
"""

from __future__ import annotations

import html as _html
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from mlmwrap.api.results import MLMResults

__all__ = ["equations_mathml", "latex_to_mathml"]


def latex_to_mathml(tex: str) -> str | None:
    """One LaTeX formula (no alignment) as inline MathML, or None without latex2mathml."""
    try:
        from latex2mathml.converter import convert
    except ImportError:
        return None
    return convert(tex)


_TOKENS = re.compile(r"\\begin\{[^}]*\}|\\end\{[^}]*\}|\\\\|(?<!\\)&")


def _rows(aligned: str) -> list[list[str]]:
    """The rows of an ``aligned`` body, each cut at its ``&``; environments nested in a
    cell (a matrix) are kept whole."""
    body = aligned.strip()
    body = body.removeprefix("\\begin{aligned}").removesuffix("\\end{aligned}")
    rows: list[list[str]] = [[]]
    depth, start = 0, 0
    for m in _TOKENS.finditer(body):
        token = m.group()
        if token.startswith("\\begin"):
            depth += 1
        elif token.startswith("\\end"):
            depth -= 1
        elif depth == 0:
            rows[-1].append(body[start : m.start()])
            start = m.end()
            if token == "\\\\":
                rows.append([])
    rows[-1].append(body[start:])
    return [r for r in rows if any(c.strip() for c in r)]


def equations_mathml(res: MLMResults, *, digits: int = 3) -> str | None:
    """The equations of :func:`mlmwrap.report.latex.equations` as a table of MathML cells."""
    if latex_to_mathml("x") is None:
        return None
    from mlmwrap.report.latex import equations

    rows = []
    for cells in _rows(equations(res, "latex", digits=digits)):
        tds = []
        for k, cell in enumerate(cells):
            cell = cell.strip()
            align = "right" if k == 2 else "left"
            if cell.startswith("\\text{") and cell.endswith("}") and "$" not in cell:
                content = _html.escape(cell[len("\\text{") : -1])
            elif cell:
                # "&= rhs": the alignment point is before the relation; keep it with the rhs
                content = latex_to_mathml(cell)
            else:
                content = ""
            tds.append(f"<td style='text-align:{align};padding:0.1em 0.3em'>{content}</td>")
        rows.append("<tr>" + "".join(tds) + "</tr>")
    return (
        "<table class='mlmwrap-equations' style='border-collapse:collapse;margin:0.4em 0'>"
        + "".join(rows)
        + "</table>"
    )
