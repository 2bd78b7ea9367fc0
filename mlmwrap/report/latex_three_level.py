r"""LaTeX of a three-level model in the notation of Raudenbush & Bryk (2002, ch. 8).

Level 1 :math:`Y_{ijk} = \pi_{0jk} + \pi_{1jk} a_{ijk} + e_{ijk}`, level 2
:math:`\pi_{pjk} = \beta_{p0k} + \beta_{p1k} X_{jk} + r_{pjk}`, level 3
:math:`\beta_{pqk} = \gamma_{pq0} + \gamma_{pq1} W_{k} + u_{pqk}`.

Examples
--------
>>> from mlmwrap.language.levels import parse_model
>>> spec = parse_model("y = p0 + p1*x + e\np0 = b00 + r0\np1 = b10\nb00 = g000 + u00\n"
...                    "b10 = g100")
>>> print(three_level_latex(spec))
\begin{aligned}
\text{Level 1:}\quad & y_{ijk} = \pi_{0jk} + \pi_{1jk}\,x_{ijk} + e_{ijk} \\
\text{Level 2:}\quad & \pi_{0jk} = \beta_{00k} + r_{0jk} \\
 & \pi_{1jk} = \beta_{10k} \\
\text{Level 3:}\quad & \beta_{00k} = \gamma_{000} + u_{00k} \\
 & \beta_{10k} = \gamma_{100}
\end{aligned}
"""

from __future__ import annotations

from mlmwrap.language.expr import Expr
from mlmwrap.language.nested_spec import NestedSpec
from mlmwrap.report.latex import expr_latex

__all__ = ["three_level_latex"]

_SUB = {1: "ijk", 2: "jk", 3: "k"}


def _coef(letter: str, index: tuple[int, ...], tail: str) -> str:
    digits = "".join(map(str, index)) if all(i < 10 for i in index) else ",".join(map(str, index))
    return f"\\{letter}_{{{digits}{tail}}}"


def _term(coef: str, expr: Expr | None, level: int, columns) -> str:
    return coef if expr is None else f"{coef}\\,{expr_latex(expr, _SUB[level], columns)}"


def three_level_latex(spec: NestedSpec, columns: dict[str, str] | None = None) -> str:
    """An ``aligned`` block with every equation of the model, level by level."""
    rows = []
    level1 = [
        _term(_coef("pi", c.index, "jk"), c.predictor, 1, columns) for c in spec.coefficients[0]
    ]
    outcome = expr_latex(spec.outcome, "ijk", columns)
    rows.append(f"\\text{{Level 1:}}\\quad & {outcome} = {' + '.join(level1)} + e_{{ijk}}")
    first = True
    for p in spec.coefficients[0]:
        terms = [
            _term(_coef("beta", b.index, "k"), b.predictor, 2, columns)
            for b in spec.coefficients[1]
            if b.index[:1] == p.index
        ]
        if p.random:
            terms.append(f"r_{{{p.index[0]}jk}}")
        head = "\\text{Level 2:}\\quad " if first else " "
        rows.append(f"{head}& {_coef('pi', p.index, 'jk')} = {' + '.join(terms)}")
        first = False
    first = True
    for b in spec.coefficients[1]:
        terms = [
            _term(_coef("gamma", g.index, ""), g.predictors[2], 3, columns)
            for g in spec.gammas
            if g.index[:2] == b.index
        ]
        if b.random:
            terms.append(f"u_{{{''.join(map(str, b.index))}k}}")
        head = "\\text{Level 3:}\\quad " if first else " "
        rows.append(f"{head}& {_coef('beta', b.index, 'k')} = {' + '.join(terms)}")
        first = False
    return "\\begin{aligned}\n" + " \\\\\n".join(rows) + "\n\\end{aligned}"
