"""Reliability of cluster means and the bias-corrected between/contextual effects.

The correction has no R reference: it is checked against the algebra it must reduce to in
a balanced random-intercept model (Grilli & Rampichini 2011: contextual / lambda), for
invariance to the parametrization, and against a seeded simulation with known effects
(benchmarks/sim_latent_means.py runs the same simulation with many more replications).
"""

import importlib.util
import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mlmwrap
from mlmwrap.analysis.latent import (
    cluster_mean_reliability,
    corrected_effects,
    reliability_section,
    reliability_warnings,
)

ROOT = Path(__file__).parents[1]
_spec = importlib.util.spec_from_file_location("sim", ROOT / "benchmarks" / "sim_latent_means.py")
sim = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(sim)

CWC = "y = b0 + b1*cwc(x) + e\nb0 = g00 + g01*cmean(x) + u0\nb1 = g10"
RAW = "y = b0 + b1*x + e\nb0 = g00 + g01*cmean(x) + u0\nb1 = g10"


def _fit(equations, data):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return mlmwrap.fit(equations, data, cluster="cluster")


@pytest.fixture(scope="module")
def small():
    """200 clusters of 5, ICC(x) = 0.1: reliability of the cluster means about 0.36."""
    return sim.simulate(np.random.default_rng(5))


def test_reliability_on_hsb_uses_the_icc_of_x(hsb):
    issue3 = json.loads((ROOT / "tests" / "reference" / "issue3_centering.json").read_text())
    res = mlmwrap.fit(
        "mathach = b0 + b1*cwc(ses) + e\nb0 = g00 + g01*cmean(ses) + u0\nb1 = g10", hsb, "school"
    )
    table = cluster_mean_reliability(res)
    row = table.loc["ses"]
    rho = issue3["icc_model"]["ses"]["icc"]  # performance::icc of ses (lme4)
    assert row["icc"] == pytest.approx(rho, rel=1e-5)
    sizes = hsb.groupby("school").size().to_numpy()
    assert row["reliability"] == pytest.approx(
        np.mean(sizes * rho / (1 + (sizes - 1) * rho)), rel=1e-5
    )
    assert row["predictor"] == "cmean(ses)" and row["gammas"] == "g01" and not row["low"]
    assert reliability_warnings(res) == []
    assert reliability_section(res)[2].split()[0] == "cmean(ses)"


def test_low_reliability_warns_and_the_summary_shows_the_correction(small):
    res = _fit(CWC, small)
    table = cluster_mean_reliability(res)
    assert table.loc["x", "low"] and 0.2 < table.loc["x", "reliability"] < 0.5
    messages = reliability_warnings(res)
    assert len(messages) == 1 and "biased toward its within effect" in messages[0]
    text = "\n".join(reliability_section(res))
    assert "LOW" in text and "uncorrected" in text


def test_no_cluster_means_no_section(hsb):
    res = mlmwrap.fit("mathach = b0 + b1*cwc(ses) + e\nb0 = g00 + u0\nb1 = g10", hsb, "school")
    assert cluster_mean_reliability(res).empty
    assert reliability_section(res) == [] and reliability_warnings(res) == []


def test_balanced_random_intercept_reduces_to_contextual_over_lambda(small):
    res = _fit(CWC, small)
    out = corrected_effects(res).loc["x"]
    n, codes = 5, small["cluster"].to_numpy()
    x = small["x"].to_numpy()
    means = np.bincount(codes, weights=x) / n
    s2_within = np.sum((x - means[codes]) ** 2) / (len(x) - len(means))
    lam = 1 - s2_within / (n * np.var(means))  # 1 - (sigma2_x / n) / var of cluster means
    assert out.loc["contextual", "effective_reliability"] == pytest.approx(lam, rel=1e-8)
    manifest = out.loc["contextual", "uncorrected"]
    assert out.loc["contextual", "estimate"] == pytest.approx(manifest / lam, rel=1e-8)
    assert out.loc["within", "estimate"] == pytest.approx(out.loc["within", "uncorrected"])
    assert out.loc["between", "estimate"] == pytest.approx(
        out.loc["within", "estimate"] + manifest / lam, rel=1e-8
    )


def test_same_correction_in_both_parametrizations(small):
    a = corrected_effects(_fit(CWC, small))
    b = corrected_effects(_fit(RAW, small))
    for col in ("estimate", "se", "uncorrected"):
        np.testing.assert_allclose(a[col], b[col], rtol=1e-5)


def test_unsupported_models_get_nan_and_a_note(small, hsb):
    res = _fit("y = b0 + b1*cwc(x) + e\nb0 = g00 + u0\nb1 = g10", small)
    out = corrected_effects(res)
    assert out["estimate"].isna().all() and "needs both" in out["note"].iloc[0]
    moderated = mlmwrap.fit(
        """mathach = b0 + b1*cwc(ses) + e
        b0 = g00 + g01*cmean(ses) + u0
        b1 = g10 + g11*cmean(ses)""",
        hsb,
        "school",
    )
    out = corrected_effects(moderated)
    assert out["estimate"].isna().all() and "not available" in out["note"].iloc[0]


def test_simulation_corrected_is_unbiased_uncorrected_is_not():
    """40 replications of 200 clusters of 5, ICC(x) = 0.1; true between effect 0.8."""
    draws = sim.replicate(40, seed=2024)
    truth = sim.BETWEEN
    for which in ("uncorrected", "corrected"):
        est = draws[f"between_{which}"]
        bias, mc_se = est.mean() - truth, est.std(ddof=1) / np.sqrt(len(est))
        if which == "uncorrected":
            assert bias < -0.3 and abs(bias) > 10 * mc_se  # pulled toward the within 0.2
        else:
            assert abs(bias) < 3 * mc_se
    # the sandwich SE is about the spread of the corrected estimates
    ratio = draws["between_corrected_se"].mean() / draws["between_corrected"].std(ddof=1)
    assert 0.6 < ratio < 1.5


def test_data_not_modified(small):
    before = small.copy()
    corrected_effects(_fit(CWC, small))
    pd.testing.assert_frame_equal(small, before)


def test_fit_warns_about_unreliable_cluster_means_and_summary_shows_it():
    """The whole path a user sees: fit() warns, the results and the summary say so."""
    rng = np.random.default_rng(2008)
    n_clusters, size = 120, 5
    cluster = np.repeat(np.arange(n_clusters), size)
    x = rng.normal(scale=np.sqrt(0.1), size=n_clusters)[cluster] + rng.normal(
        scale=np.sqrt(0.9), size=n_clusters * size
    )
    y = 0.2 * x + rng.normal(size=n_clusters)[cluster] + rng.normal(size=n_clusters * size)
    data = pd.DataFrame({"y": y, "x": x, "cluster": cluster})
    with pytest.warns(mlmwrap.ReliabilityWarning, match="reliability"):
        res = mlmwrap.fit(
            "y = b0 + b1*cwc(x) + e\nb0 = g00 + g01*cmean(x) + u0\nb1 = g10",
            data,
            cluster="cluster",
        )
    assert any("Lüdtke" in m for m in res.messages)
    text = res.summary()
    assert "Reliability of cluster means" in text and "LOW (< 0.70)" in text
    assert "Within, between and contextual effects" in text
    assert res.cluster_mean_reliability()["low"].all()
