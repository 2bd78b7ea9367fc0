"""Comparing nested models: likelihood-ratio tests, information criteria, the build-up strategy.

:func:`compare` puts nested models side by side (deviance, parameters, AIC, BIC) and tests
each against the one before it with a likelihood-ratio test, refitting by ML where REML
deviances are not comparable and using the chi-bar-square mixture where a variance is tested
on its boundary. :func:`build_up` runs the build-up strategy in one call: fit a sequence of
models, compare them and show how the variance explained changes from one to the next.

Examples
--------
>>> import mlmwrap
>>> hsb = mlmwrap.datasets.load_hsb()
>>> ri = mlmwrap.fit('''
...     mathach = b0 + b1*cwc(ses) + e
...     b0 = g00 + u0
...     b1 = g10
... ''', hsb, cluster="school")
>>> rc = mlmwrap.fit('''
...     mathach = b0 + b1*cwc(ses) + e
...     b0 = g00 + u0
...     b1 = g10 + u1
... ''', hsb, cluster="school")
>>> cmp = compare(ri, rc, names=["RANCOVA", "random slope"])
>>> cmp.table[["deviance", "n_params", "chi2", "df", "p", "p_naive"]].round(4)
                deviance  n_params    chi2   df       p  p_naive
model
RANCOVA       46723.9956         4     NaN  NaN     NaN      NaN
random slope  46714.2339         6  9.7617  2.0  0.0047   0.0076
"""

from __future__ import annotations

import html
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy import stats as sstats

from mlmwrap.analysis.shared.display import (
    format_number,
    format_p,
    html_table,
    text_table,
    wrap_note,
)
from mlmwrap.analysis.shared.fit_parts import LevelParts, fit_parts
from mlmwrap.analysis.shared.samples import check_same_sample
from mlmwrap.errors import ConvergenceWarning, DataError, SpecificationError
from mlmwrap.model.design import INTERCEPT
from mlmwrap.model.fitted import FittedModel
from mlmwrap.model.nested_design import NestedDesign

if TYPE_CHECKING:  # pragma: no cover
    from mlmwrap.api.results import MLMResults

__all__ = ["Comparison", "compare", "lr_test"]

# relative tolerance for "a column is a linear combination of the other model's columns"
_SPAN_TOL = 1e-8


# -- nesting --------------------------------------------------------------------------------
def _in_span(columns: np.ndarray, basis: np.ndarray) -> np.ndarray:
    """For each column of ``columns``: is it (numerically) in the column space of ``basis``?"""
    if columns.shape[1] == 0:
        return np.zeros(0, dtype=bool)
    if basis.shape[1] == 0:
        return np.linalg.norm(columns, axis=0) == 0
    q, _ = np.linalg.qr(basis)
    resid = columns - q @ (q.T @ columns)
    norms = np.linalg.norm(columns, axis=0)
    return np.linalg.norm(resid, axis=0) <= _SPAN_TOL * np.maximum(norms, 1.0)


def _shown(term: str) -> str:
    return "(intercept)" if term == INTERCEPT else term


@dataclass(frozen=True)
class _Nesting:
    fixed_same: bool  # identical fixed parts (same terms, same columns)
    random_added: int  # number of random effects the larger model adds
    added: str  # what the larger model adds, in words


def _check_nested(small: MLMResults, large: MLMResults, ns: str, nl: str) -> _Nesting:
    """Raise SpecificationError unless ``small`` is nested in ``large``.

    The check is on the designs (both already on the same rows): every fixed-effect column
    of the smaller model must be a linear combination of the larger model's fixed-effect
    columns, and at every level every random-effect column (intercept, slope predictors) of
    the smaller model a linear combination of the larger model's random-effect columns of
    that level; and every covariance the smaller model estimates must be free in the larger
    one (:func:`_check_covariances`). The smaller model is then the larger one with some
    gammas and some variances and covariances set to 0. The test on columns rather than names
    accepts the same predictor written another way (``cgm(ses)`` for ``ses`` when both have
    an intercept) and rejects a predictor that only looks alike (``cwc(ses)`` for ``ses``).
    Two- and three-level fits are checked alike (:func:`fit_parts`).
    """
    ps, pl = fit_parts(small), fit_parts(large)
    fixed_ok = _in_span(ps.X, pl.X)
    missing = [
        f"{label} ({_shown(term)})"
        for label, term, ok in zip(ps.fixed_labels, ps.fixed_terms, fixed_ok, strict=True)
        if not ok
    ]
    several = len(ps.levels) > 1
    for lv_s, lv_l in zip(ps.levels, pl.levels, strict=True):
        random_ok = _in_span(lv_s.Z, lv_l.Z)
        where = f" at the '{lv_s.cluster}' level" if several else ""
        missing += [
            f"{lab} (random effect of {_shown(t)}{where})"
            for lab, t, ok in zip(lv_s.labels, lv_s.terms, random_ok, strict=True)
            if not ok
        ]
    if missing:
        raise SpecificationError(
            f"'{ns}' is not nested in '{nl}': '{nl}' has no {', '.join(missing)} of '{ns}', "
            "so a likelihood-ratio test does not apply",
            hint="a nested model drops terms from the larger one; list models from the smallest "
            "to the largest, or compare non-nested models by AIC/BIC (res.aic, res.bic)",
        )
    freed = [
        c
        for lv_s, lv_l in zip(ps.levels, pl.levels, strict=True)
        for c in _check_covariances(lv_s, lv_l, ns, nl)
    ]
    n_fixed = len(pl.fixed_labels) - len(ps.fixed_labels)
    n_random = sum(len(b.labels) - len(a.labels) for a, b in zip(ps.levels, pl.levels, strict=True))
    if n_fixed < 0 or n_random < 0:  # pragma: no cover - rank-deficient designs only
        raise SpecificationError(f"'{ns}' has more parameters than '{nl}' but is nested in it")
    small_terms = set(ps.fixed_terms)
    added_fixed = [
        lab for lab, t in zip(pl.fixed_labels, pl.fixed_terms, strict=True) if t not in small_terms
    ]
    added_random = []
    for lv_s, lv_l in zip(ps.levels, pl.levels, strict=True):
        small_random = set(lv_s.terms)
        added_random += [
            f"{lab} ({_shown(t)})"
            for lab, t in zip(lv_l.labels, lv_l.terms, strict=True)
            if t not in small_random
        ]
    parts = []
    if added_fixed:
        parts.append("gammas " + ", ".join(added_fixed))
    if added_random:
        parts.append("random " + ", ".join(added_random))
    if freed:
        parts.append("covariances " + ", ".join(freed))
    fixed_same = ps.fixed_terms == pl.fixed_terms and np.allclose(ps.X, pl.X, rtol=1e-12, atol=0)
    return _Nesting(fixed_same, n_random, "; ".join(parts) if parts else "(same model)")


def _check_covariances(small: LevelParts, large: LevelParts, ns: str, nl: str) -> list[str]:
    """Raise unless every covariance ``small`` estimates at this level is free in ``large``
    too; return the covariances ``large`` estimates that ``small`` fixes at 0
    (``cov(u0, u1) = 0``).

    Random effects are matched by their columns (the same predictor); a diagonal tau is then
    nested in the unconstrained one, with df the number of covariances fixed.
    """
    fixed_s, fixed_l = small.fixed_cov, large.fixed_cov
    if not fixed_s.any() and not fixed_l.any():
        return []
    match = []
    for k in range(small.Z.shape[1]):
        same = [
            m
            for m in range(large.Z.shape[1])
            if np.allclose(small.Z[:, k], large.Z[:, m], rtol=1e-12)
        ]
        if not same:
            raise SpecificationError(
                f"cannot tell whether '{ns}' is nested in '{nl}': the random effect "
                f"{small.labels[k]} of '{ns}' is not one of '{nl}''s random effects, and "
                "one of the models fixes covariances at 0",
                hint="write the random effects of both models with the same predictors",
            )
        match.append(same[0])
    labels_l = large.labels
    freed = []
    for i in range(len(match)):
        for j in range(i):
            a, b = match[i], match[j]
            if fixed_l[a, b] and not fixed_s[i, j]:
                raise SpecificationError(
                    f"'{ns}' is not nested in '{nl}': '{nl}' fixes the covariance of "
                    f"{labels_l[b]} and {labels_l[a]} at 0, which '{ns}' estimates",
                    hint="a nested model fixes more covariances at 0 than the larger one, "
                    "not fewer; list models from the smallest to the largest",
                )
            if fixed_s[i, j] and not fixed_l[a, b]:
                freed.append(f"cov({labels_l[min(a, b)]}, {labels_l[max(a, b)]})")
    return freed


# -- the test -------------------------------------------------------------------------------
def _chi2_sf(x: float, df: int) -> float:
    """P(chi2(df) > x), with chi2(0) the point mass at 0."""
    if df == 0:
        return 1.0 if x <= 0 else 0.0
    return float(sstats.chi2.sf(x, df))


def lr_test(chisq: float, df: int, random_added: int) -> tuple[float, float, str]:
    """p-value of a likelihood-ratio statistic, with the boundary correction when due.

    Returns ``(p, p_naive, reference)``: ``p_naive`` from chi2(df), ``p`` from the null
    distribution named by ``reference``.

    When the larger model adds exactly one random effect to ``q`` (with its variance and
    its ``q`` covariances) and ``f`` gammas, the variance is tested on the boundary of its
    space (it cannot be negative) and the statistic's null distribution is the 50:50
    mixture of chi2(df - 1) and chi2(df), df = f + q + 1 (Self & Liang 1987, case 5;
    Stram & Lee 1994); chi2(0) is the point mass at 0, so with q = f = 0 the naive p is
    halved. When it adds two or more random effects at once, the mixture's weights depend
    on the information matrix and have no closed form (Stram & Lee 1994): the naive
    p-value is given, which is conservative (too large), and ``reference`` says so. With
    no random effect added, ``p = p_naive``.

    Examples
    --------
    >>> p, naive, ref = lr_test(9.761656574, 2, random_added=1)
    >>> round(p, 6), round(naive, 6), ref
    (0.004686, 0.007591, '0.5 chi2(1) + 0.5 chi2(2)')
    """
    if df <= 0:
        return float("nan"), float("nan"), "(same number of parameters)"
    naive = _chi2_sf(chisq, df)
    if random_added == 1:
        p = 0.5 * _chi2_sf(chisq, df - 1) + 0.5 * _chi2_sf(chisq, df)
        return p, naive, f"0.5 chi2({df - 1}) + 0.5 chi2({df})"
    if random_added > 1:
        return naive, naive, f"chi2({df}), conservative (boundary)"
    return naive, naive, f"chi2({df})"


# -- the comparison ------------------------------------------------------------------------
@dataclass(frozen=True)
class Comparison:
    """Nested models side by side, each tested against the one before it.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per model, in the order given, indexed by model name. Columns:
        ``method`` (the deviances' criterion: ``REML`` or ``ML``), ``refit`` (True when
        the model was fit by REML and refit by ML for this table), ``deviance`` (-2 log
        likelihood, or the REML criterion), ``loglik`` (``-deviance / 2``), ``n_params``
        (gammas, distinct tau entries, sigma2), ``aic``, ``bic``; then, against the
        previous model: ``added`` (what this model adds), ``chi2`` (the likelihood-ratio
        statistic, the drop in deviance), ``df`` (the difference in parameters), ``p``,
        ``p_naive`` (from chi2(df)) and ``reference`` (the null distribution ``p`` is
        computed from; see :func:`lr_test`).
    results : tuple of MLMResults
        The fits the table was computed from (the ML refits where there were any).
    notes : tuple of str
        How the deviances were obtained and anything to beware of.
    """

    table: pd.DataFrame
    results: tuple[MLMResults, ...]
    notes: tuple[str, ...] = field(default=())

    def _rows(self) -> list[list[str]]:
        t = self.table
        return [
            [
                str(name),
                row["method"] + (" (refit)" if row["refit"] else ""),
                format_number(row["deviance"], 3),
                format_number(row["loglik"], 3),
                str(int(row["n_params"])),
                format_number(row["aic"], 3),
                format_number(row["bic"], 3),
                format_number(row["chi2"], 3),
                "" if not np.isfinite(row["df"]) else str(int(row["df"])),
                format_p(row["p"]),
                format_p(row["p_naive"]),
            ]
            for name, row in t.iterrows()
        ]

    _HEADERS = "model method deviance logLik params AIC BIC chi2 df p p_naive".split()

    def _footer(self) -> list[str]:
        lines = []
        for name, row in self.table.iterrows():
            if isinstance(row["added"], str) and row["added"]:
                lines.append(f"{name} adds {row['added']}; p from {row['reference']}")
        return lines + [f"Note: {n}" for n in self.notes]

    def _footer_text(self) -> list[str]:
        return [wrap_note(line) for line in self._footer()]

    def summary(self) -> str:
        """The table as plain text, with what each model adds and the notes."""
        lines = ["Model comparison (likelihood-ratio tests against the previous model)"]
        lines += text_table(self._HEADERS, self._rows(), n_text=2)
        lines += self._footer_text()
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    def __repr__(self) -> str:
        names = ", ".join(map(str, self.table.index))
        return f"<Comparison of {len(self.table)} models: {names}>"

    def _repr_html_(self) -> str:
        table = html_table(
            self._HEADERS,
            self._rows(),
            "Model comparison (likelihood-ratio tests against the previous model)",
            n_text=2,
        )
        foot = "<br>".join(html.escape(line) for line in self._footer())
        return f"<div class='mlmwrap-comparison'>{table}<p>{foot}</p></div>"


def _refit_ml(res: MLMResults) -> MLMResults:
    return res.refit(reml=False)


def _as_results(models: tuple) -> list[MLMResults]:
    if len(models) == 1 and isinstance(models[0], list | tuple):
        models = tuple(models[0])
    for k, m in enumerate(models):
        if not isinstance(m, FittedModel) and not isinstance(
            getattr(m, "design", None), NestedDesign
        ):
            raise DataError(
                f"model {k + 1} is a {type(m).__name__}, not a fitted model (MLMResults)",
                hint="pass fitted models: compare(mlmwrap.fit(...), mlmwrap.fit(...)); "
                "to fit from equations in one call, use mlmwrap.build_up([...], data, cluster)",
            )
    return list(models)


def model_names(names: Sequence[str] | None, n: int) -> list[str]:
    if names is None:
        return [f"M{k + 1}" for k in range(n)]
    names = [str(x) for x in names]
    if len(names) != n:
        raise DataError(f"{len(names)} names for {n} models", hint="give one name per model")
    if len(set(names)) != n:
        raise DataError(f"model names must differ: {names}")
    return names


def compare(
    *results: MLMResults,
    names: Sequence[str] | None = None,
    refit_ml: bool | str = "auto",
) -> Comparison:
    """Compare nested models with likelihood-ratio tests, AIC and BIC.

    Parameters
    ----------
    *results
        Fitted models from the smallest to the largest, each nested in the next (or one
        list of them). All must be fit to the same rows of the same data (the same
        listwise deletion) with the same outcome and clusters.
    names
        A name per model (default ``M1``, ``M2``, ...).
    refit_ml
        ``"auto"`` (default): refit REML fits by ML only where their REML criteria are not
        comparable (see Notes). ``True``: refit every REML fit by ML, e.g. to test the
        random part by ML as some texts do (lme4's ``anova(refit = TRUE)`` on models with
        the same fixed part). ``False``: never refit; refused when the fixed parts differ
        and a model is fit by REML.

    Returns
    -------
    Comparison
        ``.table`` (a DataFrame), ``.notes``; ``print()`` it or show it in a notebook.

    Raises
    ------
    DataError
        The models were fit to different rows (e.g. a variable with missing values in one
        model only), outcomes or clusters.
    SpecificationError
        A model is not nested in the next one (see below).

    Notes
    -----
    *Which deviances.* When all models are fit by REML and have the same fixed part, their
    REML criteria are compared (lme4's ``anova(refit = FALSE)``): the test is about the
    random part. Otherwise the REML criteria of models with different fixed parts are not
    comparable (the REML likelihood is that of residual contrasts that differ between the
    models), so every REML fit is refit by ML (``mlmwrap.fit(..., reml=False)``, as lme4's
    ``anova`` does) and ``refit`` and the notes say so.

    *Nesting.* Model A is nested in B when every fixed-effect column of A is a linear
    combination of B's fixed-effect columns and every random-effect column of A one of
    B's random-effect columns (checked numerically on the designs, so ``cgm(ses)`` and
    ``ses`` count as the same predictor next to an intercept, and ``cwc(ses)`` and ``ses``
    do not), and every covariance A estimates is estimated by B too (``cov(u0, u1) = 0``
    lines: a diagonal tau is nested in the unconstrained one, df = the covariances fixed;
    ``b1 = u1``, a random effect with mean 0, is nested in ``b1 = g10 + u1``, df = 1).

    *Boundary.* When B adds one random effect to A's ``q``, the p-value is from the 50:50
    mixture of chi2(df - 1) and chi2(df) (Self & Liang 1987; Stram & Lee 1994), and
    ``p_naive`` from chi2(df) is given beside it; see :func:`lr_test` for the general rule.

    Examples
    --------
    >>> import mlmwrap
    >>> hsb = mlmwrap.datasets.load_hsb()
    >>> rc = mlmwrap.fit('''
    ...     mathach = b0 + b1*cwc(ses) + e
    ...     b0 = g00 + u0
    ...     b1 = g10 + u1
    ... ''', hsb, cluster="school")
    >>> isao = mlmwrap.fit('''
    ...     mathach = b0 + b1*cwc(ses) + e
    ...     b0 = g00 + g01*meanses + g02*sector + u0
    ...     b1 = g10 + g11*meanses + g12*sector + u1
    ... ''', hsb, cluster="school")
    >>> cmp = compare(rc, isao, names=["RC", "ISAO"])
    >>> cmp.table[["method", "refit", "deviance", "n_params", "aic", "bic"]].round(3)
          method  refit   deviance  n_params        aic        bic
    model
    RC        ML   True  46710.979         6  46722.979  46764.257
    ISAO      ML   True  46496.430        10  46516.430  46585.228
    >>> row = cmp.table.loc["ISAO"]
    >>> row["added"], round(float(row["chi2"]), 3), int(row["df"]), row["reference"]
    ('gammas g01, g02, g11, g12', 214.549, 4, 'chi2(4)')
    """
    fits = _as_results(results)
    if len(fits) < 2:
        raise DataError("compare() needs at least two models", hint="compare(res_small, res_large)")
    labels = model_names(names, len(fits))
    for k in range(len(fits) - 1):
        check_same_sample(fits[k], fits[k + 1], labels[k], labels[k + 1])
    nesting = [
        _check_nested(fits[k], fits[k + 1], labels[k], labels[k + 1]) for k in range(len(fits) - 1)
    ]

    notes = []
    if refit_ml not in ("auto", True, False):
        raise DataError(
            f"refit_ml must be 'auto', True or False, not {refit_ml!r}",
            hint="'auto' refits by ML only where REML criteria are not comparable",
        )
    all_reml = all(r.reml for r in fits)
    fixed_same = all(n.fixed_same for n in nesting)
    if refit_ml is False and any(r.reml for r in fits) and not (all_reml and fixed_same):
        why = "differ in their fixed parts" if not fixed_same else "were fit by different methods"
        raise SpecificationError(
            f"the models {why}, so their REML criteria cannot be compared without refitting by ML",
            hint="use refit_ml='auto' (the default) or refit_ml=True, or fit them with reml=False",
        )
    if refit_ml is True and any(r.reml for r in fits):
        method = "ML"
        used = [_refit_ml(r) if r.reml else r for r in fits]
        for k in range(len(used) - 1):
            check_same_sample(used[k], used[k + 1], labels[k], labels[k + 1])
        notes.append("refit_ml=True: every REML fit was refit by ML for this table")
    elif all_reml and fixed_same:
        method = "REML"
        used = fits
        notes.append(
            "the models share their fixed part: REML deviances compared (the tests are about "
            "the random part)"
        )
    else:
        method = "ML"
        used = [_refit_ml(r) if r.reml else r for r in fits]
        for k in range(len(used) - 1):  # a refit reads res.data again: same rows still?
            check_same_sample(used[k], used[k + 1], labels[k], labels[k + 1])
        if not all(n.fixed_same for n in nesting) and any(r.reml for r in fits):
            notes.append(
                "the models differ in their fixed parts and were fit by REML: every REML model "
                "was refit by ML for this table (REML deviances of different fixed parts are "
                "not comparable)"
            )
        elif any(r.reml for r in fits):
            notes.append(
                "the models were fit by different methods: the REML fits were refit by ML for "
                "this table"
            )

    rows = []
    for k, res in enumerate(used):
        row = {
            "method": method,
            "refit": res is not fits[k],
            "deviance": res.deviance,
            "loglik": -res.deviance / 2.0,
            "n_params": res.n_params,
            "aic": res.aic,
            "bic": res.bic,
            "added": "",
            "chi2": np.nan,
            "df": np.nan,
            "p": np.nan,
            "p_naive": np.nan,
            "reference": "",
        }
        if k > 0:
            prev = used[k - 1]
            nest = nesting[k - 1]
            drop = prev.deviance - res.deviance
            scale = 1e-7 * max(1.0, abs(prev.deviance))
            if drop < -scale:
                warnings.warn(
                    f"'{labels[k]}' fits worse than the smaller '{labels[k - 1]}' nested in "
                    f"it (deviance {res.deviance:.4f} > {prev.deviance:.4f}): one of the fits "
                    "did not reach its optimum; the statistic is set to 0",
                    ConvergenceWarning,
                    stacklevel=2,
                )
                notes.append(
                    f"'{labels[k]}' has a larger deviance than '{labels[k - 1]}': check both "
                    "fits' convergence"
                )
            chisq = max(drop, 0.0)
            df = res.n_params - prev.n_params
            p, naive, ref = lr_test(chisq, df, nest.random_added)
            if nest.random_added > 1:
                notes.append(
                    f"'{labels[k]}' adds {nest.random_added} random effects at once: the "
                    "boundary-corrected null distribution has no closed form, so p is the "
                    "naive chi-square p-value, which is too large (conservative); add random "
                    "effects one at a time for an exact mixture test"
                )
            if res.singular and nest.random_added:
                notes.append(
                    f"'{labels[k]}' is a singular fit (a variance at 0 or a correlation of "
                    "+-1): the added random effect is not supported by the data"
                )
            if prev.singular and nest.random_added:
                notes.append(
                    f"'{labels[k - 1]}' is itself a singular fit: the mixture p-value assumes "
                    "its variances are positive, so treat p as approximate"
                )
            row.update(added=nest.added, chi2=chisq, df=df, p=p, p_naive=naive, reference=ref)
        rows.append(row)
    table = pd.DataFrame(rows, index=pd.Index(labels, name="model"))
    table["n_params"] = table["n_params"].astype(int)
    table["df"] = table["df"].astype(float)
    return Comparison(table, tuple(used), tuple(notes))


# -- the build-up strategy ------------------------------------------------------------------
