"""Describe level-1 variables before modeling: ICCs, design effects, within/between correlations.

What Mplus ``TYPE = TWOLEVEL BASIC`` and R's ``psych::statsBy`` report, from a DataFrame:

- :func:`icc` -- per variable, the ICC from a random-intercept null model (as
  ``performance::icc``), psych's ANOVA-based ICC1 and ICC2, the reliability of the cluster
  means, the design effect and the average cluster size;
- :func:`within_between` -- the within-cluster and between-cluster correlation matrices
  (psych's ``rwg`` and ``rbg``).

Each variable is used on its own non-missing rows (not listwise over the variables), as
``statsBy`` does. The caller's DataFrame is only read.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd

from mlmwrap.analysis.shared.icc import mean_reliability, null_model_icc
from mlmwrap.errors import DataError
from mlmwrap.model.centering import checked_input, cluster_means

__all__ = ["describe", "icc", "within_between", "WithinBetween"]


def _anova_iccs(x: np.ndarray, codes: np.ndarray, n_clusters: int) -> tuple[float, float]:
    """psych::statsBy's ICC1 and ICC2 from one-way ANOVA mean squares (no missing ``x``)."""
    n_j = np.bincount(codes, minlength=n_clusters).astype(float)
    present = n_j > 0
    means = cluster_means(x, codes, n_clusters, skipna=True)
    grand = x.mean()
    n_groups = int(present.sum())
    ms_between = float(np.sum(n_j[present] * (means[present] - grand) ** 2) / (n_groups - 1))
    ss_within = float(np.sum((x - means[codes]) ** 2))
    df_within = len(x) - n_groups
    ms_within = ss_within / df_within if df_within > 0 else float("nan")
    mean_size = len(x) / n_groups  # statsBy's 'npr': the plain average cluster size
    if ms_between == 0:  # identical cluster means: no between variance to speak of
        return float("nan"), float("nan")
    icc1 = (ms_between - ms_within) / (ms_between + ms_within * (mean_size - 1))
    icc2 = (ms_between - ms_within) / ms_between
    return float(icc1), float(icc2)


def icc(data: pd.DataFrame, variables: str | Sequence[str], cluster: str) -> pd.DataFrame:
    """Intraclass correlations, reliability of cluster means and design effects per variable.

    Parameters
    ----------
    data
        One row per level-1 unit. Not modified.
    variables
        Numeric column(s). Each is used on its own non-missing rows.
    cluster
        The column that identifies the clusters (no missing values).

    Returns
    -------
    pandas.DataFrame
        Indexed by variable, with columns:

        ``n``, ``n_clusters``
            Rows with the variable observed, and the clusters they fall in.
        ``mean_cluster_size``
            ``n / n_clusters``.
        ``icc``
            ICC(1) from the REML random-intercept null model ``x = g00 + u0 + e``,
            ``tau00 / (tau00 + sigma2)``; the same as ``performance::icc`` and as
            ``res.icc`` of that model fitted with :func:`mlmwrap.fit`.
        ``tau00``, ``sigma2``
            That model's between- and within-cluster variances.
        ``icc1_anova``, ``icc2_anova``
            psych::statsBy's ANOVA estimates (its ``ICC1`` and ``ICC2``; named apart from
            the model-based ``icc`` and ``reliability`` so that neither is read as the
            other), from the between- and within-cluster mean squares MSb and MSw and the
            average cluster size k:
            ``ICC1 = (MSb - MSw) / (MSb + (k - 1) MSw)`` and
            ``ICC2 = (MSb - MSw) / MSb`` (= 1 - 1/F, the reliability of the cluster means
            in Bliese's sense). NaN when all cluster means are equal (MSb = 0).
        ``reliability``
            Model-based reliability of the cluster means: the mean over clusters of
            ``n_j icc / (1 + (n_j - 1) icc)`` (HLM's reliability of the sample mean).
        ``design_effect``
            Kish's ``1 + (mean_cluster_size - 1) icc``: how much larger the variance of a
            mean is than under simple random sampling of the same number of rows.
        ``note``
            Empty, or why a number is special (a variance estimated as 0, a variable
            constant within clusters).

    Examples
    --------
    >>> import mlmwrap
    >>> from mlmwrap.analysis.describe import icc
    >>> hsb = mlmwrap.datasets.load_hsb()
    >>> icc(hsb, ["mathach", "ses"], cluster="school")[
    ...     ["mean_cluster_size", "icc", "icc1_anova", "icc2_anova", "design_effect"]].round(3)
              mean_cluster_size    icc  icc1_anova  icc2_anova  design_effect
    variable
    mathach              44.906  0.180       0.174       0.904          8.919
    ses                  44.906  0.265       0.266       0.942         12.631
    """
    names, values, codes, labels = checked_input(data, variables, cluster)
    rows = []
    for name in names:
        x_all = values[name].to_numpy()
        ok = ~np.isnan(x_all)
        if ok.sum() < 2:
            raise DataError(f"'{name}' has fewer than 2 non-missing values")
        x, c = x_all[ok], codes[ok]
        c, _ = pd.factorize(c, sort=True)  # clusters with no observed x drop out
        n_clusters = int(c.max()) + 1
        if n_clusters < 2:
            raise DataError(
                f"'{name}' is observed in only one cluster", hint="an ICC needs many clusters"
            )
        sizes = np.bincount(c, minlength=n_clusters)
        mean_size = len(x) / n_clusters
        null = null_model_icc(x, c)
        icc1, icc2 = _anova_iccs(x, c, n_clusters)
        rows.append(
            {
                "n": int(len(x)),
                "n_clusters": n_clusters,
                "mean_cluster_size": mean_size,
                "icc": null.icc,
                "tau00": null.tau00,
                "sigma2": null.sigma2,
                "icc1_anova": icc1,
                "icc2_anova": icc2,
                "reliability": mean_reliability(null.icc, sizes),
                "design_effect": 1.0 + (mean_size - 1.0) * null.icc,
                "note": null.note,
            }
        )
    return pd.DataFrame(rows, index=pd.Index(names, name="variable"))


class WithinBetween(NamedTuple):
    """Within-cluster and between-cluster correlation matrices (unpacks as a pair)."""

    within: pd.DataFrame
    between: pd.DataFrame


def within_between(
    data: pd.DataFrame,
    variables: Sequence[str],
    cluster: str,
    weighted: bool = True,
) -> WithinBetween:
    """Within-cluster and between-cluster correlations, as psych::statsBy's rwg and rbg.

    Parameters
    ----------
    data
        One row per level-1 unit. Not modified.
    variables
        Two or more numeric columns.
    cluster
        The column that identifies the clusters (no missing values).
    weighted
        ``True`` (default, as statsBy's ``rbg``): the between correlation is the Pearson
        correlation of the cluster means taken over rows, so each cluster counts as many
        times as it has rows. ``False``: over clusters, each cluster once.

    Returns
    -------
    WithinBetween
        ``within``: Pearson correlations of the within parts ``x - cluster mean`` over rows
        (statsBy's ``rwg``). ``between``: correlations of the cluster means (``rbg``).
        Both indexed by variable on both axes.

    Notes
    -----
    As in statsBy, each variable's cluster means use its own non-missing rows and each
    correlation uses the pairs available for that pair of variables ("pairwise"); for the
    weighted between correlation a cluster is weighted by all its rows, whether or not the
    variables are observed in them.

    Examples
    --------
    >>> import mlmwrap
    >>> from mlmwrap.analysis.describe import within_between
    >>> hsb = mlmwrap.datasets.load_hsb()
    >>> rw, rb = within_between(hsb, ["mathach", "ses", "minority"], cluster="school")
    >>> rw.round(3)
              mathach    ses  minority
    mathach     1.000  0.234    -0.188
    ses         0.234  1.000    -0.167
    minority   -0.188 -0.167     1.000
    >>> rb.round(3)
              mathach    ses  minority
    mathach     1.000  0.787    -0.485
    ses         0.787  1.000    -0.465
    minority   -0.485 -0.465     1.000
    """
    names, values, codes, labels = checked_input(data, variables, cluster)
    if len(names) < 2:
        raise DataError(
            "within_between needs at least two variables to correlate",
            hint="for one variable's ICC use icc()",
        )
    within = {}
    means = {}
    for name in names:
        x = values[name].to_numpy()
        m = cluster_means(x, codes, len(labels), skipna=True)
        within[name] = x - m[codes]  # NaN where x is missing
        means[name] = m
    rwg = pd.DataFrame(within).corr()
    if weighted:
        rbg = pd.DataFrame({n: m[codes] for n, m in means.items()}).corr()
    else:
        rbg = pd.DataFrame(means).corr()
    for frame in (rwg, rbg):
        frame.index.name = None
        frame.columns.name = None
    return WithinBetween(rwg, rbg)


def describe(data: pd.DataFrame, variables: str | Sequence[str], cluster: str) -> pd.DataFrame:
    """Each variable's mean, its within- and between-cluster SDs, and its ICC, in one table.

    The first table of a multilevel paper: per variable, over its own non-missing rows,
    ``n``, ``n_clusters``, ``mean``, ``sd`` (over rows, denominator n - 1), ``sd_within``
    (of ``x - cluster mean`` over rows, n - 1) and ``sd_between`` (of the cluster means over
    clusters, each once, n_clusters - 1), then ``icc``, ``reliability`` and
    ``design_effect`` from :func:`icc`. This is ``mlmwrap.describe``; the module is
    :mod:`mlmwrap.analysis.describe`.

    Examples
    --------
    >>> import mlmwrap
    >>> hsb = mlmwrap.datasets.load_hsb()
    >>> table = mlmwrap.describe(hsb, ["mathach", "ses"], cluster="school")
    >>> table[["mean", "sd", "sd_within", "sd_between", "icc"]].round(3)
                mean     sd  sd_within  sd_between    icc
    variable
    mathach   12.748  6.878      6.187       3.118  0.180
    ses        0.000  0.779      0.661       0.414  0.265
    """
    names, values, codes, labels = checked_input(data, variables, cluster)
    iccs = icc(data, names, cluster)
    rows = {}
    for name in names:
        x = values[name].to_numpy()
        ok = ~np.isnan(x)
        means = cluster_means(x, codes, len(labels), skipna=True)
        observed = np.bincount(codes[ok], minlength=len(labels)) > 0
        rows[name] = {
            "mean": float(np.mean(x[ok])),
            "sd": float(np.std(x[ok], ddof=1)),
            "sd_within": float(np.std(x[ok] - means[codes[ok]], ddof=1)),
            "sd_between": float(np.std(means[observed], ddof=1)),
        }
    moments = pd.DataFrame.from_dict(rows, orient="index")
    out = pd.concat([iccs[["n", "n_clusters"]], moments], axis=1)
    out = out.join(iccs[["icc", "reliability", "design_effect"]])
    out.index.name = "variable"
    return out
