"""Unreliable cluster means: how reliable each ``cmean(x)`` is, and a bias-corrected estimate.

The observed cluster mean of x measures the cluster's true (latent) mean with sampling
error, whose variance is ``sigma2_x / n_j``. With small clusters and a low ICC of x that
error is large, and the between effect of x estimated with ``cmean(x)`` is pulled toward
the within effect: in a balanced random-intercept model its expectation is
``within + lambda * (between - within)``, so the contextual effect is attenuated by the
factor ``lambda``, the reliability of the cluster means (Lüdtke et al. 2008, the
"multilevel manifest covariate" bias; Grilli & Rampichini 2011, eq. for the attenuation).

- :func:`cluster_mean_reliability` gives, for every ``cmean(x)`` in a fit, the ICC of x,
  the average cluster size and the reliability of the cluster means;
  :func:`reliability_warnings` and :func:`reliability_section` turn it into words for the
  fit's warnings and ``summary()``.
- :func:`corrected_effects` gives the within, between and contextual effects corrected for
  that sampling error, with standard errors.

References
----------
Lüdtke, O., Marsh, H. W., Robitzsch, A., Trautwein, U., Asparouhov, T. & Muthén, B. (2008).
The multilevel latent covariate model: a new, more reliable approach to group-level effects
in contextual studies. *Psychological Methods*, 13(3), 203-229.

Grilli, L. & Rampichini, C. (2011). The role of sample cluster means in multilevel models:
a view on endogeneity and measurement error issues. *Methodology*, 7(4), 121-133.

Fuller, W. A. (1987). *Measurement Error Models*. Wiley (corrected estimating equations).

Raudenbush, S. W. & Bryk, A. S. (2002). *Hierarchical Linear Models* (2nd ed.), eq. 3.58
(reliability of a cluster's sample mean).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy import stats as sstats

from mlmwrap.analysis.shared.decomposition import classify, column_key, combinations, find_pairs
from mlmwrap.analysis.shared.icc import mean_reliability, null_model_icc
from mlmwrap.errors import MLMError
from mlmwrap.language.expr import Expr
from mlmwrap.model.centering import cluster_mean, cluster_sums
from mlmwrap.model.design import evaluate_on_sample

if TYPE_CHECKING:  # pragma: no cover
    from mlmwrap.api.results import MLMResults

__all__ = [
    "RELIABILITY_THRESHOLD",
    "cluster_mean_reliability",
    "reliability_warnings",
    "reliability_section",
    "corrected_effects",
    "MIN_EFFECTIVE_RELIABILITY",
]

#: Below this reliability of the cluster means, mlmwrap warns. At reliability lambda the
#: contextual effect is expected to shrink to lambda times its value (balanced
#: random-intercept case), so below 0.7 more than 30% of it is lost and the between effect
#: is pulled more than 30% of the way toward the within effect. 0.70 is also the usual
#: minimum for the reliability of group means (ICC(2)) in the multilevel literature
#: (e.g. Bliese 2000; LeBreton & Senter 2008).
RELIABILITY_THRESHOLD = 0.7

#: Below this effective reliability the correction would multiply the manifest contextual
#: effect by more than 10: the data cannot separate the between variance of x from
#: sampling error, and :func:`corrected_effects` reports NaN instead of a wild number.
MIN_EFFECTIVE_RELIABILITY = 0.1


def _values(res: MLMResults, expr: Expr) -> np.ndarray:
    """Evaluate a predictor expression on the fit's estimation sample."""
    return evaluate_on_sample(res.spec, res.design, expr)


def _cmean_predictors(res: MLMResults) -> dict[str, tuple[Expr, list[str], list[str]]]:
    """variable -> (its expression, the cmean predictors as written, their gamma labels)."""
    found: dict[str, tuple[Expr, list[str], list[str]]] = {}
    labels = set(res.gamma.index)
    for beta in res.spec.betas:
        for g in beta.gammas:
            kind = classify(g.predictor) if g.predictor is not None else None
            if kind is None or kind[0] != "cmean":
                continue
            key = column_key(kind[1], res.design.columns)
            expr, texts, gammas = found.setdefault(key, (kind[1], [], []))
            if g.predictor.text() not in texts:
                texts.append(g.predictor.text())
            if g.label in labels:
                gammas.append(g.label)
    return found


def cluster_mean_reliability(res: MLMResults) -> pd.DataFrame:
    """Reliability of each cluster-mean predictor ``cmean(x)`` in a fit.

    Parameters
    ----------
    res
        A fitted model.

    Returns
    -------
    pandas.DataFrame
        One row per variable x whose cluster mean is a predictor, indexed by x, with
        columns ``predictor`` (as written), ``gammas`` (the gammas of those predictors),
        ``icc`` (ICC(1) of x from the REML null model on the fit's estimation sample),
        ``sigma2_within`` (pooled within-cluster variance of x), ``n_clusters``,
        ``mean_cluster_size``, ``reliability`` and ``low`` (reliability below
        :data:`RELIABILITY_THRESHOLD`, 0.7). Empty when the model has no ``cmean()``.

    Notes
    -----
    The reliability of cluster j's sample mean as a measure of its true mean is
    ``lambda_j = n_j ICC / (1 + (n_j - 1) ICC)`` (Spearman-Brown; Raudenbush & Bryk 2002,
    eq. 3.58; Lüdtke et al. 2008, eq. 5); ``reliability`` is its mean over clusters, as
    HLM reports the reliability of the intercept. It assumes the members of a cluster are
    a sample from a larger population (students sampled from a school); when every member
    is observed, the cluster mean has no sampling error and the warning does not apply.

    Examples
    --------
    >>> import mlmwrap
    >>> from mlmwrap.analysis.latent import cluster_mean_reliability
    >>> res = mlmwrap.fit('''
    ...     mathach = b0 + b1*cwc(ses) + e
    ...     b0 = g00 + g01*cmean(ses) + u0
    ...     b1 = g10
    ... ''', data=mlmwrap.datasets.load_hsb(), cluster="school")
    >>> cluster_mean_reliability(res)[["icc", "mean_cluster_size", "reliability", "low"]].round(3)
                icc  mean_cluster_size  reliability    low
    variable
    ses       0.265             44.906        0.937  False
    """
    sizes = res.design.cluster_sizes
    rows, index = [], []
    for key, (expr, texts, gammas) in _cmean_predictors(res).items():
        codes = res.design.codes  # row-level: only when there is a cluster mean to judge
        x = _values(res, expr)
        null = null_model_icc(x, codes)
        dev = x - cluster_mean(x, codes)
        df = len(x) - len(sizes)
        rel = mean_reliability(null.icc, sizes) if np.isfinite(null.icc) else np.nan
        rows.append(
            {
                "predictor": ", ".join(texts),
                "gammas": ", ".join(gammas),
                "icc": null.icc,
                "sigma2_within": float(dev @ dev / df) if df > 0 else np.nan,
                "n_clusters": len(sizes),
                "mean_cluster_size": float(sizes.mean()),
                "reliability": rel,
                "low": bool(rel < RELIABILITY_THRESHOLD),
            }
        )
        index.append(key)
    columns = [
        "predictor",
        "gammas",
        "icc",
        "sigma2_within",
        "n_clusters",
        "mean_cluster_size",
        "reliability",
        "low",
    ]
    return pd.DataFrame(rows, index=pd.Index(index, name="variable"), columns=columns)


def reliability_warnings(res: MLMResults, table: pd.DataFrame | None = None) -> list[str]:
    """One message per cluster-mean predictor whose reliability is below 0.7.

    For the fit to issue as warnings. ``table`` is :func:`cluster_mean_reliability`'s
    result, when already computed.
    """
    table = cluster_mean_reliability(res) if table is None else table
    out = []
    for variable, row in table.iterrows():
        if not row["low"]:
            continue
        out.append(
            f"the cluster means in {row['predictor']} have reliability "
            f"{row['reliability']:.2f} (ICC of {variable} {row['icc']:.3f}, mean cluster size "
            f"{row['mean_cluster_size']:.1f}): the between and contextual effects of "
            f"{variable} are biased toward its within effect (Lüdtke et al. 2008); "
            "corrected_effects() gives bias-corrected estimates"
        )
    return out


def reliability_section(res: MLMResults, table: pd.DataFrame | None = None) -> list[str]:
    """Plain-text lines on the reliability of cluster means, for ``summary()``.

    Empty when the model has no ``cmean()`` predictor. When a reliability is low, the
    bias-corrected effects follow. ``table`` is :func:`cluster_mean_reliability`'s result,
    when already computed.
    """
    table = cluster_mean_reliability(res) if table is None else table
    if table.empty:
        return []
    width = max([len(str(p)) for p in table["predictor"]] + [9])
    lines = [
        "Reliability of cluster means (lambda = mean of n_j ICC / (1 + (n_j - 1) ICC))",
        f"  {'predictor':<{width}}  {'ICC of x':>8}  {'mean n_j':>8}  {'lambda':>6}",
    ]
    for _, row in table.iterrows():
        flag = "  LOW (< 0.70)" if row["low"] else ""
        lines.append(
            f"  {row['predictor']:<{width}}  {row['icc']:8.3f}  {row['mean_cluster_size']:8.1f}"
            f"  {row['reliability']:6.3f}{flag}"
        )
    if table["low"].any():
        corrected = corrected_effects(res)
        shown = corrected[corrected["estimate"].notna()]
        if len(shown):
            lines.append(
                "  Low reliability biases between/contextual effects toward the within effect;"
            )
            lines.append("  corrected (Grilli & Rampichini 2011; cluster-robust SE):")
            for (variable, effect), row in shown.iterrows():
                if effect == "within":
                    continue
                lines.append(
                    f"    {variable} {effect:<10} {row['estimate']:9.3f} (SE {row['se']:.3f}; "
                    f"uncorrected {row['uncorrected']:.3f})"
                )
    return lines


# -- the correction -----------------------------------------------------------------------
def _supported(res: MLMResults, pair) -> str | None:
    """Why the correction does not apply to this pair, or None when it does."""
    if not pair.complete:
        return "needs both the within and the between part in the model"
    key = pair.variable
    for col in res.design.fixed_columns:
        if col.label in (pair.within_gamma, pair.between_gamma):
            continue
        parts = [col.level1, col.predictor]
        involved = [p for p in parts if key in p]
        if not involved:
            continue
        if col.level1.startswith("cwc(") and key not in col.predictor:
            continue  # cwc(x) * W: uncorrelated with the error in the cluster mean
        return (
            f"not available when {key} also enters term {col.term} ({col.label}); "
            "write x as cwc(x) with cmean(x) in b0's equation only"
        )
    return None


def corrected_effects(res: MLMResults) -> pd.DataFrame:
    """Within, between and contextual effects corrected for unreliable cluster means.

    The observed cluster mean ``cmean(x)`` is the true cluster mean plus sampling error of
    variance ``sigma2_x / n_j``. That error attenuates the contextual effect and pulls the
    between effect toward the within effect (Lüdtke et al. 2008). This function removes
    the bias with the reliability-based correction of Grilli & Rampichini (2011), which in
    a balanced random-intercept model is

        contextual_corrected = contextual / lambda,
        between_corrected = within + contextual / lambda,

    with ``lambda`` the reliability of the cluster means. It is computed here in its
    estimating-equation form (Fuller 1987, corrected estimating equations), which gives
    exactly that in the balanced case and extends it to unequal cluster sizes (each cluster
    weighted as in the GLS fit), other level-2 predictors and random slopes of ``cwc(x)``:
    the GLS normal equations ``X'V^-1 (y - X g) = 0`` are replaced by
    ``sum_j [X_j' V_j^-1 (y_j - X_j g) + contextual(g) s_j] = 0`` with
    ``s_j = (sigma2_x / n_j) (1' V_j^-1 1)`` in the row of ``cmean(x)`` (and of ``x`` when
    x enters uncentered), the expected product of the cluster means' sampling error with
    the error it causes in y. ``sigma2_x`` is the pooled within-cluster variance of x and
    V the fitted model's covariance.

    Standard errors are cluster-robust sandwich estimates of those equations (with the
    factor J / (J - 1)), so they include the uncertainty about the reliability; the
    model-based SEs of the uncorrected effects do not.

    Parameters
    ----------
    res
        A fitted model with ``cwc(x)`` (or ``x``) at level 1 and ``cmean(x)`` in the
        equation for b0.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``(variable, effect)`` like :func:`mlmwrap.analysis.effects.effects`, with
        columns ``estimate``, ``se``, ``z``, ``p``, ``ci_lower``, ``ci_upper`` (corrected),
        ``uncorrected`` (the manifest estimate), ``reliability`` (mean reliability of the
        cluster means, :func:`cluster_mean_reliability`), ``effective_reliability`` (the
        factor the correction divides the manifest contextual effect by: the reliability
        weighted as the GLS fit weights the clusters, after the other predictors) and
        ``note``. NaN with a note where the correction does not apply, or when the
        effective reliability is below 0.1.

    Notes
    -----
    Assumes the observed members are a sample from a much larger cluster (students of a
    school, employees of a firm). When clusters are observed whole (all members of small
    teams) the cluster mean has no sampling error and the uncorrected estimate is the right
    one (Lüdtke et al. 2008, "sampling ratio"; Grilli & Rampichini 2011, section 5). The
    correction is consistent as the number of clusters grows. Like every latent-mean
    method it divides by an estimated between-cluster variance of x, so with few clusters
    and a low reliability it is noisy and has a small positive bias of order 1/J (in
    ``benchmarks/sim_latent_means.py``: 200 clusters of 5, ICC 0.1, reliability 0.36; the
    corrected between effect's mean bias is within Monte-Carlo error of 0, the uncorrected
    one is about -0.39 with a true value of 0.8). x is assumed to be normally distributed
    within clusters (so that ``cwc(x)`` is independent of the error in the cluster mean).

    Examples
    --------
    >>> import mlmwrap
    >>> from mlmwrap.analysis.latent import corrected_effects
    >>> res = mlmwrap.fit('''
    ...     mathach = b0 + b1*cwc(ses) + e
    ...     b0 = g00 + g01*cmean(ses) + u0
    ...     b1 = g10
    ... ''', data=mlmwrap.datasets.load_hsb(), cluster="school")
    >>> corrected_effects(res)[["estimate", "se", "uncorrected", "reliability"]].round(3)
                         estimate     se  uncorrected  reliability
    variable effect
    ses      within         2.191  0.130        2.191        0.937
             between        6.109  0.341        5.866        0.937
             contextual     3.918  0.373        3.675        0.937
    """
    table = res.effects()
    reliability = cluster_mean_reliability(res)
    crit = sstats.norm.ppf(0.975)
    rows = []
    for pair in find_pairs(res):
        weights = combinations(pair)
        why = _supported(res, pair)
        rel = (
            float(reliability.loc[pair.variable, "reliability"])
            if pair.variable in reliability.index
            else np.nan
        )
        if why is None:
            est, cov, lam = _corrected_gammas(res, pair, weights["contextual"], reliability)
            if lam < MIN_EFFECTIVE_RELIABILITY:
                why = (
                    f"the between-cluster variance of {pair.variable} cannot be told apart from "
                    f"the sampling error of its cluster means (effective reliability {lam:.2f}): "
                    "no correction is possible"
                )
        else:
            lam = np.nan
        for effect in ("within", "between", "contextual"):
            uncorrected = float(table.loc[(pair.variable, effect), "estimate"])
            if why is not None:
                rows.append((pair.variable, effect, np.nan, np.nan, uncorrected, rel, lam, why))
                continue
            a = _weight_vector(res, weights[effect])
            value = float(a @ est)
            se = float(np.sqrt(a @ cov @ a))
            rows.append((pair.variable, effect, value, se, uncorrected, rel, lam, ""))
    if not rows:
        raise MLMError(
            "the model has no cluster mean of a level-1 variable (cmean(x) beside x or "
            "cwc(x)), so there is no between or contextual effect to correct",
            hint="add cmean(x) as a level-2 predictor of b0, e.g. b0 = g00 + g01*cmean(ses) + u0",
        )
    columns = ["estimate", "se", "uncorrected", "reliability", "effective_reliability", "note"]
    frame = pd.DataFrame(rows, columns=["variable", "effect", *columns]).set_index(
        ["variable", "effect"]
    )
    z = frame["estimate"] / frame["se"]
    frame.insert(2, "z", z)
    frame.insert(3, "p", 2.0 * sstats.norm.sf(np.abs(z)))
    frame.insert(4, "ci_lower", frame["estimate"] - crit * frame["se"])
    frame.insert(5, "ci_upper", frame["estimate"] + crit * frame["se"])
    return frame


def _weight_vector(res: MLMResults, weights: dict[str, float]) -> np.ndarray:
    labels = list(res.gamma.index)
    a = np.zeros(len(labels))
    for label, w in weights.items():
        a[labels.index(label)] = w
    return a


def _corrected_gammas(
    res: MLMResults, pair, contextual: dict[str, float], reliability: pd.DataFrame
) -> tuple[np.ndarray, np.ndarray, float]:
    """All gammas from the corrected estimating equations, their sandwich covariance and
    the effective reliability."""
    d = res.design
    X, Z, y, codes = d.X, d.Z, d.y, d.codes
    J = d.n_clusters
    n_j = d.cluster_sizes.astype(float)
    L = res.optimum.evaluation.L
    labels = list(res.gamma.index)

    # per-cluster pieces of W_j = (I + Z_j L L' Z_j')^-1 (sigma2 factored out, as in A)
    ztz = cluster_sums(Z[:, :, None] * Z[:, None, :], codes, J)  # (J, q, q)
    zt1 = cluster_sums(Z, codes, J)  # (J, q)
    xtz = cluster_sums(X[:, :, None] * Z[:, None, :], codes, J)  # (J, p, q)
    q = Z.shape[1]
    M = np.eye(q) + np.einsum("ab,jbc,cd->jad", L.T, ztz, L)
    one_w_one = n_j - np.einsum(
        "ja,ja->j", zt1 @ L, np.linalg.solve(M, (zt1 @ L)[:, :, None])[:, :, 0]
    )

    sigma2_x = float(reliability.loc[pair.variable, "sigma2_within"])
    s_j = sigma2_x / n_j * one_w_one  # (J,)
    e = np.zeros(len(labels))
    e[labels.index(pair.between_gamma)] = 1.0
    if pair.within_kind == "raw":
        e[labels.index(pair.within_gamma)] = 1.0  # x itself carries the cluster mean's error
    a_c = _weight_vector(res, contextual)

    # per-cluster pieces of A = X'W X and c = X'W y
    xtx = cluster_sums(X[:, :, None] * X[:, None, :], codes, J)  # (J, p, p)
    xty = cluster_sums(X * y[:, None], codes, J)
    zty = cluster_sums(Z * y[:, None], codes, J)
    A_j = xtx - _wz_matrix(xtz, L, M)
    c_j = xty - _wz(xtz, L, M, zty)
    B_j = A_j - s_j[:, None, None] * np.outer(e, a_c)[None, :, :]  # A - S a_c' per cluster
    B, c = B_j.sum(axis=0), c_j.sum(axis=0)
    g = np.linalg.solve(B, c)
    # contextual_corrected = contextual_manifest / lambda_eff (Sherman-Morrison on B)
    lambda_eff = 1.0 - float(a_c @ np.linalg.solve(A_j.sum(axis=0), s_j.sum() * e))

    r = y - X @ g
    xtr = cluster_sums(X * r[:, None], codes, J)
    ztr = cluster_sums(Z * r[:, None], codes, J)
    psi = xtr - _wz(xtz, L, M, ztr) + np.outer(s_j, e) * float(a_c @ g)  # (J, p)
    meat = psi.T @ psi * J / (J - 1)
    Binv = np.linalg.inv(B)
    return g, Binv @ meat @ Binv.T, lambda_eff


def _wz_matrix(xtz: np.ndarray, L: np.ndarray, M: np.ndarray) -> np.ndarray:
    """Per cluster X_j'Z_j L M_j^-1 L'Z_j'X_j."""
    xzl = xtz @ L  # (J, p, q)
    return xzl @ np.linalg.solve(M, np.swapaxes(xzl, 1, 2))


def _wz(xtz: np.ndarray, L: np.ndarray, M: np.ndarray, ztv: np.ndarray) -> np.ndarray:
    """Per cluster X_j'Z_j L M_j^-1 L'Z_j'v_j, the correction term of X'W v."""
    right = np.linalg.solve(M, (ztv @ L)[:, :, None])[:, :, 0]  # (J, q): M^-1 L'Z'v
    return np.einsum("jpq,qr,jr->jp", xtz, L, right)
