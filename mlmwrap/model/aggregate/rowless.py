"""The description of a design whose rows were never in memory (a lazy or file input).

It carries everything the model-level results need (the gamma labels and terms, the random
effects, the sample counts, the cluster labels and sizes); the row-level arrays raise a
:class:`~mlmwrap.errors.MLMError` that says how to get them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mlmwrap.errors import MLMError
from mlmwrap.language.formulas import Formulas
from mlmwrap.model.design import FixedColumn, SampleInfo

__all__ = ["RowlessDesign", "RowsUnavailableError"]


class RowsUnavailableError(MLMError):
    """A row-level result was asked of a fit that never held the rows."""


_HOW = (
    "this model was fitted from per-cluster sums computed inside the data's own engine "
    "(a lazy frame or a file), so the rows are not available for {what}; collect the data "
    "to pandas (e.g. polars_frame.collect().to_pandas(), or a sample of it) and fit that, "
    "or compute it in the engine from res.gamma and res.random_effects()"
)


@dataclass(frozen=True)
class RowlessDesign:
    """What :class:`~mlmwrap.model.design.Design` says about a model, without the rows."""

    fixed_columns: list[FixedColumn]
    random_labels: list[str]
    random_terms: list[str]
    outcome: str
    cluster: str
    cluster_labels: np.ndarray
    sizes: np.ndarray
    columns: dict[str, str]
    sample: SampleInfo
    formulas: Formulas | None = None  # the reduced form (mlmwrap.language.formulas)
    rowless: bool = True

    @property
    def fixed_names(self) -> list[str]:
        return [c.term for c in self.fixed_columns]

    @property
    def n_obs(self) -> int:
        return int(self.sizes.sum())

    @property
    def n_clusters(self) -> int:
        return len(self.cluster_labels)

    @property
    def cluster_sizes(self) -> np.ndarray:
        return self.sizes

    def _unavailable(self, what: str):
        raise RowsUnavailableError(_HOW.format(what=what))

    @property
    def y(self) -> np.ndarray:
        self._unavailable("the outcome's values (residuals, fitted values, plots)")

    @property
    def X(self) -> np.ndarray:
        self._unavailable("the fixed-effects design (row-level analyses)")

    @property
    def Z(self) -> np.ndarray:
        self._unavailable("the random-effects design (row-level analyses)")

    @property
    def codes(self) -> np.ndarray:
        self._unavailable("the cluster of each row (row-level analyses)")

    @property
    def frame(self):
        self._unavailable("the model frame (row-level analyses)")

    @property
    def row_index(self):
        self._unavailable("the row index (residuals and predictions)")
