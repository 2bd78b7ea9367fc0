"""The build-up strategy in one call: fit a sequence of nested models, compare them and track
the variance explained (:func:`build_up`)."""

from __future__ import annotations

import html
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from mlmwrap.analysis.compare import Comparison, compare, model_names
from mlmwrap.analysis.shared.display import (
    format_number,
    format_signed,
    html_table,
    text_table,
    wrap_note,
)
from mlmwrap.analysis.variance_explained import nakagawa_r2, proportional_reduction
from mlmwrap.api.build_up_nested import nested_variance
from mlmwrap.api.fitting import fit
from mlmwrap.api.nested_results import NestedResults
from mlmwrap.api.results import MLMResults
from mlmwrap.errors import DataError
from mlmwrap.language.spec import ModelSpec
from mlmwrap.model.design import INTERCEPT

__all__ = ["BuildUp", "build_up"]


@dataclass(frozen=True)
class BuildUp:
    """A sequence of nested models: their comparison and the variance each explains.

    Attributes
    ----------
    comparison : Comparison
        Likelihood-ratio tests of each model against the previous one (:func:`compare`).
    variance : pandas.DataFrame
        One row per model: ``sigma2`` and ``tau00`` (as fit, REML by default);
        ``sigma2_reduction`` and ``tau00_reduction`` (Raudenbush & Bryk's proportional
        reduction against the previous model; NaN for the first, or where a model has no
        random intercept); ``r2_marginal`` and ``r2_conditional`` (Nakagawa & Schielzeth)
        and their changes from the previous model, ``delta_r2_marginal`` and
        ``delta_r2_conditional``.
    results : tuple of MLMResults
        The fits as estimated (the comparison's ML refits are in ``comparison.results``).
    notes : tuple of str
    """

    comparison: Comparison
    variance: pd.DataFrame
    results: tuple[MLMResults, ...]
    notes: tuple[str, ...] = ()

    @property
    def table(self) -> pd.DataFrame:
        """The comparison table."""
        return self.comparison.table

    def _vcolumns(self) -> list[tuple[str, str]]:
        """(column, header) of the variance table, in its order; the table holds what the
        models have (``tau00`` for two levels, each level's intercept variance for three)."""
        out = []
        for col in self.variance.columns:
            if col.startswith("delta_"):
                out.append((col, "change"))
            elif col.endswith("_reduction"):
                out.append((col, "PRV " + col.removesuffix("_reduction")))
            elif col == "r2_marginal":
                out.append((col, "R2 marg."))
            elif col == "r2_conditional":
                out.append((col, "R2 cond."))
            else:
                out.append((col, col))
        return out

    def _vheaders(self) -> list[str]:
        return ["model"] + [header for _, header in self._vcolumns()]

    def _vrows(self) -> list[list[str]]:
        columns = [col for col, _ in self._vcolumns()]
        return [
            [str(name)]
            + [
                format_signed(row[c]) if c.startswith("delta_") else format_number(row[c], 3)
                for c in columns
            ]
            for name, row in self.variance.iterrows()
        ]

    def _vnote(self) -> str:
        note = (
            "PRV: proportional reduction in variance against the previous model (Raudenbush & Bryk)"
        )
        if "r2_marginal" in self.variance.columns:
            note += (
                "; R2: Nakagawa & Schielzeth marginal (fixed effects) and conditional (fixed "
                "and random), and its change from the previous model"
            )
        return note

    def summary(self) -> str:
        """Both tables as plain text."""
        lines = [self.comparison.summary(), "", "Variance explained (estimates as fit)"]
        lines += text_table(self._vheaders(), self._vrows(), n_text=1)
        lines.append(wrap_note(self._vnote()))
        lines += [wrap_note(f"Note: {n}") for n in self.notes]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    def __repr__(self) -> str:
        names = ", ".join(map(str, self.variance.index))
        return f"<BuildUp of {len(self.results)} models: {names}>"

    def _repr_html_(self) -> str:
        vtable = html_table(
            self._vheaders(), self._vrows(), "Variance explained (estimates as fit)", n_text=1
        )
        foot = "<br>".join(html.escape(x) for x in [self._vnote(), *self.notes])
        return (
            f"<div class='mlmwrap-buildup'>{self.comparison._repr_html_()}{vtable}"
            f"<p>{foot}</p></div>"
        )


_VARIANCE_ORDER = [
    "sigma2",
    "tau00",
    "sigma2_reduction",
    "tau00_reduction",
    "r2_marginal",
    "delta_r2_marginal",
    "r2_conditional",
    "delta_r2_conditional",
]


def _common_rows(fits: list[MLMResults]) -> pd.Index | None:
    """The rows every fit used, or None when they all used the same rows."""
    first = fits[0].design.row_index
    if all(f.design.row_index.equals(first) for f in fits[1:]):
        return None
    common = first
    for f in fits[1:]:
        common = common.intersection(f.design.row_index, sort=False)
    return common


def build_up(
    models: Sequence[str | ModelSpec | MLMResults],
    data: pd.DataFrame | None = None,
    cluster: str | Sequence[str] | None = None,
    names: Sequence[str] | None = None,
    reml: bool = True,
) -> BuildUp:
    """The build-up strategy in one call: fit, compare, and track the variance explained.

    Parameters
    ----------
    models
        From the simplest to the most complex, each nested in the next: equations (text or
        :class:`ModelSpec`) to fit, or fitted results, or a mix.
    data, cluster
        The data and cluster column for the models given as equations.
    names
        A name per model (default ``M1``, ``M2``, ...).
    reml
        How equations are fit (REML by default). The comparison refits by ML where it must
        (see :func:`compare`); the variance table shows the estimates as fit.

    Returns
    -------
    BuildUp
        ``.comparison`` (likelihood-ratio tests, AIC, BIC), ``.variance`` (variance
        components, their proportional reduction from the previous model and Nakagawa's
        R²); ``print()`` it or show it in a notebook.

    Notes
    -----
    Models given as equations are fit on the rows complete for *every* model's variables:
    when listwise deletion would differ between models, they are refit on the rows they
    all share (centering is computed on those rows) and a note says so. Models given
    already fitted must share their rows.

    Examples
    --------
    The seed's build-up on HSB: null model, a level-1 predictor, its random slope, then
    school predictors of the intercept and the slope.

    >>> import mlmwrap
    >>> steps = [
    ...     "mathach = b0 + e\\nb0 = g00 + u0",
    ...     "mathach = b0 + b1*cwc(ses) + e\\nb0 = g00 + u0\\nb1 = g10",
    ...     "mathach = b0 + b1*cwc(ses) + e\\nb0 = g00 + u0\\nb1 = g10 + u1",
    ...     '''mathach = b0 + b1*cwc(ses) + e
    ...        b0 = g00 + g01*meanses + g02*sector + u0
    ...        b1 = g10 + g11*meanses + g12*sector + u1''',
    ... ]
    >>> bu = build_up(steps, mlmwrap.datasets.load_hsb(), cluster="school",
    ...               names=["null", "+cwc(ses)", "+random slope", "+meanses, sector"])
    >>> bu.table[["method", "deviance", "chi2", "df", "p"]].round(3)
                     method   deviance     chi2   df      p
    model
    null                 ML  47115.810      NaN  NaN    NaN
    +cwc(ses)            ML  46720.412  395.398  1.0  0.000
    +random slope        ML  46710.979    9.433  2.0  0.006
    +meanses, sector     ML  46496.430  214.549  4.0  0.000
    >>> bu.variance[["sigma2_reduction", "tau00_reduction", "r2_marginal"]].round(3)
                      sigma2_reduction  tau00_reduction  r2_marginal
    model
    null                           NaN              NaN        0.000
    +cwc(ses)                    0.055           -0.007        0.044
    +random slope                0.008           -0.001        0.044
    +meanses, sector            -0.001            0.726        0.180
    """
    models = list(models)
    if len(models) < 2:
        raise DataError("build_up() needs at least two models", hint="a list of equation sets")
    labels = model_names(names, len(models))
    needs_fit = [not isinstance(m, MLMResults | NestedResults) for m in models]
    if any(needs_fit) and (data is None or cluster is None):
        raise DataError(
            "models given as equations need data= and cluster=",
            hint='build_up([...], data=df, cluster="school")',
        )

    def fit_all(frame: pd.DataFrame | None) -> list[MLMResults]:
        return [
            fit(m, frame, cluster=cluster, reml=reml) if todo else m
            for m, todo in zip(models, needs_fit, strict=True)
        ]

    fits = fit_all(data)
    notes = []
    common = _common_rows(fits)
    if common is not None and all(needs_fit):
        if not data.index.is_unique:
            raise DataError(
                "the models drop different rows (missing values) and the data's index has "
                "duplicate labels, so the common rows cannot be selected",
                hint="data = data.reset_index(drop=True), or drop incomplete rows first",
            )
        notes.append(
            f"listwise deletion differs between the models: all were fit on the {len(common)} "
            f"of {len(data)} rows complete for every model's variables"
        )
        fits = fit_all(data.loc[data.index.isin(common)])
    comparison = compare(*fits, names=labels)
    if any(isinstance(r, NestedResults) for r in fits):
        variance = nested_variance(fits, labels)
        return BuildUp(comparison, variance, tuple(fits), tuple(notes))

    rows = []
    for k, res in enumerate(fits):
        has_u0 = INTERCEPT in res.design.random_terms
        u0 = res.design.random_terms.index(INTERCEPT) if has_u0 else None
        tau00 = float(res.tau.iloc[u0, u0]) if u0 is not None else np.nan
        nak = nakagawa_r2(res)
        row = {
            "sigma2": res.sigma2,
            "tau00": tau00,
            "sigma2_reduction": np.nan,
            "tau00_reduction": np.nan,
            "r2_marginal": nak.marginal,
            "r2_conditional": nak.conditional,
        }
        if k > 0:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # method mix: noted below
                prv = proportional_reduction(res, fits[k - 1])
            row["sigma2_reduction"] = float(prv["reduction"].iloc[-1])
            terms = list(prv["term"])
            if "(intercept)" in terms:
                row["tau00_reduction"] = float(prv["reduction"].iloc[terms.index("(intercept)")])
        rows.append(row)
    variance = pd.DataFrame(rows, index=pd.Index(labels, name="model"))
    variance["delta_r2_marginal"] = variance["r2_marginal"].diff()
    variance["delta_r2_conditional"] = variance["r2_conditional"].diff()
    variance = variance[_VARIANCE_ORDER]
    if len({r.method for r in fits}) > 1:
        notes.append("the models were fit by different methods: their variances are not comparable")
    if (variance["tau00_reduction"] < 0).any() or (variance["sigma2_reduction"] < 0).any():
        notes.append(
            "a negative PRV means the variance grew: sampling error, or (for tau00 after "
            "adding a level-1 predictor) variance that moved between levels; see "
            "mlmwrap.analysis.variance_explained.proportional_reduction"
        )
    return BuildUp(comparison, variance, tuple(fits), tuple(notes))
