"""Whether two fits share one estimation sample (their deviances and variances compare)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from mlmwrap.errors import DataError

if TYPE_CHECKING:  # pragma: no cover
    from mlmwrap.api.results import MLMResults

__all__ = ["check_same_sample"]


def _sample_text(res: MLMResults) -> str:
    s = res.sample
    text = f"{res.nobs} rows in {res.n_clusters} clusters"
    if s.rows_dropped:
        detail = ", ".join(f"{v} missing in '{k}'" for k, v in s.dropped_by_variable.items() if v)
        text += f" ({s.rows_dropped} dropped: {detail})"
    return text


def check_same_sample(a: MLMResults, b: MLMResults, name_a: str, name_b: str) -> None:
    """Raise a :class:`DataError` unless ``a`` and ``b`` were fit to the same rows and outcome.

    Deviances, variance components and R² are comparable only on one estimation sample:
    the same rows (after listwise deletion), the same clusters, the same outcome.
    """
    da, db = a.design, b.design
    tip = (
        "fit every model on the same complete cases, e.g. "
        "data = data.dropna(subset=[every variable of the largest model, and the cluster])"
    )
    if a.cluster != b.cluster:
        raise DataError(
            f"'{name_a}' and '{name_b}' use different cluster columns "
            f"('{a.cluster}' and '{b.cluster}')",
            hint="models can only be compared on the same clustering",
        )
    if a.outcome != b.outcome:
        raise DataError(
            f"'{name_a}' and '{name_b}' have different outcomes ('{a.outcome}' and '{b.outcome}')",
            hint="deviances and variances of different outcomes are not comparable",
        )
    same_rows = a.nobs == b.nobs and da.row_index.equals(db.row_index)
    if not same_rows:
        raise DataError(
            f"'{name_a}' and '{name_b}' were fit to different samples: '{name_a}' to "
            f"{_sample_text(a)}, '{name_b}' to {_sample_text(b)}; deviances and variances "
            "from different rows are not comparable (different listwise deletion?)",
            hint=tip,
        )
    if not (np.array_equal(da.codes, db.codes) and np.allclose(da.y, db.y, rtol=1e-12)):
        raise DataError(
            f"'{name_a}' and '{name_b}' have the same row labels but different data "
            "(outcome values or cluster membership differ)",
            hint="fit both models to the same DataFrame",
        )
