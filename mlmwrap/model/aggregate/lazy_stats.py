"""Per-cluster sufficient statistics of a lazy frame, computed inside its own engine.

The fit needs only ``W_j'W_j`` for ``W = [X, Z, y]`` (HLM's design since the 1980s). For
a narwhals ``LazyFrame`` (Polars, DuckDB, Dask, PySpark, a scanned Parquet/CSV file) the
design is written as engine expressions and the sums as a group-by, so only a ``J``-row
table is ever collected:

1. one pass for the counts (rows, missing values per variable);
2. where centering needs them (``cwc``, ``cmean``, ``cgm``), one group-by for the cluster
   sums, minima and maxima of the centered expressions, joined back as cluster means;
3. one group-by for the sums of the ``k (k + 1) / 2`` column products, the cluster sizes
   and the level-2 checks (minimum and maximum of each level-2 predictor per cluster).

Polars' streaming group-by holds rows when the clusters are many, so for Polars the
engine computes the columns and streams batches of rows, which numpy sums per cluster
(:mod:`mlmwrap.model.aggregate.batches`); the centering means are then joined from the
collected table. DuckDB's own progress bar is off meanwhile (:func:`.quiet_engine`).

Centering, transforms, products, categorical dummies, listwise deletion and the checks
follow :mod:`mlmwrap.model.design` (same rules, same messages where they apply).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from mlmwrap.errors import DataError
from mlmwrap.language.expr import Call, Expr, Num, Power, Product, Var
from mlmwrap.language.formulas import reduced_formulas
from mlmwrap.language.spec import ModelSpec
from mlmwrap.model.aggregate.rowless import RowlessDesign
from mlmwrap.model.aggregate.sources import quiet_engine
from mlmwrap.model.design import (
    INTERCEPT,
    FixedColumn,
    SampleInfo,
    categorical_centering_error,
    level_text,
    resolve_name,
)
from mlmwrap.model.engine import ClusterStats

__all__ = ["lazy_cluster_stats"]

_CENTERING = ("cwc", "cmean", "cgm")


def _nw():
    from mlmwrap.model.aggregate.sources import import_narwhals

    return import_narwhals()


def _collect(lf):
    """Collect a (small, aggregated) lazy frame; Polars with its streaming engine, so that
    scanning a file holds one batch of rows at a time, not the file."""
    if str(lf.implementation) == "polars":
        return lf.collect(engine="streaming")
    return lf.collect()


def _streams_batches(lf) -> bool:
    """Polars, whose streaming group-by holds rows when the clusters are many: its
    per-cluster sums are taken over streamed batches instead (:mod:`.batches`)."""
    if not lf.implementation.is_polars():
        return False
    return hasattr(_nw().to_native(lf), "collect_batches")


def _cluster_table(
    lf,
    cluster: str,
    design: dict[str, Any] | None = None,
    sums: dict[str, Any] | None = None,
    extrema: dict[str, Any] | None = None,
) -> pd.DataFrame:
    """One row per cluster (sorted by id), computed inside the engine: ``__n`` (rows), the
    sums ``__p{a}_{b}`` of the products of the ``design`` columns (``a <= b``, their
    positions), ``{name}_sum`` for ``sums`` and ``{name}_min``/``{name}_max`` for
    ``extrema`` (each a dict of name -> narwhals expression)."""
    nw = _nw()
    design, sums, extrema = design or {}, sums or {}, extrema or {}
    k = len(design)
    rows, cols = np.triu_indices(k)
    pairs = [f"__p{a}_{b}" for a, b in zip(rows, cols, strict=True)]
    named = {**design, **sums, **extrema}
    if _streams_batches(lf):
        from mlmwrap.model.aggregate.batches import ClusterTotals, polars_batches

        native = _nw().to_native(lf.with_columns(*[e.alias(n) for n, e in named.items()]))
        totals = ClusterTotals(k, len(sums), len(extrema))
        for batch in polars_batches(native, [cluster, *named]):
            batch = batch.sort(cluster)  # Polars sorts in parallel; numpy then runs once
            totals.add(
                batch[cluster].to_numpy(),
                batch.select(list(design)).to_numpy() if k else None,
                batch.select(list(sums)).to_numpy() if sums else None,
                batch.select(list(extrema)).to_numpy() if extrema else None,
                is_sorted=True,
            )
        out = {cluster: totals.labels, "__n": totals.count}
        out.update(zip(pairs, totals.pair_sums.T, strict=True))
        out.update({n + "_sum": totals.sums[:, i] for i, n in enumerate(sums)})
        for i, n in enumerate(extrema):
            out[n + "_min"], out[n + "_max"] = totals.low[:, i], totals.high[:, i]
        return pd.DataFrame(out)
    # Products first, then plain sums: every engine (Dask too) aggregates simple columns.
    wide = lf.with_columns(*[e.alias(n) for n, e in named.items()]) if named else lf
    names = list(design)
    if pairs:
        wide = wide.with_columns(
            *[
                (nw.col(names[a]) * nw.col(names[b])).alias(pair)
                for a, b, pair in zip(rows, cols, pairs, strict=True)
            ]
        )
    aggs = [nw.len().alias("__n"), *[nw.col(pair).sum().alias(pair) for pair in pairs]]
    aggs += [nw.col(n).sum().alias(n + "_sum") for n in sums]
    for n in extrema:
        aggs += [nw.col(n).min().alias(n + "_min"), nw.col(n).max().alias(n + "_max")]
    table = wide.group_by(cluster).agg(*aggs).pipe(_collect).to_pandas()
    return table.sort_values(cluster, kind="stable").reset_index(drop=True)


def _error(spec: ModelSpec, expr: Expr, message: str, **kw) -> DataError:
    span = expr.span
    return DataError(
        message,
        source=spec.lines.get(span.lineno),
        lineno=span.lineno,
        span=(span.start, span.end),
        **kw,
    )


def _expressions(spec: ModelSpec) -> list[Expr]:
    out: list[Expr] = [spec.outcome]
    for beta in spec.betas:
        if beta.predictor is not None:
            out.append(beta.predictor)
        out.extend(g.predictor for g in beta.gammas if g.predictor is not None)
    return out


def _calls(expr: Expr) -> list[Call]:
    """Every centering call inside ``expr`` (innermost first)."""
    found: list[Call] = []
    if isinstance(expr, Call):
        for arg in expr.args:
            found.extend(_calls(arg))
        if expr.func in _CENTERING:
            found.append(expr)
    elif isinstance(expr, Product):
        for f in expr.factors:
            found.extend(_calls(f))
    elif isinstance(expr, Power):
        found.extend(_calls(expr.base))
    return found


class _Compiler:
    """Equation-language expressions to narwhals expressions on the resolved columns."""

    def __init__(self, spec: ModelSpec, mapping: dict[str, str], schema: dict[str, Any]):
        self.spec, self.mapping, self.schema = spec, mapping, schema
        self.centered: dict[str, Callable[[], Any]] = {}  # call text -> its expression

    def numeric(self, expr: Expr):
        nw = _nw()
        if isinstance(expr, Var):
            name = self.mapping[expr.name]
            if not self.schema[name].is_numeric():
                raise _error(
                    self.spec,
                    expr,
                    f"'{expr.name}' is not numeric (its type is {self.schema[name]})",
                    expected="a numeric column",
                    hint=f"a categorical predictor stands on its own, as b1*C({expr.name}) at "
                    f"level 1 or g01*C({expr.name}) at level 2",
                )
            return nw.col(name).cast(nw.Float64)
        if isinstance(expr, Num):
            return nw.lit(float(expr.value), dtype=nw.Float64)
        if isinstance(expr, Product):
            out = self.numeric(expr.factors[0])
            for f in expr.factors[1:]:
                out = out * self.numeric(f)
            return out
        if isinstance(expr, Power):
            return self.numeric(expr.base) ** float(expr.exponent.value)
        if isinstance(expr, Call):
            if expr.func in _CENTERING:
                return self.centered[expr.text()]()
            if expr.func == "center":
                return self.numeric(expr.args[0]) - float(expr.args[1].value)
            if expr.func == "C":
                raise _error(
                    self.spec,
                    expr,
                    f"'{expr.text()}' is categorical and cannot be used inside an arithmetic "
                    "expression",
                    expected="a numeric expression",
                )
            x = self.numeric(expr.args[0])
            return {
                "log": lambda: x.log(),
                "log10": lambda: x.log(base=10.0),
                "exp": lambda: x.exp(),
                "sqrt": lambda: x.sqrt(),
                "abs": lambda: x.abs(),
            }[expr.func]()
        raise _error(self.spec, expr, f"cannot evaluate '{expr.text()}'")  # pragma: no cover

    def categorical(self, expr: Expr) -> str | None:
        """The column behind ``C(x)`` or a non-numeric column, else None."""
        if isinstance(expr, Call) and expr.func == "C" and isinstance(expr.args[0], Var):
            return self.mapping[expr.args[0].name]
        if isinstance(expr, Var) and not self.schema[self.mapping[expr.name]].is_numeric():
            return self.mapping[expr.name]
        return None


def _resolve(spec: ModelSpec, names: list[str]) -> dict[str, str]:
    columns = pd.Index(names)
    mapping: dict[str, str] = {}
    for expr in _expressions(spec):
        for var in expr.variables():
            if var.name in mapping:
                continue
            resolved = resolve_name(var.name, columns)
            if resolved is None:
                close = difflib.get_close_matches(var.name, names, n=3, cutoff=0.6)
                raise _error(
                    spec,
                    var,
                    f"there is no column '{var.name}' in the data",
                    expected="the name of a column of the data",
                    hint=("did you mean " + " or ".join(f"'{c}'" for c in close) + "?")
                    if close
                    else f"the data's columns are: {', '.join(names[:12])}",
                )
            mapping[var.name] = resolved
    return mapping


def lazy_cluster_stats(
    spec: ModelSpec, frame: Any, cluster: str, progress: Callable[[str], None] | None = None
) -> tuple[ClusterStats, RowlessDesign]:
    """Sufficient statistics and the design's description of a narwhals ``LazyFrame``.

    The engine's own progress display is off meanwhile (DuckDB's bar), then restored.

    Parameters
    ----------
    spec
        The parsed equations.
    frame
        A narwhals ``LazyFrame`` (:func:`mlmwrap.model.aggregate.sources.classify`).
    cluster
        The column identifying the clusters.
    progress
        Called with a short description as each pass over the data starts.
    """
    with quiet_engine(frame):
        return _lazy_cluster_stats(spec, frame, cluster, progress)


def _lazy_cluster_stats(
    spec: ModelSpec, frame: Any, cluster: str, progress: Callable[[str], None] | None
) -> tuple[ClusterStats, RowlessDesign]:
    nw = _nw()
    step = progress or (lambda what: None)
    schema = dict(frame.collect_schema())
    names = list(schema)
    if cluster not in schema:
        close = difflib.get_close_matches(str(cluster), names, n=3)
        raise DataError(
            f"the cluster column '{cluster}' is not in the data",
            expected="the name of the column that identifies the clusters (level-2 units)",
            hint=("did you mean " + " or ".join(f"'{c}'" for c in close) + "?") if close else None,
        )
    mapping = _resolve(spec, names)
    used = list(dict.fromkeys([*mapping.values(), cluster]))
    lf = frame.select(used)

    step("counting rows and missing values")
    counts = (
        lf.select(nw.len().alias("__rows"), *[nw.col(c).null_count().alias(c) for c in used])
        .pipe(_collect)
        .to_pandas()
        .iloc[0]
    )
    rows_total = int(counts["__rows"])
    dropped = {c: int(counts[c]) for c in used if int(counts[c])}
    clusters_total = None  # the clusters used, unless listwise deletion dropped rows
    if dropped:
        clusters_total = int(
            lf.select(nw.col(cluster).n_unique().alias("__clusters"))
            .pipe(_collect)
            .to_pandas()["__clusters"]
            .iloc[0]
        ) - int(dropped.get(cluster, 0) > 0)  # n_unique counts a missing id as one
    lf = lf.drop_nulls(subset=used)
    compiler = _Compiler(spec, mapping, schema)

    # Pass for the cluster means that centering needs.
    calls = list({c.text(): c for e in _expressions(spec) for c in _calls(e)}.values())
    for c in calls:
        if compiler.categorical(c.args[0]) is not None:
            raise categorical_centering_error(
                lambda message, expr, **kw: _error(spec, expr, message, **kw), c
            )
    if calls:
        step("cluster means for centering")
        inner = {f"__v{i}": compiler.numeric(c.args[0]) for i, c in enumerate(calls)}
        table = _cluster_table(lf, cluster, sums=inner, extrema=inner)
        if len(table) == 0:
            _no_rows(dropped)
        n_rows = float(table["__n"].sum())
        for i, (name, call) in enumerate(zip(inner, calls, strict=True)):
            mean = table[name + "_sum"] / table["__n"]
            lo, hi = table[name + "_min"].to_numpy(), table[name + "_max"].to_numpy()
            scale = max(1.0, float(np.nanmax(np.abs(np.r_[lo, hi]))))
            within = bool(np.any(hi - lo > 1e-9 * scale))
            text, col = call.args[0].text(), nw.col(f"__m{i}")
            if call.func == "cwc":
                if not within:
                    raise _error(
                        spec,
                        call,
                        f"'{text}' is constant within every cluster, so {call.text()} is 0 in "
                        "every row",
                        expected="a level-1 variable inside cwc()",
                    )
                compiler.centered[call.text()] = lambda e=inner[name], c=col: e - c
            elif call.func == "cmean":
                compiler.centered[call.text()] = lambda c=col: c
            else:  # cgm: level-2 at the mean over clusters, level-1 over rows (HLM)
                if within:
                    grand = float(table[name + "_sum"].sum()) / n_rows
                else:
                    grand = float(mean.mean())
                compiler.centered[call.text()] = lambda e=inner[name], g=grand: e - g
        if _streams_batches(lf):
            # The means as collected (a second group-by over the rows would hold them).
            means = {cluster: table[cluster].to_numpy()}
            for i, name in enumerate(inner):
                means[f"__m{i}"] = (table[name + "_sum"] / table["__n"]).to_numpy()
            native = type(_nw().to_native(lf))(means)  # a Polars LazyFrame of J rows
            lazy_means = nw.from_native(native).with_columns(nw.col(cluster).cast(schema[cluster]))
            lf = lf.join(lazy_means, on=cluster, how="left")  # every cluster has its mean
        else:
            # The means are joined back as a lazy aggregate of the same frame, so the
            # engine plans it (and DuckDB keeps one connection); the table collected above
            # only served the checks and the grand means.
            lazy_means = (
                lf.with_columns(*[e.alias(n) for n, e in inner.items()])
                .group_by(cluster)
                .agg(*[nw.col(n).mean().alias(f"__m{i}") for i, n in enumerate(inner)])
            )
            lf = lf.join(lazy_means, on=cluster, how="inner")

    # The design's columns: [X, Z, y], with their metadata.
    columns: list[Any] = []
    fixed_meta: list[FixedColumn] = []
    # (name, gamma expr, the values that must be constant within clusters, exact?)
    level2_checks: list[tuple[str, Any, Any, bool]] = []
    random_cols, random_labels, random_terms = [], [], []
    for beta in spec.betas:
        cat1 = compiler.categorical(beta.predictor) if beta.predictor is not None else None
        if cat1 is not None:  # a categorical level-1 predictor: its indicators, pushed down
            _categorical_level1(
                spec, beta, cat1, lf, compiler, columns, fixed_meta, level2_checks,
                random_cols, random_labels, random_terms,
            )  # fmt: skip
            continue
        x = compiler.numeric(beta.predictor) if beta.predictor is not None else None
        x_text = beta.predictor.text() if beta.predictor is not None else INTERCEPT
        one = nw.lit(1.0, dtype=nw.Float64)
        if beta.random:
            random_cols.append(x if x is not None else one)
            random_labels.append(beta.u_label or f"u{beta.index}")
            random_terms.append(x_text)
        level1 = beta.predictor.text() if beta.predictor is not None else "(intercept)"
        for gamma in beta.gammas:
            if gamma.predictor is None:
                columns.append(x if x is not None else one)
                fixed_meta.append(
                    FixedColumn(gamma.label, x_text, beta.label, "(constant)", level1)
                )
                continue
            w_text = gamma.predictor.text()
            cat = compiler.categorical(gamma.predictor)
            if cat is not None:
                levels = _levels(lf, cat)
                if len(levels) < 2:
                    raise _error(
                        spec, gamma.predictor, f"'{w_text}' has a single category in the sample"
                    )
                # One category per cluster: its position among the levels is constant
                # (a number, so that every engine and numpy take its minimum and maximum).
                position = nw.lit(0.0, dtype=nw.Float64)
                for j, level in enumerate(levels[1:], start=1):
                    position = position + (nw.col(cat) == level).cast(nw.Float64) * float(j)
                level2_checks.append((f"__u{len(columns)}", gamma.predictor, position, True))
                base = w_text[2:-1] if w_text.startswith("C(") else w_text
                for level in levels[1:]:
                    ind = (nw.col(cat) == level).cast(nw.Float64)
                    term_w = f"{base}[{level_text(level)}]"
                    term = term_w if x_text == INTERCEPT else f"{x_text}:{term_w}"
                    columns.append(ind if x is None else x * ind)
                    label = f"{gamma.label}[{level_text(level)}]"
                    fixed_meta.append(FixedColumn(label, term, beta.label, term_w, level1))
                continue
            w = compiler.numeric(gamma.predictor)
            level2_checks.append((f"__l{len(columns)}", gamma.predictor, w, False))
            term = w_text if x_text == INTERCEPT else f"{x_text}:{w_text}"
            columns.append(w if x is None else x * w)
            fixed_meta.append(FixedColumn(gamma.label, term, beta.label, w_text, level1))
    p, q = len(columns), len(random_cols)
    design_cols = [*columns, *random_cols, compiler.numeric(spec.outcome)]
    k = len(design_cols)

    step("per-cluster cross-products")
    table = _cluster_table(
        lf,
        cluster,
        design={f"__w{i}": e for i, e in enumerate(design_cols)},
        extrema={name: values for name, _, values, _ in level2_checks},
    )
    if len(table) == 0:
        _no_rows(dropped)
    if len(table) < 2:
        raise DataError(
            f"the data have only {len(table)} cluster in '{cluster}' after dropping incomplete "
            "rows",
            hint="a multilevel model needs many clusters; check the cluster column",
        )
    for name, predictor, _, exact in level2_checks:
        beta = next(b for b in spec.betas if any(g.predictor is predictor for g in b.gammas))
        lo = table[name + "_min"].to_numpy(float)
        hi = table[name + "_max"].to_numpy(float)
        if exact:
            varying = hi != lo
        else:
            scale = max(1.0, float(np.nanmax(np.abs(np.r_[lo, hi]))))
            varying = hi - lo > 1e-9 * scale
        if varying.any():
            text = predictor.text()
            raise _error(
                spec,
                predictor,
                f"'{text}' varies within {int(varying.sum())} of the {len(varying)} clusters, "
                f"so it is not a level-2 predictor of {beta.label}",
                expected="a variable that is constant within each cluster",
                hint=f"use its cluster mean, cmean({text}), as the level-2 predictor",
            )
    rows, cols = np.triu_indices(k)
    sums = table[[f"__p{a}_{b}" for a, b in zip(rows, cols, strict=True)]].to_numpy(dtype=float)
    if not np.all(np.isfinite(sums)):
        raise DataError(
            "the outcome or a predictor has infinite or undefined values (e.g. log of a "
            "non-positive value) in the estimation sample",
            hint="remove or recode them, or shift the variable first: log(center(x, -1))",
        )
    cross = np.empty((len(table), k, k))
    cross[:, rows, cols] = sums
    cross[:, cols, rows] = sums
    sizes = table["__n"].to_numpy(dtype=np.int64)
    stats = ClusterStats(cross=cross, n_obs=int(sizes.sum()), p=p, q=q, cluster_sizes=sizes)
    design = RowlessDesign(
        fixed_columns=fixed_meta,
        random_labels=random_labels,
        random_terms=random_terms,
        outcome=spec.outcome.text(),
        cluster=cluster,
        cluster_labels=table[cluster].to_numpy(),
        sizes=sizes,
        columns=mapping,
        formulas=reduced_formulas(
            spec, cluster, columns=mapping, categorical=lambda c: not schema[c].is_numeric()
        ),
        sample=SampleInfo(
            rows_total=rows_total,
            rows_used=int(sizes.sum()),
            clusters_total=len(table) if clusters_total is None else clusters_total,
            clusters_used=len(table),
            dropped_by_variable=dropped,
        ),
    )
    return stats, design


def _levels(lf, column: str) -> list:
    """The categories of ``column`` in the sample, sorted as the pandas design sorts them."""
    nw = _nw()
    values = lf.select(nw.col(column)).unique().pipe(_collect).to_pandas()[column].tolist()
    return sorted(values, key=lambda v: (str(type(v)), v))


def _categorical_level1(
    spec, beta, column, lf, compiler, columns, fixed_meta, level2_checks,
    random_cols, random_labels, random_terms,
) -> None:  # fmt: skip
    """The design columns of a categorical level-1 predictor (``b1*C(x)``): one indicator
    per non-reference category, times each gamma's W, and one random effect per indicator
    when the beta is random (as :mod:`mlmwrap.model.design` builds them)."""
    nw = _nw()
    level1 = beta.predictor.text()
    levels = _levels(lf, column)
    if len(levels) < 2:
        raise _error(spec, beta.predictor, f"'{level1}' has a single category in the sample")
    base = level1[2:-1] if level1.startswith("C(") else level1
    indicators = [(level_text(v), (nw.col(column) == v).cast(nw.Float64)) for v in levels[1:]]
    for gamma in beta.gammas:
        w = None
        w_text = "(constant)"
        if gamma.predictor is not None:
            w_text = gamma.predictor.text()
            if compiler.categorical(gamma.predictor) is not None:
                raise _error(
                    spec,
                    gamma.predictor,
                    f"'{w_text}' is categorical, and so is the level-1 predictor '{level1}' "
                    f"of {beta.label}: an interaction of two categorical predictors is not "
                    "available yet",
                    expected="a numeric level-2 predictor",
                    hint=f"code '{w_text}' as 0/1 indicator columns (numeric) and use those",
                )
            w = compiler.numeric(gamma.predictor)
            level2_checks.append((f"__l{len(columns)}", gamma.predictor, w, False))
        for c, ind in indicators:
            term = f"{base}[{c}]" if w is None else f"{base}[{c}]:{w_text}"
            columns.append(ind if w is None else ind * w)
            fixed_meta.append(
                FixedColumn(f"{gamma.label}[{c}]", term, beta.label, w_text, level1, c)
            )
    if beta.random:
        u = beta.u_label or f"u{beta.index}"
        for c, ind in indicators:
            random_cols.append(ind)
            random_labels.append(f"{u}[{c}]")
            random_terms.append(f"{base}[{c}]")


def _no_rows(dropped: dict[str, int]):
    raise DataError(
        "no rows are left after dropping rows with a missing value in a model variable",
        hint="missing values per variable: " + ", ".join(f"{k}: {v}" for k, v in dropped.items()),
    )
