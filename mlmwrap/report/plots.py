"""Figures of a fitted model, labeled in the equations' terms (gamma, u0j, beta1j).

matplotlib is an optional dependency (``pip install mlmwrap[plots]``); it is imported
only when a figure is drawn. Every function takes the results, draws on ``ax`` when given
(one Axes, or a sequence of them for the multi-panel figures) or on a new figure, and
returns the matplotlib ``Figure`` (its panels are ``fig.axes``).

- :func:`caterpillar`: the EB random effects of every cluster, sorted, with intervals of
  +-1.96 posterior SD, one panel per random effect.
- :func:`spaghetti`: each cluster's fitted line ``beta0j + betaKj * X_K`` against the
  average line.
- :func:`residuals`: level-1 residuals against fitted values, and their normal Q-Q plot.
- :func:`random_effects_qq`: normal Q-Q plots of the EB effects (level 2).
- :func:`within_between`: cluster means of the outcome against cluster means of a
  decomposed predictor, with the between slope, and within-cluster lines with the within
  slope.

Examples
--------
>>> import matplotlib
>>> matplotlib.use("Agg")
>>> import mlmwrap
>>> res = mlmwrap.fit('''
...     mathach = b0 + b1*cwc(ses) + e
...     b0 = g00 + g01*cmean(ses) + u0
...     b1 = g10 + u1
... ''', data=mlmwrap.datasets.load_hsb(), cluster="school")
>>> fig = caterpillar(res)
>>> [ax.get_ylabel() for ax in fig.axes]
['$u_{0j}$', '$u_{1j}$']
>>> fig = within_between(res, "ses")
>>> fig.axes[0].get_title()
'Within and between slopes of ses'
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import stats as sstats

from mlmwrap.analysis.cluster import cluster_betas, empirical_bayes
from mlmwrap.analysis.predict import predict
from mlmwrap.analysis.shared.per_cluster import level2_fixed_parts
from mlmwrap.errors import MLMError
from mlmwrap.model.centering import cluster_means
from mlmwrap.model.design import random_effect_base
from mlmwrap.model.new_design import level1_columns

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from mlmwrap.api.results import MLMResults

__all__ = [
    "caterpillar",
    "spaghetti",
    "residuals",
    "random_effects_qq",
    "within_between",
    "ResultPlots",
]

POINT_STYLE = {"marker": "o", "ms": 2.5, "color": "0.15", "linestyle": "none"}
_AVERAGE = {"color": "tab:red", "lw": 2.5, "zorder": 5}


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(
            "mlmwrap's plots need matplotlib: pip install matplotlib "
            "(or pip install 'mlmwrap[plots]')"
        ) from err
    return plt


def figure_axes(ax: Any, n: int, size: tuple[float, float]) -> tuple[Figure, list[Axes]]:
    """``n`` panels: the caller's (one Axes or a sequence) or a new row of them."""
    if ax is None:
        plt = _pyplot()
        fig, axes = plt.subplots(1, n, figsize=(size[0] * n, size[1]), squeeze=False)
        return fig, list(axes[0])
    axes = list(np.ravel(ax)) if isinstance(ax, (Sequence, np.ndarray)) else [ax]
    if len(axes) != n:
        raise MLMError(
            f"this figure has {n} panel{'s' if n != 1 else ''} but {len(axes)} Axes were given",
            hint=f"pass {n} Axes (e.g. fig.subplots(1, {n})), or leave ax=None",
        )
    return axes[0].figure, axes


# -- labels in the equations' notation ------------------------------------------------------
def _sub(label: str, letter: str, j: bool) -> str:
    """'u0' -> $u_{0j}$, 'g02[Catholic]' -> $\\gamma_{02}$[Catholic] (mathtext)."""
    m = re.fullmatch(r"[A-Za-z]+(\w*?)(\[.*\])?", label)
    index, level = (m.group(1), m.group(2) or "") if m else (label, "")
    return f"${letter}_{{{index}{'j' if j else ''}}}${level}"


def _u(label: str) -> str:
    return _sub(label, "u", True)


def _beta(label: str) -> str:
    return _sub(label, r"\beta", True)


def _gamma(label: str) -> str:
    return _sub(label, r"\gamma", False)


def _term(term: str) -> str:
    return "intercept" if term in ("(Intercept)", "(intercept)") else term


def _what(res: MLMResults, k: int) -> str:
    """'the intercept $\\beta_{0j}$' or 'the slope $\\beta_{1j}$ of cwc(ses)' for effect k."""
    label = res.design.random_labels[k]
    base = random_effect_base(label)
    beta = next(b for b in res.spec.betas if b.random and b.u_label == base)
    if beta.predictor is None:
        return f"the intercept {_beta(beta.label)}"
    category = label[len(base) :]  # '[Black]' for a category's indicator, else ''
    return f"the slope {_beta(beta.label + category)} of {beta.predictor.text()}{category}"


def _noun(res: MLMResults) -> str:
    return str(res.cluster)


# -- caterpillar ------------------------------------------------------------------------
def caterpillar(res: MLMResults, effects: Sequence[str] | None = None, ax: Any = None) -> Figure:
    """EB estimates of the random effects with +-1.96 posterior SD, sorted, per panel.

    Parameters
    ----------
    res
        A fitted model.
    effects
        Random effects to show (``["u0"]``); default all.
    ax
        One Axes per effect shown (a single Axes for one effect); default a new figure.

    Returns
    -------
    matplotlib.figure.Figure
        One panel per effect: the clusters ranked by ``u_Kj`` on the x axis, ``u_Kj`` with
        its interval on the y axis, a line at 0 (the average cluster).
    """
    labels = list(res.design.random_labels)
    chosen = labels if effects is None else list(effects)
    unknown = [e for e in chosen if e not in labels]
    if unknown:
        raise MLMError(
            f"no random effect {', '.join(unknown)} in this model",
            hint=f"the random effects are {', '.join(labels)}",
        )
    u, cov = empirical_bayes(res)
    sd = np.sqrt(np.clip(np.diagonal(cov, axis1=1, axis2=2), 0.0, None))
    fig, axes = figure_axes(ax, len(chosen), (5.0, 3.6))
    for a, label in zip(axes, chosen, strict=True):
        k = labels.index(label)
        order = np.argsort(u[:, k], kind="stable")
        rank = np.arange(1, len(order) + 1)
        a.errorbar(
            rank,
            u[order, k],
            yerr=1.96 * sd[order, k],
            elinewidth=0.8,
            ecolor="0.6",
            **POINT_STYLE,
        )
        a.axhline(0.0, color="tab:red", lw=1)
        a.set_title(f"{_u(label)}: {_noun(res)} effects on {_what(res, k)}")
        a.set_xlabel(f"{_noun(res)}, ranked by {_u(label)}")
        a.set_ylabel(_u(label))
    fig.text(
        0.5,
        0.005,
        "empirical Bayes estimates with 95% intervals (\u00b11.96 posterior SD)",
        ha="center",
        va="bottom",
        fontsize="small",
        color="0.3",
    )
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    return fig


# -- spaghetti --------------------------------------------------------------------------
def _slope_position(res: MLMResults, predictor: str | None) -> int:
    betas = res.spec.betas
    slopes = [k for k, b in enumerate(betas) if b.predictor is not None]
    if not slopes:
        raise MLMError(
            "the model has no level-1 predictor, so there are no lines to draw",
            hint="add one to the level-1 equation, e.g. y = b0 + b1*cwc(x) + e",
        )
    categorical = {c.position for c in level1_columns(res) if c.category is not None}
    if predictor is None:
        numeric = [k for k in slopes if k not in categorical]
        random = [k for k in numeric if betas[k].random]
        if not numeric:
            raise MLMError(
                "fitted lines are not available for level-1 categorical predictors yet: "
                "the model has no numeric level-1 predictor to draw them against",
                hint="res.plot.caterpillar() shows each category's random effects",
            )
        return (random or numeric)[0]
    for k in slopes:
        if predictor in (betas[k].predictor.text(), betas[k].label):
            if k in categorical:
                raise MLMError(
                    f"fitted lines are not available for level-1 categorical predictors "
                    f"yet ('{betas[k].predictor.text()}' has a slope per category, not a line)",
                    hint="res.plot.caterpillar() shows each category's random effects; "
                    "res.cluster_coefficients() has each cluster's coefficient per category",
                )
            return k
    names = ", ".join(betas[k].predictor.text() for k in slopes)
    raise MLMError(
        f"'{predictor}' is not a level-1 predictor of this model",
        hint=f"choose one of: {names}",
    )


def spaghetti(
    res: MLMResults,
    predictor: str | None = None,
    ax: Any = None,
    color_by: str | None = None,
) -> Figure:
    """Each cluster's fitted line against the average line, for one level-1 predictor.

    Cluster ``j``'s line is ``beta0j + betaKj * X_K`` (EB coefficients, see
    :func:`mlmwrap.analysis.cluster.cluster_coefficients`) over the range of ``X_K`` observed in
    the cluster, other level-1 predictors held at 0. The average line uses the gammas
    with the level-2 predictors at their mean over clusters.

    Parameters
    ----------
    res
        A fitted model.
    predictor
        The level-1 predictor as written (``"cwc(ses)"``) or its beta (``"b1"``); default
        the first one with a random slope.
    ax
        A matplotlib Axes; default a new figure.
    color_by
        A column of the data, constant within clusters (e.g. ``"sector"``), to color the
        clusters' lines by.

    Returns
    -------
    matplotlib.figure.Figure
    """
    k = _slope_position(res, predictor)
    betas = res.spec.betas
    x_text = betas[k].predictor.text()
    columns = level1_columns(res)
    c = next(i for i, col in enumerate(columns) if col.position == k)  # k is numeric
    x = columns[c].x
    codes = res.design.codes
    J = res.design.n_clusters
    lo = np.full(J, np.inf)
    hi = np.full(J, -np.inf)
    np.minimum.at(lo, codes, x)
    np.maximum.at(hi, codes, x)
    coef = cluster_betas(res)
    fig, (a,) = figure_axes(ax, 1, (6.0, 4.5))
    colors, legend = _cluster_colors(res, color_by)
    for j in range(J):
        xs = np.array([lo[j], hi[j]])
        a.plot(xs, coef[j, 0] + coef[j, c] * xs, color=colors[j], lw=0.7, alpha=0.55)
    average = level2_fixed_parts(res).mean(axis=0)
    xs = np.array([x.min(), x.max()])
    a.plot(
        xs,
        average[0] + average[c] * xs,
        label=f"average {_noun(res)}: {average[0]:.2f} + {average[c]:.2f} {x_text}",
        **_AVERAGE,
    )
    for name, color in legend.items():
        a.plot([], [], color=color, lw=1.5, label=name)
    b0, bk = _beta(betas[0].label), _beta(betas[k].label)
    a.set_title(f"Fitted lines per {_noun(res)}: {b0} + {bk} {x_text}")
    a.set_xlabel(x_text)
    a.set_ylabel(f"{res.outcome} (fitted)")
    others = len([b for b in betas if b.predictor is not None]) > 1
    if others:
        a.text(0.01, 0.01, "other level-1 predictors at 0", transform=a.transAxes,
               fontsize="small", color="0.3")  # fmt: skip
    a.legend(loc="upper left", fontsize="small", frameon=False)
    return fig


def _cluster_colors(res: MLMResults, color_by: str | None) -> tuple[list, dict]:
    J = res.design.n_clusters
    if color_by is None:
        return ["0.45"] * J, {}
    data = res.data if res.data is not None else res.model_frame
    if color_by not in data.columns:
        raise MLMError(f"there is no column '{color_by}' in the data to color by")
    rows = data.loc[res.design.row_index]
    per_cluster = rows.groupby(rows[res.design.cluster])[color_by]
    if (per_cluster.nunique(dropna=False) > 1).any():
        raise MLMError(
            f"'{color_by}' varies within clusters, so it cannot color a cluster's line",
            hint="color by a level-2 variable (constant within each cluster)",
        )
    values = per_cluster.first().reindex(res.design.cluster_labels).to_numpy()
    levels = sorted(set(values.tolist()), key=str)
    palette = ["tab:blue", "tab:orange", "tab:green", "tab:purple", "tab:brown", "tab:olive"]
    if len(levels) > len(palette):
        raise MLMError(f"'{color_by}' has {len(levels)} values; color by one with at most 6")
    color_of = {v: palette[i] for i, v in enumerate(levels)}
    return [color_of[v] for v in values], {f"{color_by} = {v}": color_of[v] for v in levels}


# -- residual diagnostics ----------------------------------------------------------------
def _qq(a: Axes, values: np.ndarray, line: str) -> None:
    values = np.sort(values)
    n = len(values)
    q = sstats.norm.ppf((np.arange(1, n + 1) - 0.5) / n)
    a.plot(q, values, **POINT_STYLE)
    if line == "identity":
        ref = np.array([q[0], q[-1]])
        a.plot(ref, ref, color="tab:red", lw=1)
    else:  # through the quartiles, as R's qqline
        q1, q3 = np.quantile(values, [0.25, 0.75])
        z1, z3 = sstats.norm.ppf([0.25, 0.75])
        slope = (q3 - q1) / (z3 - z1)
        a.plot(q[[0, -1]], q1 + slope * (q[[0, -1]] - z1), color="tab:red", lw=1)
    a.set_xlabel("normal quantile")


def residuals(res: MLMResults, ax: Any = None) -> Figure:
    """Level-1 diagnostics: residuals against fitted values, and a normal Q-Q plot.

    The residuals are ``r_ij = y_ij - (X gamma + Z u_j)`` (conditional on the EB effects);
    the Q-Q plot shows them divided by ``sigma``, against the line ``y = x``.

    Parameters
    ----------
    res
        A fitted model.
    ax
        Two Axes; default a new figure.

    Returns
    -------
    matplotlib.figure.Figure
    """
    fitted = predict(res).to_numpy()
    r = res.design.y - fitted
    fig, (a, b) = figure_axes(ax, 2, (5.0, 4.0))
    a.plot(fitted, r, **(POINT_STYLE | {"ms": 1.5, "alpha": 0.4}))
    a.axhline(0.0, color="tab:red", lw=1)
    a.set_title(r"Level-1 residuals $r_{ij}$ vs fitted values")
    a.set_xlabel(rf"fitted {res.outcome} ($\gamma$ part + $u_j$ part)")
    a.set_ylabel(r"residual $r_{ij}$")
    _qq(b, r / np.sqrt(res.sigma2), "identity")
    b.set_title(r"Normal Q-Q plot of $r_{ij}\,/\,\sigma$")
    b.set_ylabel(r"standardized residual $r_{ij}\,/\,\sigma$")
    fig.tight_layout()
    return fig


def random_effects_qq(res: MLMResults, ax: Any = None) -> Figure:
    """Level-2 diagnostics: a normal Q-Q plot of each random effect's EB estimates.

    EB estimates are shrunken toward 0, so their spread is smaller than ``sqrt(tau)``;
    the reference line goes through the quartiles (R's ``qqline``). Judge the shape
    (straightness, outlying clusters), not the slope.

    Parameters
    ----------
    res
        A fitted model.
    ax
        One Axes per random effect; default a new figure.

    Returns
    -------
    matplotlib.figure.Figure
    """
    u, _ = empirical_bayes(res)
    labels = res.design.random_labels
    fig, axes = figure_axes(ax, len(labels), (4.2, 4.0))
    for k, (a, label) in enumerate(zip(axes, labels, strict=True)):
        _qq(a, u[:, k], "quartiles")
        a.set_title(f"Normal Q-Q plot of {_u(label)} (EB)")
        a.set_ylabel(f"{_u(label)}, {_term(res.design.random_terms[k])}")
    fig.tight_layout()
    return fig


# -- within vs between ---------------------------------------------------------------------
def _find_slopes(res: MLMResults, variable: str, between: str | None):
    """(within label, within value, between label(s), between value, contextual?)."""
    betas = res.spec.betas
    g = res.gamma
    level1 = {b.predictor.text(): b for b in betas if b.predictor is not None}
    within_beta = level1.get(f"cwc({variable})")
    contextual = False
    if within_beta is None:
        for text in (variable, f"cgm({variable})"):
            if text in level1:
                within_beta, contextual = level1[text], True
                break
    if within_beta is None:
        raise MLMError(
            f"'{variable}' is not decomposed in this model: no cwc({variable}) (or "
            f"{variable}) in the level-1 equation",
            hint=f"e.g. y = b0 + b1*cwc({variable}) + e; b0 = g00 + g01*cmean({variable}) + u0",
        )
    within_rows = g[(g["beta"] == within_beta.label) & (g["predictor"] == "(constant)")]
    b0_rows = g[g["beta"] == betas[0].label]
    if between is not None:
        between_rows = b0_rows[b0_rows["predictor"] == between]
    else:
        between_rows = b0_rows[b0_rows["predictor"].str.contains(f"cmean({variable})",
                                                                 regex=False)]  # fmt: skip
    if len(within_rows) != 1 or len(between_rows) != 1:
        raise MLMError(
            f"cannot find the between-cluster effect of '{variable}' in {betas[0].label}'s "
            "equation",
            hint=f"add g01*cmean({variable}) to the equation for {betas[0].label}, or name "
            f"the level-2 predictor that holds the cluster means: between='meanses'",
        )
    w_label, b_label = within_rows.index[0], between_rows.index[0]
    w_value = float(within_rows["estimate"].iloc[0])
    b_value = float(between_rows["estimate"].iloc[0])
    if contextual:  # raw x at level 1: gK0 is within, g0M is contextual = between - within
        return w_label, w_value, f"{_gamma(w_label)} + {_gamma(b_label)}", w_value + b_value
    return w_label, w_value, _gamma(b_label), b_value


def within_between(
    res: MLMResults, variable: str, between: str | None = None, ax: Any = None
) -> Figure:
    """Within- and between-cluster slopes of a decomposed predictor, in one picture.

    Points are the clusters' means of the outcome against their means of ``variable`` (on
    the estimation sample); the thick line has the between slope and passes through the
    mean of those points; each grey segment has the within slope, is centered on its
    cluster's point and spans +-1 SD of ``variable`` within the cluster. The gap between
    the two slopes is the contextual effect.

    Parameters
    ----------
    res
        A model with ``cwc(variable)`` at level 1 and ``cmean(variable)`` (or a column of
        cluster means named by ``between``) in the intercept's equation; or with
        ``variable`` uncentered at level 1 (the contextual parametrization, where the
        between slope is the sum of the two gammas).
    variable
        The level-1 variable as it is named in the equations (``"ses"``).
    between
        The level-2 predictor holding its cluster means when it is a data column
        (``"meanses"``); default: the one written as ``cmean(variable)``.
    ax
        A matplotlib Axes; default a new figure.

    Returns
    -------
    matplotlib.figure.Figure
    """
    w_label, within, b_text, slope_between = _find_slopes(res, variable, between)
    d = res.design
    if variable not in d.columns:  # pragma: no cover - _find_slopes found it in the model
        raise MLMError(f"'{variable}' is not a variable of this model")
    x = res.model_frame[d.columns[variable]].to_numpy(dtype=float)
    J = d.n_clusters
    xbar, ybar = cluster_means(np.column_stack([x, d.y]), d.codes, J).T
    sd = np.sqrt(cluster_means((x - xbar[d.codes]) ** 2, d.codes, J))
    fig, (a,) = figure_axes(ax, 1, (6.0, 4.5))
    for j in range(d.n_clusters):
        xs = np.array([xbar[j] - sd[j], xbar[j] + sd[j]])
        a.plot(xs, ybar[j] + within * (xs - xbar[j]), color="0.6", lw=0.8)
    a.plot(xbar, ybar, label=f"{_noun(res)} means", **(POINT_STYLE | {"ms": 3.5}))
    xs = np.array([xbar.min(), xbar.max()])
    a.plot(
        xs,
        ybar.mean() + slope_between * (xs - xbar.mean()),
        label=f"between: {b_text} = {slope_between:.2f}",
        **_AVERAGE,
    )
    a.plot([], [], color="0.6", lw=1.5, label=f"within: {_gamma(w_label)} = {within:.2f}")
    a.set_title(f"Within and between slopes of {variable}")
    a.set_xlabel(f"{variable} ({_noun(res)} mean for the points)")
    a.set_ylabel(f"{res.outcome} ({_noun(res)} mean for the points)")
    a.legend(
        loc="upper left",
        fontsize="small",
        frameon=False,
        title=f"contextual effect = {slope_between - within:.2f}",
        title_fontsize="small",
    )
    return fig


# -- accessor -------------------------------------------------------------------------------
class ResultPlots:
    """``res.plot``: the figures of one fit (see :mod:`mlmwrap.report.plots`).

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import mlmwrap
    >>> res = mlmwrap.fit("mathach = b0 + e\\nb0 = g00 + u0",
    ...                   data=mlmwrap.datasets.load_hsb(), cluster="school")
    >>> fig = ResultPlots(res).caterpillar()
    >>> len(fig.axes)
    1
    """

    def __init__(self, res: MLMResults) -> None:
        self._res = res

    def caterpillar(self, effects: Sequence[str] | None = None, ax: Any = None) -> Figure:
        """See :func:`mlmwrap.report.plots.caterpillar`."""
        return caterpillar(self._res, effects=effects, ax=ax)

    def spaghetti(
        self, predictor: str | None = None, ax: Any = None, color_by: str | None = None
    ) -> Figure:
        """See :func:`mlmwrap.report.plots.spaghetti`."""
        return spaghetti(self._res, predictor=predictor, ax=ax, color_by=color_by)

    def residuals(self, ax: Any = None) -> Figure:
        """See :func:`mlmwrap.report.plots.residuals`."""
        return residuals(self._res, ax=ax)

    def random_effects_qq(self, ax: Any = None) -> Figure:
        """See :func:`mlmwrap.report.plots.random_effects_qq`."""
        return random_effects_qq(self._res, ax=ax)

    def within_between(self, variable: str, between: str | None = None, ax: Any = None) -> Figure:
        """See :func:`mlmwrap.report.plots.within_between`."""
        return within_between(self._res, variable, between=between, ax=ax)
