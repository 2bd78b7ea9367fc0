"""Predictions of a three-level model on new rows, with the fit's centering constants.

The rules are those of two-level predictions (:mod:`mlmwrap.analysis.predict`), level by
level: ``cwc(x)`` and ``cmean(x)`` of a unit that was in the fit use that unit's means on the
estimation sample, of a unit that was not its own means in the new rows; ``cgm(x)``
subtracts the fit's grand mean (over rows, level-2 units or level-3 units, as in the fit).
A level-2 unit is known when its id *and* its level-3 unit's id were in the fit. The random
effects of known units are their empirical Bayes estimates; unknown units get 0.

The new rows are appended to the fit's rows and the design is rebuilt on both, with the
fit's rows as the reference for every centering constant
(:func:`~mlmwrap.model.nested_design.build_nested_design`), so a prediction uses exactly the
expressions, categories and columns of the fit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from mlmwrap.errors import DataError
from mlmwrap.model.nested_design import NestedDesign, build_nested_design, resolve_columns

__all__ = ["NestedPrediction", "predict_nested"]


@dataclass(frozen=True)
class NestedPrediction:
    """Per new row (indexed like ``newdata``): ``fixed`` (X gamma), ``random`` (the known
    units' EB effects, 0 for unknown units), NaN where a predictor is missing; ``known``: one
    boolean column per cluster column, True where that level's unit was in the fit."""

    fixed: pd.Series
    random: pd.Series
    known: pd.DataFrame


def predict_nested(
    design: NestedDesign,
    beta: np.ndarray,
    effects: list[np.ndarray],
    newdata: pd.DataFrame,
) -> NestedPrediction:
    """Fixed and random parts of the prediction for ``newdata``.

    ``effects``: per level from 2 up, the EB estimates of that level's units (``(J, q)``, in
    the order of ``design.unit_ids``).

    Raises
    ------
    DataError
        ``newdata`` lacks a predictor or cluster column, or has a category the fit did not.
    """
    if not isinstance(newdata, pd.DataFrame):
        raise DataError(
            f"newdata must be a pandas DataFrame, not {type(newdata).__name__}",
            hint="pass the rows to predict as a DataFrame with the model's columns",
        )
    spec, clusters = design.spec, list(design.clusters)
    for c in clusters:
        if c not in newdata.columns:
            raise DataError(
                f"newdata has no cluster column '{c}'",
                expected="the cluster columns of the fit: " + ", ".join(clusters),
                hint="a unit not in the fit can have any new id",
            )
    mapping = resolve_columns(spec, newdata, with_outcome=False)
    used = list(dict.fromkeys([*mapping.values(), *clusters]))
    fit_rows = design.frame[used]
    new_rows = newdata[used].reset_index(drop=True)
    both = pd.concat(
        [fit_rows.astype(object), new_rows.astype(object)], ignore_index=True
    ).infer_objects()
    n_fit = len(fit_rows)
    reference = np.arange(len(both)) < n_fit
    d = build_nested_design(spec, both, clusters, reference=reference, with_outcome=False)
    if list(d.fixed_labels) != list(design.fixed_labels):
        extra = sorted(set(d.fixed_labels) - set(design.fixed_labels))
        raise DataError(
            "newdata has categories the fit did not see: " + ", ".join(extra),
            hint="predictions need the categories of the estimation sample",
        )
    rows = np.asarray(d.row_index)  # positions in `both` of the complete rows
    new = rows >= n_fit
    positions = rows[new] - n_fit
    fixed = np.full(len(newdata), np.nan)
    fixed[positions] = d.X[new] @ beta
    random = np.full(len(newdata), np.nan)
    random[positions] = 0.0
    known = {}
    for level, (Z, codes, ids, fit_ids, est) in enumerate(
        zip(d.Zs, d.codes, d.unit_ids, design.unit_ids, effects, strict=True), start=2
    ):
        where = fit_ids.get_indexer(ids)[codes[new]]  # each new row's unit in the fit, or -1
        flag = np.zeros(len(newdata), dtype=bool)
        flag[positions] = where >= 0
        known[clusters[level - 2]] = flag
        ok = where >= 0
        if Z.shape[1]:
            part = np.einsum("nq,nq->n", Z[new][ok], est[where[ok]])
            random[positions[ok]] += part
    index = newdata.index
    return NestedPrediction(
        fixed=pd.Series(fixed, index=index, name="fixed"),
        random=pd.Series(random, index=index, name="random"),
        known=pd.DataFrame(known, index=index),
    )
