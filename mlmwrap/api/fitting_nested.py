"""Fitting a three-level model: the nested design, the nested engine, the verified optimum."""

from __future__ import annotations

import time
import warnings

import pandas as pd

from mlmwrap.api.nested_results import NestedResults
from mlmwrap.errors import BoundaryWarning, ConvergenceWarning
from mlmwrap.language.nested_spec import NestedSpec
from mlmwrap.model.nested import NestedStats
from mlmwrap.model.nested_design import build_nested_design
from mlmwrap.model.nested_fit import verify_nested

__all__ = ["fit_nested"]


def fit_nested(
    spec: NestedSpec,
    data: pd.DataFrame,
    clusters: list[str],
    reml: bool = True,
    stacklevel: int = 3,
    df: str = "satterthwaite",
) -> NestedResults:
    """Fit a nested model (see :func:`mlmwrap.fit`); warnings as for two levels. ``df``:
    ``"satterthwaite"`` or ``"z"``."""
    start = time.perf_counter()
    design = build_nested_design(spec, data, clusters)
    stats = NestedStats.from_arrays(design.X, design.Zs, design.y, design.codes, design.frees)
    fit = verify_nested(stats, reml=reml)
    messages = list(fit.messages)
    if fit.singular:
        zero = [
            lab
            for labels, z in zip(design.random_labels, fit.zero_variances, strict=True)
            for lab, at0 in zip(labels, z, strict=True)
            if at0
        ]
        what = (
            f"the variance of {', '.join(zero)} is estimated as 0"
            if zero
            else "a tau is singular (a correlation of +-1)"
        )
        messages.insert(
            0,
            f"boundary (singular) fit: {what}; the gammas are still the right "
            "GLS estimates, but consider a simpler random part",
        )
    res = NestedResults(
        spec,
        design,
        stats,
        fit,
        seconds=time.perf_counter() - start,
        messages=tuple(messages),
        data=data,
        df_method=df,
    )
    for m in messages:
        category = BoundaryWarning if m.startswith("boundary") else ConvergenceWarning
        warnings.warn(m, category, stacklevel=stacklevel)
    return res
