"""CR2 cluster-robust SEs with Satterthwaite df, against clubSandwich.

Golden numbers: reference/hsb_inference.json ``cr2_isao`` (hsb_inference.R:
``coef_test(m, vcov = "CR2", cluster = d$school, test = "Satterthwaite")``) and the
``cr2_*`` entries of reference/issue4b_inference.json (issue4b_inference.R). Tolerances:
SE 1e-3 relative, df 1e-2 relative, p 1e-3 relative or 1e-6 absolute.
"""

import warnings

import numpy as np
import pandas as pd
import pytest
from r_models import CASES, EXTRA, GOLDEN, ISAO, assert_p_close, in_r_order

import mlmwrap
from mlmwrap.analysis.robust import cr2_vcov, robust_table


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
