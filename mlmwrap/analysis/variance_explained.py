"""Variance explained by a two-level model: four established measures.

- :func:`proportional_reduction`: Raudenbush & Bryk's proportional reduction in each
  variance component relative to a reference model the user names.
- :func:`snijders_bosker_r2`: Snijders & Bosker's level-1 and level-2 R² (reduction in the
  prediction error variance of an individual outcome and of a cluster mean).
- :func:`nakagawa_r2`: Nakagawa & Schielzeth's marginal and conditional R² (random slopes
  included as in Johnson 2014 and ``performance::r2_nakagawa``).
- :func:`rights_sterba_r2`: Rights & Sterba's (2019) full decomposition of the total,
  within- and between-cluster variance into level-1 fixed effects (f1), level-2 fixed
  effects (f2), slope variation (v), intercept variation (m) and the residual.

:func:`r2` collects the headline numbers of the last three in one Series.

Examples
--------
>>> import mlmwrap
>>> hsb = mlmwrap.datasets.load_hsb()
>>> null = mlmwrap.fit("mathach = b0 + e\\nb0 = g00 + u0", hsb, cluster="school")
>>> ri = mlmwrap.fit('''
...     mathach = b0 + b1*cwc(ses) + e
...     b0 = g00 + g01*meanses + u0
...     b1 = g10
... ''', hsb, cluster="school")
>>> proportional_reduction(ri, null).round(3)
               term  reference  variance  reduction
component
u0      (intercept)      8.614     2.692      0.687
e        (residual)     39.148    37.019      0.054
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from mlmwrap.analysis.shared.fit_parts import fit_parts
from mlmwrap.analysis.shared.samples import check_same_sample
from mlmwrap.errors import DataError, MLMError
from mlmwrap.model.centering import cluster_means
from mlmwrap.model.design import INTERCEPT
from mlmwrap.model.fitted import FittedModel
from mlmwrap.model.nested_design import NestedDesign

if TYPE_CHECKING:  # pragma: no cover
    from mlmwrap.api.results import MLMResults

__all__ = [
    "proportional_reduction",
    "snijders_bosker_r2",
    "SnijdersBoskerR2",
    "nakagawa_r2",
    "NakagawaR2",
    "rights_sterba_r2",
    "RightsSterbaR2",
    "r2",
    "variance_explained",
    "check_same_sample",
]


# -- shared checks ------------------------------------------------------------------------
def _check_results(obj: object, what: str) -> MLMResults:
    if not isinstance(obj, FittedModel):
        raise DataError(
            f"{what} must be a fitted model (MLMResults), not {type(obj).__name__}",
            hint="fit it first: res = mlmwrap.fit(equations, data, cluster=...)",
        )
    return obj


def _intercept_index(res: MLMResults) -> int | None:
    terms = res.design.random_terms
    return terms.index(INTERCEPT) if INTERCEPT in terms else None


# -- Raudenbush & Bryk --------------------------------------------------------------------
def proportional_reduction(res: MLMResults, reference: MLMResults) -> pd.DataFrame:
    """Raudenbush & Bryk's proportional reduction in each variance component.

    For the level-1 residual variance and for each random effect present in both models
    (matched by the term it multiplies, e.g. the intercept or ``cwc(ses)``),
    ``(reference variance - variance) / reference variance`` (Raudenbush & Bryk 2002,
    eqs. 4.12, 4.20 and 4.27): the share of the reference model's variance that the
    predictors added since then account for.

    The reduction can be **negative**, and then it is not an estimation error:

    - sampling error: a predictor that explains nothing leaves the variance to vary by
      chance, up or down;
    - a level-1 predictor that is not group-mean centered and whose between-cluster
      slope differs from its within slope changes what ``tau00`` measures (the intercept
      variance adjusted for the clusters' composition), which can be larger than the
      unadjusted one;
    - adding a level-1 predictor lowers sigma2, and in the null model part of sigma2/n_j
      is absorbed in tau00, so tau00 can rise (Snijders & Bosker 2012, sec. 7.1);
    - with random slopes, ``tau00`` is the intercept variance where the level-1
      predictors are 0, so a re-centered predictor changes it, and a slope variance is
      comparable only between models in which that slope is random and its predictor is
      centered the same way.

    Parameters
    ----------
    res
        The model whose variance components are reduced.
    reference
        The model they are compared with (usually a simpler one: the null model for
        tau00 and sigma2, the random-coefficient model for a slope variance). Both must be
        fit to the same rows.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``res``'s component labels (``u0``, ``u1``, then the residual ``e``),
        columns ``term`` (what the component multiplies), ``reference`` (its variance in
        the reference model), ``variance`` (in ``res``) and ``reduction``.

    Examples
    --------
    >>> import mlmwrap
    >>> hsb = mlmwrap.datasets.load_hsb()
    >>> rc = mlmwrap.fit('''
    ...     mathach = b0 + b1*cwc(ses) + e
    ...     b0 = g00 + u0
    ...     b1 = g10 + u1
    ... ''', hsb, cluster="school")
    >>> isao = mlmwrap.fit('''
    ...     mathach = b0 + b1*cwc(ses) + e
    ...     b0 = g00 + g01*meanses + g02*sector + u0
    ...     b1 = g10 + g11*meanses + g12*sector + u1
    ... ''', hsb, cluster="school")
    >>> proportional_reduction(isao, rc)["reduction"].round(3)
    component
    u0    0.726
    u1    0.854
    e    -0.001
    Name: reduction, dtype: float64
    """
    res = _check_results(res, "res")
    reference = _check_results(reference, "reference")
    check_same_sample(reference, res, "reference", "res")
    if res.method != reference.method:
        warnings.warn(
            f"the models were fit by different methods ({res.method} and {reference.method}); "
            "variance components are comparable only under one method",
            UserWarning,
            stacklevel=2,
        )
    ref_terms = list(reference.design.random_terms)
    ref_tau = np.diag(reference.tau.to_numpy())
    rows = []
    for label, term, var in zip(
        res.tau.index, res.design.random_terms, np.diag(res.tau.to_numpy()), strict=True
    ):
        if term in ref_terms:
            ref = float(ref_tau[ref_terms.index(term)])
            shown = "(intercept)" if term == INTERCEPT else term
            rows.append((label, shown, ref, float(var)))
    rows.append((res.spec.residual or "e", "(residual)", reference.sigma2, res.sigma2))
    frame = pd.DataFrame(rows, columns=["component", "term", "reference", "variance"])
    with np.errstate(divide="ignore", invalid="ignore"):
        frame["reduction"] = (frame["reference"] - frame["variance"]) / frame["reference"]
    return frame.set_index("component")


# -- Snijders & Bosker --------------------------------------------------------------------
@dataclass(frozen=True)
class SnijdersBoskerR2:
    """Snijders & Bosker's explained variance at level 1 and level 2.

    Attributes
    ----------
    level1, level2 : float
        R²_1 and R²_2.
    cluster_size : float
        The cluster size ``n`` used in R²_2.
    null_tau00, null_sigma2 : float
        The null model's variances.
    tau00, sigma2 : float
        The model's variances (of its random-intercept version, see ``notes``).
    notes : tuple of str
    """

    level1: float
    level2: float
    cluster_size: float
    null_tau00: float
    null_sigma2: float
    tau00: float
    sigma2: float
    notes: tuple[str, ...] = ()


def _null_model(res: MLMResults) -> MLMResults:
    """The empty random-intercept model of ``res``'s outcome, on ``res``'s rows."""
    text = f"{res.spec.outcome.text()} = b0 + e\nb0 = g00 + u0"
    return res.refit(text, data=res.model_frame)


def _random_intercept_version(res: MLMResults) -> MLMResults:
    """``res`` with its random slopes removed (same fixed part, same rows)."""
    from dataclasses import replace

    betas = tuple(
        b if b.predictor is None else replace(b, random=False, u_label=None) for b in res.spec.betas
    )
    spec = replace(res.spec, betas=betas)
    return res.refit(spec, data=res.model_frame)


def snijders_bosker_r2(
    res: MLMResults,
    null: MLMResults | None = None,
    cluster_size: str | float = "mean",
) -> SnijdersBoskerR2:
    """Snijders & Bosker's level-1 and level-2 R² (Snijders & Bosker 2012, ch. 7).

    The proportional reduction in the mean squared prediction error of an individual
    outcome (level 1) and of a cluster mean of ``n`` individuals (level 2), from the null
    model (random intercept, no predictors) to ``res``::

        R²_1 = 1 - (sigma2 + tau00) / (sigma2_0 + tau00_0)
        R²_2 = 1 - (sigma2 / n + tau00) / (sigma2_0 / n + tau00_0)

    Unlike :func:`proportional_reduction`, these do not fall when a group-mean-centered
    level-1 predictor moves variance between levels; in the population they cannot be
    negative. An estimate **can** still be negative: a predictor with no effect leaves them
    near 0, and sampling error pushes them below it (a negative value that is not small
    suggests a misspecified model, Snijders & Bosker 2012, sec. 7.1).

    Random slopes: the measures are defined for random-intercept models. For a model with
    random slopes, as Snijders & Bosker recommend, they are computed from the same model
    refit with the slopes fixed (its random-intercept version, fit here on the same rows);
    the values change very little, and ``notes`` says so.

    Parameters
    ----------
    res
        A model with a random intercept.
    null
        The null model; fit here (same outcome, rows and method) when not given.
    cluster_size
        ``n`` in R²_2: ``"mean"`` (the average cluster size, default), ``"harmonic"`` (the
        harmonic mean, which some software uses for unbalanced data) or a number.

    Returns
    -------
    SnijdersBoskerR2

    Examples
    --------
    >>> import mlmwrap
    >>> ri = mlmwrap.fit('''
    ...     mathach = b0 + b1*cwc(ses) + e
    ...     b0 = g00 + g01*meanses + u0
    ...     b1 = g10
    ... ''', mlmwrap.datasets.load_hsb(), cluster="school")
    >>> sb = snijders_bosker_r2(ri)
    >>> round(sb.level1, 3), round(sb.level2, 3), round(sb.cluster_size, 2)
    (0.169, 0.629, 44.91)
    """
    res = _check_results(res, "res")
    if _intercept_index(res) is None:
        raise MLMError(
            "Snijders & Bosker's R² needs a model with a random intercept (u0)",
            hint="use nakagawa_r2() or rights_sterba_r2(), which need no random intercept",
        )
    notes = []
    model = res
    if len(res.tau) > 1:
        model = _random_intercept_version(res)
        notes.append(
            "the model has random slopes: computed from its random-intercept version (the "
            "same fixed part, refit without random slopes), as Snijders & Bosker recommend"
        )
    if null is None:
        null = _null_model(res)
    else:
        null = _check_results(null, "null")
        check_same_sample(null, res, "null", "res")
        if len(null.gamma) != 1 or len(null.tau) != 1 or _intercept_index(null) is None:
            raise MLMError(
                "null must be the empty model: an intercept g00 and a random intercept u0 only",
                hint="leave null out and it is fit for you",
            )
    sizes = res.design.cluster_sizes
    if isinstance(cluster_size, str):
        if cluster_size == "mean":
            n = float(sizes.mean())
        elif cluster_size == "harmonic":
            n = float(len(sizes) / np.sum(1.0 / sizes))
        else:
            raise DataError(
                f"cluster_size must be 'mean', 'harmonic' or a number, not '{cluster_size}'"
            )
    else:
        n = float(cluster_size)
    t0, s0 = float(null.tau.iloc[0, 0]), null.sigma2
    t, s = float(model.tau.iloc[0, 0]), model.sigma2
    level1 = 1.0 - (s + t) / (s0 + t0)
    level2 = 1.0 - (s / n + t) / (s0 / n + t0)
    return SnijdersBoskerR2(level1, level2, n, t0, s0, t, s, tuple(notes))


# -- Nakagawa & Schielzeth ----------------------------------------------------------------
@dataclass(frozen=True)
class NakagawaR2:
    """Nakagawa & Schielzeth's R² and the variances they are built from.

    Attributes
    ----------
    marginal, conditional : float
    var_fixed, var_random, var_residual : float
    """

    marginal: float
    conditional: float
    var_fixed: float
    var_random: float
    var_residual: float


def nakagawa_r2(res: MLMResults) -> NakagawaR2:
    """Nakagawa & Schielzeth's marginal and conditional R², random slopes included.

    ``marginal = var_f / (var_f + var_r + sigma2)`` is the share of the model-implied total
    variance due to the fixed effects, ``conditional = (var_f + var_r) / (...)`` the share
    due to fixed and random effects together (Nakagawa & Schielzeth 2013; with random
    slopes, Johnson 2014). As ``performance::r2_nakagawa`` computes them (insight 0.19):
    ``var_f`` is the sample variance (denominator n - 1) of the fixed part ``X gamma``
    over the estimation sample, and ``var_r`` the mean over rows of ``z_i' T z_i`` with
    ``z_i`` the row's random-effect predictors (1 for the intercept), i.e.
    ``mean(diag(Z T Z'))``; with a random intercept only, ``var_r = tau00``. For three
    levels ``var_r`` is the sum of that mean over the levels (insight's ``var.random``). Both lie in
    [0, 1]. With random slopes ``var_r`` depends on where the slope predictors are centered
    (it grows with their distance from 0), so center them meaningfully.

    Examples
    --------
    >>> import mlmwrap
    >>> res = mlmwrap.fit('''
    ...     mathach = b0 + b1*cwc(ses) + e
    ...     b0 = g00 + g01*meanses + g02*sector + u0
    ...     b1 = g10 + g11*meanses + g12*sector + u1
    ... ''', mlmwrap.datasets.load_hsb(), cluster="school")
    >>> r = nakagawa_r2(res)
    >>> round(r.marginal, 4), round(r.conditional, 4)
    (0.1796, 0.2304)
    """
    if not isinstance(getattr(res, "design", None), NestedDesign):
        res = _check_results(res, "res")
    d = res.design
    var_fixed = float(np.var(d.X @ res.optimum.beta, ddof=1))
    # the sum over levels of mean_i z_i' T z_i (one level for two-level models)
    var_random = sum(
        float(np.mean(np.einsum("ij,jk,ik->i", level.Z, tau.to_numpy(), level.Z)))
        if level.Z.shape[1]
        else 0.0
        for level, tau in zip(fit_parts(res).levels, res.tau_by_level.values(), strict=True)
    )
    total = var_fixed + var_random + res.sigma2
    return NakagawaR2(
        var_fixed / total, (var_fixed + var_random) / total, var_fixed, var_random, res.sigma2
    )


# -- Rights & Sterba ----------------------------------------------------------------------
@dataclass(frozen=True)
class RightsSterbaR2:
    """Rights & Sterba's (2019) decomposition of the model-implied variance.

    Attributes
    ----------
    table : pandas.DataFrame
        Indexed by source: ``f1`` (level-1 fixed effects), ``f2`` (level-2 fixed effects),
        ``v`` (slope variation), ``m`` (intercept variation), ``sigma2`` (level-1
        residual). Columns: ``variance``; ``total``, ``within``, ``between`` (its share of
        the total, within-cluster and between-cluster variance; NaN where the source does
        not contribute). With level-1 predictors that are not cluster-mean centered, the
        row ``f`` (all fixed effects) replaces ``f1`` and ``f2`` and only ``total`` is
        given.
    measures : pandas.Series
        The framework's R²: ``R2_t_f`` (fixed effects), ``R2_t_fv`` (+ slope variation),
        ``R2_t_fvm`` (+ intercept variation), ``R2_w_f1``, ``R2_w_f1v``, ``R2_b_f2``.
    centered_within : bool
        Whether every level-1 predictor is cluster-mean centered (and the within and
        between decompositions are defined).
    notes : tuple of str
    """

    table: pd.DataFrame
    measures: pd.Series
    centered_within: bool
    notes: tuple[str, ...] = ()

    def __str__(self) -> str:
        lines = ["Rights & Sterba (2019) variance decomposition"]
        lines.append(self.table.round(4).to_string())
        lines.extend(f"Note: {n}" for n in self.notes)
        return "\n".join(lines)


_SOURCES = {
    "f1": "level-1 fixed effects",
    "f2": "level-2 fixed effects",
    "f": "fixed effects",
    "v": "slope variation",
    "m": "intercept variation",
    "sigma2": "level-1 residual",
}


def _kind(x: np.ndarray, between: np.ndarray) -> str:
    """'within' (cluster means 0), 'between' (constant in clusters) or 'mixed'."""
    scale = float(np.max(np.abs(x)))  # relative: no floor in the data's units
    if np.max(np.abs(x - between)) <= 1e-9 * scale:
        return "between"
    if np.max(np.abs(between)) <= 1e-9 * scale:
        return "within"
    return "mixed"


def rights_sterba_r2(res: MLMResults) -> RightsSterbaR2:
    """Rights & Sterba's (2019) decomposition of total, within and between variance.

    The model-implied variance of the outcome is split into the parts due to level-1
    fixed effects (``f1``), level-2 fixed effects (``f2``), random slope variation
    (``v``), random intercept variation (``m``) and the level-1 residual (``sigma2``),
    as in Rights & Sterba (2019), Psychological Methods 24(3), 309-338, and their R
    package r2mlm (``r2mlm_manual``):

    - ``f1 = gamma_w' Phi_w gamma_w``: ``Phi_w`` the covariance matrix (denominator n - 1,
      over rows) of the columns that vary only within clusters (cluster-mean-centered
      level-1 predictors and their cross-level interactions), ``gamma_w`` their gammas;
    - ``f2 = gamma_b' Phi_b gamma_b``: the same for columns constant within clusters
      (level-2 predictors);
    - ``v = tr(T Sigma)``: ``Sigma`` the covariance matrix of the random-effect
      predictors (with the constant, whose variance is 0);
    - ``m = mu' T mu``: ``mu`` their means (``tau00`` when the slope predictors are
      cluster-mean centered);
    - total = f1 + f2 + v + m + sigma2; within = f1 + v + sigma2; between = f2 + m.

    Each share lies in [0, 1] and the shares of each decomposition sum to 1. The total
    share of the fixed effects, ``R2_t_f``, is Nakagawa & Schielzeth's marginal R² and
    ``R2_t_fvm`` their conditional R² (up to the n - 1 vs n denominator in ``v``).

    The within and between decompositions need cluster-mean-centered level-1 predictors
    (``cwc()``): a level-1 predictor with between-cluster variance contributes to both
    levels at once. For such models (like r2mlm with ``clustermeancentered = FALSE``)
    only the total decomposition is given, with ``f`` for all fixed effects, and
    ``notes`` names the predictors to center.

    Examples
    --------
    >>> import mlmwrap
    >>> res = mlmwrap.fit('''
    ...     mathach = b0 + b1*cwc(ses) + e
    ...     b0 = g00 + g01*meanses + g02*sector + u0
    ...     b1 = g10 + g11*meanses + g12*sector + u1
    ... ''', mlmwrap.datasets.load_hsb(), cluster="school")
    >>> rs = rights_sterba_r2(res)
    >>> rs.table.round(3)
            variance  total  within  between
    source
    f1         2.362  0.049   0.060      NaN
    f2         6.206  0.130     NaN    0.723
    v          0.044  0.001   0.001      NaN
    m          2.379  0.050     NaN    0.277
    sigma2    36.721  0.770   0.939      NaN
    """
    res = _check_results(res, "res")
    d = res.design
    J = d.n_clusters
    gamma = res.optimum.beta
    tau = res.tau.to_numpy()

    xbar = cluster_means(d.X, d.codes, J)[d.codes]
    kinds = [_kind(d.X[:, k], xbar[:, k]) for k in range(d.X.shape[1])]
    zbar = cluster_means(d.Z, d.codes, J)[d.codes]
    zkinds = [_kind(d.Z[:, k], zbar[:, k]) for k in range(d.Z.shape[1])]

    sigma = np.atleast_2d(np.cov(d.Z, rowvar=False, ddof=1))
    mu = d.Z.mean(axis=0)
    v = float(np.trace(tau @ sigma))
    m = float(mu @ tau @ mu)
    s2 = res.sigma2

    mixed = [c.term for c, k in zip(d.fixed_columns, kinds, strict=True) if k == "mixed"]
    mixed += [
        t for t, k in zip(d.random_terms, zkinds, strict=True) if k == "mixed" and t not in mixed
    ]
    # a random slope of a level-2 variable: its variation is between clusters only
    between_slopes = [
        t for t, k in zip(d.random_terms, zkinds, strict=True) if k == "between" and t != INTERCEPT
    ]
    notes = []
    centered = not mixed and not between_slopes
    if centered:
        w = np.array([k == "within" for k in kinds])
        b = ~w
        # gamma_w' Phi_w gamma_w is the sample variance of X_w gamma_w (likewise for f2)
        f1 = float(np.var(d.X[:, w] @ gamma[w], ddof=1))
        f2 = float(np.var(d.X[:, b] @ gamma[b], ddof=1))
        within, between = f1 + v + s2, f2 + m
        total = within + between
        variance = [f1, f2, v, m, s2]
        rows = ["f1", "f2", "v", "m", "sigma2"]
        within_share = [f1 / within, np.nan, v / within, np.nan, s2 / within]
        between_share = [np.nan, f2 / between, np.nan, m / between, np.nan]
        measures = {
            "R2_t_f": (f1 + f2) / total,
            "R2_t_fv": (f1 + f2 + v) / total,
            "R2_t_fvm": (f1 + f2 + v + m) / total,
            "R2_w_f1": f1 / within,
            "R2_w_f1v": (f1 + v) / within,
            "R2_b_f2": f2 / between,
        }
    else:
        f = float(np.var(d.X @ gamma, ddof=1))
        total = f + v + m + s2
        variance = [f, v, m, s2]
        rows = ["f", "v", "m", "sigma2"]
        within_share = [np.nan] * 4
        between_share = [np.nan] * 4
        measures = {
            "R2_t_f": f / total,
            "R2_t_fv": (f + v) / total,
            "R2_t_fvm": (f + v + m) / total,
            "R2_w_f1": np.nan,
            "R2_w_f1v": np.nan,
            "R2_b_f2": np.nan,
        }
        what = ", ".join(mixed + between_slopes)
        notes.append(
            f"not cluster-mean centered: {what}; only the total decomposition is defined "
            "(a level-1 predictor with between-cluster variance contributes to both levels); "
            "center level-1 predictors with cwc() and add their cluster means (cmean()) as "
            "level-2 predictors for the within and between decompositions"
        )
    table = pd.DataFrame(
        {
            "variance": variance,
            "total": np.array(variance) / total,
            "within": within_share,
            "between": between_share,
        },
        index=pd.Index(rows, name="source"),
    )
    return RightsSterbaR2(table, pd.Series(measures, name="R2"), centered, tuple(notes))


# -- all at once --------------------------------------------------------------------------
def r2(res: MLMResults, null: MLMResults | None = None, refit: bool = False) -> pd.Series:
    """The headline R² of a model and Nakagawa's variance parts, one per row.

    ``marginal`` and ``conditional`` (Nakagawa & Schielzeth, :func:`nakagawa_r2`) with the
    variances they divide, ``var_fixed``, ``var_random`` and ``var_residual``; ``level1``
    and ``level2`` (Snijders & Bosker, :func:`snijders_bosker_r2`); and Rights & Sterba's
    ``R2_t_f``, ``R2_t_fv``, ``R2_t_fvm``, ``R2_w_f1``, ``R2_w_f1v`` and ``R2_b_f2``
    (:func:`rights_sterba_r2`).

    Nothing is refit unless asked: Snijders & Bosker's measures need the null model (pass
    it as ``null``) and, for a model with random slopes, its random-intercept version, so
    without ``null`` or ``refit=True`` they are NaN and ``.attrs["notes"]`` says why.
    ``refit=True`` fits what is missing on the same rows. Without a random intercept they
    are NaN.

    Examples
    --------
    >>> import mlmwrap
    >>> hsb = mlmwrap.datasets.load_hsb()
    >>> res = mlmwrap.fit('''
    ...     mathach = b0 + b1*cwc(ses) + e
    ...     b0 = g00 + g01*meanses + u0
    ...     b1 = g10
    ... ''', hsb, cluster="school")
    >>> r2(res, refit=True).round(3)
    marginal         0.167
    conditional      0.224
    var_fixed        7.981
    var_random       2.692
    var_residual    37.019
    level1           0.169
    level2           0.629
    R2_t_f           0.167
    R2_t_fv          0.167
    R2_t_fvm         0.224
    R2_w_f1          0.054
    R2_w_f1v         0.054
    R2_b_f2          0.686
    Name: R2, dtype: float64
    >>> r2(res).attrs["notes"]
    ['level1 and level2 (Snijders & Bosker) need the null model: pass null=... or refit=True']
    """
    res = _check_results(res, "res")
    nak = nakagawa_r2(res)
    out = {
        "marginal": nak.marginal,
        "conditional": nak.conditional,
        "var_fixed": nak.var_fixed,
        "var_random": nak.var_random,
        "var_residual": nak.var_residual,
        "level1": np.nan,
        "level2": np.nan,
    }
    notes = []
    if _intercept_index(res) is None:
        notes.append("level1 and level2 (Snijders & Bosker) need a random intercept")
    elif null is None and not refit:
        notes.append(
            "level1 and level2 (Snijders & Bosker) need the null model: pass null=... or refit=True"
        )
    elif len(res.tau) > 1 and not refit:
        notes.append(
            "level1 and level2 (Snijders & Bosker) need the model's random-intercept "
            "version, a refit: pass refit=True"
        )
    else:
        sb = snijders_bosker_r2(res, null=null)
        out.update(level1=sb.level1, level2=sb.level2)
        notes.extend(sb.notes)
    out.update(rights_sterba_r2(res).measures.to_dict())
    series = pd.Series(out, name="R2")
    series.attrs["notes"] = notes
    return series


def variance_explained(
    res: MLMResults, reference: MLMResults | None = None, *, refit: bool = False
) -> pd.DataFrame | pd.Series:
    """Variance explained by ``res``: against ``reference`` when given, else its R².

    With a ``reference`` model, Raudenbush & Bryk's proportional reduction in each variance
    component (:func:`proportional_reduction`); without one, the R² of :func:`r2` (with
    ``refit`` passed on). This is ``mlmwrap.variance_explained``; the measures' module is
    :mod:`mlmwrap.analysis.variance_explained`.

    Examples
    --------
    >>> import mlmwrap
    >>> hsb = mlmwrap.datasets.load_hsb()
    >>> null = mlmwrap.fit("mathach = b0 + e\\nb0 = g00 + u0", hsb, cluster="school")
    >>> ri = mlmwrap.fit("mathach = b0 + b1*cwc(ses) + e\\nb0 = g00 + u0\\nb1 = g10", hsb,
    ...                  cluster="school")
    >>> mlmwrap.variance_explained(ri, null)["reduction"].round(3)
    component
    u0   -0.007
    e     0.055
    Name: reduction, dtype: float64
    """
    if reference is None:
        return r2(res, refit=refit)
    return proportional_reduction(res, reference)
