"""Reports of fits from lazy frames: what needs the rows says so instead of failing."""

import pytest

import mlmwrap

pl = pytest.importorskip("polars")

EQS = "mathach = b0 + b1*cwc(ses) + e\nb0 = g00 + g01*cmean(ses) + u0\nb1 = g10"


def test_summary_of_a_lazy_fit_with_a_cluster_mean_says_the_reliability_needs_rows(hsb):
    lazy = mlmwrap.fit(EQS, pl.from_pandas(hsb).lazy(), cluster="school")
    eager = mlmwrap.fit(EQS, hsb, cluster="school")
    text = lazy.summary()
    assert "Reliability of cluster means: not computed" in text
    assert "Reliability of cluster means (lambda" in eager.summary()
    assert "not computed" in lazy._repr_html_()
    # the rest of the summary is the same fit
    assert lazy.deviance == pytest.approx(eager.deviance, abs=1e-6)
