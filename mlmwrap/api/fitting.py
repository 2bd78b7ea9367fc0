"""``mlmwrap.fit``: equations and data in, a verified (RE)ML optimum out."""

from __future__ import annotations

import dataclasses
import time
import warnings

import numpy as np
import pandas as pd

from mlmwrap.analysis.inference import resolve_method
from mlmwrap.analysis.latent import reliability_warnings
from mlmwrap.api.fitting_nested import fit_nested
from mlmwrap.api.nested_results import NestedResults
from mlmwrap.api.progress import Progress
from mlmwrap.api.results import MLMResults
from mlmwrap.errors import (
    BoundaryWarning,
    ConvergenceWarning,
    DataError,
    MLMError,
    ReliabilityWarning,
    SpecificationError,
)
from mlmwrap.language.levels import parse_model
from mlmwrap.language.nested_spec import NestedSpec
from mlmwrap.language.spec import ModelSpec
from mlmwrap.model.aggregate import RowsUnavailableError, classify, lazy_cluster_stats
from mlmwrap.model.design import build_design
from mlmwrap.model.design_stats import design_cluster_stats
from mlmwrap.model.engine import ClusterStats, optimize
from mlmwrap.model.rank import check_rank
from mlmwrap.model.tau_pattern import tau_pattern
from mlmwrap.model.validation import check_flag, normalize_cluster

__all__ = ["fit"]


def check_design_rank(stats: ClusterStats, design) -> None:
    """Name the first zero or dependent fixed or random column, from the cross-products."""
    p, q = stats.p, stats.q
    gram = stats.cross[:, : p + q, : p + q].sum(axis=0)
    fixed = design.fixed_columns
    check_rank(gram[:p, :p], [c.term for c in fixed], [c.label for c in fixed], "fixed")
    check_rank(gram[p:, p:], design.random_terms, design.random_labels, "random")


def fit(
    equations: str | ModelSpec | NestedSpec,
    data: pd.DataFrame,
    cluster: str | list[str],
    reml: bool = True,
    df: str = "satterthwaite",
    *,
    engine: str | None = None,
    progress: bool | None = None,
) -> MLMResults | NestedResults:
    """Fit a two-level model written as level-1 and level-2 equations.

    Parameters
    ----------
    equations
        One equation per line: the level-1 equation (``y = b0 + b1*x + e``) and one
        level-2 equation per beta (``b1 = g10 + g11*w + u1``; with ``uK`` the coefficient
        varies across clusters). ``cwc``, ``cgm``, ``cmean`` and ``center`` center
        predictors on the estimation sample. See the README for the whole language.
    data
        One row per level-1 unit. Rows with a missing value in any model variable are
        dropped (the counts are in ``res.sample``). The data are not modified. A pandas
        DataFrame, or (with ``pip install 'mlmwrap[engines]'``) a Polars, PyArrow, Dask,
        DuckDB or PySpark frame, or the path of a ``.parquet``/``.csv`` file. Eager frames
        are converted to pandas; lazy ones and files are fitted from per-cluster sums
        computed inside their own engine, so they need not fit in memory (row-level
        methods of such a fit raise an error that says how to get them).
    cluster
        The column that identifies the level-2 units; for a three-level model (HLM3
        notation: ``pK``, ``bKM`` + ``rK``, ``gKMS`` + ``uKM``) a list from level 2 up,
        ``["school", "lea"]`` (a level-2 unit is its id together with its level-3 id).
        A one-element list is the same as a string.
    reml
        Restricted maximum likelihood (default, as HLM and lme4) or full ML (``False``),
        needed to compare models that differ in their fixed effects.
    df
        How the gammas are tested: ``"satterthwaite"`` (default: t-tests with
        Satterthwaite degrees of freedom, lmerTest's default), ``"kenward-roger"``
        (pbkrtest's adjusted SEs and df; REML fits), ``"hlm"`` (HLM's J - S - 1) or ``"z"``
        (normal reference). See :func:`mlmwrap.analysis.inference.gamma_table` for why
        Satterthwaite is the default; ``res.with_inference(...)`` switches without a refit.
    engine
        For a file path: ``"polars"`` (default) or ``"duckdb"`` scans it.
    progress
        Show a progress bar: ``None`` (default) in a terminal once a fit has run for two
        seconds, ``True`` always (notebooks too), ``False`` never.

    Returns
    -------
    MLMResults
        ``gamma``, ``tau``, ``sigma2``, ``icc``, ``deviance``, ``summary()``, ...

    Warns
    -----
    ConvergenceWarning
        The optimum could not be verified, or the Hessian is not positive definite.
    BoundaryWarning
        tau is singular: a variance estimated as 0 or a correlation of +-1.
    ReliabilityWarning
        A cluster mean ``cmean(x)`` is a predictor and its reliability is below 0.7, so the
        between and contextual effects are biased toward the within effect.

    Examples
    --------
    >>> import mlmwrap
    >>> hsb = mlmwrap.datasets.load_hsb()
    >>> res = mlmwrap.fit('''
    ...     mathach = b0 + b1*cwc(ses) + e
    ...     b0 = g00 + g01*meanses + g02*sector + u0
    ...     b1 = g10 + g11*meanses + g12*sector + u1
    ... ''', data=hsb, cluster="school")
    >>> res.gamma["estimate"].round(3)
    gamma
    g00    12.096
    g01     5.333
    g02     1.226
    g10     2.939
    g11     1.039
    g12    -1.643
    Name: estimate, dtype: float64
    >>> round(float(res.tau.loc["u1", "u1"]), 4), round(res.sigma2, 3), round(res.deviance, 3)
    (0.1013, 36.721, 46503.664)
    """
    start = time.perf_counter()
    df = resolve_method(df)  # a typo fails before any work
    reml = check_flag(reml, "reml")
    spec = parse_model(equations) if isinstance(equations, str) else equations
    clusters = [cluster] if isinstance(cluster, str) else cluster
    if isinstance(spec, NestedSpec):
        if df not in ("satterthwaite", "z"):
            raise MLMError(
                f"df={df!r} is not available for three-level models yet",
                hint='use df="satterthwaite" (lmerTest\'s) or df="z"',
            )
        if not isinstance(clusters, list | tuple) or len(clusters) != spec.n_levels - 1:
            raise MLMError(
                f"the equations describe a three-level model (pK at level 1), so cluster must "
                f"list the level-2 and the level-3 unit, not {cluster!r}",
                expected='cluster=["school", "lea"] (level 2 first)',
                hint="or write a two-level model with b/g/u: y = b0 + e, b0 = g00 + u0",
            )
        clusters = [normalize_cluster(c) for c in clusters]
        kind, data = classify(data, engine)
        if kind == "lazy":
            raise MLMError(
                "lazy frames and files are not available for three-level models yet",
                hint="collect the data into a pandas DataFrame first",
            )
        return fit_nested(spec, data, clusters, reml=reml, df=df)
    if isinstance(clusters, list | tuple) and len(clusters) >= 2:
        raise SpecificationError(
            f"the equations describe a two-level model, so cluster is one column, not "
            f"{list(clusters)!r}",
            expected='cluster="school"',
            hint="a three-level model is written with p at level 1: y = p0 + e, "
            "p0 = b00 + r0, b00 = g000 + u00",
        )
    cluster = normalize_cluster(cluster)
    if not isinstance(spec, ModelSpec):
        raise DataError(
            f"equations must be a string of equations, not {type(equations).__name__}",
            hint='e.g. mlmwrap.fit("y = b0 + e\\nb0 = g00 + u0", data, cluster="school")',
        )
    kind, data = classify(data, engine)
    with Progress(progress, total=4 if kind == "lazy" else 3) as bar:
        if kind == "lazy":
            stats, design = lazy_cluster_stats(spec, data, cluster, progress=bar.step)
            stats = dataclasses.replace(stats, free=tau_pattern(spec, design.random_labels))
            data = None
        else:
            bar.step("design and cross-products")
            design = build_design(spec, data, cluster)
            free = tau_pattern(spec, design.random_labels)
            stats = design_cluster_stats(design, free=free)  # block by block
        check_design_rank(stats, design)
        bar.step("optimizing the deviance")
        optimum = _optimize(stats, design, reml)
        bar.step("small-sample inference")
        results, unreliable = _results(spec, design, optimum, stats, data, df, start)
    return _warn(results, unreliable, start)


def _optimize(stats: ClusterStats, design, reml: bool):
    """The engine's optimum, or a DataError for data the deviance cannot describe."""
    try:
        optimum = optimize(stats, reml=reml)
    except np.linalg.LinAlgError:
        raise DataError(
            "the deviance cannot be evaluated for these data (is the outcome an exact "
            "function of the predictors and the clusters?)",
            hint="check the outcome and the predictors for duplicates and constants",
        ) from None
    # The outcome's variance (its mean square where the rows are not at hand, lazy inputs).
    try:
        spread = float(np.var(design.y))
    except RowsUnavailableError:
        spread = float(stats.cross[:, -1, -1].sum()) / stats.n_obs
    if not optimum.sigma2 > 1e-10 * spread:
        raise DataError(
            f"the model reproduces '{design.outcome}' exactly (a perfect fit within clusters): "
            "the level-1 residual variance is 0",
            expected="an outcome that is not an exact function of the predictors and clusters",
            hint="check for a predictor that is the outcome under another name",
        )
    return optimum


def _results(spec, design, optimum, stats, data, df, start) -> tuple[MLMResults, list[str]]:
    messages = list(optimum.messages)
    if optimum.singular:
        zero = [
            lab
            for lab, at_zero in zip(design.random_labels, optimum.zero_variances, strict=True)
            if at_zero
        ]
        what = (
            f"the variance of {', '.join(zero)} is estimated as 0"
            if zero
            else "tau is singular (a correlation of +-1 among the random effects)"
        )
        messages.insert(
            0,
            f"boundary (singular) fit: {what}; the gammas are still the right GLS estimates, "
            "but consider a simpler random part",
        )
    results = MLMResults(
        spec,
        design,
        optimum,
        stats=stats,
        data=data,
        df=df,
        seconds=time.perf_counter() - start,
        messages=tuple(messages),
    )
    # Cluster means as predictors: say when they are unreliable (Luedtke et al. 2008).
    try:
        unreliable = reliability_warnings(results, results.cluster_mean_reliability())
    except RowsUnavailableError:  # the reliabilities need the rows: not for a rowless fit
        unreliable = []
    results.messages = results.messages + tuple(unreliable)
    return results, unreliable


def _warn(results: MLMResults, unreliable: list[str], start: float) -> MLMResults:
    for message in results.messages:
        if message in unreliable:
            category = ReliabilityWarning
        elif message.startswith("boundary"):
            category = BoundaryWarning
        else:
            category = ConvergenceWarning
        warnings.warn(message, category, stacklevel=3)  # the caller of fit()
    results.seconds = time.perf_counter() - start
    return results
