"""Data in other engines (issue 10): the same estimates as the in-memory pandas fit.

Eager frames (Polars, PyArrow) are converted to pandas; lazy ones (Polars LazyFrame,
DuckDB, Dask, scanned Parquet/CSV files) are fitted from per-cluster sums computed in the
engine. Tolerances: the sums are the same numbers added in another order (1e-9 relative).
"""

import warnings

import numpy as np
import pytest

import mlmwrap
from mlmwrap.model.aggregate import RowsUnavailableError

pl = pytest.importorskip("polars")
pa = pytest.importorskip("pyarrow")
duckdb = pytest.importorskip("duckdb")
dd = pytest.importorskip("dask.dataframe")

ISAO = """mathach = b0 + b1*cwc(ses) + e
b0 = g00 + g01*meanses + g02*sector + u0
b1 = g10 + g11*meanses + g12*sector + u1"""
# Centering of every kind, a transform, a level-1 product and a categorical level-2 predictor.
RICH = """mathach = b0 + b1*cwc(ses) + b2*cgm(ses)*female + b3*log(center(ses, -5)) + e
b0 = g00 + g01*cmean(ses) + g02*cgm(size) + g03*C(sector) + u0
b1 = g10 + u1
b2 = g20
b3 = g30"""


@pytest.fixture(scope="module")
def hsb_files(tmp_path_factory, hsb):
    base = tmp_path_factory.mktemp("engines")
    data = hsb.copy()
    data.loc[data.index[::97], "ses"] = np.nan  # listwise deletion must agree too
    data.to_parquet(base / "hsb.parquet")
    data.to_csv(base / "hsb.csv", index=False)
    return data, base


def _inputs(data, base):
    return {
        "polars": lambda: pl.from_pandas(data),
        "polars-lazy": lambda: pl.from_pandas(data).lazy(),
        "pyarrow": lambda: pa.Table.from_pandas(data),
        "duckdb": lambda: duckdb.connect().from_df(data),
        "parquet": lambda: base / "hsb.parquet",
        "parquet-duckdb": lambda: (base / "hsb.parquet", "duckdb"),
        "csv": lambda: str(base / "hsb.csv"),
        "dask": lambda: dd.from_pandas(data, npartitions=3),
    }


def _fit(equations, data, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return mlmwrap.fit(equations, data, cluster="school", **kw)


@pytest.mark.parametrize("equations", [ISAO, RICH], ids=["isao", "rich"])
@pytest.mark.parametrize(
    "name",
    ["polars", "polars-lazy", "pyarrow", "duckdb", "parquet", "parquet-duckdb", "csv", "dask"],
)
def test_every_engine_gives_the_pandas_estimates(hsb_files, equations, name):
    data, base = hsb_files
    ref = _fit(equations, data)
    source = _inputs(data, base)[name]()
    engine = None
    if isinstance(source, tuple):
        source, engine = source
    res = _fit(equations, source, engine=engine)
    assert list(res.gamma.index) == list(ref.gamma.index)
    np.testing.assert_allclose(res.gamma["estimate"], ref.gamma["estimate"], rtol=1e-9)
    np.testing.assert_allclose(res.gamma["se"], ref.gamma["se"], rtol=1e-8)
    np.testing.assert_allclose(res.gamma["df"], ref.gamma["df"], rtol=1e-6)
    np.testing.assert_allclose(res.tau, ref.tau, rtol=1e-8)
    assert res.deviance == pytest.approx(ref.deviance, rel=1e-12)
    assert res.nobs == ref.nobs and res.n_clusters == ref.n_clusters
    assert res.sample.dropped_by_variable == ref.sample.dropped_by_variable
    assert res.sample.clusters_total == ref.sample.clusters_total


@pytest.mark.parametrize("equations", [ISAO, RICH], ids=["isao", "rich"])
def test_polars_sums_over_many_small_batches_are_the_pandas_ones(hsb_files, monkeypatch, equations):
    """Polars streams batches of rows that numpy sums per cluster (its streaming group-by
    holds rows when clusters are many): clusters split across batches and clusters first
    seen late (rows not sorted) add up; a cluster left without rows counts as dropped."""
    from mlmwrap.model.aggregate import batches

    monkeypatch.setattr(batches, "BATCH_ROWS", 500)
    data, _ = hsb_files
    data = data.sample(frac=1.0, random_state=3)  # clusters first seen in any batch
    data.loc[data["school"] == data["school"].iloc[0], "mathach"] = np.nan  # a whole cluster
    data.loc[data.index[::301], "school"] = np.nan  # missing cluster ids
    ref = _fit(equations, data)
    res = _fit(equations, pl.from_pandas(data).lazy())
    np.testing.assert_allclose(res.gamma["estimate"], ref.gamma["estimate"], rtol=1e-9)
    np.testing.assert_allclose(res.tau, ref.tau, rtol=1e-8)
    assert res.deviance == pytest.approx(ref.deviance, rel=1e-12)
    assert (res.nobs, res.n_clusters) == (ref.nobs, ref.n_clusters)
    assert res.sample == ref.sample
    assert list(res.design.cluster_labels) == list(ref.design.cluster_labels)


def test_lazy_fit_keeps_model_level_results_and_explains_row_level_ones(hsb_files):
    data, base = hsb_files
    res = _fit(ISAO, pl.from_pandas(data).lazy())
    assert "Fixed effects" in res.summary()
    assert res.confint().shape[0] > 0 and np.isfinite(res.deviance)
    with pytest.raises(RowsUnavailableError, match="collect the data to pandas"):
        res.design.X  # noqa: B018


def test_lazy_errors_are_mlmwrap_errors(hsb_files):
    data, _ = hsb_files
    lazy = pl.from_pandas(data).lazy()
    with pytest.raises(mlmwrap.DataError, match="there is no column 'sess'"):
        _fit("mathach = b0 + b1*cwc(sess)\nb0 = g00 + u0\nb1 = g10", lazy)
    with pytest.raises(mlmwrap.DataError, match="varies within"):
        _fit("mathach = b0 + e\nb0 = g00 + g01*ses + u0", lazy)
    with pytest.raises(mlmwrap.DataError, match="'C\\(minority\\)' varies within"):
        _fit("mathach = b0 + e\nb0 = g00 + g01*C(minority) + u0", lazy)
    with pytest.raises(mlmwrap.DataError, match="linear combination"):
        _fit(
            "mathach = b0 + e\nb0 = g00 + g01*sector + g02*sector2 + u0",
            pl.from_pandas(data.assign(sector2=2 * data["sector"])).lazy(),
        )
    with pytest.raises(mlmwrap.DataError, match="does not exist"):
        _fit("mathach = b0 + e\nb0 = g00 + u0", "/nonexistent/file.parquet")
    with pytest.raises(mlmwrap.DataError, match="must be a data frame"):
        _fit("mathach = b0 + e\nb0 = g00 + u0", [1, 2, 3])


def test_progress_is_silent_unless_asked(hsb, capsys):
    _fit("mathach = b0 + e\nb0 = g00 + u0", hsb)
    assert capsys.readouterr().err == ""
    _fit("mathach = b0 + e\nb0 = g00 + u0", hsb, progress=False)
    assert capsys.readouterr().err == ""


def test_duckdb_progress_bar_is_off_while_aggregating_and_restored_after(
    hsb, hsb_files, monkeypatch
):
    """DuckDB draws its own bar (in notebooks and terminals) on top of mlmwrap's: it is
    switched off on the relation's connection while mlmwrap aggregates, then restored."""
    from mlmwrap.model.aggregate import lazy_stats

    con = duckdb.connect()
    con.sql("SET enable_progress_bar = true")
    con.sql("SET progress_bar_time = 0")

    watched = [con]  # the connection whose setting the spy reads

    def setting():
        return watched[0].sql("SELECT current_setting('enable_progress_bar')").fetchall()[0][0]

    seen = []
    inner = lazy_stats._lazy_cluster_stats

    def spy(*args):
        seen.append(setting())
        return inner(*args)

    monkeypatch.setattr(lazy_stats, "_lazy_cluster_stats", spy)
    res = _fit("mathach = b0 + b1*cwc(ses) + e\nb0 = g00 + u0\nb1 = g10 + u1", con.from_df(hsb))
    assert np.isfinite(res.deviance)
    assert seen == [False]
    assert setting() is True
    assert con.sql("SELECT current_setting('progress_bar_time')").fetchall()[0][0] == 0
    # A file scanned by DuckDB gets a connection of its own: DuckDB's default one is untouched.
    # A file scanned by DuckDB gets a connection of its own: the default one is untouched.
    default = duckdb.default_connection()
    default.sql("SET enable_progress_bar = true")
    watched[0] = default
    try:
        seen.clear()
        _fit("mathach = b0 + e\nb0 = g00 + u0", hsb_files[1] / "hsb.parquet", engine="duckdb")
        assert seen == [True]
    finally:
        default.sql("RESET enable_progress_bar")
