"""Predictions from a fitted model, on the estimation sample or on new data.

A prediction is the fixed part ``X gamma`` plus, for a cluster that was in the fit, its
empirical Bayes random effects ``Z u_j``. The design for new data is rebuilt from the
model's own expressions (``res.spec``) with the *fit's* centering constants, so that
``cwc(ses)`` means the same thing in a prediction as it did in the fit:

- ``cwc(x)`` and ``cmean(x)`` of a cluster that was in the fit use that cluster's mean of
  ``x`` on the estimation sample; of a cluster that was not, its own mean of ``x`` in
  ``newdata`` (the only information there is about it).
- ``cgm(x)`` subtracts the fit's grand mean (over clusters for a level-2 variable, over
  rows for a level-1 variable, as in the fit); ``center(x, v)`` subtracts ``v``.
- Raw variables (``ses``, ``meanses``, ``sector``) are always read from ``newdata``.

So ``predict(res, res.data)`` reproduces the fitted values row for row, and a new student
in a known school is centered at that school's mean, as HLM's and lme4's users who center
by hand before fitting would do it.

A row with a missing (or undefined, e.g. ``log`` of a negative number) value in a
predictor it needs gets ``NaN``; a cluster not in the fit gets the fixed part only (its
random effects are set to their expected value, 0). Both are said in a
:class:`PredictionWarning` that gives the counts; ``detail=True`` returns the parts and a
``cluster_known`` flag per row.

Examples
--------
>>> import mlmwrap, pandas as pd
>>> res = mlmwrap.fit('''
...     mathach = b0 + b1*cwc(ses) + e
...     b0 = g00 + g01*meanses + u0
...     b1 = g10 + u1
... ''', data=mlmwrap.datasets.load_hsb(), cluster="school")
>>> predict(res).head(3).round(3)
0    7.293
1    9.448
2    9.586
Name: prediction, dtype: float64
>>> new = pd.DataFrame({"school": [1224, 9999], "ses": [0.5, 0.5], "meanses": [-0.43, 0.2]})
>>> predict(res, new, detail=True).round(3)  # school 9999 is new: fixed part only, warned
    fixed  random  prediction  cluster_known
0  12.158  -0.226      11.931           True
1  13.825   0.000      13.825          False
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from mlmwrap.errors import PredictionWarning
from mlmwrap.model.empirical_bayes import empirical_bayes
from mlmwrap.model.new_design import NewDesign, new_design, uses_cluster_means

if TYPE_CHECKING:  # pragma: no cover
    from mlmwrap.api.results import MLMResults

__all__ = ["PredictionWarning", "predict"]


def predict(
    res: MLMResults,
    newdata: pd.DataFrame | None = None,
    random: bool = True,
    detail: bool = False,
) -> pd.Series | pd.DataFrame:
    """Predicted outcome: the fixed part, plus the cluster's empirical Bayes effects.

    Parameters
    ----------
    res
        A fitted model.
    newdata
        Rows to predict (the outcome is not needed). ``None``: the fitted values on the
        estimation sample, ``X gamma + Z u_j`` (indexed like the fitted rows).
    random
        Add the random effects ``Z u_j`` of clusters that were in the fit (default). With
        ``False``, the fixed part ``X gamma`` only (the population-average prediction,
        lme4's ``re.form = NA``).
    detail
        Return a DataFrame with columns ``fixed`` (``X gamma``), ``random`` (``Z u_j``; 0
        for a cluster not in the fit), ``prediction`` and ``cluster_known`` instead of the
        predictions alone.

    Returns
    -------
    pandas.Series
        ``prediction``, aligned to ``newdata``'s index. ``NaN`` where a predictor the row
        needs is missing or undefined, or where the cluster id is missing and the model
        needs the cluster.

    Warns
    -----
    PredictionWarning
        When rows of clusters not in the fit get the fixed part only (with counts and
        example ids), and when rows get ``NaN``.

    Notes
    -----
    Centering in ``newdata`` uses the fit's constants: the cluster means of the estimation
    sample for clusters in the fit, the cluster's own mean in ``newdata`` for new ones,
    the fit's grand mean for ``cgm`` (see the module's documentation).

    Examples
    --------
    >>> import mlmwrap, pandas as pd
    >>> hsb = mlmwrap.datasets.load_hsb()
    >>> res = mlmwrap.fit("mathach = b0 + b1*cgm(ses) + e\\nb0 = g00 + u0\\nb1 = g10",
    ...                   data=hsb, cluster="school")
    >>> new = pd.DataFrame({"school": [1224, 1224], "ses": [-1.0, 1.0]})
    >>> predict(res, new).round(3).tolist()
    [8.634, 13.414]
    >>> predict(res, new, random=False).round(3).tolist()
    [10.267, 15.048]
    """
    beta = res.optimum.beta
    if newdata is None:
        d = res.design
        fixed = d.X @ beta
        rnd = np.zeros_like(fixed)
        if random:
            u, _ = empirical_bayes(res.optimum.evaluation, res.cluster_stats)
            rnd = np.einsum("nq,nq->n", d.Z, u[d.codes])
        known = np.ones(len(fixed), dtype=bool)
        return _output(fixed, rnd, known, d.row_index, detail)

    nd = new_design(res, newdata, need_cluster=random)
    with np.errstate(invalid="ignore"):
        fixed = nd.X @ beta
    known = nd.fit_position >= 0
    rnd = np.zeros(len(fixed))
    if random:
        u, _ = empirical_bayes(res.optimum.evaluation, res.cluster_stats)
        rnd[known] = np.einsum("nq,nq->n", nd.Z[known], u[nd.fit_position[known]])
        # The random part needs the cluster: a missing id is a missing value.
        fixed = np.where(nd.cluster_missing, np.nan, fixed)
        rnd[~np.isfinite(fixed)] = np.nan
    _warn(res, newdata, nd, fixed, random)
    return _output(fixed, rnd, known, nd.index, detail)


def _output(fixed, rnd, known, index, detail: bool):
    prediction = fixed + rnd
    if detail:
        return pd.DataFrame(
            {"fixed": fixed, "random": rnd, "prediction": prediction, "cluster_known": known},
            index=index,
        )
    return pd.Series(prediction, index=index, name="prediction")


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _warn(res: MLMResults, newdata: pd.DataFrame, nd: NewDesign, fixed, random: bool) -> None:
    cluster = res.design.cluster
    bad = ~np.isfinite(fixed)
    if random:
        new_rows = (nd.fit_position < 0) & ~nd.cluster_missing & ~bad
        if new_rows.any():
            ids = pd.unique(newdata[cluster].to_numpy()[new_rows]).tolist()
            example = ", ".join(repr(i) for i in ids[:3]) + (" ..." if len(ids) > 3 else "")
            hint = ""
            if not (nd.fit_position >= 0).any():
                hint = (
                    f"; none of newdata's clusters is in the fit -- check that '{cluster}' "
                    "has the same type and values as in the data the model was fitted to"
                )
            n_rows = int(new_rows.sum())
            warnings.warn(
                f"{_count(n_rows, 'row')} in {_count(len(ids), 'cluster')} not in the fit "
                f"({example}): predicted by the fixed part only (random effects set to 0, "
                f"their expected value){hint}",
                PredictionWarning,
                stacklevel=3,
            )
    if bad.any():
        why = []
        if nd.cluster_missing[bad].any() and (random or uses_cluster_means(res.spec)):
            why.append(f"{int(nd.cluster_missing[bad].sum())} with no cluster id")
        warnings.warn(
            f"{int(bad.sum())} of {_count(len(fixed), 'row')} get NaN: a predictor they need is "
            "missing, undefined (e.g. log of a negative value) or a category the fit did "
            "not have" + (f" ({'; '.join(why)})" if why else ""),
            PredictionWarning,
            stacklevel=3,
        )
