"""Centering of predictors around cluster means, the grand mean or a reference value.

These are the numeric building blocks behind ``cwc``, ``cgm``, ``cmean`` and ``center`` in
the equations. They take plain arrays and integer cluster codes so that the caller decides
which rows form the estimation sample (mlmwrap computes them after listwise deletion).
:func:`decompose` does the same on a DataFrame: each variable split into its within-cluster
and between-cluster parts, ready to look at or to model separately.

Examples
--------
>>> import numpy as np
>>> x = np.array([1.0, 3.0, 10.0, 20.0])
>>> codes = np.array([0, 0, 1, 1])
>>> cluster_mean(x, codes)
array([ 2.,  2., 15., 15.])
>>> within_cluster(x, codes)
array([-1.,  1., -5.,  5.])
>>> grand_mean_centered(x, codes)  # varies within clusters: mean over rows
array([-7.5, -5.5,  1.5, 11.5])
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence

import numpy as np
import pandas as pd

from mlmwrap.errors import DataError

__all__ = [
    "cluster_sums",
    "cluster_means",
    "cluster_mean",
    "within_cluster",
    "grand_mean_centered",
    "varies_within",
    "is_level2",
    "decompose",
    "WITHIN_SUFFIX",
    "BETWEEN_SUFFIX",
]

#: Suffix of the within-cluster part in :func:`decompose`'s output (``ses_within``).
WITHIN_SUFFIX = "_within"
#: Suffix of the between-cluster part in :func:`decompose`'s output (``ses_between``).
BETWEEN_SUFFIX = "_between"


def cluster_sums(values: np.ndarray, codes: np.ndarray, n_clusters: int) -> np.ndarray:
    """Sums of the rows of ``values`` (shape ``(n, ...)``) within clusters: ``(J, ...)``.

    One weighted bincount per trailing column: a loop over columns, never over clusters.
    """
    values = np.asarray(values, dtype=float)
    flat = values.reshape(len(values), -1)
    out = np.empty((n_clusters, flat.shape[1]))
    for k in range(flat.shape[1]):
        out[:, k] = np.bincount(codes, weights=flat[:, k], minlength=n_clusters)
    return out.reshape((n_clusters, *values.shape[1:]))


def cluster_means(
    values: np.ndarray, codes: np.ndarray, n_clusters: int, skipna: bool = False
) -> np.ndarray:
    """Per-cluster means of ``values`` (shape ``(n,)`` or ``(n, k)``): ``(J,)`` or ``(J, k)``.

    With ``skipna`` each column's mean is over its non-missing rows; a cluster with no
    (non-missing) rows gets NaN.
    """
    values = np.asarray(values, dtype=float)
    if skipna:
        ok = ~np.isnan(values)
        sums = cluster_sums(np.where(ok, values, 0.0), codes, n_clusters)
        counts = cluster_sums(ok.astype(float), codes, n_clusters)
    else:
        sums = cluster_sums(values, codes, n_clusters)
        counts = np.bincount(codes, minlength=n_clusters).astype(float)
        counts = counts.reshape((n_clusters,) + (1,) * (values.ndim - 1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return sums / counts


def cluster_mean(x: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """Each row's cluster mean of ``x`` (``codes`` are integers 0..J-1)."""
    return cluster_means(x, codes, int(codes.max()) + 1 if len(codes) else 0)[codes]


def within_cluster(x: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """``x`` minus its cluster mean (centering within cluster, CWC)."""
    return x - cluster_mean(x, codes)


def varies_within(x: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """Boolean per cluster: does ``x`` take more than one value in it (beyond rounding)?"""
    n_clusters = int(codes.max()) + 1 if len(codes) else 0
    hi = np.full(n_clusters, -np.inf)
    lo = np.full(n_clusters, np.inf)
    np.maximum.at(hi, codes, x)
    np.minimum.at(lo, codes, x)
    # Relative to the values' magnitude, at the level of rounding: 1e10 plus noise of 1
    # varies, a product of level-2 columns does not (no absolute floor: units don't matter).
    scale = max(abs(float(x.min())), abs(float(x.max()))) if len(x) else 0.0  # no |x| copy
    return (hi - lo) > 1e3 * np.finfo(float).eps * scale


def is_level2(x: np.ndarray, codes: np.ndarray) -> bool:
    """True when ``x`` is constant within every cluster."""
    return not bool(np.any(varies_within(x, codes)))


def grand_mean_centered(x: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """``x`` minus its grand mean (CGM).

    A level-2 variable (constant within clusters) is centered at its mean over clusters,
    each cluster counted once, as HLM does; a level-1 variable at its mean over rows.
    """
    if is_level2(x, codes):
        first = np.zeros(int(codes.max()) + 1)
        first[codes] = x
        return x - first.mean()
    return x - x.mean()


# -- DataFrame level: checked input, decomposition -------------------------------------------
def _unknown_column(name: object, data: pd.DataFrame, what: str) -> DataError:
    names = [str(c) for c in data.columns]
    close = difflib.get_close_matches(str(name), names, n=3, cutoff=0.6)
    if not close:
        close = [n for n in names if n.lower() == str(name).lower()]
    hint = (
        "did you mean " + " or ".join(f"'{c}'" for c in close) + "?"
        if close
        else f"the data's columns are: {', '.join(names[:12])}{' ...' if len(names) > 12 else ''}"
    )
    return DataError(f"there is no column '{name}' in the data", expected=what, hint=hint)


def checked_input(
    data: pd.DataFrame, variables: str | Sequence[str], cluster: str
) -> tuple[list[str], pd.DataFrame, np.ndarray, np.ndarray]:
    """Validate ``data``, ``variables`` and ``cluster`` the way every DataFrame helper does.

    Returns the variable names (a single name becomes a list; duplicates dropped), a new
    float DataFrame of the variables (NaN for missing values, the caller's index), integer
    cluster codes 0..J-1 per row and the cluster labels. Raises :class:`DataError` for a
    non-DataFrame, an unknown column (with the nearest names), a non-numeric variable, a
    cluster column with missing values, or fewer than two clusters. ``data`` is only read.
    """
    if not isinstance(data, pd.DataFrame):
        raise DataError(
            f"data must be a pandas DataFrame, not {type(data).__name__}",
            hint="e.g. data=pd.read_csv('file.csv')",
        )
    if isinstance(variables, str):
        variables = [variables]
    names = list(dict.fromkeys(variables))
    if not names:
        raise DataError("no variables were given", hint="e.g. variables=['mathach', 'ses']")
    if cluster not in data.columns:
        raise _unknown_column(
            cluster, data, "the name of the column that identifies the clusters (level-2 units)"
        )
    for name in names:
        if name not in data.columns:
            raise _unknown_column(name, data, "the name of a numeric column of the DataFrame")
        if name == cluster:
            raise DataError(
                f"'{name}' is the cluster column; it cannot also be a variable to describe",
                hint="list the level-1 variables only",
            )
        col = data[name]
        if isinstance(col, pd.DataFrame):
            raise DataError(f"the data have more than one column named '{name}'")
        if not pd.api.types.is_numeric_dtype(col) or isinstance(col.dtype, pd.CategoricalDtype):
            sample = ", ".join(repr(v) for v in pd.unique(col.dropna())[:3])
            raise DataError(
                f"'{name}' is not numeric (its values look like {sample})",
                expected="a numeric column",
                hint=f"convert it first, e.g. pd.to_numeric(data['{name}']), or code a "
                "category as 0/1 indicator columns",
            )
    groups = data[cluster]
    n_missing = int(groups.isna().sum())
    if n_missing:
        raise DataError(
            f"the cluster column '{cluster}' has {n_missing} missing value"
            f"{'s' if n_missing > 1 else ''}: those rows belong to no cluster",
            hint=f"drop them first, e.g. data.dropna(subset=['{cluster}'])",
        )
    codes, labels = pd.factorize(groups, sort=True)
    if len(labels) < 2:
        raise DataError(
            f"the data have only {len(labels)} cluster in '{cluster}'",
            expected="a column with one id per cluster (level-2 unit), many clusters",
            hint="check that the cluster column is the right one",
        )
    values = pd.DataFrame(
        {n: data[n].to_numpy(dtype=float, na_value=np.nan) for n in names}, index=data.index
    )
    bad = [n for n in names if np.isinf(values[n].to_numpy()).any()]
    if bad:
        raise DataError(f"'{bad[0]}' has infinite values", hint="remove or recode them")
    return names, values, np.asarray(codes), np.asarray(labels)


def decompose(data: pd.DataFrame, variables: str | Sequence[str], cluster: str) -> pd.DataFrame:
    """Split level-1 variables into their within-cluster and between-cluster parts.

    ``x = x_within + x_between`` with ``x_between`` the cluster mean of ``x`` (constant
    within a cluster, varies only between clusters) and ``x_within = x - x_between``
    (mean 0 in every cluster, varies only within clusters): ``cwc(x)`` and ``cmean(x)`` of
    the equations, computed on every row of ``data``.

    Parameters
    ----------
    data
        One row per level-1 unit. Not modified.
    variables
        Numeric column(s) to decompose.
    cluster
        The column that identifies the clusters. Missing values in it are an error.

    Returns
    -------
    pandas.DataFrame
        A new frame with the same index as ``data`` and two columns per variable, in the
        order given: ``{x}_within`` and ``{x}_between``.

    Notes
    -----
    Missing values: a cluster's mean of ``x`` is taken over the rows where ``x`` is not
    missing (each variable on its own rows, not listwise over ``variables``). A row whose
    ``x`` is missing gets NaN in both parts, so ``x_within + x_between`` reproduces ``x``
    row by row; a cluster with no observed ``x`` has NaN parts throughout. Inside
    :func:`mlmwrap.fit`, ``cwc(x)`` and ``cmean(x)`` are computed after listwise deletion
    over all model variables instead, so they can differ from these columns when other
    model variables have missing values.

    Examples
    --------
    >>> import mlmwrap
    >>> from mlmwrap.model.centering import decompose
    >>> hsb = mlmwrap.datasets.load_hsb()
    >>> parts = decompose(hsb, ["mathach", "ses"], cluster="school")
    >>> list(parts.columns)
    ['mathach_within', 'mathach_between', 'ses_within', 'ses_between']
    >>> parts.head(3).round(3)
       mathach_within  mathach_between  ses_within  ses_between
    0          -3.839            9.715      -1.094       -0.434
    1           9.993            9.715      -0.154       -0.434
    2          10.634            9.715      -0.094       -0.434
    """
    names, values, codes, labels = checked_input(data, variables, cluster)
    out = {}
    for name in names:
        x = values[name].to_numpy()
        between = cluster_means(x, codes, len(labels), skipna=True)[codes]
        between[np.isnan(x)] = np.nan
        out[f"{name}{WITHIN_SUFFIX}"] = x - between
        out[f"{name}{BETWEEN_SUFFIX}"] = between
    return pd.DataFrame(out, index=data.index)
