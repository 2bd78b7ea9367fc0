"""The parts of a fit that comparisons look at, the same for two and for three levels.

Comparing fits (same sample? nested?) needs the outcome, the rows, each level's unit
codes, the fixed design and, per level, the random design and which covariances are fixed
at 0. A two-level fit and a three-level fit keep these in different places; :func:`fit_parts`
gives both one shape, so :mod:`mlmwrap.analysis.compare` is written once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from mlmwrap.model.nested_design import NestedDesign

__all__ = ["FitParts", "LevelParts", "fit_parts"]


@dataclass(frozen=True)
class LevelParts:
    """One level's random part: its cluster column, ``Z`` (rows x q), labels, the terms the
    effects multiply (for messages) and ``fixed_cov`` (q x q, True where a covariance is
    fixed at 0 by a ``cov(...) = 0`` line)."""

    cluster: str
    Z: np.ndarray
    labels: list[str]
    terms: list[str]
    fixed_cov: np.ndarray


@dataclass(frozen=True)
class FitParts:
    """What two fits must share to be compared, and what tells whether one is nested."""

    outcome: str
    clusters: tuple[str, ...]
    row_index: pd.Index
    y: np.ndarray
    codes: list[np.ndarray]
    X: np.ndarray
    fixed_labels: list[str]
    fixed_terms: list[str]
    levels: list[LevelParts]

    @property
    def nobs(self) -> int:
        return len(self.y)


def _fixed_cov(free: np.ndarray | None, q: int) -> np.ndarray:
    """Covariances fixed at 0 from the free entries of a block-diagonal ``L``: the pairs in
    different blocks."""
    if free is None:
        return np.zeros((q, q), dtype=bool)
    together = free | free.T
    return ~together


def fit_parts(res) -> FitParts:
    """The comparable parts of a two- or three-level fit.

    Examples
    --------
    >>> import mlmwrap
    >>> res = mlmwrap.fit("mathach = b0 + e\\nb0 = g00 + u0", mlmwrap.datasets.load_hsb(),
    ...                   cluster="school")
    >>> parts = fit_parts(res)
    >>> parts.clusters, parts.fixed_labels, [lv.labels for lv in parts.levels]
    (('school',), ['g00'], [['u0']])
    """
    d = res.design
    if isinstance(d, NestedDesign):
        levels = [
            LevelParts(c, Z, list(labels), list(labels), _fixed_cov(free, len(labels)))
            for c, Z, labels, free in zip(d.clusters, d.Zs, d.random_labels, d.frees, strict=True)
        ]
        return FitParts(
            outcome=str(d.formulas.outcome),
            clusters=tuple(d.clusters),
            row_index=d.row_index,
            y=d.y,
            codes=list(d.codes),
            X=d.X,
            fixed_labels=list(d.fixed_labels),
            fixed_terms=list(d.fixed_patsy),
            levels=levels,
        )
    level = LevelParts(
        d.cluster,
        d.Z,
        list(d.random_labels),
        list(d.random_terms),
        res.tau_fixed.to_numpy().astype(bool),
    )
    return FitParts(
        outcome=str(res.outcome),
        clusters=(d.cluster,),
        row_index=d.row_index,
        y=d.y,
        codes=[d.codes],
        X=d.X,
        fixed_labels=[c.label for c in d.fixed_columns],
        fixed_terms=[c.term for c in d.fixed_columns],
        levels=[level],
    )
