"""CR2 cluster-robust SEs with Satterthwaite df, against clubSandwich.

Golden numbers: reference/hsb_inference.json ``cr2_isao`` (hsb_inference.R:
``coef_test(m, vcov = "CR2", cluster = d$school, test = "Satterthwaite")``) and the
``cr2_*`` entries of reference/issue4b_inference.json (issue4b_inference.R). Tolerances:
SE 1e-3 relative, df 1e-2 relative, p 1e-3 relative or 1e-6 absolute.
"""

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mlmwrap
from mlmwrap.robust import cr2_vcov, robust_table

REFERENCE = Path(__file__).parent / "reference"
GOLDEN = json.loads((REFERENCE / "hsb_inference.json").read_text())
EXTRA = json.loads((REFERENCE / "issue4b_inference.json").read_text())

ISAO = """
mathach = b0 + b1*cwc(ses) + e
b0 = g00 + g01*meanses + g02*sector + u0
b1 = g10 + g11*meanses + g12*sector + u1
"""
# The models of issue4b_inference.R (as in test_inference.py): (equations, data, cluster, reml)
CASES = {
    "isao_ml": (ISAO, "hsb", "school", False),
    "ri": (
        "mathach = b0 + b1*cwc(ses)\nb0 = g00 + g01*meanses + u0\nb1 = g10",
        "hsb",
        "school",
        True,
    ),
    "three_random": (
        "mathach = b0 + b1*cwc(ses) + b2*female + b3*minority\nb0 = g00 + g01*sector + u0\n"
        "b1 = g10 + u1\nb2 = g20 + u2\nb3 = g30 + u3",
        "hsb",
        "school",
        True,
    ),
    "boundary_slope": (
        "y = b0 + b1*x\nb0 = g00 + g01*w + u0\nb1 = g10 + u1",
        "boundary",
        "cluster",
        True,
    ),
}


def _norm(term: str) -> frozenset:
    return frozenset(term.replace("cwc(ses)", "cwc_ses").split(":"))


def in_r_order(table: pd.DataFrame, r_terms: list[str]) -> pd.DataFrame:
    """Rows of an mlmwrap table in the order of R's coefficient names."""
    mine = [_norm(t) for t in table["term"]]
    return table.iloc[[mine.index(_norm(t)) for t in r_terms]]


def assert_p_close(p, ref):
    p, ref = np.asarray(p, float), np.asarray(ref, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        ok = (np.abs(p - ref) <= 1e-6) | (np.abs(p / ref - 1) <= 1e-3)
    assert ok.all(), (p, ref)


@pytest.fixture(scope="module")
def isao(hsb):
    return mlmwrap.fit(ISAO, hsb, cluster="school")


def test_cr2_matches_clubsandwich(isao):
    ref = GOLDEN["cr2_isao"]
    table = in_r_order(robust_table(isao), ref["term"])
    np.testing.assert_allclose(table["se"], ref["se"], rtol=1e-3)
    np.testing.assert_allclose(table["df"], ref["df"], rtol=1e-2)
    assert_p_close(table["p"], ref["p"])
    np.testing.assert_allclose(table["se"], ref["se"], rtol=1e-5)  # in fact


@pytest.mark.parametrize("name", list(CASES))
def test_cr2_other_models(hsb, boundary_data, name):
    eq, data, cluster, reml = CASES[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = mlmwrap.fit(eq, {"hsb": hsb, "boundary": boundary_data}[data], cluster, reml=reml)
    ref = EXTRA[name]
    table = in_r_order(robust_table(res), ref["term"])
    np.testing.assert_allclose(table["se"], ref["cr2_se"], rtol=1e-3)
    np.testing.assert_allclose(table["df"], ref["cr2_df"], rtol=1e-2)
    assert_p_close(table["p"], ref["cr2_p"])


def test_side_by_side_with_model_based(isao):
    table = robust_table(isao)
    assert (table.index == isao.gamma.index).all()
    np.testing.assert_allclose(table["se_model"], isao.gamma["se"], rtol=1e-12)
    np.testing.assert_allclose(table["se_ratio"], table["se"] / table["se_model"])
    np.testing.assert_allclose(table["t"], table["estimate"] / table["se"])
    assert (table["df"] < isao.n_clusters).all()  # robust df are driven by J, not N
    assert "CR2" in table.attrs["inference"]


def test_cr2_is_unbiased_when_the_model_is_right():
    # Simulated from the model itself: over replications the mean CR2 variance should be
    # close to the model-based variance (Bell & McCaffrey's bias reduction), not ~J/(J-p)
    # times smaller as the plain sandwich would be.
    rng = np.random.default_rng(4)
    J, n = 12, 6
    cluster = np.repeat(np.arange(J), n)
    w = rng.normal(size=J)[cluster]
    x = rng.normal(size=J * n)
    ratios = []
    for _ in range(40):
        y = 1 + 0.5 * w + 0.3 * x + rng.normal(size=J)[cluster] + rng.normal(size=J * n)
        data = pd.DataFrame({"y": y, "x": x, "w": w, "c": cluster})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = mlmwrap.fit("y = b0 + b1*x\nb0 = g00 + g01*w + u0\nb1 = g10", data, "c")
        vcov, _ = cr2_vcov(res)
        ratios.append(np.diag(vcov) / res.gamma["se"].to_numpy() ** 2)
    assert np.mean(ratios, axis=0) == pytest.approx([1, 1, 1], abs=0.25)


def test_bad_level_and_data_unchanged(hsb):
    data = hsb.copy()
    before = data.copy()
    res = mlmwrap.fit(ISAO, data, cluster="school")
    robust_table(res)
    pd.testing.assert_frame_equal(data, before)
    with pytest.raises(mlmwrap.errors.MLMError, match="level"):
        robust_table(res, level=1.5)
