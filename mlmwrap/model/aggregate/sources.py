"""What kind of data ``mlmwrap.fit`` was given, through narwhals.

pandas stays pandas. Eager frames of other libraries (Polars, PyArrow) fit in memory by
definition and are converted to pandas. Lazy frames (Polars ``LazyFrame``, DuckDB relations,
Dask and PySpark data frames) and paths to Parquet or CSV files (scanned lazily by Polars or
DuckDB) become a narwhals ``LazyFrame``: the fit then runs as group-by aggregations inside
that engine (:mod:`mlmwrap.model.aggregate.lazy_stats`) and never holds the rows.

Examples
--------
>>> import pandas as pd
>>> kind, frame = classify(pd.DataFrame({"y": [1.0]}))
>>> kind
'pandas'
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd

from mlmwrap.errors import DataError

__all__ = ["classify", "ENGINES", "quiet_engine"]

ENGINES = ("polars", "duckdb")
_SUFFIXES = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv"}


def import_narwhals():
    try:
        import narwhals.stable.v2 as nw
    except ImportError:  # pragma: no cover - narwhals is in the 'engines' extra
        try:
            import narwhals as nw
        except ImportError as err:
            raise DataError(
                "fitting data that is not a pandas DataFrame needs narwhals",
                hint="pip install 'mlmwrap[engines]'",
            ) from err
    return nw


def _scan(path: Path, engine: str | None) -> Any:
    kind = _SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise DataError(
            f"cannot read '{path}': mlmwrap scans .parquet and .csv files",
            hint="read it yourself and pass the DataFrame (or a Polars/DuckDB frame)",
        )
    if not path.exists():
        raise DataError(f"the file '{path}' does not exist")
    engine = engine or "polars"
    if engine not in ENGINES:
        raise DataError(
            f"unknown engine '{engine}' for scanning a file",
            hint=f"use one of {', '.join(ENGINES)}",
        )
    try:
        if engine == "polars":
            import polars as pl

            return pl.scan_parquet(path) if kind == "parquet" else pl.scan_csv(path)
        import duckdb

        # A connection of mlmwrap's own: the settings changed while aggregating (its
        # progress bar) are then nobody else's.
        connection = duckdb.connect()
        reader = connection.read_parquet if kind == "parquet" else connection.read_csv
        return reader(str(path))
    except ImportError as err:
        raise DataError(
            f"scanning a file with {engine} needs {engine} installed",
            hint="pip install 'mlmwrap[engines]'",
        ) from err


def classify(data: Any, engine: str | None = None) -> tuple[str, Any]:
    """``("pandas", DataFrame)`` or ``("lazy", narwhals LazyFrame)``.

    Raises
    ------
    DataError
        For anything that is neither a data frame narwhals knows nor a file path.
    """
    if isinstance(data, pd.DataFrame):
        return "pandas", data
    if isinstance(data, (str, Path)):
        data = _scan(Path(data), engine)
    nw = import_narwhals()
    with warnings.catch_warnings():
        # narwhals announces that Dask support moves to a plug-in; nothing for users to do.
        warnings.simplefilter("ignore", FutureWarning)
        try:
            frame = nw.from_native(data)
        except TypeError as err:
            raise DataError(
                f"data must be a data frame, not {type(data).__name__}",
                hint="pandas, Polars (eager or lazy), PyArrow, DuckDB, Dask or PySpark, or a "
                "path to a .parquet/.csv file; e.g. data=pd.read_csv('file.csv')",
            ) from err
    if isinstance(frame, nw.DataFrame):
        return "pandas", frame.to_pandas()
    return "lazy", frame


_SETTINGS_VIEW = "__mlmwrap_settings"  # the name DuckDB's relation.query gives the relation


@contextmanager
def quiet_engine(frame: Any) -> Iterator[None]:
    """The engine's own progress display off while mlmwrap aggregates (mlmwrap shows its
    own), then as it was: DuckDB draws a bar in notebooks and terminals for queries over
    two seconds. The setting belongs to the relation's connection; it is read, switched
    off and restored, so the caller's connection ends as it began."""
    native = frame.to_native() if hasattr(frame, "to_native") else frame
    old = None
    if getattr(frame, "implementation", None) is not None and frame.implementation.is_duckdb():
        try:
            old = native.query(
                _SETTINGS_VIEW, "SELECT current_setting('enable_progress_bar')"
            ).fetchall()[0][0]
            native.query(_SETTINGS_VIEW, "SET enable_progress_bar = false").fetchall()
        except Exception:  # noqa: BLE001 - a DuckDB without the setting: leave it alone
            old = None
    try:
        yield
    finally:
        if old is not None:
            value = "true" if old else "false"
            native.query(_SETTINGS_VIEW, f"SET enable_progress_bar = {value}").fetchall()
