"""Figures render with the Agg backend, with the expected points, lines and labels."""

import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import mlmwrap  # noqa: E402
from mlmwrap import plots  # noqa: E402
from mlmwrap.analysis.cluster import empirical_bayes  # noqa: E402

RC = "mathach = b0 + b1*cwc(ses) + e\nb0 = g00 + u0\nb1 = g10 + u1"
WB = "mathach = b0 + b1*cwc(ses) + e\nb0 = g00 + g01*cmean(ses) + u0\nb1 = g10"


@pytest.fixture(scope="module")
def rc(hsb):
    return mlmwrap.fit(RC, hsb, cluster="school")


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def _labeled(ax):
    assert ax.get_title() and ax.get_xlabel() and ax.get_ylabel()


def _lines_with(ax, n):
    return [line for line in ax.get_lines() if len(line.get_xdata()) == n]


def test_caterpillar_has_one_sorted_panel_per_effect(rc):
    fig = plots.caterpillar(rc)
    assert len(fig.axes) == 2
    u, _ = empirical_bayes(rc)
    for k, ax in enumerate(fig.axes):
        _labeled(ax)
        (points,) = _lines_with(ax, 160)
        np.testing.assert_allclose(points.get_ydata(), np.sort(u[:, k]))
        assert len(ax.collections[0].get_segments()) == 160  # the intervals
    assert fig.axes[0].get_ylabel() == "$u_{0j}$" and "intercept" in fig.axes[0].get_title()
    assert "cwc(ses)" in fig.axes[1].get_title()


def test_caterpillar_draws_on_the_callers_axes(rc):
    fig, ax = plt.subplots()
    assert plots.caterpillar(rc, effects=["u1"], ax=ax) is fig
    assert ax.get_ylabel() == "$u_{1j}$"
    with pytest.raises(mlmwrap.MLMError, match="2 panels but 1 Axes"):
        plots.caterpillar(rc, ax=ax)
    with pytest.raises(mlmwrap.MLMError, match="no random effect u7"):
        plots.caterpillar(rc, effects=["u7"])


def test_spaghetti_has_a_line_per_school_and_the_average(rc):
    fig = plots.spaghetti(rc, color_by="sector")
    (ax,) = fig.axes
    _labeled(ax)
    lines = _lines_with(ax, 2)
    assert len(lines) == 160 + 1
    assert ax.get_xlabel() == "cwc(ses)" and "beta_{1j}" in ax.get_title()
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert texts[0].startswith("average school: 12.64 + 2.19") and "sector = 1" in texts
    with pytest.raises(mlmwrap.MLMError, match="not a level-1 predictor"):
        plots.spaghetti(rc, "ses")
    with pytest.raises(mlmwrap.MLMError, match="varies within clusters"):
        plots.spaghetti(rc, color_by="ses")


def test_residual_diagnostics(rc):
    fig = plots.residuals(rc)
    scatter, qq = fig.axes
    for ax in fig.axes:
        _labeled(ax)
    assert len(_lines_with(scatter, rc.nobs)) == 1 and len(_lines_with(qq, rc.nobs)) == 1
    r = _lines_with(qq, rc.nobs)[0].get_ydata()
    assert np.all(np.diff(r) >= 0) and abs(np.std(r) - 1) < 0.05  # r / sigma, sorted
    fig = plots.random_effects_qq(rc)
    assert len(fig.axes) == 2 and all(len(_lines_with(ax, 160)) == 1 for ax in fig.axes)
    assert fig.axes[1].get_ylabel().startswith("$u_{1j}$")


def test_within_between_uses_the_models_gammas(hsb):
    res = mlmwrap.fit(WB, hsb, cluster="school")
    fig = plots.within_between(res, "ses")
    (ax,) = fig.axes
    _labeled(ax)
    assert len(_lines_with(ax, 160)) == 1  # school means
    assert len(_lines_with(ax, 2)) == 160 + 1  # within segments, between line
    texts = " ".join(t.get_text() for t in ax.get_legend().get_texts())
    g = res.gamma["estimate"]
    assert f"= {g['g01']:.2f}" in texts and f"= {g['g10']:.2f}" in texts
    assert f"{g['g01'] - g['g10']:.2f}" in ax.get_legend().get_title().get_text()


def test_within_between_contextual_and_named_between(hsb):
    res = mlmwrap.fit(
        "mathach = b0 + b1*ses + e\nb0 = g00 + g01*meanses + u0\nb1 = g10", hsb, "school"
    )
    fig = plots.within_between(res, "ses", between="meanses")
    texts = " ".join(t.get_text() for t in fig.axes[0].get_legend().get_texts())
    g = res.gamma["estimate"]
    assert f"= {g['g01'] + g['g10']:.2f}" in texts  # between = within + contextual
    with pytest.raises(mlmwrap.MLMError, match="between-cluster effect"):
        plots.within_between(res, "ses")
    with pytest.raises(mlmwrap.MLMError, match="not decomposed"):
        plots.within_between(res, "female")


def test_accessor_and_missing_matplotlib(rc, monkeypatch):
    assert len(plots.ResultPlots(rc).random_effects_qq().axes) == 2
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match="pip install matplotlib"):
        plots.caterpillar(rc)
