"""Where each variable's within and between parts sit in a model (cwc(x) and cmean(x)).

Shared by the within/between/contextual effects (:mod:`mlmwrap.analysis.effects`) and their
correction for unreliable cluster means (:mod:`mlmwrap.analysis.latent`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from mlmwrap.language.expr import Call, Expr, Num, Var

if TYPE_CHECKING:  # pragma: no cover
    from mlmwrap.api.results import MLMResults

__all__ = ["WithinBetweenPair", "find_pairs", "combinations", "classify", "column_key"]

_SHIFTS = ("cgm", "center")  # x minus a constant: the same within/between part as x


@dataclass(frozen=True)
class WithinBetweenPair:
    """Where a variable's within and between parts sit in a model.

    Attributes
    ----------
    variable
        The variable (data column, or expression such as ``log(x)``).
    within_gamma, within_text, within_kind
        The gamma of the level-1 predictor (``gK0``), the predictor as written and
        ``'cwc'`` (cluster-mean centered) or ``'raw'`` (x, cgm(x) or center(x, v));
        ``None`` when the model has no level-1 part of the variable.
    between_gamma, between_text
        The gamma of ``cmean(x)`` in b0's equation and the predictor as written, or ``None``.
    notes
        Conditions the effects hold under (cross-level interactions) or why one is missing.
    """

    variable: str
    within_gamma: str | None
    within_text: str | None
    within_kind: str | None
    between_gamma: str | None
    between_text: str | None
    notes: tuple[str, ...] = field(default=())

    @property
    def complete(self) -> bool:
        return self.within_gamma is not None and self.between_gamma is not None


def column_key(expr: Expr, columns: dict[str, str]) -> str:
    """Text of ``expr`` with each variable replaced by the data column it resolved to."""
    if isinstance(expr, Var):
        return columns.get(expr.name, expr.name)
    if isinstance(expr, Call):
        return f"{expr.func}({', '.join(column_key(a, columns) for a in expr.args)})"
    if isinstance(expr, Num):
        return expr.text()
    return expr.text()


def classify(expr: Expr) -> tuple[str, Expr] | None:
    """('cwc' | 'cmean' | 'raw', the variable) for a predictor, None for anything else.

    Shifting by a constant (cgm, center) changes neither part, so ``cgm(cmean(x))`` is a
    between part and ``cwc(cgm(x))`` a within part of x.
    """
    if isinstance(expr, Call) and expr.func in ("cwc", "cmean"):
        inner = classify(expr.args[0])
        if inner is None or inner[0] != "raw":
            return None
        return expr.func, inner[1]
    if isinstance(expr, Call) and expr.func in _SHIFTS:
        return classify(expr.args[0])
    if isinstance(expr, Var):
        return "raw", expr
    if isinstance(expr, Call) and expr.func not in ("C",):
        return "raw", expr  # a transform such as log(x): its own variable
    return None


def find_pairs(res: MLMResults) -> list[WithinBetweenPair]:
    """Every variable with ``cwc(x)`` at level 1 or ``cmean(x)`` in b0's equation.

    A variable entering only uncentered (``x`` alone) is not listed: its slope blends the
    within and between effects and there is nothing to separate.
    """
    spec = res.spec
    columns = res.design.columns
    labels = set(res.gamma.index)
    within: dict[str, tuple[str | None, str, str, list[str]]] = {}
    categorical: set[str] = set()  # C(x) at level 1: no within part of x to speak of
    for beta in spec.betas[1:]:
        if beta.predictor is None:
            continue
        if _is_level1_category(res, beta.label):
            inner = beta.predictor.args[0] if isinstance(beta.predictor, Call) else beta.predictor
            categorical.add(column_key(inner, columns))
            continue
        found = classify(beta.predictor)
        if found is None or found[0] == "cmean":
            continue
        kind, var = found
        key = column_key(var, columns)
        constant = [g.label for g in beta.gammas if g.predictor is None]
        notes = []
        label = constant[0] if constant and constant[0] in labels else None
        if label is None:
            notes.append(f"{beta.label} has no constant gamma ({beta.label}0), so no within effect")
        others = [g.predictor.text() for g in beta.gammas if g.predictor is not None]
        if others and label is not None:
            notes.append(
                f"{beta.label} = {label} + ... depends on {', '.join(others)}: the within "
                f"effect {label} is the slope where {'they are' if len(others) > 1 else 'it is'} 0"
            )
        if key not in within or within[key][2] == "raw" and kind == "cwc":
            within[key] = (label, beta.predictor.text(), kind, notes)

    between: dict[str, tuple[str, str]] = {}
    for gamma in spec.betas[0].gammas:
        if gamma.predictor is None:
            continue
        found = classify(gamma.predictor)
        if found is None or found[0] != "cmean" or gamma.label not in labels:
            continue
        between.setdefault(column_key(found[1], columns), (gamma.label, gamma.predictor.text()))

    # cmean(x) moderating a slope makes every effect conditional on it
    moderated: dict[str, list[str]] = {}
    for beta in spec.betas[1:]:
        for g in beta.gammas:
            found = classify(g.predictor) if g.predictor is not None else None
            if found is not None and found[0] == "cmean":
                moderated.setdefault(column_key(found[1], columns), []).append(beta.label)

    pairs = []
    for key in dict.fromkeys([*within, *between]):
        w = within.get(key)
        # with C(x) at level 1, cmean(x)'s gamma is no between effect (nor, beyond two
        # categories, a contextual one): no number is better than a wrong one
        b = None if key in categorical else between.get(key)
        if w is not None and w[2] == "raw" and b is None:
            continue  # x alone: nothing to separate
        notes = list(w[3]) if w else []
        if w is None and key in categorical:
            notes.append(
                f"within, between and contextual effects are not available for the level-1 "
                f"categorical predictor C({key}): its slopes are differences between "
                "categories, not a within-cluster slope of a number"
            )
        elif w is None:
            notes.append(
                f"the within effect is not in the model: add cwc({key}) to the level-1 equation"
            )
        if b is None and key not in categorical:
            notes.append(
                f"the between effect is not in the model: add cmean({key}) to the equation for "
                f"{spec.betas[0].label}"
            )
        if key in moderated and b is not None:
            notes.append(
                f"cmean({key}) also predicts {', '.join(moderated[key])} (a cross-level "
                "interaction): the effects hold where the interacting level-1 predictor is 0"
            )
        pairs.append(
            WithinBetweenPair(
                variable=key,
                within_gamma=w[0] if w else None,
                within_text=w[1] if w else None,
                within_kind=w[2] if w else None,
                between_gamma=b[0] if b else None,
                between_text=b[1] if b else None,
                notes=tuple(notes),
            )
        )
    return pairs


def _is_level1_category(res: MLMResults, beta: str) -> bool:
    """Whether beta ``beta`` has a categorical level-1 predictor (one column a category)."""
    d = res.design
    if any(c.beta == beta and getattr(c, "category", None) is not None for c in d.fixed_columns):
        return True
    u = f"u{beta[1:]}["
    return any(lab.startswith(u) for lab in d.random_labels)


def combinations(pair: WithinBetweenPair) -> dict[str, dict[str, float] | None]:
    """The gamma weights of the within, between and contextual effects of ``pair``."""
    w, b = pair.within_gamma, pair.between_gamma
    out: dict[str, dict[str, float] | None] = {"within": None, "between": None, "contextual": None}
    if w is not None:
        out["within"] = {w: 1.0}
    if pair.within_kind == "raw":
        # x = cwc(x) + cmean(x) + constant: cmean's gamma is the contextual effect
        # (not defined without x's own gamma, e.g. b1 = u1: its mean is fixed at 0)
        if b is not None and w is not None:
            out["between"] = {w: 1.0, b: 1.0}
            out["contextual"] = {b: 1.0}
    else:
        if b is not None:
            out["between"] = {b: 1.0}
            if w is not None:
                out["contextual"] = {b: 1.0, w: -1.0}
    return out
