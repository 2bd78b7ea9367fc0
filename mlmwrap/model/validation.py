"""Checks of the arguments and the data before a fit: clear errors instead of garbage.

Everything here reads the caller's objects and never modifies them. The checks fall in
three groups:

- arguments: flags must be real booleans (``reml="ML"`` is not ``True``), ``cluster`` one
  existing column (:func:`check_flag`, :func:`normalize_cluster`);
- columns: duplicated names, numbers stored as text because of a few missing-value codes,
  infinite values, cluster ids that differ only by surrounding blanks
  (:func:`check_columns`);
- the model on its estimation sample: an outcome without variation or used again on the
  right-hand side, more fixed effects than rows, a perfect fit (:func:`check_outcome`,
  :func:`check_fixed_size`, :func:`check_perfect_fit`).

Errors point at the equation line with a caret where a variable is to blame.

Examples
--------
>>> check_flag(True, "reml")
True
>>> check_flag("ML", "reml")
Traceback (most recent call last):
...
mlmwrap.errors.MLMError: reml must be True or False, not 'ML'
tip: reml=False fits by maximum likelihood (ML), reml=True by REML
>>> normalize_cluster(["school"])
'school'
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd

from mlmwrap.errors import DataError, DataWarning, MLMError, SpecificationError
from mlmwrap.language.expr import Expr, Var
from mlmwrap.language.spec import ModelSpec

__all__ = [
    "check_flag",
    "normalize_cluster",
    "check_columns",
    "check_outcome",
    "check_fixed_size",
    "check_perfect_fit",
    "first_vars",
]

_FLAG_HINTS = {"reml": "reml=False fits by maximum likelihood (ML), reml=True by REML"}
#: At most this many distinct non-numbers make a text column "numbers with a few codes".
_FEW_CODES = 5


def _user_stacklevel() -> int:
    """The stacklevel of the first frame outside mlmwrap (the user's call)."""
    import sys

    frame, level = sys._getframe(1), 1
    while frame is not None and frame.f_globals.get("__name__", "").startswith("mlmwrap"):
        frame, level = frame.f_back, level + 1
    return level


def check_flag(value: object, name: str) -> bool:
    """``value`` as a bool; MLMError unless it is ``True``/``False`` (numpy's included)."""
    if isinstance(value, bool | np.bool_):
        return bool(value)
    raise MLMError(
        f"{name} must be True or False, not {value!r}",
        hint=_FLAG_HINTS.get(name, f"{name}=True or {name}=False"),
    )


def normalize_cluster(cluster: object) -> str:
    """The cluster column's name: a string, or a list/tuple holding one string.

    A list of two or more names is a three-level model, which :func:`mlmwrap.fit` routes to
    the nested design before this is called (three-level equations use p, b, g).
    """
    if isinstance(cluster, list | tuple):
        if len(cluster) == 1:
            cluster = cluster[0]
        elif len(cluster) >= 2:
            raise SpecificationError(
                f"cluster={list(cluster)!r} describes a model with {len(cluster) + 1} levels; "
                "a three-level model is written with p at level 1 (y = p0 + e, p0 = b00 + r0, "
                "b00 = g000 + u00)",
                expected="the name of one column that identifies the level-2 units",
                hint=f"fit a two-level model, e.g. cluster={cluster[0]!r}",
            )
        else:
            raise MLMError("cluster is an empty list", hint="e.g. cluster='school'")
    if not isinstance(cluster, str):
        raise MLMError(
            f"cluster must be the name of a column, not {type(cluster).__name__} {cluster!r}",
            hint="e.g. cluster='school'",
        )
    return cluster


def first_vars(spec: ModelSpec, mapping: Mapping[str, str]) -> dict[str, Var]:
    """The first place each data column is written in the equations (for the caret)."""
    out: dict[str, Var] = {}
    for expr in _expressions(spec):
        for var in expr.variables():
            out.setdefault(mapping.get(var.name, var.name), var)
    return out


def _expressions(spec: ModelSpec) -> list[Expr]:
    exprs: list[Expr] = [spec.outcome]
    for beta in spec.betas:
        if beta.predictor is not None:
            exprs.append(beta.predictor)
        exprs.extend(g.predictor for g in beta.gammas if g.predictor is not None)
    return exprs


def _error(spec: ModelSpec, var: Var | None, message: str, **kw) -> DataError:
    if var is None:
        return DataError(message, **kw)
    span = var.span
    return DataError(
        message,
        source=spec.lines.get(span.lineno),
        lineno=span.lineno,
        span=(span.start, span.end),
        **kw,
    )


def check_columns(
    spec: ModelSpec, data: pd.DataFrame, mapping: Mapping[str, str], cluster: str
) -> None:
    """Duplicated names, numbers stored as text, infinite values, blank-padded cluster ids."""
    used = list(dict.fromkeys([*mapping.values(), cluster]))
    dup = data.columns[data.columns.duplicated()]
    bad = [c for c in used if c in set(dup)]
    if bad:
        raise DataError(
            "the data have more than one column named "
            + ", ".join(f"'{c}'" for c in bad)
            + ", so it is not clear which one the model means",
            hint="rename or drop the duplicates, e.g. data.loc[:, ~data.columns.duplicated()]",
        )
    where = first_vars(spec, mapping)
    for name in used:
        col = data[name]
        if name != cluster:
            _check_text_numbers(spec, where.get(name), name, col)
            _check_infinite(spec, where.get(name), name, col)
    _check_blank_ids(data[cluster], cluster)


def _check_text_numbers(spec: ModelSpec, var: Var | None, name: str, col: pd.Series) -> None:
    if pd.api.types.is_numeric_dtype(col) or isinstance(col.dtype, pd.CategoricalDtype):
        return
    values = col.dropna()
    if values.empty:
        return
    parsed = pd.to_numeric(values.astype(str).str.strip(), errors="coerce")
    codes = values[parsed.isna()].astype(str)
    if codes.empty:
        # every value is a number: text because of how it was read
        raise _error(
            spec,
            var,
            f"'{name}' holds numbers stored as text",
            expected="a numeric column",
            hint=f"convert it first: data['{name}'] = pd.to_numeric(data['{name}'])",
        )
    distinct = codes.value_counts()
    if parsed.notna().sum() <= len(codes) or len(distinct) > _FEW_CODES:
        return  # a genuine text (categorical) column
    shown = ", ".join(f"{v!r} ({n} row{'s' if n > 1 else ''})" for v, n in distinct.items())
    na = ", ".join(repr(v) for v in distinct.index)
    raise _error(
        spec,
        var,
        f"'{name}' is read as text: its values are numbers except {shown}",
        expected="a numeric column (missing values as NaN)",
        hint=f"if these are missing-value codes, read the file with "
        f"pd.read_csv(..., na_values=[{na}]) (on the command line: --na-values), or convert: "
        f"data['{name}'] = pd.to_numeric(data['{name}'], errors='coerce')",
    )


def _check_infinite(spec: ModelSpec, var: Var | None, name: str, col: pd.Series) -> None:
    if not pd.api.types.is_numeric_dtype(col) or isinstance(col.dtype, pd.CategoricalDtype):
        return
    values = col.to_numpy(dtype=float, na_value=np.nan)
    n_inf = int(np.isinf(values).sum())
    if n_inf:
        raise _error(
            spec,
            var,
            f"'{name}' has {n_inf} infinite value{'s' if n_inf > 1 else ''}",
            expected="finite numbers (NaN for missing values)",
            hint=f"recode them as missing, e.g. data['{name}'].replace([np.inf, -np.inf], np.nan)",
        )


def _check_blank_ids(ids: pd.Series, cluster: str) -> None:
    if ids.dtype != object and not pd.api.types.is_string_dtype(ids):
        return
    labels = pd.Series(pd.unique(ids.dropna()))
    text = labels[labels.map(lambda v: isinstance(v, str))]
    stripped = text.str.strip()
    if stripped.nunique() < len(text):
        clash = stripped[stripped.duplicated(keep=False)]
        example = sorted(text[clash.index].tolist())[:4]
        warnings.warn(
            f"cluster ids in '{cluster}' differ only by surrounding blanks "
            f"({', '.join(repr(e) for e in example)}): they are counted as different clusters; "
            f"strip them first if they are the same, e.g. data['{cluster}'].str.strip()",
            DataWarning,
            stacklevel=_user_stacklevel(),
        )


def check_outcome(
    spec: ModelSpec, y: np.ndarray, mapping: Mapping[str, str], n_used: int | None = None
) -> None:
    """No variation, the outcome again on the right-hand side, a two-valued outcome."""
    outcome_cols = {mapping.get(v.name, v.name) for v in spec.outcome.variables()}
    for expr in _expressions(spec)[1:]:
        for var in expr.variables():
            if mapping.get(var.name, var.name) in outcome_cols:
                raise _error(
                    spec,
                    var,
                    f"the outcome '{var.name}' is also on the right-hand side (in '{expr.text()}')",
                    expected="predictors other than the outcome",
                    hint="a model cannot predict a variable from itself (cluster means and "
                    "centered versions of it included); remove the term",
                )
    outcome_var = spec.outcome.variables()[0] if spec.outcome.variables() else None
    lo, hi = (float(y.min()), float(y.max())) if len(y) else (0.0, 0.0)
    if not hi - lo > 64 * np.finfo(float).eps * max(abs(lo), abs(hi)):
        raise _error(
            spec,
            outcome_var,
            f"the outcome '{spec.outcome.text()}' has no variation: it is {y[0]:g} in every "
            "row of the estimation sample",
            expected="an outcome that varies",
            hint="check the column (and the rows left after dropping missing values)",
        )
    if _two_valued(y, lo, hi):
        warnings.warn(
            f"the outcome '{spec.outcome.text()}' takes only two values: this is a linear "
            "(probability) model, whose residuals cannot be normal; consider a logistic "
            "multilevel model (e.g. lme4::glmer with family = binomial)",
            DataWarning,
            stacklevel=_user_stacklevel(),
        )


def _two_valued(y: np.ndarray, lo: float, hi: float) -> bool:
    """Every value is ``lo`` or ``hi`` (a block at a time: no sorted copy of ``y``)."""
    for start in range(0, len(y), 1 << 16):
        block = y[start : start + (1 << 16)]
        if not np.all((block == lo) | (block == hi)):
            return False
    return True


def check_fixed_size(n_rows: int, n_fixed: int, labels: list[str]) -> None:
    """More fixed effects than rows cannot be estimated (the rank check sees only n pivots)."""
    if n_fixed > n_rows:
        raise DataError(
            f"the model has {n_fixed} fixed effects but the estimation sample has only "
            f"{n_rows} rows",
            expected="more rows than fixed effects (gammas)",
            hint=f"remove gammas (the last ones: {', '.join(labels[n_rows:][:5])}) or use "
            "more data",
        )


def check_perfect_fit(
    spec: ModelSpec,
    y: np.ndarray,
    X: np.ndarray | Callable[[slice], np.ndarray],
    p: int | None = None,
) -> None:
    """The fixed part alone reproduces the outcome (up to rounding): no residual variance.

    ``X`` is the fixed-effects design, or a function that forms its rows on a slice (then
    ``p`` is its number of columns): the full design is formed only when a sample of rows
    is fit exactly.
    """
    rows_of = X if callable(X) else (lambda rows: X[rows])
    p = X.shape[1] if p is None else p
    if p == 0 or len(y) <= p:
        return

    def exact(rows: slice) -> bool:
        Xs, ys = rows_of(rows), y[rows]
        coef, *_ = np.linalg.lstsq(Xs, ys, rcond=None)
        resid = ys - Xs @ coef
        total = float(np.sum((ys - ys.mean()) ** 2))
        return float(resid @ resid) <= 1e-20 * max(total, float(ys @ ys))

    # A perfect fit on all rows is one on every subset, so a spread sample of rows rules it
    # out cheaply; only a sample that is fit exactly needs the full check.
    step = max(1, len(y) // (50 * p + 1000))
    if (step == 1 or exact(slice(None, None, step))) and exact(slice(None)):
        var = spec.outcome.variables()[0] if spec.outcome.variables() else None
        raise _error(
            spec,
            var,
            f"the fixed part predicts '{spec.outcome.text()}' exactly (a perfect fit): "
            "there is no residual variance to estimate",
            expected="an outcome that is not an exact function of the predictors",
            hint="check for a predictor that is the outcome under another name or a sum of "
            "other columns",
        )
