"""Whether two fits share one estimation sample (their deviances and variances compare)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from mlmwrap.analysis.shared.fit_parts import fit_parts
from mlmwrap.errors import DataError
from mlmwrap.model.nested_design import NestedDesign

if TYPE_CHECKING:  # pragma: no cover
    from mlmwrap.api.results import MLMResults

__all__ = ["check_same_sample"]


def _sample_text(res: MLMResults) -> str:
    parts = fit_parts(res)
    counts = [int(c.max()) + 1 if len(c) else 0 for c in parts.codes]
    if len(counts) == 1:
        text = f"{parts.nobs} rows in {counts[0]} clusters"
    else:
        units = " in ".join(f"{n} '{c}' units" for n, c in zip(counts, parts.clusters, strict=True))
        text = f"{parts.nobs} rows in {units}"
    if isinstance(res.design, NestedDesign):
        if res.design.rows_dropped:
            text += f" ({res.design.rows_dropped} rows with missing values dropped)"
        return text
    sample = res.sample
    if sample.rows_dropped:
        detail = ", ".join(
            f"{v} missing in '{k}'" for k, v in sample.dropped_by_variable.items() if v
        )
        text += f" ({sample.rows_dropped} dropped: {detail})"
    return text


def check_same_sample(a: MLMResults, b: MLMResults, name_a: str, name_b: str) -> None:
    """Raise a :class:`DataError` unless ``a`` and ``b`` were fit to the same rows and outcome.

    Deviances, variance components and R² are comparable only on one estimation sample:
    the same rows (after listwise deletion), the same clusters (every level's), the same
    outcome. Two- and three-level fits are checked alike (:func:`fit_parts`).
    """
    pa, pb = fit_parts(a), fit_parts(b)
    tip = (
        "fit every model on the same complete cases, e.g. "
        "data = data.dropna(subset=[every variable of the largest model, and the cluster])"
    )
    if pa.clusters != pb.clusters:
        shown_a = "', '".join(pa.clusters)
        shown_b = "', '".join(pb.clusters)
        raise DataError(
            f"'{name_a}' and '{name_b}' use different cluster columns "
            f"('{shown_a}' and '{shown_b}')",
            hint="models can only be compared on the same clustering (the same levels)",
        )
    if pa.outcome != pb.outcome:
        raise DataError(
            f"'{name_a}' and '{name_b}' have different outcomes ('{pa.outcome}' and "
            f"'{pb.outcome}')",
            hint="deviances and variances of different outcomes are not comparable",
        )
    same_rows = pa.nobs == pb.nobs and pa.row_index.equals(pb.row_index)
    if not same_rows:
        raise DataError(
            f"'{name_a}' and '{name_b}' were fit to different samples: '{name_a}' to "
            f"{_sample_text(a)}, '{name_b}' to {_sample_text(b)}; deviances and variances "
            "from different rows are not comparable (different listwise deletion?)",
            hint=tip,
        )
    same_units = all(np.array_equal(ca, cb) for ca, cb in zip(pa.codes, pb.codes, strict=True))
    if not (same_units and np.allclose(pa.y, pb.y, rtol=1e-12)):
        raise DataError(
            f"'{name_a}' and '{name_b}' have the same row labels but different data "
            "(outcome values or cluster membership differ)",
            hint="fit both models to the same DataFrame",
        )
