"""Three-level (nested) fits do not depend on the units of measurement.

Rescaling the outcome by ``c_y``, a level-1 random-slope predictor by ``c_x``, a level-2
predictor by ``c_w`` and a level-3 predictor by ``c_z`` (each 1e-6..1e6, the predictors of
either sign) changes each estimate only by the factor its units imply and nothing else:

- a fixed column that is a product of variables is multiplied by ``c_k``, the product of
  their factors: its gamma by ``c_y / c_k``, its SE by ``|c_y / c_k|``; Satterthwaite df
  and p do not move;
- tau of random effects ``a, b`` of one level by ``c_y^2 / (d_a d_b)`` (``d``: the factor of
  the random effect's column, ``c_x`` for a slope on x, 1 for an intercept), sigma2 by
  ``c_y^2``;
- the deviance by the constant the units imply. ML, ``-2 log L = log det V + n (1 +
  log(2 pi r2 / n))`` with ``V`` (in units of sigma2) unchanged and ``r2`` times ``c_y^2``:
  ``2 n log|c_y|``, and 0 for a predictor. REML adds ``log det X'V^-1X``, which gains
  ``2 sum_k log|c_k|`` from ``X -> X diag(c)``, and has ``n - p`` for ``n``:
  ``2 (n - p) log|c_y| + 2 sum_k log|c_k|``;
- the warnings, and the converged / singular / Hessian / zero-variance verdicts, are the
  same (a boundary fit stays flagged at every scale).

Tolerances: estimates to 1e-5 of their SE, SEs, tau and sigma2 1e-5 relative (tau entries
near 0: 1e-5 of the level's largest or of sigma2), df 1e-4 relative, deviance shift 1e-6
absolute per 1,000 rows. The engine optimizes on the data rescaled to RMS 1
(mlmwrap.model.nested), so in practice the two fits agree to ~1e-10.
"""

import re
import warnings
from functools import cache

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import mlmwrap
from mlmwrap.model.nested import NestedStats
from mlmwrap.model.nested_fit import verify_nested

CLUSTERS = ["c2", "c3"]
_NUMBER = r"(?<![\w.])[-+]?\d[\d.]*(?:e[-+]?\d+)?"


def _equations(slope_at_3: bool) -> str:
    """x: level-1 random slope; w: level-2 predictor; z: level-3 predictor (of the
    intercept and, with a level-3 random slope, of the slope)."""
    return "\n".join(
        [
            "y = p0 + p1*x + e",
            "p0 = b00 + b01*w + r0",
            "p1 = b10 + r1",
            "b00 = g000 + g001*z + u00",
            "b01 = g010",
            "b10 = g100 + g101*z + u10" if slope_at_3 else "b10 = g100",
        ]
    )


#: the variables of each gamma's fixed column, and of each random effect's column
FIXED = {
    "g000": (),
    "g001": ("z",),
    "g010": ("w",),
    "g100": ("x",),
    "g101": ("x", "z"),
}
RANDOM = {"r0": (), "r1": ("x",), "u00": (), "u10": ("x",)}


@cache
def _data(seed: int, boundary: bool = False) -> pd.DataFrame:
    """12 level-3 units of 4 level-2 units of 6 rows. ``boundary``: y centered within its
    level-3 unit (plus 1), so that the level-3 intercept variance is estimated as 0."""
    rng = np.random.default_rng(seed)
    n3, n2, n1 = 12, 4, 6
    c3 = np.repeat(np.arange(n3), n2 * n1)
    c2 = np.repeat(np.arange(n3 * n2), n1)
    n = len(c2)
    x = rng.normal(size=n)
    w = rng.normal(size=n3 * n2)[c2]
    z = rng.normal(size=n3)[c3]
    y = (
        1.0
        + 0.5 * x
        + 0.3 * w
        - 0.2 * z
        + rng.normal(size=n3 * n2)[c2]
        + 0.4 * rng.normal(size=n3 * n2)[c2] * x
        + 0.7 * rng.normal(size=n3)[c3]
        + 0.3 * rng.normal(size=n3)[c3] * x
        + rng.normal(size=n)
    )
    data = pd.DataFrame({"y": y, "x": x, "w": w, "z": z, "c2": c2, "c3": c3})
    if boundary:
        data["y"] = data["y"] - data.groupby("c3")["y"].transform("mean") + 1.0
    return data


def _fit(eq: str, data: pd.DataFrame, reml: bool):
    """The fit, its gamma table (Satterthwaite df) and its warnings (category, message
    with the numbers masked)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = mlmwrap.fit(eq, data, cluster=CLUSTERS, reml=reml)
        gamma = res.gamma
    said = sorted((w.category.__name__, re.sub(_NUMBER, "#", str(w.message))) for w in caught)
    return res, gamma, said


@cache
def _base(seed: int, slope_at_3: bool, reml: bool, boundary: bool = False):
    return _fit(_equations(slope_at_3), _data(seed, boundary), reml)


def _check_equivariant(base, scaled, factors: dict[str, float], reml: bool) -> None:
    (a, ga, said_a), (b, gb, said_b) = base, scaled
    cy = factors["y"]
    ck = np.array([np.prod([factors[v] for v in FIXED[g]]) for g in ga.index])
    implied = cy / ck
    se = ga["se"].to_numpy()
    np.testing.assert_array_less(
        np.abs(gb["estimate"].to_numpy() / implied - ga["estimate"].to_numpy()), 1e-5 * se
    )
    np.testing.assert_allclose(gb["se"].to_numpy() / np.abs(implied), se, rtol=1e-5)
    np.testing.assert_allclose(gb["df"], ga["df"], rtol=1e-4)
    np.testing.assert_allclose(gb["p"], ga["p"], rtol=1e-4, atol=1e-12)
    assert b.sigma2 / cy**2 == pytest.approx(a.sigma2, rel=1e-5)
    for cluster, tau_a in a.tau_by_level.items():
        tau_b = b.tau_by_level[cluster]
        d = np.array([np.prod([factors[v] for v in RANDOM[r]]) for r in tau_a.index])
        want = tau_a.to_numpy()
        got = tau_b.to_numpy() * np.outer(d, d) / cy**2
        # a variance at 0 is rounding noise: absolute tolerance on the scale of tau_a or
        # sigma2 (the base data's columns have RMS ~1)
        atol = 1e-5 * max(np.abs(want).max(), a.sigma2)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=atol)

    assert (b.converged, b.singular, b.optimum.hessian_pd) == (
        a.converged,
        a.singular,
        a.optimum.hessian_pd,
    )
    for za, zb in zip(a.optimum.zero_variances, b.optimum.zero_variances, strict=True):
        np.testing.assert_array_equal(za, zb)
    assert said_b == said_a

    n, p = a.nobs, len(ga)
    if reml:
        shift = 2 * (n - p) * np.log(abs(cy)) + 2 * np.log(np.abs(ck)).sum()
    else:
        shift = 2 * n * np.log(abs(cy))
    assert b.deviance - a.deviance == pytest.approx(shift, abs=1e-6 * n / 1000)


_EXPONENT = st.floats(-6.0, 6.0, allow_nan=False)
_SIGN = st.sampled_from([1.0, -1.0])


@settings(max_examples=16, deadline=None, derandomize=True)
@given(
    seed=st.sampled_from([0, 1]),
    slope_at_3=st.booleans(),
    reml=st.booleans(),
    exps=st.tuples(*[_EXPONENT] * 4),
    signs=st.tuples(*[_SIGN] * 3),
)
def test_three_level_results_are_equivariant_under_units(seed, slope_at_3, reml, exps, signs):
    factors = dict(
        zip(["y", "x", "w", "z"], [10.0**e for e in exps] * np.array([1.0, *signs]), strict=True)
    )
    data = _data(seed)
    scaled = data.assign(**{v: data[v] * c for v, c in factors.items()})
    base = _base(seed, slope_at_3, reml)
    _check_equivariant(base, _fit(_equations(slope_at_3), scaled, reml), factors, reml)


@pytest.mark.parametrize("column", ["y", "x", "w", "z"])
@pytest.mark.parametrize("power", [-6, 6])
@pytest.mark.parametrize("reml", [True, False])
def test_a_boundary_fit_stays_flagged_at_every_scale(column, power, reml):
    base = _base(0, False, reml, boundary=True)
    res, _, said = base
    assert res.singular and res.converged and res.optimum.hessian_pd is None
    assert [z.tolist() for z in res.optimum.zero_variances] == [[False, False], [True]]
    assert [cat for cat, _ in said] == ["BoundaryWarning"] and "u00" in said[0][1]
    factors = {"y": 1.0, "x": 1.0, "w": 1.0, "z": 1.0, column: 10.0**power}
    data = _data(0, boundary=True)
    scaled = _fit(_equations(False), data.assign(**{column: data[column] * 10.0**power}), reml)
    _check_equivariant(base, scaled, factors, reml)


@pytest.mark.parametrize("n_levels", [2, 3, 4])
def test_the_engine_maps_back_exactly_at_any_number_of_levels(n_levels):
    """verify_nested on the raw arrays: a slope column in 1e5 units and y in 1e-4 units give
    the unit fit's theta, tau, beta, Hessian and df-relevant pieces times the implied
    factors, at two, three and four levels."""
    rng = np.random.default_rng(n_levels)
    codes = [np.repeat(np.arange(48), 5)]  # level 2: 48 units of 5 rows ...
    for size in [4, 3][: n_levels - 2]:  # ... then units of 4, of 3
        codes.append(codes[-1] // size)
    n = len(codes[0])
    x = rng.normal(size=n)
    X = np.column_stack([np.ones(n), x])
    y = X @ [1.0, 0.5] + rng.normal(size=n)
    for c in codes:
        y = y + rng.normal(size=c.max() + 1)[c] + 0.3 * rng.normal(size=c.max() + 1)[c] * x
    Zs = [X] + [X[:, :1]] * (n_levels - 2)
    c_x, c_y = 1e5, 1e-4
    a = verify_nested(NestedStats.from_arrays(X, Zs, y, codes), reml=True)
    Xs = X * [1.0, c_x]
    b = verify_nested(
        NestedStats.from_arrays(Xs, [Xs] + [Xs[:, :1]] * (n_levels - 2), c_y * y, codes),
        reml=True,
    )
    assert (a.converged, a.singular, a.hessian_pd) == (b.converged, b.singular, b.hessian_pd)
    np.testing.assert_allclose(b.beta, a.beta * c_y / np.array([1.0, c_x]), rtol=1e-6)
    assert b.sigma2 == pytest.approx(a.sigma2 * c_y**2, rel=1e-6)
    for tau_a, tau_b in zip(a.taus, b.taus, strict=True):
        d = np.array([1.0, c_x])[: len(tau_a)]
        np.testing.assert_allclose(tau_b * np.outer(d, d) / c_y**2, tau_a, rtol=1e-6)
    # theta = theta_s / s_z of its row: slope rows scale by 1 / c_x, the Hessian by c_x^2
    ratio = b.theta_scale / a.theta_scale
    np.testing.assert_allclose(b.theta, a.theta * ratio, rtol=1e-6, atol=1e-12)
    H = a.hessian
    np.testing.assert_allclose(
        b.hessian * np.outer(ratio, ratio), H, rtol=1e-5, atol=1e-6 * np.abs(H).max()
    )
    shift = 2 * (n - 2) * np.log(c_y) + 2 * np.log(c_x)
    assert b.deviance - a.deviance == pytest.approx(shift, abs=1e-8 * n)
