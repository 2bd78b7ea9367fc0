"""From a model spec and a DataFrame to the arrays a fit needs.

This is the only place where equations meet data: column names are resolved (a ``_ij`` /
``_j`` / ``ij`` / ``j`` subscript is dropped only when the data has no column of the full
name), rows with a missing value in any model variable are dropped, centering is computed
on the rows that remain, level-2 predictors are checked to be constant within clusters,
categorical level-2 predictors are expanded into indicator columns, and every fixed-effect
column is tied to its gamma label. The caller's DataFrame is only read, never modified.

Examples
--------
>>> import mlmwrap
>>> from mlmwrap.language.equations import parse_equations
>>> spec = parse_equations('''
...     mathach = b0 + b1*cwc(ses) + e
...     b0 = g00 + g01*meanses + u0
...     b1 = g10 + u1
... ''')
>>> design = build_design(spec, mlmwrap.datasets.load_hsb(), cluster="school")
>>> design.fixed_names
['(Intercept)', 'meanses', 'cwc(ses)']
>>> [c.label for c in design.fixed_columns]
['g00', 'g01', 'g10']
>>> design.n_obs, design.n_clusters
(7185, 160)
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd
import patsy

from mlmwrap.errors import DataError
from mlmwrap.language.expr import Call, Expr, Num, Power, Product, Var
from mlmwrap.language.formulas import Formulas, reduced_formulas
from mlmwrap.language.spec import Beta, Gamma, ModelSpec
from mlmwrap.model.centering import cluster_mean, grand_mean_centered, varies_within, within_cluster
from mlmwrap.model.cross_products import cluster_order
from mlmwrap.model.validation import (
    check_columns,
    check_fixed_size,
    check_outcome,
    check_perfect_fit,
    normalize_cluster,
)

__all__ = [
    "FixedColumn",
    "SampleInfo",
    "Design",
    "DesignMatrices",
    "build_design",
    "resolve_name",
    "evaluate_on_sample",
]

_SUBSCRIPTS = ("_ij", "_j", "ij", "j")
#: Name of the constant column, as lme4 and statsmodels' formulas name it.
INTERCEPT = "(Intercept)"
TRANSFORMS = {  # the transforms the equation language allows, by name
    "log": np.log,
    "log10": np.log10,
    "exp": np.exp,
    "sqrt": np.sqrt,
    "abs": np.abs,
}


@dataclass(frozen=True)
class FixedColumn:
    """One column of the fixed-effects design and the gamma it estimates.

    Attributes
    ----------
    label : str
        The gamma label as the user wrote it, with ``[level]`` for a categorical
        predictor's indicator (``g02[Catholic]``).
    term : str
        The reduced-form term: ``(Intercept)``, ``meanses``, ``cwc(ses)``, ``cwc(ses):meanses``.
    beta : str
        The level-1 coefficient the gamma belongs to (``b1``).
    predictor : str
        The level-2 predictor (``meanses``), ``(constant)`` for ``gK0``.
    level1 : str
        The level-1 predictor the beta multiplies (``cwc(ses)``), ``(intercept)`` for b0;
        for a categorical level-1 predictor, as written (``C(ethnicity)``).
    category : str or None
        For a categorical level-1 predictor, the category whose indicator this column
        holds (``Black``); None otherwise.
    """

    label: str
    term: str
    beta: str
    predictor: str
    level1: str
    category: str | None = None


@dataclass(frozen=True)
class SampleInfo:
    """Counts of the estimation sample after listwise deletion."""

    rows_total: int
    rows_used: int
    clusters_total: int
    clusters_used: int
    dropped_by_variable: dict[str, int]

    @property
    def rows_dropped(self) -> int:
        return self.rows_total - self.rows_used

    @property
    def clusters_dropped(self) -> int:
        return self.clusters_total - self.clusters_used


#: Rows per block of the row-level design: a multiple of the cross-product kernel's block
#: (so blockwise sums are those of one pass), small enough to stay in cache (a few MB).
ROW_BLOCK = 1 << 16


@dataclass(frozen=True)
class DesignMatrices:
    """patsy's design of ``[X, Z]`` over the model frame's columns, built block by block.

    The full ``n x (p + q)`` matrices are never needed by a fit: :meth:`rows` evaluates
    patsy's design on any subset of rows (a slice or an index array), so the per-cluster
    cross-products are summed over blocks of rows and ``X``, ``Z`` are formed only when a
    row-level analysis asks for them.
    """

    info: patsy.DesignInfo | None  # None: the empty model (a column of ones)
    data: dict  # the model frame's columns as plain arrays (views, not copies)
    n_rows: int
    fixed: list[int]  # patsy's columns of X, in gamma order
    random: list[int]  # and of Z

    @property
    def p(self) -> int:
        return len(self.fixed)

    @property
    def q(self) -> int:
        return len(self.random)

    def matrix(self, rows: slice | np.ndarray) -> np.ndarray:
        """patsy's matrix on ``rows`` (every column, in patsy's order)."""
        if self.info is None:
            m = len(range(self.n_rows)[rows]) if isinstance(rows, slice) else len(rows)
            return np.ones((m, 1))
        matrix = patsy.build_design_matrices(
            [self.info], _Rows(self.data, rows), NA_action=_NO_NA_CHECK, return_type="matrix"
        )[0]
        return np.asarray(matrix, dtype=float)

    def rows(self, rows: slice | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``X`` and ``Z`` on ``rows``."""
        matrix = self.matrix(rows)
        return matrix[:, self.fixed], matrix[:, self.random]

    def full(self) -> tuple[np.ndarray, np.ndarray]:
        """``X`` and ``Z`` on every row, filled block by block (no full patsy matrix)."""
        X, Z = np.empty((self.n_rows, self.p)), np.empty((self.n_rows, self.q))
        for start in range(0, self.n_rows, ROW_BLOCK):
            rows = slice(start, start + ROW_BLOCK)
            matrix = self.matrix(rows)
            _copy_columns(X[rows], matrix, self.fixed)
            _copy_columns(Z[rows], matrix, self.random)
        return X, Z


class _Rows(Mapping):
    """The model frame's columns on some rows, each taken when patsy asks for it."""

    def __init__(self, data: dict, rows: slice | np.ndarray):
        self._data, self._rows = data, rows

    def __getitem__(self, name):
        column = self._data[name]
        if isinstance(column, pd.Series):  # positions, and an index patsy can match
            return column.iloc[self._rows].reset_index(drop=True)
        return column[self._rows]

    def __iter__(self):
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)


def _copy_columns(out: np.ndarray, matrix: np.ndarray, columns: list[int]) -> None:
    """``out[:, i] = matrix[:, columns[i]]`` one column at a time (no temporary copy)."""
    for i, c in enumerate(columns):
        out[:, i] = matrix[:, c]


@dataclass(frozen=True)
class Design:
    """Row-level data of a two-level model, ready for :mod:`mlmwrap.model.engine`.

    ``X`` and ``Z`` are not held: they are formed from the model frame on first use (and
    then kept), while a fit reads them block by block (:meth:`row_blocks`).
    """

    y: np.ndarray
    matrices: DesignMatrices  # builds X and Z from the model frame
    codes: np.ndarray  # cluster of each row, integers 0..J-1
    cluster_labels: np.ndarray  # cluster id of each code
    fixed_columns: list[FixedColumn]
    random_labels: list[str]  # 'u0', 'u1', ... as written; 'u1[Black]' per category
    random_terms: list[str]  # '(Intercept)', 'cwc(ses)', 'ethnicity[Black]', ...
    outcome: str
    cluster: str
    row_index: pd.Index  # index labels of the rows used, from the caller's DataFrame
    sample: SampleInfo
    columns: dict[str, str]  # name as written -> data column used
    frame: pd.DataFrame  # model, derived and cluster columns on the estimation sample
    formulas: Formulas  # the reduced form over ``frame``'s columns
    patsy_fixed_names: list[str]  # patsy's name of each column of X (``C(sector)[T.1]``)
    patsy_random_names: list[str]  # and of Z

    @cached_property
    def _xz(self) -> tuple[np.ndarray, np.ndarray]:
        return self.matrices.full()

    @property
    def X(self) -> np.ndarray:
        """The fixed-effects design, one column per gamma (formed on first use)."""
        return self._xz[0]

    @property
    def Z(self) -> np.ndarray:
        """The random-effects design, one column per random effect (formed on first use)."""
        return self._xz[1]

    def row_blocks(self, block_rows: int = ROW_BLOCK) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """``[X, Z, y]`` and the cluster codes, in blocks of rows sorted by cluster.

        Memory is one block: ``X`` and ``Z`` are evaluated from the model frame block by
        block (or sliced, if a row-level analysis has formed them already).
        """
        p, q = self.matrices.p, self.matrices.q
        order = cluster_order(self.codes)
        for start in range(0, self.n_obs, block_rows):
            rows = (
                slice(start, start + block_rows)
                if order is None
                else order[start : start + block_rows]
            )
            codes = self.codes[rows]
            W = np.empty((len(codes), p + q + 1))
            if "_xz" in self.__dict__:
                W[:, :p], W[:, p : p + q] = self.X[rows], self.Z[rows]
            else:
                matrix = self.matrices.matrix(rows)
                _copy_columns(W, matrix, self.matrices.fixed + self.matrices.random)
                del matrix
            W[:, -1] = self.y[rows]
            yield W, codes

    @property
    def fixed_names(self) -> list[str]:
        return [c.term for c in self.fixed_columns]

    @property
    def n_obs(self) -> int:
        return len(self.y)

    @property
    def n_clusters(self) -> int:
        return len(self.cluster_labels)

    @property
    def cluster_sizes(self) -> np.ndarray:
        return np.bincount(self.codes, minlength=self.n_clusters)


def resolve_name(name: str, columns: pd.Index) -> str | None:
    """The data column a variable name refers to, or None.

    >>> resolve_name("ses_ij", pd.Index(["ses", "school"]))
    'ses'
    >>> resolve_name("ses_ij", pd.Index(["ses_ij", "ses"]))
    'ses_ij'
    """
    if name in columns:
        return name
    for suffix in _SUBSCRIPTS:
        if name.endswith(suffix) and len(name) > len(suffix):
            stem = name[: -len(suffix)]
            if stem in columns:
                return stem
    return None


class _Builder:
    """Evaluates expressions on the estimation sample; holds what the errors need to point."""

    def __init__(self, spec: ModelSpec, frame: pd.DataFrame, codes: np.ndarray):
        self.spec = spec
        self.frame = frame
        self.codes = codes
        self._cache: dict[str, np.ndarray] = {}  # centering is computed once per expression

    def error(self, message: str, expr: Expr, expected: str | None = None, hint: str | None = None):
        span = expr.span
        return DataError(
            message,
            source=self.spec.lines.get(span.lineno),
            lineno=span.lineno,
            span=(span.start, span.end),
            expected=expected,
            hint=hint,
        )

    # -- evaluation --------------------------------------------------------------------
    def numeric(self, expr: Expr) -> np.ndarray:
        """Evaluate an expression that must be numeric (the result is shared: do not modify)."""
        key = expr.text()
        if key not in self._cache:
            self._cache[key] = self._numeric(expr)
        return self._cache[key]

    def _numeric(self, expr: Expr) -> np.ndarray:
        if isinstance(expr, Var):
            col = self.frame[expr.name]
            if not is_numeric_column(col):
                raise self.error(
                    f"'{expr.name}' is not numeric (its values look like {_sample_values(col)})",
                    expr,
                    expected="a numeric column",
                    hint=(
                        "a categorical predictor stands on its own, as b1*C("
                        f"{expr.name}) at level 1 or g01*C({expr.name}) at level 2; it cannot "
                        "enter a product, a power or a transform"
                    ),
                )
            return col.to_numpy(dtype=float)
        if isinstance(expr, Num):
            return np.full(len(self.frame), float(expr.value))
        if isinstance(expr, Product):
            out = np.ones(len(self.frame))
            for factor in expr.factors:
                out = out * self.numeric(factor)
            return out
        if isinstance(expr, Power):
            return self.numeric(expr.base) ** float(expr.exponent.value)
        if isinstance(expr, Call):
            return self.call(expr)
        raise self.error(f"cannot evaluate '{expr.text()}'", expr)  # pragma: no cover

    def call(self, expr: Call) -> np.ndarray:
        func = expr.func
        if func == "C":
            raise self.error(
                f"'{expr.text()}' is categorical and cannot be used inside an arithmetic "
                "expression",
                expr,
                expected="a numeric expression",
                hint="use a categorical predictor on its own: b1*C(x) at level 1, "
                "g01*C(x) at level 2",
            )
        if func in ("cwc", "cgm", "cmean", "center") and self.categorical(expr.args[0]) is not None:
            raise categorical_centering_error(self.error, expr)
        x = self.numeric(expr.args[0])
        if func == "cwc":
            if not varies_within(x, self.codes).any():
                inner = expr.args[0].text()
                raise self.error(
                    f"'{inner}' is constant within every cluster, so {expr.text()} is 0 in "
                    "every row",
                    expr,
                    expected="a level-1 variable inside cwc()",
                    hint=f"use {inner} (or cgm({inner})) as a level-2 predictor in an equation "
                    "for a beta instead",
                )
            return within_cluster(x, self.codes)
        if func == "cmean":
            return cluster_mean(x, self.codes)
        if func == "cgm":
            return grand_mean_centered(x, self.codes)
        if func == "center":
            return x - float(expr.args[1].value)
        transform = TRANSFORMS[func]
        with np.errstate(all="ignore"):
            out = transform(x)
        bad = ~np.isfinite(out)
        if bad.any():
            raise self.error(
                f"{func}() is undefined for {int(bad.sum())} of the {len(x)} rows "
                f"(e.g. at value {x[bad][0]:g})",
                expr,
                expected=f"values inside the domain of {func}()",
                hint="shift the variable first, e.g. log(x + 1) is written log(center(x, -1))",
            )
        return out

    def categorical(self, expr: Expr) -> pd.Series | None:
        """The categorical series behind ``C(x)`` or a non-numeric column, else None."""
        if isinstance(expr, Call) and expr.func == "C":
            inner = expr.args[0]
            if not isinstance(inner, Var):
                raise self.error(
                    "C() takes a column name", expr, expected="C(column)", hint="e.g. C(sector)"
                )
            return self.frame[inner.name]
        if isinstance(expr, Var) and not is_numeric_column(self.frame[expr.name]):
            return self.frame[expr.name]
        return None


def categorical_centering_error(error, expr: Call) -> DataError:
    """``cwc(C(x))`` and the like: centering a category is not defined.

    ``error(message, expr, expected=..., hint=...)`` builds the DataError with the span.
    """
    inner = expr.args[0]
    name = inner.args[0].text() if isinstance(inner, Call) else inner.text()
    return error(
        f"{expr.func}() of the categorical predictor '{name}' is not defined: a category "
        "has no mean to center at",
        expr,
        expected=f"a numeric variable inside {expr.func}()",
        hint=f"use C({name}) uncentered as a level-1 predictor (b1*C({name}); p1*C({name}) at "
        "three levels: treatment coding, the first category as reference), or center 0/1 "
        "indicator columns, e.g. "
        f"data['{name}_B'] = (data['{name}'] == 'B').astype(float) and {expr.func}({name}_B)",
    )


def level_text(level: object) -> str:
    """A category as it appears in a label: ``2.0`` -> ``'2'``, ``'Black'`` -> ``'Black'``.

    >>> level_text(2.0), level_text(np.int64(3)), level_text("Black"), level_text(0.5)
    ('2', '3', 'Black', '0.5')
    """
    if isinstance(level, float | np.floating) and np.isfinite(level) and float(level).is_integer():
        return str(int(level))
    return str(level)


def random_effect_base(label: str) -> str:
    """The random effect as written in the equations: ``'u1[Black]'`` -> ``'u1'``."""
    return label.split("[", 1)[0]


def is_numeric_column(col: pd.Series) -> bool:
    """Numeric and not a pandas Categorical (which mlmwrap treats as categorical)."""
    return pd.api.types.is_numeric_dtype(col) and not isinstance(col.dtype, pd.CategoricalDtype)


def _sample_values(col: pd.Series) -> str:
    vals = pd.unique(col.dropna())[:3]
    return ", ".join(repr(v) for v in vals)


def category_levels(series: pd.Series) -> list:
    """The categories present, in the order the design uses (the first is the reference)."""
    if isinstance(series.dtype, pd.CategoricalDtype):
        present = set(series.dropna().unique())
        return [c for c in series.cat.categories if c in present]
    return sorted(series.dropna().unique(), key=lambda v: (str(type(v)), v))


def rename_vars(expr: Expr, mapping: dict[str, str]) -> Expr:
    """A copy of ``expr`` whose Var names are the resolved data columns."""
    if isinstance(expr, Var):
        return Var(name=mapping[expr.name], span=expr.span)
    if isinstance(expr, Call):
        return Call(
            func=expr.func, args=tuple(rename_vars(a, mapping) for a in expr.args), span=expr.span
        )
    if isinstance(expr, Product):
        return Product(factors=tuple(rename_vars(f, mapping) for f in expr.factors), span=expr.span)
    if isinstance(expr, Power):
        return Power(base=rename_vars(expr.base, mapping), exponent=expr.exponent, span=expr.span)
    return expr


def _all_expressions(spec: ModelSpec) -> list[Expr]:
    exprs: list[Expr] = [spec.outcome]
    for beta in spec.betas:
        if beta.predictor is not None:
            exprs.append(beta.predictor)
        exprs.extend(g.predictor for g in beta.gammas if g.predictor is not None)
    return exprs


def column_error(spec: ModelSpec, var: Var, columns: pd.Index) -> DataError:
    names = [str(c) for c in columns]
    close = difflib.get_close_matches(var.name, names, n=3, cutoff=0.6)
    if not close:
        close = [n for n in names if n.lower() == var.name.lower()]
    hint = (
        "did you mean " + " or ".join(f"'{c}'" for c in close) + "?"
        if close
        else f"the data's columns are: {', '.join(names[:12])}{' ...' if len(names) > 12 else ''}"
    )
    span = var.span
    return DataError(
        f"there is no column '{var.name}' in the data",
        source=spec.lines.get(span.lineno),
        lineno=span.lineno,
        span=(span.start, span.end),
        expected="the name of a column of the DataFrame",
        hint=hint,
    )


def evaluate_on_sample(spec: ModelSpec, design: Design, expr: Expr) -> np.ndarray:
    """The values of a numeric predictor expression on a design's estimation sample.

    Centering is computed on that sample, exactly as when the design was built.
    """
    builder = _Builder(spec, design.frame.reset_index(drop=True), design.codes)
    return builder.numeric(rename_vars(expr, design.columns))


def _copy_on_write() -> bool:
    """pandas shares columns between frames until one is written (always from pandas 3)."""
    if int(pd.__version__.split(".", 1)[0]) >= 3:
        return True
    return pd.get_option("mode.copy_on_write") is True  # pragma: no cover - pandas 2


def _columns(data: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    """The columns ``names`` of the caller's frame: shared, not copied, where pandas
    copies on write (so a later change to ``data`` leaves them alone); else a copy."""
    if _copy_on_write():
        return pd.DataFrame({name: data[name] for name in names}, copy=False)
    return data.loc[:, names]  # pragma: no cover - pandas 2 without copy-on-write


def _cluster_codes(column: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Each row's cluster code ``0..J-1`` (-1 where missing) and the sorted labels, as
    ``pd.factorize(sort=True)`` gives them; integer ids by counting, without its hash table
    (which needs about twice the codes' memory, more when rows are not sorted)."""
    values = column.to_numpy() if isinstance(column.dtype, np.dtype) else None
    if (
        values is not None
        and len(values)
        and (values.dtype.kind == "i" or (values.dtype.kind == "u" and values.dtype.itemsize < 8))
    ):
        lo, hi = int(values.min()), int(values.max())
        if hi - lo <= 2 * len(values) + 1000:  # ids in a range: a table of them is small
            codes = np.subtract(values, lo, dtype=np.intp)
            labels = np.flatnonzero(np.bincount(codes, minlength=hi - lo + 1)) + lo
            codes, _ = _present_clusters(codes, np.arange(hi - lo + 1))
            return codes, labels.astype(values.dtype)
    codes, labels = pd.factorize(column, sort=True)
    return np.asarray(codes), np.asarray(labels)


def _present_clusters(codes: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Codes renumbered over the clusters that have rows (``codes`` is reused), and those
    clusters' labels."""
    present = np.bincount(codes, minlength=len(labels)) > 0
    if present.all():
        return codes, labels
    remap = np.cumsum(present) - 1
    for start in range(0, len(codes), 1 << 20):  # in place, a block at a time
        block = codes[start : start + (1 << 20)]
        block[:] = remap[block]
    return codes, labels[present]


def build_design(spec: ModelSpec, data: pd.DataFrame, cluster: str) -> Design:
    """Resolve names, drop incomplete rows, center, check levels and build X, Z, y.

    Parameters
    ----------
    spec
        The parsed equations (:func:`mlmwrap.language.equations.parse_equations`).
    data
        One row per level-1 unit. Not modified.
    cluster
        The column identifying the level-2 units.

    Returns
    -------
    Design
    """
    if not isinstance(data, pd.DataFrame):
        raise DataError(
            f"data must be a pandas DataFrame, not {type(data).__name__}",
            hint="e.g. data=pd.read_csv('file.csv')",
        )
    cluster = normalize_cluster(cluster)
    if cluster not in data.columns:
        close = difflib.get_close_matches(str(cluster), [str(c) for c in data.columns], n=3)
        raise DataError(
            f"the cluster column '{cluster}' is not in the data",
            expected="the name of the column that identifies the clusters (level-2 units)",
            hint=("did you mean " + " or ".join(f"'{c}'" for c in close) + "?") if close else None,
        )

    # Resolve every variable name to a data column, pointing at the first bad one.
    mapping: dict[str, str] = {}
    for expr in _all_expressions(spec):
        for var in expr.variables():
            if var.name in mapping:
                continue
            resolved = resolve_name(var.name, data.columns)
            if resolved is None:
                raise column_error(spec, var, data.columns)
            mapping[var.name] = resolved

    check_columns(spec, data, mapping, cluster)
    used_columns = list(dict.fromkeys([*mapping.values(), cluster]))
    frame = _columns(data, used_columns)
    missing = frame.isna()
    complete = ~missing.any(axis=1).to_numpy()
    dropped_by_variable = {c: int(n) for c, n in missing.sum().items() if n}
    codes, cluster_labels = _cluster_codes(frame[cluster])
    clusters_total = len(cluster_labels)
    if not complete.all():  # a complete sample is the caller's rows, not a copy of them
        frame = frame.loc[complete]
        codes, cluster_labels = _present_clusters(codes[complete], cluster_labels)
    if len(frame) == 0:
        raise DataError(
            "no rows are left after dropping rows with a missing value in a model variable",
            hint="missing values per variable: "
            + ", ".join(f"{k}: {v}" for k, v in dropped_by_variable.items()),
        )
    if len(cluster_labels) < 2:
        raise DataError(
            f"the data have only {len(cluster_labels)} cluster in '{cluster}' "
            "after dropping incomplete rows",
            hint="a multilevel model needs many clusters; check the cluster column",
        )
    # Work on a private frame whose columns carry the names as written.
    row_index = frame.index
    frame = frame.reset_index(drop=True)
    builder = _Builder(spec, frame, codes)
    resolved = {id(e): rename_vars(e, mapping) for e in _all_expressions(spec)}

    y = builder.numeric(resolved[id(spec.outcome)])
    check_outcome(spec, y, mapping)
    formulas = reduced_formulas(
        spec,
        cluster,
        columns=mapping,
        categorical=lambda column: not is_numeric_column(frame[column]),
    )
    model_frame = _model_frame(builder, frame, formulas, mapping, cluster)

    fixed_meta: list[FixedColumn] = []
    random_labels: list[str] = []
    random_terms: list[str] = []
    for beta in spec.betas:
        x_text = beta.predictor.text() if beta.predictor is not None else INTERCEPT
        categories = None
        if beta.predictor is not None:
            categories = _level1_categories(builder, beta, resolved[id(beta.predictor)])
            if categories is None:
                builder.numeric(resolved[id(beta.predictor)])  # a numeric level-1 predictor
        for gamma in beta.gammas:
            if categories is None:
                fixed_meta.extend(_gamma_columns(builder, beta, gamma, resolved, x_text))
            else:
                fixed_meta.extend(_categorical_columns(builder, beta, gamma, resolved, categories))
        if beta.random:
            u = beta.u_label or f"u{beta.index}"
            if categories is None:
                random_labels.append(u)
                random_terms.append(x_text)
            else:  # one random effect per indicator, as lme4's (1 + f | g)
                base = _categorical_base(x_text)
                random_labels.extend(f"{u}[{c}]" for c in categories[1:])
                random_terms.extend(f"{base}[{c}]" for c in categories[1:])
    matrices, patsy_fixed, patsy_random = _design_matrices(
        spec, formulas, model_frame, fixed_meta, random_labels
    )
    _check_finite(builder, spec, y)
    # The rank of X and Z is checked from the cross-products (mlmwrap.model.rank), and X's
    # values are checked to be finite block by block as they are summed.
    check_fixed_size(len(y), matrices.p, [c.label for c in fixed_meta])
    check_perfect_fit(spec, y, lambda rows: _finite_rows(matrices.rows(rows)[0]), matrices.p)

    sample = SampleInfo(
        rows_total=len(data),
        rows_used=len(frame),
        clusters_total=clusters_total,
        clusters_used=len(cluster_labels),
        dropped_by_variable=dropped_by_variable,
    )
    return Design(
        y=y,
        matrices=matrices,
        codes=codes,
        cluster_labels=np.asarray(cluster_labels),
        fixed_columns=fixed_meta,
        random_labels=random_labels,
        random_terms=random_terms,
        outcome=spec.outcome.text(),
        cluster=cluster,
        row_index=row_index,
        sample=sample,
        columns=mapping,
        frame=model_frame.set_axis(row_index, axis=0),
        formulas=formulas,
        patsy_fixed_names=patsy_fixed,
        patsy_random_names=patsy_random,
    )


def _model_frame(
    builder: _Builder, frame: pd.DataFrame, formulas: Formulas, mapping: dict[str, str], cluster
) -> pd.DataFrame:
    """The raw model columns, the derived ones (``cwc_ses``, ...) and the cluster, on the
    estimation sample; text columns as categoricals of their present levels (the first is
    the reference, as in the gamma labels)."""
    out = {name: frame[name] for name in frame.columns}
    for name in frame.columns:
        if name != cluster and not is_numeric_column(frame[name]):
            out[name] = pd.Categorical(frame[name], categories=category_levels(frame[name]))
    for name, expr in formulas.derived_exprs.items():
        out[name] = builder.numeric(rename_vars(expr, mapping))
    # copy=False: the caller's columns are shared (copy-on-write), derived ones are new.
    return pd.DataFrame(out, index=frame.index, copy=False)


#: The rows are complete already (listwise deletion above): patsy need not look for NAs.
_NO_NA_CHECK = patsy.NAAction(NA_types=[])


def _design_matrices(
    spec: ModelSpec,
    formulas: Formulas,
    frame: pd.DataFrame,
    meta: list[FixedColumn],
    random_labels: list[str],
) -> tuple[DesignMatrices, list[str], list[str]]:
    """patsy's design over the fixed terms and the random terms (one design for both), the
    columns of X (one per gamma, in gamma order) and of Z in it, and patsy's name of each
    column. Only the design's description is built here; its rows come block by block."""
    fixed_terms = formulas.fixed_rhs.split(" + ")
    extra = [formulas.term_of_random[random_effect_base(u)] for u in random_labels]
    rhs = " + ".join(fixed_terms + [t for t in extra if t not in fixed_terms and t != "0"])
    # Plain arrays: patsy's per-column work on pandas objects costs more than the design.
    # A numeric column inside C() stays a Series, so that patsy names its categories as
    # statsmodels' formula on the model frame does ('C(sector)[T.1]', not 'T.np.int64(1)').
    coded = set(re.findall(r"C\(([A-Za-z_][A-Za-z0-9_]*|Q\('[^']*'\))\)", rhs))
    coded = {c[3:-2] if c.startswith("Q(") else c for c in coded}
    data = {
        name: col
        if name in coded
        else (col.array if isinstance(col.dtype, pd.CategoricalDtype) else col.to_numpy())
        for name, col in frame.items()
    }
    if rhs == "1":  # the empty model: patsy cannot count rows from a dict without a column
        info, names, slices = None, ["Intercept"], {"Intercept": slice(0, 1)}
    else:
        try:
            # One pass learns the factors' types (and the levels of C() of a number); an
            # empty namespace keeps patsy from holding on to this function's locals.
            info = patsy.incr_dbuilder(
                rhs,
                lambda: iter([data]),
                eval_env=patsy.EvalEnvironment([{}]),
                NA_action=_NO_NA_CHECK,
            )
        except patsy.PatsyError as err:  # should not happen: the columns were checked above
            raise DataError(
                f"patsy could not build the design of {rhs!r}: {err}",
                hint="please report this with the equations; the reduced form is " + formulas.fixed,
            ) from None
        names, slices = info.column_names, info.term_name_slices

    wanted: dict[str, int] = {}
    for c in meta:
        key = c.label.split("[", 1)[0]
        wanted[key] = wanted.get(key, 0) + 1
    order: list[int] = []
    seen: set[str] = set()
    for gamma in spec.gammas:
        term = formulas.term_of_gamma[gamma.label]
        cols = term_columns(slices, term, wanted[gamma.label])
        if term in seen or cols is None:  # two gammas of one term, or patsy merged them
            k = len(order)
            raise DataError(
                f"the fixed term '{meta[k].term}' ({meta[k].label}) is a linear combination "
                "of the terms before it, so it cannot be estimated",
                hint="remove it, or check for a predictor that is constant or duplicates "
                "another (e.g. cmean(x) together with the level-2 mean of x under another name)",
            )
        seen.add(term)
        order.extend(cols)
    n_random: dict[str, int] = {}
    for u in random_labels:
        n_random[random_effect_base(u)] = n_random.get(random_effect_base(u), 0) + 1
    random: list[int] = []
    for u, n in n_random.items():
        cols = term_columns(slices, formulas.term_of_random[u], n)
        if cols is None:  # pragma: no cover - the terms were checked above
            raise DataError(
                f"patsy coded the random term of {u} in an unexpected way",
                hint="please report this with the equations; the reduced form is " + formulas.fixed,
            )
        random.extend(cols)
    matrices = DesignMatrices(info=info, data=data, n_rows=len(frame), fixed=order, random=random)
    return matrices, [names[k] for k in order], [names[k] for k in random]


def term_columns(slices: dict, term: str, wanted: int) -> list[int] | None:
    """The columns of ``term`` in patsy's matrix: all of them, or without the reference
    category where patsy coded a categorical in full (an interaction without its main
    effect)."""
    name = "Intercept" if term == "1" else term
    if name not in slices:
        return None
    cols = list(range(slices[name].start, slices[name].stop))
    if len(cols) == wanted:
        return cols
    if len(cols) == wanted + 1:
        return cols[1:]
    return None


def _categorical_base(text: str) -> str:
    """``C(ethnicity)`` -> ``ethnicity`` (a bare text column stays as it is)."""
    return text[2:-1] if text.startswith("C(") and text.endswith(")") else text


def _level1_categories(builder: _Builder, beta: Beta, x_expr: Expr) -> list[str] | None:
    """The categories (as label text, the reference first) of a categorical level-1
    predictor, or None when the predictor is numeric."""
    series = builder.categorical(x_expr)
    if series is None:
        return None
    assert beta.predictor is not None
    levels = category_levels(series)
    text = beta.predictor.text()
    if len(levels) < 2:
        raise builder.error(
            f"'{text}' has a single category ({levels[0]!r}) in the estimation sample",
            beta.predictor,
            hint="a predictor that does not vary cannot be estimated; remove it",
        )
    labels = [level_text(v) for v in levels]
    if len(set(labels)) < len(labels):  # e.g. 1 and '1' in one column
        raise builder.error(
            f"two categories of '{text}' print the same ({', '.join(labels)})",
            beta.predictor,
            hint="recode the column so that its categories are distinct texts",
        )
    return labels


def _categorical_columns(builder: _Builder, beta: Beta, gamma: Gamma, resolved, categories):
    """The FixedColumns of one gamma of a categorical level-1 predictor: one per
    non-reference category (``g10[Black]``, ``g11[Black]`` for ``g11*meanses``)."""
    assert beta.predictor is not None
    level1 = beta.predictor.text()
    base = _categorical_base(level1)
    w_text = "(constant)"
    if gamma.predictor is not None:
        w_expr = resolved[id(gamma.predictor)]
        w_text = gamma.predictor.text()
        if builder.categorical(w_expr) is not None:
            raise builder.error(
                f"'{w_text}' is categorical, and so is the level-1 predictor '{level1}' of "
                f"{beta.label}: an interaction of two categorical predictors is not available "
                "yet",
                gamma.predictor,
                expected="a numeric level-2 predictor",
                hint=f"code '{w_text}' as 0/1 indicator columns (numeric) and use those",
            )
        _check_level2(builder, beta, gamma, builder.numeric(w_expr))
    for c in categories[1:]:
        term = f"{base}[{c}]" if gamma.predictor is None else f"{base}[{c}]:{w_text}"
        yield FixedColumn(f"{gamma.label}[{c}]", term, beta.label, w_text, level1, c)


def _gamma_columns(builder: _Builder, beta: Beta, gamma: Gamma, resolved, x_text: str):
    """Yield the FixedColumn of one gamma; several for a categorical W (checked level 2)."""
    level1 = beta.predictor.text() if beta.predictor is not None else "(intercept)"
    if gamma.predictor is None:
        yield FixedColumn(gamma.label, x_text, beta.label, "(constant)", level1)
        return
    w_expr = resolved[id(gamma.predictor)]
    w_text = gamma.predictor.text()
    categories = builder.categorical(w_expr)
    if categories is not None:
        levels = category_levels(categories)
        if len(levels) < 2:
            raise builder.error(
                f"'{w_text}' has a single category ({levels[0]!r}) in the estimation sample",
                gamma.predictor,
                hint="a predictor that does not vary cannot be estimated; remove it",
            )
        _check_level2(builder, beta, gamma, pd.factorize(categories)[0].astype(float))
        base = _categorical_base(w_text)
        for level in map(level_text, levels[1:]):
            term_w = f"{base}[{level}]"
            term = term_w if x_text == INTERCEPT else f"{x_text}:{term_w}"
            yield FixedColumn(f"{gamma.label}[{level}]", term, beta.label, term_w, level1)
        return
    w = builder.numeric(w_expr)
    _check_level2(builder, beta, gamma, w)
    term = w_text if x_text == INTERCEPT else f"{x_text}:{w_text}"
    yield FixedColumn(gamma.label, term, beta.label, w_text, level1)


def _check_level2(builder: _Builder, beta: Beta, gamma: Gamma, w: np.ndarray) -> None:
    varying = varies_within(w, builder.codes)
    if varying.any():
        text = gamma.predictor.text()
        n_bad, n_all = int(varying.sum()), len(varying)
        raise builder.error(
            f"'{text}' varies within {n_bad} of the {n_all} clusters, so it is not a "
            f"level-2 predictor of {beta.label}",
            gamma.predictor,
            expected="a variable that is constant within each cluster",
            hint=(
                f"use its cluster mean, cmean({text}), as the level-2 predictor, or put "
                f"{text} in the level-1 equation with a beta of its own"
            ),
        )


def _check_finite(builder: _Builder, spec: ModelSpec, y: np.ndarray) -> None:
    if not np.all(np.isfinite(y)):
        raise builder.error(
            "the outcome has infinite values", spec.outcome, hint="remove or recode them"
        )


def infinite_predictor_error() -> DataError:
    """A product or transform of finite predictors overflowed (raw values are checked
    with their column's name before)."""
    return DataError("a predictor has infinite values", hint="remove or recode them")


def _finite_rows(X: np.ndarray) -> np.ndarray:
    if X.size and not np.all(np.isfinite(X)):
        raise infinite_predictor_error()
    return X
