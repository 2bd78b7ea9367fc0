"""Fits from per-cluster sums computed inside another engine (Polars, DuckDB, Dask, ...).

:func:`~mlmwrap.model.aggregate.sources.classify` says what the data are;
:func:`~mlmwrap.model.aggregate.lazy_stats.lazy_cluster_stats` builds the engine's
:class:`~mlmwrap.model.engine.ClusterStats` from a lazy frame with group-by aggregations.
"""

from mlmwrap.model.aggregate.rowless import RowlessDesign, RowsUnavailableError
from mlmwrap.model.aggregate.sources import classify

__all__ = ["classify", "RowlessDesign", "RowsUnavailableError", "lazy_cluster_stats"]


def __getattr__(name):  # lazy_stats imports narwhals only when a lazy frame is fitted
    if name == "lazy_cluster_stats":
        from mlmwrap.model.aggregate.lazy_stats import lazy_cluster_stats

        return lazy_cluster_stats
    raise AttributeError(name)
