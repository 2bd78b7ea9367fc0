"""PySpark data frames (issue 10), where PySpark is installed: the same estimates as pandas.

The fit runs as group-by aggregations inside Spark, through narwhals, like every lazy
engine (tests/test_engines.py). Skipped without PySpark or when no local Spark session
starts (it needs Java).
"""

import warnings

import numpy as np
import pytest

import mlmwrap
from mlmwrap.model.aggregate import RowsUnavailableError

pytest.importorskip("pyspark")
pytest.importorskip("narwhals")

RICH = """mathach = b0 + b1*cwc(ses) + b2*log(center(ses, -5)) + e
b0 = g00 + g01*cmean(ses) + g02*cgm(size) + g03*C(sector) + u0
b1 = g10 + g11*meanses + u1
b2 = g20"""


@pytest.fixture(scope="module")
def spark():
    from pyspark.sql import SparkSession

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # PySpark's own (e.g. about pandas 3)
            session = (
                SparkSession.builder.master("local[2]")
                .appName("mlmwrap-tests")
                .config("spark.ui.enabled", "false")
                .config("spark.ui.showConsoleProgress", "false")
                .config("spark.sql.shuffle.partitions", "2")
                .getOrCreate()
            )
    except Exception as err:  # noqa: BLE001 - no Java, no local Spark: nothing to test
        pytest.skip(f"no local Spark session: {err}")
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


def test_a_spark_data_frame_gives_the_pandas_estimates(spark, hsb):
    data = hsb.copy()
    data.loc[data.index[::97], "ses"] = np.nan  # listwise deletion inside Spark too
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PySpark's own warnings (e.g. about pandas 3)
        ref = mlmwrap.fit(RICH, data, cluster="school")
        res = mlmwrap.fit(RICH, spark.createDataFrame(data), cluster="school", progress=False)
    assert list(res.gamma.index) == list(ref.gamma.index)
    np.testing.assert_allclose(res.gamma["estimate"], ref.gamma["estimate"], rtol=1e-9)
    np.testing.assert_allclose(res.gamma["se"], ref.gamma["se"], rtol=1e-8)
    np.testing.assert_allclose(res.tau, ref.tau, rtol=1e-8)
    assert res.deviance == pytest.approx(ref.deviance, rel=1e-12)
    assert res.sample == ref.sample
    with pytest.raises(RowsUnavailableError, match="collect the data"):
        res.residuals()
