"""Property tests of the whole pipeline on the HSB data.

Any model built from HSB's variables either fits (converged, tau positive semi-definite,
gammas equal to the GLS solution at the estimated tau) or raises one of mlmwrap's own
errors; nothing else escapes, and the data are never modified.
"""

import warnings

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mlmwrap

LEVEL1 = [
    "ses",
    "cwc(ses)",
    "cgm(ses)",
    "female",
    "minority",
    "cwc(female)",
    "cgm(ses)^2",
    "center(ses, 0.5)",
    "ses*female",
    "meanses",
    "sqrt(size)",
]
LEVEL2 = [
    "meanses",
    "sector",
    "cmean(ses)",
    "cgm(size)",
    "C(himinty)",
    "log(size)",
    "pracad",
    "ses",
    "cmean(female)",
    "disclim",
    "sector*meanses",
]


@st.composite
def models(draw):
    preds = draw(st.lists(st.sampled_from(LEVEL1), max_size=3, unique=True))
    lines = ["mathach = b0" + "".join(f" + b{k}*{x}" for k, x in enumerate(preds, 1)) + " + e"]
    random_labels = []
    for k in range(len(preds) + 1):
        ws = draw(st.lists(st.sampled_from(LEVEL2), max_size=2, unique=True))
        random = draw(st.booleans()) if k else True
        if random:
            random_labels.append(f"u{k}")
        if k and random and draw(st.booleans()):  # a random slope with mean 0
            lines.append(f"b{k} = " + draw(st.sampled_from(["", "0 + "])) + f"u{k}")
            continue
        rhs = f"g{k}0" + "".join(f" + g{k}{m}*{w}" for m, w in enumerate(ws, 1))
        lines.append(f"b{k} = {rhs}" + (f" + u{k}" if random else ""))
    # a block-diagonal tau: every covariance between two blocks fixed at 0
    blocks = [draw(st.integers(0, 1)) for _ in random_labels]
    zero = [
        (a, b)
        for i, a in enumerate(random_labels)
        for j, b in enumerate(random_labels[i + 1 :], i + 1)
        if blocks[i] != blocks[j]
    ]
    lines += [f"cov({a}, {b}) = 0" for a, b in zero]
    return "\n".join(lines), len(random_labels), zero


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(model=models(), reml=st.booleans())
def test_any_hsb_model_fits_or_raises_an_mlmwrap_error(model, reml, hsb):
    equations, n_random, zero = model
    data = hsb.copy()
    try:
        res = mlmwrap.fit(equations, data, cluster="school", reml=reml)
    except mlmwrap.MLMError as err:
        assert str(err)  # a message, never empty
        return
    finally:
        pd.testing.assert_frame_equal(data, hsb)
    assert res.tau.shape == (n_random, n_random)
    for a, b in zero:  # fixed at 0 exactly, and not counted as parameters
        assert res.tau.loc[a, b] == 0.0 and res.tau_fixed.loc[a, b]
    n_tau = n_random * (n_random + 1) // 2 - len(zero)
    assert res.n_params == len(res.gamma) + n_tau + 1
    assert np.linalg.eigvalsh(res.tau.to_numpy()).min() >= -1e-8
    assert res.sigma2 > 0 and np.isfinite(res.deviance)
    assert res.converged, res.messages
    # Every display works on any model a user can write.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert "Fixed effects (gamma)" in res.summary()
        assert "<table" in res._repr_html_()
        assert res.equations("latex").count("\\begin{") == res.equations("latex").count("\\end{")
        assert "Fixed effect" in res.fixed_table() and "Random effect" in res.variance_table()
        assert res.to_json().startswith("{")
        assert list(res.effects().columns)[:2] == ["estimate", "se"]
    # The gammas are the GLS estimates given tau and sigma2.
    design, opt = res._design, res._optimum
    V_blocks = {}
    XtVX = np.zeros((design.X.shape[1],) * 2)
    XtVy = np.zeros(design.X.shape[1])
    for j in range(design.n_clusters):
        rows = design.codes == j
        Zj, Xj = design.Z[rows], design.X[rows]
        V = Zj @ opt.tau @ Zj.T + opt.sigma2 * np.eye(rows.sum())
        V_blocks[j] = np.linalg.solve(V, np.column_stack([Xj, design.y[rows]]))
        XtVX += Xj.T @ V_blocks[j][:, :-1]
        XtVy += Xj.T @ V_blocks[j][:, -1]
    gls = np.linalg.solve(XtVX, XtVy)
    np.testing.assert_allclose(res.gamma["estimate"], gls, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(res.gamma["se"] ** 2, np.diag(np.linalg.inv(XtVX)), rtol=1e-6)
