"""The design of a fitted model evaluated on other rows: new data or the fit's own sample.

The model's own expressions (``res.spec``) are evaluated with the *fit's* centering
constants, so that ``cwc(ses)`` means the same thing on new rows as it did in the fit (see
:mod:`mlmwrap.analysis.predict` for the rules). Used by prediction and by the per-cluster
analyses (:func:`fit_level_columns`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from mlmwrap.errors import DataError, MLMError
from mlmwrap.language.expr import Call, Expr, Num, Power, Product, Var
from mlmwrap.model.centering import cluster_means, grand_mean_centered
from mlmwrap.model.design import (
    TRANSFORMS,
    category_levels,
    evaluate_on_sample,
    is_numeric_column,
    level_text,
)

if TYPE_CHECKING:  # pragma: no cover
    from mlmwrap.api.results import MLMResults
    from mlmwrap.language.spec import Beta, Gamma

__all__ = [
    "NewDesign",
    "new_design",
    "GammaColumn",
    "Level1Column",
    "level1_columns",
    "fit_level_columns",
]


def _unary(func: str) -> Callable[[np.ndarray], np.ndarray]:
    if func not in TRANSFORMS:  # a function added to the language but not here yet
        raise MLMError(f"predictions do not support {func}() yet")
    return TRANSFORMS[func]


# -- evaluating the model's expressions ---------------------------------------------------
class _FitSource:
    """The model's expressions on the estimation sample, with the fit's semantics.

    Reproduces :mod:`mlmwrap.model.design` column for column; the constants it computes (cluster
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


@dataclass(frozen=True)
class Level1Column:
    """One level-1 column ``X_K`` and its gamma columns.

    A numeric level-1 predictor is one column; a categorical one (``b1*C(ethnicity)``) is
    one indicator column per non-reference category, each with its own gammas
    (``g10[Black]``, ``g11[Black]``) and, for a random beta, its own random effect
    (``u1[Black]``).

    Attributes
    ----------
    position : int
        Position of the beta in ``spec.betas``.
    beta : Beta
        The beta.
    label : str
        ``'b1'``, or ``'b1[Black]'`` for a category's indicator.
    category : str or None
        The category (as in the labels), None for a numeric predictor.
    x : ndarray
        ``X_K`` on the rows (an indicator for a category; NaN where undefined).
    gammas : list of GammaColumn
        Its gammas with their ``W_M``.
    """

    position: int
    beta: Beta
    label: str
    category: str | None
    x: np.ndarray
    gammas: list[GammaColumn]

    @property
    def random(self) -> bool:
        """Whether the column carries a random effect."""
        return self.beta.random


def _terms(spec, source: _FitSource | _NewSource) -> Iterator[Level1Column]:
    """Every level-1 column with its gamma columns, beta by beta (a categorical beta's
    categories in the design's order)."""
    for k, beta in enumerate(spec.betas):
        n = len(source.frame)
        gammas = list(_gamma_columns(source, k, beta, n))
        categories = _level1_indicators(source, beta) if beta.predictor is not None else None
        if categories is None:
            x = source.numeric(beta.predictor) if beta.predictor is not None else np.ones(n)
            yield Level1Column(k, beta, beta.label, None, x, gammas)
            continue
        for text, indicator in categories:
            own = [
                GammaColumn(f"{g.label}[{text}]", k, g.w)
                for g in gammas  # the gamma columns of W, labelled by the category
            ]
            yield Level1Column(k, beta, f"{beta.label}[{text}]", text, indicator, own)


def _level1_indicators(source, beta: Beta) -> list[tuple[str, np.ndarray]] | None:
    """(category text, indicator) of each non-reference category of a categorical level-1
    predictor, with the fit's categories; None for a numeric predictor."""
    assert beta.predictor is not None
    fit_series = source.fit.categorical(beta.predictor)
    if fit_series is None:
        return None
    levels = category_levels(fit_series)
    values = source.categorical(beta.predictor)
    unknown = values.notna().to_numpy() & ~values.isin(levels).to_numpy()
    if unknown.any():
        unseen = pd.unique(values[unknown])[:5]
        seen = ", ".join(repr(v.item() if isinstance(v, np.generic) else v) for v in unseen)
        raise DataError(
            f"newdata has categories of '{beta.predictor.text()}' the model was not fitted "
            f"with: {seen} ({int(unknown.sum())} rows)",
            expected="categories of the fit: " + ", ".join(level_text(v) for v in levels),
            hint="a category the fit never saw has no gamma; drop those rows or recode them "
            "to a category of the fit",
        )
    arr = values.to_numpy()
    missing = values.isna().to_numpy()
    out = []
    for level in levels[1:]:
        indicator = (arr == level).astype(float)
        indicator[missing] = np.nan
        out.append((level_text(level), indicator))
    return out


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
        yield GammaColumn(f"{gamma.label}[{level_text(level)}]", k, indicator)


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


def uses_cluster_means(spec) -> bool:
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
        fit_position = match_cluster_ids(res.design.cluster_labels, ids)
        cluster_missing = ids.isna().to_numpy()
        fit_position[cluster_missing] = -1
        new_codes = np.asarray(pd.factorize(ids)[0])
    else:
        if need_cluster or uses_cluster_means(res.spec):
            why = (
                "the model centers within clusters (cwc/cmean)"
                if uses_cluster_means(res.spec)
                else "the random part needs each row's cluster"
            )
            raise DataError(
                f"newdata has no cluster column '{cluster}'; {why}",
                hint=f"add the column '{cluster}' (a new id for a new cluster)"
                + ("" if uses_cluster_means(res.spec) else ", or pass random=False"),
            )
        fit_position = np.full(n, -1)
        cluster_missing = np.ones(n, dtype=bool)
        new_codes = np.full(n, -1)
    source = _NewSource(fit, frame, fit_position, new_codes)

    by_label: dict[str, np.ndarray] = {}
    z_cols: list[np.ndarray] = []
    for col in _terms(res.spec, source):
        if col.random:
            z_cols.append(col.x)
        for g in col.gammas:
            by_label[g.label] = col.x * g.w
    expected = [c.label for c in res.design.fixed_columns]
    if sorted(by_label) != sorted(expected):  # pragma: no cover - the builders must agree
        raise MLMError(
            f"internal error: prediction columns {list(by_label)} differ from {expected}"
        )
    x_cols = [by_label[label] for label in expected]  # in the design's (gamma) order
    X = np.column_stack(x_cols) if x_cols else np.empty((n, 0))
    Z = np.column_stack(z_cols)
    return NewDesign(X, Z, fit_position, cluster_missing, newdata.index)


def _id_text(values: pd.Series | pd.Index) -> pd.Index:
    """Cluster ids as text, integral numbers without a decimal part (1224.0 -> '1224')."""
    values = pd.Index(values)
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        finite = values.notna()
        as_float = values.astype(float)
        if np.all(np.mod(as_float[finite], 1) == 0):
            out = np.where(finite, as_float.fillna(0).astype(np.int64).astype(str), "")
            return pd.Index(out)
    return pd.Index(values.astype(str).str.strip())


def match_cluster_ids(fit_labels: np.ndarray, ids: pd.Series) -> np.ndarray:
    """Each id's position in the fit's clusters, -1 where it is not one of them.

    Ids match exactly, or else by their text, so that ``"1224"`` in new data finds the
    cluster ``1224`` of a fit whose ids were integers, and the other way round (a CSV read
    with the ids as text, or a fit on text ids). A text that two of the fit's ids share
    (``1`` and ``"1"``) matches neither by text.

    Examples
    --------
    >>> import pandas as pd
    >>> match_cluster_ids(np.array([1224, 1288]), pd.Series(["1288", 1224, "9999", None]))
    array([ 1,  0, -1, -1])
    """
    labels = pd.Index(fit_labels)
    position = np.asarray(labels.get_indexer(ids), dtype=np.int64)
    missing = pd.isna(ids).to_numpy() if hasattr(ids, "to_numpy") else pd.isna(np.asarray(ids))
    todo = (position < 0) & ~missing
    if todo.any():
        keys = _id_text(labels)
        unique = ~keys.duplicated(keep=False)
        by_text = pd.Index(keys[unique])
        where = np.flatnonzero(unique)
        hits = by_text.get_indexer(_id_text(pd.Series(ids)[todo].astype(object).map(_scalar)))
        position[np.flatnonzero(todo)] = np.where(hits >= 0, where[np.maximum(hits, 0)], -1)
    return position


def _scalar(v: object) -> object:
    """A numeric text stays text; a number that is integral becomes its integer text."""
    if isinstance(v, float | np.floating) and float(v).is_integer():
        return str(int(v))
    return str(v)


def level1_columns(res: MLMResults) -> list[Level1Column]:
    """On the estimation sample: every level-1 column ``X_K`` with its gamma columns,
    computed as the fit computed them (a categorical predictor gives one column per
    non-reference category; the random ones are in the order of ``res.design.Z``)."""
    return list(_terms(res.spec, _FitSource(res)))


def fit_level_columns(res: MLMResults) -> tuple[np.ndarray, list[list[GammaColumn]]]:
    """On the estimation sample: the level-1 columns (shape (n, P), one per column of
    :func:`level1_columns`) and each one's gamma columns (with their ``W_M``)."""
    cols = level1_columns(res)
    return np.column_stack([c.x for c in cols]), [c.gammas for c in cols]


# -- predictions --------------------------------------------------------------------------
