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

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy import stats as sstats

from mlmwrap.analysis.shared.decomposition import combinations, find_pairs

if TYPE_CHECKING:  # pragma: no cover
    from mlmwrap.api.results import MLMResults

__all__ = ["effects", "effect_weights", "effects_section", "linear_combination"]


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
        gamma or combination it came from, e.g. ``'g01 - g10'``), ``weights`` (the same
        combination as a dict, ``{'g01': 1.0, 'g10': -1.0}``; :func:`effect_weights`
        gives them as a matrix) and ``note``. An effect
        the model does not contain is NaN, with a note saying what to add. The table is
        empty when no variable is decomposed.

    Notes
    -----
    The within effect is the constant gamma (``gK0``) of the beta whose level-1 predictor
    is ``cwc(x)`` (or ``x``, ``cgm(x)``); with a random slope it is the average slope, and
    when that beta's equation has level-2 predictors it is the slope where they are 0.
    The between part is ``cmean(x)`` in the equation for b0. With small clusters and a low
    ICC of x the between and contextual effects are biased toward the within effect
    (Lüdtke et al. 2008); see :func:`mlmwrap.analysis.latent.corrected_effects`.

    Examples
    --------
    >>> import mlmwrap
    >>> from mlmwrap.analysis.effects import effects
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
                weights = {}
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
                    "weights": {k: float(v) for k, v in weights.items()},
                    "note": note,
                }
            )
            index.append((pair.variable, effect))
    columns = ["estimate", "se", "z", "p", "ci_lower", "ci_upper", "source", "weights", "note"]
    return pd.DataFrame(
        rows,
        index=pd.MultiIndex.from_tuples(index, names=["variable", "effect"]),
        columns=columns,
    )


def effect_weights(res: MLMResults) -> pd.DataFrame:
    """The weights of each effect's linear combination of the gammas, as a matrix.

    Rows as in :func:`effects`, columns every gamma of the model: ``effects(res)
    ["estimate"]`` is this matrix times ``res.gamma["estimate"]`` and its SE
    ``sqrt(diag(W cov_gamma W'))``. A row of an effect the model does not contain is 0.

    Examples
    --------
    >>> import mlmwrap
    >>> res = mlmwrap.fit('''
    ...     mathach = b0 + b1*cwc(ses) + e
    ...     b0 = g00 + g01*cmean(ses) + u0
    ...     b1 = g10
    ... ''', data=mlmwrap.datasets.load_hsb(), cluster="school")
    >>> effect_weights(res)
                         g00  g01  g10
    variable effect
    ses      within      0.0  0.0  1.0
             between     0.0  1.0  0.0
             contextual  0.0  1.0 -1.0
    """
    table = effects(res)
    out = pd.DataFrame(0.0, index=table.index, columns=list(res.gamma.index))
    for key, weights in table["weights"].items():
        for label, a in weights.items():
            out.loc[key, label] = a
    return out


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
