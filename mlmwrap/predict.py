"""Predictions from a fitted model, on the estimation sample or on new data.

A prediction is the fixed part ``X gamma`` plus, for a cluster that was in the fit, its
empirical Bayes random effects ``Z u_j``. The design for new data is rebuilt from the
model's own expressions (``res.spec``) with the *fit's* centering constants, so that
``cwc(ses)`` means the same thing in a prediction as it did in the fit:

- ``cwc(x)`` and ``cmean(x)`` of a cluster that was in the fit use that cluster's mean of
  ``x`` on the estimation sample; of a cluster that was not, its own mean of ``x`` in
  ``newdata`` (the only information there is about it).
- ``cgm(x)`` subtracts the fit's grand mean (over clusters for a level-2 variable, over
  rows for a level-1 variable, as in the fit); ``center(x, v)`` subtracts ``v``.
- Raw variables (``ses``, ``meanses``, ``sector``) are always read from ``newdata``.

So ``predict(res, res.data)`` reproduces the fitted values row for row, and a new student
in a known school is centered at that school's mean, as HLM's and lme4's users who center
by hand before fitting would do it.

A row with a missing (or undefined, e.g. ``log`` of a negative number) value in a
predictor it needs gets ``NaN``; a cluster not in the fit gets the fixed part only (its
random effects are set to their expected value, 0). Both are said in a
:class:`PredictionWarning` that gives the counts; ``detail=True`` returns the parts and a
``cluster_known`` flag per row.

Examples
--------
>>> import mlmwrap, pandas as pd
>>> res = mlmwrap.fit('''
...     mathach = b0 + b1*cwc(ses) + e
...     b0 = g00 + g01*meanses + u0
...     b1 = g10 + u1
... ''', data=mlmwrap.datasets.load_hsb(), cluster="school")
>>> predict(res).head(3).round(3)
0    7.293
1    9.448
2    9.586
Name: prediction, dtype: float64
>>> new = pd.DataFrame({"school": [1224, 9999], "ses": [0.5, 0.5], "meanses": [-0.43, 0.2]})
>>> predict(res, new, detail=True).round(3)  # school 9999 is new: fixed part only, warned
    fixed  random  prediction  cluster_known
0  12.158  -0.226      11.931           True
1  13.825   0.000      13.825          False
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .centering import cluster_means, grand_mean_centered
from .design import TRANSFORMS, category_levels, evaluate_on_sample, is_numeric_column
from .errors import DataError, MLMError, PredictionWarning
from .expr import Call, Expr, Num, Power, Product, Var

if TYPE_CHECKING:  # pragma: no cover
    from .results import MLMResults
    from .spec import Beta, Gamma

__all__ = ["PredictionWarning", "predict", "NewDesign", "new_design", "GammaColumn"]


def _unary(func: str) -> Callable[[np.ndarray], np.ndarray]:
    if func not in TRANSFORMS:  # a function added to the language but not here yet
        raise MLMError(f"predictions do not support {func}() yet")
    return TRANSFORMS[func]


# -- evaluating the model's expressions ---------------------------------------------------
class _FitSource:
    """The model's expressions on the estimation sample, with the fit's semantics.

    Reproduces :mod:`mlmwrap.design` column for column; the constants it computes (cluster
    means, grand means, categories) are what :class:`_NewSource` borrows.
    """

    def __init__(self, res: MLMResults) -> None:
        d = res.design
        self.spec, self.design = res.spec, d
        self.frame = d.frame.reset_index(drop=True)
        self.columns = d.columns
        self.codes = d.codes
        self.n_clusters = d.n_clusters
        self.fit = self  # as _NewSource.fit: where the constants come from
        self._cache: dict[str, np.ndarray] = {}

    def column(self, name: str) -> pd.Series:
        return self.frame[self.columns[name]]

    def numeric(self, expr: Expr) -> np.ndarray:
        key = expr.text()
        if key not in self._cache:
            self._cache[key] = self._numeric(expr)
        return self._cache[key]

    def _numeric(self, expr: Expr) -> np.ndarray:
        # The design's own evaluator: the fit's columns exactly as the fit built them.
        return evaluate_on_sample(self.spec, self.design, expr)

    def cluster_means(self, expr: Expr) -> np.ndarray:
        """Mean of ``expr`` in each fitted cluster, shape (J,)."""
        return cluster_means(self.numeric(expr), self.codes, self.n_clusters)

    def grand_mean(self, expr: Expr) -> float:
        """The constant ``cgm(expr)`` subtracted in the fit."""
        x = self.numeric(expr)
        return float(x[0] - grand_mean_centered(x, self.codes)[0])

    def categorical(self, expr: Expr) -> pd.Series | None:
        if isinstance(expr, Call) and expr.func == "C":
            return self.column(expr.args[0].name)
        if isinstance(expr, Var) and not is_numeric_column(self.column(expr.name)):
            return self.column(expr.name)
        return None


class _NewSource:
    """The model's expressions on new data, centered with the fit's constants."""

    def __init__(
        self,
        fit: _FitSource,
        frame: pd.DataFrame,
        fit_position: np.ndarray,
        new_codes: np.ndarray,
    ) -> None:
        self.fit = fit
        self.frame = frame
        self.fit_position = fit_position  # cluster's position in the fit, -1 if not there
        self.new_codes = new_codes  # cluster codes within newdata, -1 for a missing id

    def column(self, name: str) -> pd.Series:
        col = self.fit.columns[name]
        if col not in self.frame.columns:
            raise DataError(
                f"newdata has no column '{col}', which the model needs",
                expected=f"the columns the model was fitted with: {_needed(self.fit)}",
            )
        return self.frame[col]

    def numeric(self, expr: Expr) -> np.ndarray:
        n = len(self.frame)
        if isinstance(expr, Var):
            col = self.column(expr.name)
            if not is_numeric_column(col) and col.notna().any():
                raise DataError(
                    f"'{col.name}' in newdata is not numeric (its values look like "
                    f"{', '.join(repr(v) for v in pd.unique(col.dropna())[:3])})",
                    expected="a numeric column, as in the data the model was fitted to",
                )
            return pd.to_numeric(col, errors="coerce").to_numpy(dtype=float)
        if isinstance(expr, Num):
            return np.full(n, float(expr.value))
        if isinstance(expr, Product):
            out = np.ones(n)
            for factor in expr.factors:
                out = out * self.numeric(factor)
            return out
        if isinstance(expr, Power):
            return self.numeric(expr.base) ** float(expr.exponent.value)
        if isinstance(expr, Call):
            inner = expr.args[0]
            x = self.numeric(inner)
            if expr.func in ("cwc", "cmean"):
                means = self._cluster_means(inner, x)
                return x - means if expr.func == "cwc" else means
            if expr.func == "cgm":
                return x - self.fit.grand_mean(inner)
            if expr.func == "center":
                return x - float(expr.args[1].value)
            with np.errstate(all="ignore"):
                out = _unary(expr.func)(x)
            return np.where(np.isfinite(out), out, np.nan)
        raise MLMError(f"cannot evaluate '{expr.text()}'")  # pragma: no cover

    def _cluster_means(self, inner: Expr, x: np.ndarray) -> np.ndarray:
        """Fit's cluster mean for known clusters; newdata's own mean for new ones."""
        out = np.full(len(x), np.nan)
        known = self.fit_position >= 0
        out[known] = self.fit.cluster_means(inner)[self.fit_position[known]]
        new = ~known & (self.new_codes >= 0)
        if new.any():
            ok = new & np.isfinite(x)
            k = int(self.new_codes.max()) + 1
            own = cluster_means(x[ok], self.new_codes[ok], k)
            out[new] = own[self.new_codes[new]]
        return out

    def categorical(self, expr: Expr) -> pd.Series | None:
        fit_series = self.fit.categorical(expr)
        if fit_series is None:
            return None
        name = expr.args[0].name if isinstance(expr, Call) else expr.name
        return self.column(name)


def _needed(fit: _FitSource) -> str:
    return ", ".join(dict.fromkeys(fit.columns.values()))


@dataclass(frozen=True)
class GammaColumn:
    """One fixed-effect column: ``X_K * W_M`` for the gamma ``label`` of beta ``K``."""

    label: str
    beta: int  # position of the beta in spec.betas
    w: np.ndarray  # W_M (1 for the constant gK0; an indicator for a category)


def _terms(
    spec, source: _FitSource | _NewSource
) -> Iterator[tuple[int, Beta, np.ndarray, list[GammaColumn]]]:
    """For each beta: (position, beta, X_K, its gamma columns), in the design's order."""
    for k, beta in enumerate(spec.betas):
        n = len(source.frame)
        x = source.numeric(beta.predictor) if beta.predictor is not None else np.ones(n)
        yield k, beta, x, list(_gamma_columns(source, k, beta, n))


def _gamma_columns(source, k: int, beta: Beta, n: int) -> Iterator[GammaColumn]:
    for gamma in beta.gammas:
        yield from _one_gamma(source, k, gamma, n)


def _one_gamma(source, k: int, gamma: Gamma, n: int) -> Iterator[GammaColumn]:
    if gamma.predictor is None:
        yield GammaColumn(gamma.label, k, np.ones(n))
        return
    fit_series = source.fit.categorical(gamma.predictor)  # categories are the fit's
    if fit_series is None:
        yield GammaColumn(gamma.label, k, source.numeric(gamma.predictor))
        return
    levels = category_levels(fit_series)
    values = source.categorical(gamma.predictor)
    arr = values.to_numpy()
    # A category the fit never saw has no gamma: such rows are undefined (NaN), never
    # silently put in the reference category.
    unknown = values.notna().to_numpy() & ~values.isin(levels).to_numpy()
    missing = values.isna().to_numpy() | unknown
    for level in levels[1:]:
        indicator = (arr == level).astype(float)
        indicator[missing] = np.nan
        yield GammaColumn(f"{gamma.label}[{level}]", k, indicator)


# -- the design of new data ----------------------------------------------------------------
@dataclass(frozen=True)
class NewDesign:
    """The fixed and random design of new rows, with where each row's cluster stands.

    Attributes
    ----------
    X, Z : ndarray
        Fixed-effects and random-effects columns, in the fit's order (NaN where a value
        is missing or undefined).
    fit_position : ndarray of int
        Each row's cluster position in the fit (``res.design.cluster_labels``), -1 when the
        cluster was not in the fit or its id is missing.
    cluster_missing : ndarray of bool
        The row's cluster id is missing (or the column is absent).
    index : pandas.Index
        The rows of ``newdata``.
    """

    X: np.ndarray
    Z: np.ndarray
    fit_position: np.ndarray
    cluster_missing: np.ndarray
    index: pd.Index


def _uses_cluster_means(spec) -> bool:
    def walk(e: Expr | None) -> bool:
        if e is None:
            return False
        if isinstance(e, Call):
            return e.func in ("cwc", "cmean") or any(walk(a) for a in e.args)
        if isinstance(e, Product):
            return any(walk(f) for f in e.factors)
        if isinstance(e, Power):
            return walk(e.base)
        return False

    return any(walk(b.predictor) or any(walk(g.predictor) for g in b.gammas) for b in spec.betas)


def new_design(res: MLMResults, newdata: pd.DataFrame, need_cluster: bool = True) -> NewDesign:
    """Rebuild the model's ``X`` and ``Z`` for ``newdata`` with the fit's centering constants.

    Parameters
    ----------
    res
        A fitted model.
    newdata
        Rows to predict; needs the model's predictor columns (not the outcome) and, when
        ``need_cluster`` or the model uses ``cwc``/``cmean``, the cluster column.
    need_cluster
        Whether the cluster column is required (for the random part).

    Returns
    -------
    NewDesign
    """
    if not isinstance(newdata, pd.DataFrame):
        raise DataError(
            f"newdata must be a pandas DataFrame, not {type(newdata).__name__}",
            hint="e.g. newdata=pd.DataFrame({'school': [1224], 'ses': [0.5], ...})",
        )
    fit = _FitSource(res)
    cluster = res.design.cluster
    frame = newdata.reset_index(drop=True)
    n = len(frame)
    if cluster in frame.columns:
        ids = frame[cluster]
        fit_position = np.asarray(pd.Index(res.design.cluster_labels).get_indexer(ids))
        cluster_missing = ids.isna().to_numpy()
        fit_position[cluster_missing] = -1
        new_codes = np.asarray(pd.factorize(ids)[0])
    else:
        if need_cluster or _uses_cluster_means(res.spec):
            why = (
                "the model centers within clusters (cwc/cmean)"
                if _uses_cluster_means(res.spec)
                else "the random part needs each row's cluster"
            )
            raise DataError(
                f"newdata has no cluster column '{cluster}'; {why}",
                hint=f"add the column '{cluster}' (a new id for a new cluster)"
                + ("" if _uses_cluster_means(res.spec) else ", or pass random=False"),
            )
        fit_position = np.full(n, -1)
        cluster_missing = np.ones(n, dtype=bool)
        new_codes = np.full(n, -1)
    source = _NewSource(fit, frame, fit_position, new_codes)

    x_cols: list[np.ndarray] = []
    labels: list[str] = []
    z_cols: list[np.ndarray] = []
    for _, beta, x, gammas in _terms(res.spec, source):
        if beta.random:
            z_cols.append(x)
        for g in gammas:
            x_cols.append(x * g.w)
            labels.append(g.label)
    expected = [c.label for c in res.design.fixed_columns]
    if labels != expected:  # pragma: no cover - the two builders must agree
        raise MLMError(f"internal error: prediction columns {labels} differ from {expected}")
    X = np.column_stack(x_cols) if x_cols else np.empty((n, 0))
    Z = np.column_stack(z_cols)
    return NewDesign(X, Z, fit_position, cluster_missing, newdata.index)


def fit_level_columns(res: MLMResults) -> tuple[np.ndarray, list[list[GammaColumn]]]:
    """On the estimation sample: the level-1 columns ``X_K`` (one per beta, shape (n, P))
    and each beta's gamma columns (with their ``W_M``), computed as the fit computed them."""
    fit = _FitSource(res)
    xs, gammas = [], []
    for _, _, x, cols in _terms(res.spec, fit):
        xs.append(x)
        gammas.append(cols)
    return np.column_stack(xs), gammas


# -- predictions --------------------------------------------------------------------------
def predict(
    res: MLMResults,
    newdata: pd.DataFrame | None = None,
    random: bool = True,
    detail: bool = False,
) -> pd.Series | pd.DataFrame:
    """Predicted outcome: the fixed part, plus the cluster's empirical Bayes effects.

    Parameters
    ----------
    res
        A fitted model.
    newdata
        Rows to predict (the outcome is not needed). ``None``: the fitted values on the
        estimation sample, ``X gamma + Z u_j`` (indexed like the fitted rows).
    random
        Add the random effects ``Z u_j`` of clusters that were in the fit (default). With
        ``False``, the fixed part ``X gamma`` only (the population-average prediction,
        lme4's ``re.form = NA``).
    detail
        Return a DataFrame with columns ``fixed`` (``X gamma``), ``random`` (``Z u_j``; 0
        for a cluster not in the fit), ``prediction`` and ``cluster_known`` instead of the
        predictions alone.

    Returns
    -------
    pandas.Series
        ``prediction``, aligned to ``newdata``'s index. ``NaN`` where a predictor the row
        needs is missing or undefined, or where the cluster id is missing and the model
        needs the cluster.

    Warns
    -----
    PredictionWarning
        When rows of clusters not in the fit get the fixed part only (with counts and
        example ids), and when rows get ``NaN``.

    Notes
    -----
    Centering in ``newdata`` uses the fit's constants: the cluster means of the estimation
    sample for clusters in the fit, the cluster's own mean in ``newdata`` for new ones,
    the fit's grand mean for ``cgm`` (see the module's documentation).

    Examples
    --------
    >>> import mlmwrap, pandas as pd
    >>> hsb = mlmwrap.datasets.load_hsb()
    >>> res = mlmwrap.fit("mathach = b0 + b1*cgm(ses) + e\\nb0 = g00 + u0\\nb1 = g10",
    ...                   data=hsb, cluster="school")
    >>> new = pd.DataFrame({"school": [1224, 1224], "ses": [-1.0, 1.0]})
    >>> predict(res, new).round(3).tolist()
    [8.634, 13.414]
    >>> predict(res, new, random=False).round(3).tolist()
    [10.267, 15.048]
    """
    beta = res.optimum.beta
    if newdata is None:
        d = res.design
        fixed = d.X @ beta
        rnd = np.zeros_like(fixed)
        if random:
            from .cluster import empirical_bayes

            u, _ = empirical_bayes(res)
            rnd = np.einsum("nq,nq->n", d.Z, u[d.codes])
        known = np.ones(len(fixed), dtype=bool)
        return _output(fixed, rnd, known, d.row_index, detail)

    nd = new_design(res, newdata, need_cluster=random)
    with np.errstate(invalid="ignore"):
        fixed = nd.X @ beta
    known = nd.fit_position >= 0
    rnd = np.zeros(len(fixed))
    if random:
        from .cluster import empirical_bayes

        u, _ = empirical_bayes(res)
        rnd[known] = np.einsum("nq,nq->n", nd.Z[known], u[nd.fit_position[known]])
        # The random part needs the cluster: a missing id is a missing value.
        fixed = np.where(nd.cluster_missing, np.nan, fixed)
        rnd[~np.isfinite(fixed)] = np.nan
    _warn(res, newdata, nd, fixed, random)
    return _output(fixed, rnd, known, nd.index, detail)


def _output(fixed, rnd, known, index, detail: bool):
    prediction = fixed + rnd
    if detail:
        return pd.DataFrame(
            {"fixed": fixed, "random": rnd, "prediction": prediction, "cluster_known": known},
            index=index,
        )
    return pd.Series(prediction, index=index, name="prediction")


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _warn(res: MLMResults, newdata: pd.DataFrame, nd: NewDesign, fixed, random: bool) -> None:
    cluster = res.design.cluster
    bad = ~np.isfinite(fixed)
    if random:
        new_rows = (nd.fit_position < 0) & ~nd.cluster_missing & ~bad
        if new_rows.any():
            ids = pd.unique(newdata[cluster].to_numpy()[new_rows]).tolist()
            example = ", ".join(repr(i) for i in ids[:3]) + (" ..." if len(ids) > 3 else "")
            hint = ""
            if not (nd.fit_position >= 0).any():
                hint = (
                    f"; none of newdata's clusters is in the fit -- check that '{cluster}' "
                    "has the same type and values as in the data the model was fitted to"
                )
            n_rows = int(new_rows.sum())
            warnings.warn(
                f"{_count(n_rows, 'row')} in {_count(len(ids), 'cluster')} not in the fit "
                f"({example}): predicted by the fixed part only (random effects set to 0, "
                f"their expected value){hint}",
                PredictionWarning,
                stacklevel=3,
            )
    if bad.any():
        why = []
        if nd.cluster_missing[bad].any() and (random or _uses_cluster_means(res.spec)):
            why.append(f"{int(nd.cluster_missing[bad].sum())} with no cluster id")
        warnings.warn(
            f"{int(bad.sum())} of {_count(len(fixed), 'row')} get NaN: a predictor they need is "
            "missing, undefined (e.g. log of a negative value) or a category the fit did "
            "not have" + (f" ({'; '.join(why)})" if why else ""),
            PredictionWarning,
            stacklevel=3,
        )
