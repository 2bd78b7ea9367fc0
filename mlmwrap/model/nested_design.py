"""The design of a nested (three-level) model: names, sample, units, centering per level, X/Z.

Level-2 units are identified by their id **together with** their level-3 unit's id, as lme4's
``lea/school``: class "1" of school A and class "1" of school B are two units
(:attr:`NestedDesign.ids_repeat` says when that happened). Centering follows HLM and depends
on the level of the equation an expression is written in:

========  ==========================================  ===========================================
level     ``cwc(x)``                                  ``cgm(x)`` / ``cmean(x)``
========  ==========================================  ===========================================
1         x minus its level-2 unit mean               x minus its mean over rows / level-2 mean
2         (a level-2 x) minus its level-3 unit mean,  x minus its mean over level-2 units, each
          level-2 units counted once                  once / the level-2 unit mean of x
3         not defined (no level above)                x minus its mean over level-3 units / the
                                                      level-3 mean: over rows for a level-1 x,
                                                      over level-2 units for a level-2 x
========  ==========================================  ===========================================

A predictor of a level-2 equation must be constant within level-2 units, one of a level-3
equation within level-3 units (a :class:`~mlmwrap.errors.DataError` pointing at it otherwise).
patsy builds X and one Z per level from :func:`~mlmwrap.language.nested_spec.nested_formulas`.

Examples
--------
>>> import pandas as pd
>>> from mlmwrap.language.levels import parse_model
>>> df = pd.DataFrame({"y": [1., 2, 3, 4, 5, 7], "x": [1., 2, 3, 5, 4, 6],
...                    "c": [1, 1, 2, 2, 1, 1], "s": [1, 1, 1, 1, 2, 2]})
>>> spec = parse_model("y = p0 + p1*cwc(x) + e\\np0 = b00 + r0\\np1 = b10\\n"
...                    "b00 = g000 + u00\\nb10 = g100")
>>> d = build_nested_design(spec, df, ["c", "s"])
>>> d.n_units, d.ids_repeat, d.fixed_labels
((3, 2), True, ['g000', 'g100'])
>>> d.X[:, 1].tolist()
[-0.5, 0.5, -1.0, 1.0, -1.0, 1.0]
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd
import patsy

from mlmwrap.errors import DataError
from mlmwrap.language.expr import Call, Expr, Num, Power, Product, Var
from mlmwrap.language.nested_spec import NestedFormulas, NestedSpec, nested_formulas
from mlmwrap.model.centering import cluster_means, varies_within
from mlmwrap.model.design import (
    TRANSFORMS,
    categorical_centering_error,
    category_levels,
    column_error,
    is_numeric_column,
    level_text,
    rename_vars,
    term_columns,
)
from mlmwrap.model.engine import block_pattern
from mlmwrap.model.rank import check_rank

__all__ = ["NestedDesign", "build_nested_design", "resolve_nested_name"]

_SUBSCRIPTS = ("_ijk", "_jk", "_k", "_ij", "_j", "ijk", "jk", "k", "ij", "j")
_NO_NA_CHECK = patsy.NAAction(NA_types=[])


def resolve_nested_name(name: str, columns: pd.Index) -> str | None:
    """The column a name refers to; a subscript (``_ijk``, ``_jk``, ``_k``, ...) is dropped
    only when the data has no column of the full name.

    >>> resolve_nested_name("ses_ijk", pd.Index(["ses"]))
    'ses'
    """
    if name in columns:
        return name
    for suffix in _SUBSCRIPTS:
        if name.endswith(suffix) and len(name) > len(suffix) and name[: -len(suffix)] in columns:
            return name[: -len(suffix)]
    return None


@dataclass
class NestedDesign:
    """What the fit of a nested model needs, on the estimation sample.

    Attributes
    ----------
    X, y
        Fixed design (one column per gamma column, ``fixed_labels``) and outcome.
    Zs, codes
        Per level from 2 up: the random design (columns ``random_labels[i]``) and each
        row's unit 0..J-1 (a level-2 unit is a (level-3 id, level-2 id) pair).
    frees
        Per level: the free entries of ``L`` (``None``: unstructured).
    clusters
        The unit columns, level 2 first; ``ids_repeat``: some level-2 id occurs in more
        than one level-3 unit (they were told apart).
    """

    spec: NestedSpec
    formulas: NestedFormulas
    frame: pd.DataFrame
    columns: dict[str, str]
    clusters: tuple[str, ...]
    X: np.ndarray
    y: np.ndarray
    Zs: list[np.ndarray]
    codes: list[np.ndarray]
    fixed_labels: list[str]
    fixed_patsy: list[str]
    random_labels: list[list[str]]
    frees: list[np.ndarray | None]
    ids_repeat: bool
    rows_dropped: int
    unit_ids: list[pd.Index]
    row_index: pd.Index  # labels of the rows used, from the caller's DataFrame

    @property
    def n_obs(self) -> int:
        return len(self.y)

    @property
    def n_units(self) -> tuple[int, ...]:
        return tuple(int(c.max()) + 1 for c in self.codes)


class _Evaluator:
    """Evaluates expressions at the level of the equation they are written in."""

    def __init__(
        self,
        spec: NestedSpec,
        frame: pd.DataFrame,
        codes: list[np.ndarray],
        reference: np.ndarray | None = None,
    ):
        self.spec, self.frame, self.codes = spec, frame, codes
        self.n_units = [int(c.max()) + 1 for c in codes]
        # the level-3 unit of each level-2 unit
        self.parent = np.zeros(self.n_units[0], dtype=np.intp)
        self.parent[codes[0]] = codes[1]
        # Predictions evaluate the model on the fit's rows followed by new rows: the centering
        # constants then come from the fit's rows (``reference``), except for units that only
        # the new rows have, which are centered on their own rows.
        self.reference = reference
        if reference is not None:
            self.unit_reference = np.bincount(codes[0], reference, self.n_units[0]) > 0
            self.top_reference = np.bincount(codes[1], reference, self.n_units[1]) > 0

    def _means(self, x: np.ndarray, codes: np.ndarray, n: int, ref: np.ndarray | None):
        """Per-unit means of ``x``: over the ``ref`` members of a unit where it has any."""
        if ref is None:
            return cluster_means(x, codes, n)
        w = ref.astype(float)
        sums_ref, n_ref = np.bincount(codes, x * w, n), np.bincount(codes, w, n)
        sums_new, n_new = np.bincount(codes, x * (1 - w), n), np.bincount(codes, 1 - w, n)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(n_ref > 0, sums_ref / n_ref, sums_new / n_new)

    def _row_means(self, x: np.ndarray, level: int) -> np.ndarray:
        """The mean of ``x`` over the rows of each unit of ``level``, per unit."""
        return self._means(x, self.codes[level - 2], self.n_units[level - 2], self.reference)

    def _unit_means(self, units: np.ndarray) -> np.ndarray:
        """The mean of a level-2 variable over the level-2 units of each level-3 unit."""
        ref = None if self.reference is None else self.unit_reference
        return self._means(units, self.parent, self.n_units[1], ref)

    def _grand(self, values: np.ndarray, ref_name: str) -> float:
        """The grand mean of rows or units: over the fit's own where there is a reference."""
        if self.reference is None:
            return float(values.mean())
        return float(values[getattr(self, ref_name)].mean())

    def error(self, message: str, expr: Expr, expected=None, hint=None) -> DataError:
        s = expr.span
        return DataError(
            message,
            source=self.spec.lines.get(s.lineno),
            lineno=s.lineno,
            span=(s.start, s.end),
            expected=expected,
            hint=hint,
        )

    def unit_values(self, x: np.ndarray, level: int) -> np.ndarray:
        """One value per unit of ``level`` (x constant within those units)."""
        out = np.zeros(self.n_units[level - 2])
        out[self.codes[level - 2]] = x
        return out

    def numeric(self, expr: Expr, level: int) -> np.ndarray:
        if isinstance(expr, Var):
            col = self.frame[expr.name]
            if not is_numeric_column(col):
                raise self.error(
                    f"'{expr.name}' is not numeric",
                    expr,
                    expected="a numeric column",
                    hint=f"write C({expr.name}) for a categorical predictor",
                )
            return col.to_numpy(dtype=float)
        if isinstance(expr, Num):
            return np.full(len(self.frame), float(expr.value))
        if isinstance(expr, Product):
            out = np.ones(len(self.frame))
            for f in expr.factors:
                out = out * self.numeric(f, level)
            return out
        if isinstance(expr, Power):
            return self.numeric(expr.base, level) ** float(expr.exponent.value)
        assert isinstance(expr, Call)
        if expr.func == "C":
            raise self.error(
                f"'{expr.text()}' is categorical and cannot be used inside an "
                "arithmetic expression",
                expr,
                expected="a numeric expression",
            )
        arg = expr.args[0] if expr.args else None
        if expr.func in ("cwc", "cgm", "cmean", "center") and (
            isinstance(arg, Call)
            and arg.func == "C"
            or isinstance(arg, Var)
            and not is_numeric_column(self.frame[arg.name])
        ):
            raise categorical_centering_error(self.error, expr)
        # cmean's argument is read one level down: in a level-3 equation cmean(cmean(x)) is
        # the level-3 mean of the level-2 unit means of x. cwc and cgm do not aggregate, so
        # their argument is read at their own level: cgm(cmean(x)) in a level-3 equation is
        # the level-3 mean of x centered at its mean over level-3 units.
        inner_level = max(1, level - 1) if expr.func == "cmean" else level
        x = self.numeric(expr.args[0], inner_level)
        c2, c3 = self.codes
        if expr.func == "center":
            return x - float(expr.args[1].value)
        if expr.func in TRANSFORMS:
            with np.errstate(all="ignore"):
                out = TRANSFORMS[expr.func](x)
            if not np.all(np.isfinite(out)):
                raise self.error(
                    f"{expr.func}() is undefined for some rows",
                    expr,
                    expected=f"values inside the domain of {expr.func}()",
                )
            return out
        level2_var = not varies_within(x, c2).any()
        if level == 1:
            means = self._row_means(x, 2)[c2]
            if expr.func == "cgm":
                return x - self._grand(x, "reference")
            return {"cwc": x - means, "cmean": means}[expr.func]
        if level == 2:
            if expr.func == "cmean":
                return self._row_means(x, 2)[c2]
            if not level2_var:
                inner = expr.args[0].text()
                raise self.error(
                    f"'{inner}' varies within level-2 units, so {expr.text()} is not a level-2 "
                    "variable",
                    expr,
                    expected=f"a level-2 variable inside {expr.func}() in a level-2 equation",
                    hint=f"use {expr.func}(cmean({inner})) for its level-2 unit mean",
                )
            units = self.unit_values(x, 2)
            if expr.func == "cgm":
                return x - self._grand(units, "unit_reference")
            means3 = self._unit_means(units)
            return x - means3[c3]  # cwc: centered within the level-3 unit
        # level 3
        if expr.func == "cwc":
            raise self.error(
                f"{expr.text()} in a level-3 equation: there is no level above to center within",
                expr,
                expected="cgm(x) or cmean(x) at level 3",
            )
        if expr.func == "cmean":
            if level2_var:  # over level-2 units, each counted once
                means3 = self._unit_means(self.unit_values(x, 2))
            else:
                means3 = self._row_means(x, 3)
            return means3[c3]
        if varies_within(x, c3).any():
            raise self.error(
                f"'{expr.args[0].text()}' varies within level-3 units",
                expr,
                expected="a level-3 variable inside cgm() in a level-3 equation",
                hint=f"use cgm(cmean({expr.args[0].text()}))",
            )
        return x - self._grand(self.unit_values(x, 3), "top_reference")

    def check_level(self, expr: Expr, level: int, values) -> None:
        """A predictor of a level-``level`` equation must be constant within its units."""
        if level == 1:
            return
        codes = self.codes[level - 2]
        varies = varies_within(values, codes)
        if varies.any():
            what = {2: "level-2", 3: "level-3"}[level]
            below = {2: "level-1", 3: "level-2"}[level]
            fix = f"cmean({expr.text()})" if level == 2 else f"cmean({expr.text()})"
            raise self.error(
                f"'{expr.text()}' varies within {int(varies.sum())} of the "
                f"{len(varies)} {what} units, so it is not a {what} predictor",
                expr,
                expected=f"a {what} variable (constant within each {what} unit) in a "
                f"{what} equation",
                hint=f"it looks like a {below} variable: use {fix} (its {what} unit mean), "
                f"or move it to a {below} equation",
            )


_CODED = re.compile(r"C\(([A-Za-z_][A-Za-z0-9_]*|Q\('[^']*'\))\)")


def _coded_columns(rhs: str) -> set[str]:
    """The columns written inside ``C()`` in a patsy formula."""
    return {c[3:-2] if c.startswith("Q(") else c for c in _CODED.findall(rhs)}


def _categories_of(model: dict, term: str) -> list | None:
    """The categories (reference first) of a term that is one categorical column ``C(x)``,
    else None."""
    m = _CODED.fullmatch(term)
    if m is None:
        return None
    name = m.group(1)
    name = name[3:-2] if name.startswith("Q(") else name
    return category_levels(pd.Series(model[name]))


def _level_label(model: dict, column: str, text: str) -> str:
    """A category in a label: a numeric column's ``2.0`` prints ``2``, as at two levels."""
    name = column[3:-2] if column.startswith("Q(") else column
    values = model.get(name)
    if values is not None and not isinstance(values, pd.Categorical):
        try:
            return level_text(float(text))
        except ValueError:
            return text
    return text


def resolve_columns(
    spec: NestedSpec, data: pd.DataFrame, with_outcome: bool = True
) -> dict[str, str]:
    exprs = [spec.outcome] if with_outcome else []
    exprs += [e for g in spec.gammas for e in g.predictors if e is not None]
    mapping: dict[str, str] = {}
    for e in exprs:
        for v in e.variables():
            col = resolve_nested_name(v.name, data.columns)
            if col is None:
                raise column_error(spec, v, data.columns)  # type: ignore[arg-type]
            mapping[v.name] = col
    return mapping


def _pair_codes(
    c3: np.ndarray, ids3: pd.Index, level2: pd.Series
) -> tuple[np.ndarray, pd.MultiIndex]:
    """Codes of the (level-3 id, level-2 id) pairs, in sorted order of the pairs, and the
    pairs: the two columns' codes combined into one integer (factorizing a MultiIndex of
    the rows costs seconds on a million rows)."""
    c0, ids0 = pd.factorize(level2, sort=True)
    key = c3.astype(np.int64) * len(ids0) + c0
    c2, keys = pd.factorize(key, sort=True)
    return c2, pd.MultiIndex.from_arrays([ids3[keys // len(ids0)], ids0[keys % len(ids0)]])


def build_nested_design(
    spec: NestedSpec,
    data: pd.DataFrame,
    clusters: list[str],
    *,
    reference: np.ndarray | None = None,
    with_outcome: bool = True,
) -> NestedDesign:
    """Resolve names, drop incomplete rows, identify units, center per level and build X, Z.

    ``reference`` (one flag per row of ``data``) makes the centering constants come from
    the flagged rows (a fit's sample, for predictions on new rows appended to it);
    ``with_outcome=False`` builds the predictors only (``y`` is zeros).

    Raises
    ------
    DataError
        An unknown column, units that are not nested, a predictor not constant at the level
        of its equation, a rank-deficient X.
    """
    if len(clusters) != spec.n_levels - 1:
        raise DataError(
            f"the equations describe a {spec.n_levels}-level model, so cluster must list "
            f"{spec.n_levels - 1} columns (level 2 first), not {len(clusters)}",
            source=spec.lines.get(1),
            expected='cluster=["school", "lea"]',
        )
    for c in clusters:
        if c not in data.columns:
            raise DataError(
                f"there is no cluster column '{c}' in the data",
                expected="a column that identifies the units of a level",
            )
    mapping = resolve_columns(spec, data, with_outcome)
    used = list(dict.fromkeys([*mapping.values(), *clusters]))
    frame = data[used]
    complete = frame.notna().all(axis=1).to_numpy()
    row_index = frame.index[complete]
    frame = frame.loc[complete].reset_index(drop=True)
    if len(frame) == 0:
        raise DataError("no complete rows: every row has a missing value in a model variable")
    if reference is not None:
        reference = np.asarray(reference, dtype=bool)[complete]
    c3, ids3 = pd.factorize(frame[clusters[1]], sort=True)
    c2, ids2 = _pair_codes(c3, ids3, frame[clusters[0]])
    ids_repeat = bool(frame[clusters[0]].nunique() < len(ids2))
    codes = [c2.astype(np.intp), c3.astype(np.intp)]
    ev = _Evaluator(spec, frame, codes, reference)
    categorical = {n for n in frame.columns if not is_numeric_column(frame[n])} - set(clusters)
    formulas = nested_formulas(spec, clusters, mapping, lambda n: n in categorical)
    model = {n: frame[n] for n in frame.columns}
    for n in categorical:
        model[n] = pd.Categorical(frame[n], categories=category_levels(frame[n]))
    for name, expr in formulas.derived_exprs.items():
        if not with_outcome and any(v.name not in mapping for v in expr.variables()):
            continue  # a transform of the outcome (log(y)), not needed for predictions
        model[name] = ev.numeric(rename_vars(expr, mapping), formulas.derived_levels[name])
    # each predictor constant at the level of its equation
    for g in spec.gammas:
        for level, e in enumerate(g.predictors, start=1):
            if e is None:
                continue
            renamed = rename_vars(e, mapping)
            if (
                isinstance(renamed, Call)
                and renamed.func == "C"
                or (isinstance(renamed, Var) and renamed.name in categorical)
            ):
                inner = renamed.args[0] if isinstance(renamed, Call) else renamed
                vals = pd.factorize(frame[inner.name])[0].astype(float)
            else:
                vals = ev.numeric(renamed, level)
            ev.check_level(e, level, vals)
    terms = formulas.fixed_rhs.split(" + ")
    random_terms = [formulas.term_of_random[r] for lv in spec.random_labels for r in lv]
    rhs = " + ".join(terms + [t for t in dict.fromkeys(random_terms) if t not in terms])
    # a numeric column inside C() stays a Series: patsy then names its categories 'T.1'
    coded = _coded_columns(rhs)
    arrays = {
        k: v if isinstance(v, pd.Categorical) or k in coded else np.asarray(v)
        for k, v in model.items()
    }
    try:
        matrix = patsy.dmatrix(
            rhs,
            arrays if rhs != "1" else pd.DataFrame(model),
            NA_action=_NO_NA_CHECK,
            return_type="matrix",
        )
    except patsy.PatsyError as err:  # pragma: no cover - columns were checked
        raise DataError(f"patsy could not build {rhs!r}: {err}") from None
    info = matrix.design_info
    matrix = np.asarray(matrix, dtype=float)
    names = info.column_names
    order, labels, patsy_names = [], [], []
    seen: set[str] = set()
    for g in spec.gammas:
        term = formulas.term_of_gamma[g.label]
        sl = info.term_name_slices.get("Intercept" if term == "1" else term)
        n_cols = 0 if sl is None else sl.stop - sl.start
        cols = None if term in seen else term_columns(info.term_name_slices, term, n_cols)
        if cols is None:
            raise DataError(
                f"the fixed term of {g.label} duplicates another one, so it cannot be estimated",
                hint="remove it",
            )
        seen.add(term)
        for k in cols:
            order.append(k)
            patsy_names.append(names[k])
            # a categorical's column, as two-level models label it: g010[lo], g100[2]
            levels = [
                _level_label(model, col, level)
                for col, level in re.findall(r"C\(([^)]*)\)\[(?:T\.)?([^\]]*)\]", names[k])
            ]
            labels.append(f"{g.label}[{','.join(levels)}]" if levels else g.label)
    X = np.ascontiguousarray(matrix[:, order])
    # From X'X scaled to unit diagonal (mlmwrap.model.rank): a relative test, so that
    # rescaling a predictor never changes the verdict (an SVD's tolerance is relative to
    # the largest singular value, i.e. to the column in the largest units)
    check_rank(X.T @ X, patsy_names, labels, "fixed")
    y_name = formulas.outcome
    if with_outcome:
        y = ev.numeric(rename_vars(spec.outcome, mapping), 1)
    else:
        y = np.zeros(len(frame))
    del y_name
    Zs, frees, random_labels = [], [], []
    for lv, level in enumerate(spec.random):
        cols: list[int] = []
        labels_lv: list[str] = []
        positions: dict[str, list[int]] = {}  # r1 -> its columns (one per category)
        for r in level:
            term = formulas.term_of_random[r.label]
            categories = _categories_of(model, term)
            n = 1 if categories is None else len(categories) - 1
            found = term_columns(info.term_name_slices, term, n)
            if found is None:  # pragma: no cover - the terms were checked above
                raise DataError(f"patsy coded the random term of {r.label} in an unexpected way")
            positions[r.label] = list(range(len(cols), len(cols) + n))
            cols.extend(found)
            if categories is None:
                labels_lv.append(r.label)
            else:  # a categorical level-1 predictor: one random effect per indicator
                labels_lv.extend(f"{r.label}[{level_text(c)}]" for c in categories[1:])
        Zs.append(np.ascontiguousarray(matrix[:, cols]).reshape(len(frame), len(cols)))
        random_labels.append(labels_lv)
        blocks = spec.tau_blocks(lv + 2)
        frees.append(
            block_pattern([[i for b in blk for i in positions[b]] for blk in blocks], len(cols))
        )
    return NestedDesign(
        spec=spec,
        formulas=formulas,
        frame=pd.DataFrame(model),
        columns=mapping,
        clusters=tuple(clusters),
        X=X,
        y=y,
        Zs=Zs,
        codes=codes,
        fixed_labels=labels,
        fixed_patsy=patsy_names,
        random_labels=random_labels,
        frees=frees,
        ids_repeat=ids_repeat,
        rows_dropped=int((~complete).sum()),
        unit_ids=[ids2, ids3],
        row_index=row_index,
    )
