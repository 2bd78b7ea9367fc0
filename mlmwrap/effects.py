"""Within-cluster, between-cluster and contextual effects of level-1 variables.

A level-1 variable ``x`` and its cluster mean ``cmean(x)`` in the same model split the
effect of ``x`` in two (Raudenbush & Bryk 2002, section 5.2; the seed notes' "Adding the
mean back"). Two parametrizations fit the same model:

=========================================  ===========  ===========  =============
level 1 / level 2 (b0's equation)           within       between      contextual
=========================================  ===========  ===========  =============
``b1*cwc(x)`` with ``g01*cmean(x)``         g10          g01          g01 - g10
``b1*x`` (or ``cgm(x)``) with ``cmean(x)``  g10          g10 + g01    g01
=========================================  ===========  ===========  =============

The *within* effect is the expected difference in y between two members of the same
cluster who differ by one unit of x; the *between* effect, between two clusters whose
means of x differ by one unit; the *contextual* effect (between minus within), between two
people with the same x in clusters whose means differ by one unit.

:func:`effects` finds every such variable in a fitted model and reports the three effects
with standard errors (delta method on the gammas' covariance), whichever parametrization
was written. Only ``cmean(x)`` in the equation for b0 counts as the between part: a
level-2 column that happens to hold the cluster means (e.g. HSB's ``meanses``) is not
recognized, because mlmwrap cannot know that it is the mean of x on the estimation sample.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy import stats as sstats

from .expr import Call, Expr, Num, Var

if TYPE_CHECKING:  # pragma: no cover
    from .results import MLMResults

__all__ = ["effects", "effects_section", "find_pairs", "WithinBetweenPair"]

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


def _key(expr: Expr, columns: dict[str, str]) -> str:
    """Text of ``expr`` with each variable replaced by the data column it resolved to."""
    if isinstance(expr, Var):
        return columns.get(expr.name, expr.name)
    if isinstance(expr, Call):
        return f"{expr.func}({', '.join(_key(a, columns) for a in expr.args)})"
    if isinstance(expr, Num):
        return expr.text()
    return expr.text()


def _classify(expr: Expr) -> tuple[str, Expr] | None:
    """('cwc' | 'cmean' | 'raw', the variable) for a predictor, None for anything else.

    Shifting by a constant (cgm, center) changes neither part, so ``cgm(cmean(x))`` is a
    between part and ``cwc(cgm(x))`` a within part of x.
    """
    if isinstance(expr, Call) and expr.func in ("cwc", "cmean"):
        inner = _classify(expr.args[0])
        if inner is None or inner[0] != "raw":
            return None
        return expr.func, inner[1]
    if isinstance(expr, Call) and expr.func in _SHIFTS:
        return _classify(expr.args[0])
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
    for beta in spec.betas[1:]:
        if beta.predictor is None:
            continue
        found = _classify(beta.predictor)
        if found is None or found[0] == "cmean":
            continue
        kind, var = found
        key = _key(var, columns)
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
        found = _classify(gamma.predictor)
        if found is None or found[0] != "cmean" or gamma.label not in labels:
            continue
        between.setdefault(_key(found[1], columns), (gamma.label, gamma.predictor.text()))

    # cmean(x) moderating a slope makes every effect conditional on it
    moderated: dict[str, list[str]] = {}
    for beta in spec.betas[1:]:
        for g in beta.gammas:
            found = _classify(g.predictor) if g.predictor is not None else None
            if found is not None and found[0] == "cmean":
                moderated.setdefault(_key(found[1], columns), []).append(beta.label)

    pairs = []
    for key in dict.fromkeys([*within, *between]):
        w = within.get(key)
        b = between.get(key)
        if w is not None and w[2] == "raw" and b is None:
            continue  # x alone: nothing to separate
        notes = list(w[3]) if w else []
        if w is None:
            notes.append(
                f"the within effect is not in the model: add cwc({key}) to the level-1 equation"
            )
        if b is None:
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


def combinations(pair: WithinBetweenPair) -> dict[str, dict[str, float] | None]:
    """The gamma weights of the within, between and contextual effects of ``pair``."""
    w, b = pair.within_gamma, pair.between_gamma
    out: dict[str, dict[str, float] | None] = {"within": None, "between": None, "contextual": None}
    if w is not None:
        out["within"] = {w: 1.0}
    if pair.within_kind == "raw":
        # x = cwc(x) + cmean(x) + constant: cmean's gamma is the contextual effect
        if b is not None:
            out["between"] = {w: 1.0, b: 1.0}
            out["contextual"] = {b: 1.0}
    else:
        if b is not None:
            out["between"] = {b: 1.0}
            if w is not None:
                out["contextual"] = {b: 1.0, w: -1.0}
    return out


def _source(weights: dict[str, float]) -> str:
    parts = []
    for i, (label, a) in enumerate(weights.items()):
        sign = "-" if a < 0 else "+"
        parts.append(label if i == 0 and a > 0 else f"{sign} {label}")
    return " ".join(parts)


def linear_combination(res: MLMResults, weights: dict[str, float]) -> tuple[float, float]:
    """Estimate and standard error of ``sum(a * gamma)`` (delta method, exact for sums)."""
    labels = list(weights)
    a = np.array([weights[k] for k in labels])
    est = float(a @ res.gamma.loc[labels, "estimate"].to_numpy())
    cov = res.cov_gamma.loc[labels, labels].to_numpy()
    return est, float(np.sqrt(a @ cov @ a))


def effects(res: MLMResults) -> pd.DataFrame:
    """Within-cluster, between-cluster and contextual effects of each decomposed variable.

    Parameters
    ----------
    res
        A fitted model (:func:`mlmwrap.fit`).

    Returns
    -------
    pandas.DataFrame
        Indexed by ``(variable, effect)`` with effect ``within``, ``between`` and
        ``contextual`` (= between - within), three rows per variable that has ``cwc(x)``
        at level 1 or ``cmean(x)`` in b0's equation. Columns: ``estimate``, ``se``
        (model-based, delta method on :attr:`MLMResults.cov_gamma`), ``z``, ``p``
        (two-sided, normal), ``ci_lower``, ``ci_upper`` (95% Wald), ``source`` (the
        gamma or combination it came from, e.g. ``'g01 - g10'``) and ``note``. An effect
        the model does not contain is NaN, with a note saying what to add. The table is
        empty when no variable is decomposed.

    Notes
    -----
    The within effect is the constant gamma (``gK0``) of the beta whose level-1 predictor
    is ``cwc(x)`` (or ``x``, ``cgm(x)``); with a random slope it is the average slope, and
    when that beta's equation has level-2 predictors it is the slope where they are 0.
    The between part is ``cmean(x)`` in the equation for b0. With small clusters and a low
    ICC of x the between and contextual effects are biased toward the within effect
    (Lüdtke et al. 2008); see :func:`mlmwrap.latent.corrected_effects`.

    Examples
    --------
    >>> import mlmwrap
    >>> from mlmwrap.effects import effects
    >>> res = mlmwrap.fit('''
    ...     mathach = b0 + b1*cwc(ses) + e
    ...     b0 = g00 + g01*cmean(ses) + u0
    ...     b1 = g10
    ... ''', data=mlmwrap.datasets.load_hsb(), cluster="school")
    >>> effects(res)[["estimate", "se", "source"]].round(3)
                        estimate     se     source
    variable effect
    ses      within        2.191  0.109        g10
             between       5.866  0.362        g01
             contextual    3.675  0.378  g01 - g10
    """
    crit = sstats.norm.ppf(0.975)
    rows, index = [], []
    for pair in find_pairs(res):
        note = "; ".join(pair.notes)
        for effect, weights in combinations(pair).items():
            if weights is None:
                est = se = np.nan
                source = ""
            else:
                est, se = linear_combination(res, weights)
                source = _source(weights)
            z = est / se if se > 0 else np.nan
            rows.append(
                {
                    "estimate": est,
                    "se": se,
                    "z": z,
                    "p": float(2.0 * sstats.norm.sf(abs(z))) if np.isfinite(z) else np.nan,
                    "ci_lower": est - crit * se,
                    "ci_upper": est + crit * se,
                    "source": source,
                    "note": note,
                }
            )
            index.append((pair.variable, effect))
    columns = ["estimate", "se", "z", "p", "ci_lower", "ci_upper", "source", "note"]
    return pd.DataFrame(
        rows,
        index=pd.MultiIndex.from_tuples(index, names=["variable", "effect"]),
        columns=columns,
    )


def _fmt(x: float, width: int, digits: int = 3) -> str:
    return f"{x:{width}.{digits}f}" if np.isfinite(x) else f"{'NA':>{width}}"


def effects_section(res: MLMResults) -> list[str]:
    """Plain-text lines of the within/between/contextual table for ``summary()``.

    Empty when no variable has both its within and its between part in the model.

    Examples
    --------
    >>> import mlmwrap
    >>> res = mlmwrap.fit('''
    ...     mathach = b0 + b1*ses + e
    ...     b0 = g00 + g01*cmean(ses) + u0
    ...     b1 = g10
    ... ''', data=mlmwrap.datasets.load_hsb(), cluster="school")
    >>> print("\\n".join(effects_section(res)))
    Within, between and contextual effects (contextual = between - within)
      variable  effect      estimate       SE        z      p   95% CI            from
      ses       within         2.191    0.109    20.16  <.001   [1.978, 2.404]    g10
                between        5.866    0.362    16.22  <.001   [5.157, 6.575]    g10 + g01
                contextual     3.675    0.378     9.73  <.001   [2.935, 4.415]    g01
    """
    pairs = find_pairs(res)
    if not any(p.complete for p in pairs):
        return []
    table = effects(res)
    var_w = max([len(str(v)) for v in table.index.get_level_values(0)] + [8])
    lines = [
        "Within, between and contextual effects (contextual = between - within)",
        f"  {'variable':<{var_w}}  {'effect':<10} {'estimate':>9} {'SE':>8} {'z':>8} "
        f"{'p':>6}   {'95% CI':<17} from",
    ]
    notes = []
    for (variable, effect), row in table.iterrows():
        name = variable if effect == "within" else ""
        p = row["p"]
        p_text = "NA" if not np.isfinite(p) else ("<.001" if p < 0.001 else f"{p:.3f}")
        ci = (
            f"[{row['ci_lower']:.3f}, {row['ci_upper']:.3f}]"
            if np.isfinite(row["ci_lower"])
            else "not in the model"
        )
        lines.append(
            f"  {name:<{var_w}}  {effect:<10} {_fmt(row['estimate'], 9)} {_fmt(row['se'], 8)} "
            f"{_fmt(row['z'], 8, 2)} {p_text:>6}   {ci:<17} {row['source']}".rstrip()
        )
        if effect == "within" and row["note"]:
            notes.extend(f"{variable}: {n}" for n in row["note"].split("; "))
    lines.extend(f"  Note: {n}" for n in notes)
    return lines
