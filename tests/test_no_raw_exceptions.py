"""Issue 11, class 4: no raw exception from a public function or method.

Generated models on HSB subsets (boundary and singular fits and three random effects
included) run every results method; each must return a result or raise an MLMError.
"""

import json
import subprocess
import sys
import warnings
from pathlib import Path

import matplotlib
import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import mlmwrap
from mlmwrap.cli import main
from mlmwrap.report import export

matplotlib.use("Agg")

SLOPES = ["cwc(ses)", "minority", "female", "ses"]
LEVEL2 = ["meanses", "sector", "cmean(ses)", "pracad", "C(himinty)"]


def _calls(res):
    """Every public results method, with its ordinary arguments."""
    first = res.data.iloc[:20]
    yield from [
        res.summary,
        lambda: str(res),
        res.to_frame,
        res.fixed_table,
        res.variance_table,
        lambda: res.report("markdown"),
        lambda: res.report("latex"),
        lambda: res.report("html"),
        lambda: res.equations("latex"),
        res._repr_html_,
        res.to_json,
        lambda: export.from_json(res.to_json()),
        lambda: res.confint(method="profile"),
        lambda: res.confint(method="wald"),
        res.robust,
        res.effects,
        res.corrected_effects,
        res.cluster_coefficients,
        res.reliabilities,
        res.variance_tests,
        res.predict,
        lambda: res.predict(first, detail=True),
        res.r2,
        res.cluster_mean_reliability,
        lambda: res.with_inference("kenward-roger"),
        lambda: res.with_inference("hlm"),
        lambda: res.compare(res.refit(reml=False)) if not res.reml else res.refit(reml=False),
        res.plot.caterpillar,
        res.plot.spaghetti,
        res.plot.residuals,
        res.plot.random_effects_qq,
        lambda: res.plot.within_between("ses"),
    ]


def _check(f):
    try:
        f()
    except mlmwrap.MLMError:
        pass
    finally:
        import matplotlib.pyplot as plt

        plt.close("all")


@settings(
    max_examples=8,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],  # no shrinking: a fit per step is slow
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    seed=st.integers(0, 2**16),
    n_schools=st.integers(8, 40),
    slopes=st.lists(st.sampled_from(SLOPES), min_size=1, max_size=3, unique=True),
    random=st.lists(st.booleans(), min_size=3, max_size=3),
    w=st.sampled_from(LEVEL2),
    reml=st.booleans(),
)
def test_every_method_returns_or_raises_an_mlm_error(hsb, seed, n_schools, slopes, random, w, reml):
    rng = np.random.default_rng(seed)
    data = hsb[hsb["school"].isin(rng.choice(hsb["school"].unique(), n_schools, replace=False))]
    lines = ["mathach = b0 + " + " + ".join(f"b{k + 1}*{s}" for k, s in enumerate(slopes))]
    lines.append(f"b0 = g00 + g01*{w} + u0")
    lines += [
        f"b{k + 1} = g{k + 1}0" + (f" + u{k + 1}" if random[k] else "") for k in range(len(slopes))
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            res = mlmwrap.fit("\n".join(lines), data, cluster="school", reml=reml)
        except mlmwrap.MLMError:
            return
        for f in _calls(res):
            _check(f)


@pytest.mark.filterwarnings("ignore")
def test_singular_fit_with_three_random_effects_has_intervals(hsb):
    eq = "mathach = b0 + b1*cwc(ses) + b2*minority\nb0 = g00 + u0\nb1 = g10 + u1\nb2 = g20 + u2"
    res = mlmwrap.fit(eq, hsb[hsb["school"].isin(hsb["school"].unique()[:20])], cluster="school")
    assert res.singular and len(res.tau) == 3
    for method in ("profile", "wald"):
        ci = res.confint(method=method)
        assert np.isfinite(ci.loc["sigma", ["lower", "upper"]]).all()
        assert np.isfinite(ci.loc["sd(u0)", ["lower", "upper"]]).all()
    prof = res.confint()
    # lme4's answer on the boundary: the bound itself (0 for an SD, +-1 for a correlation)
    assert (prof.filter(like="cor(", axis=0)["lower"] >= -1).all()
    assert (prof.filter(like="sd(", axis=0)["lower"] >= 0).all()


@pytest.mark.parametrize("value", [{}, None, 3, ["a"]])
def test_from_json_of_a_non_text(value):
    with pytest.raises(mlmwrap.MLMError, match="reads the text that to_json"):
        export.from_json(value)


def test_cli_on_an_empty_csv(tmp_path, capsys):
    model = tmp_path / "model.txt"
    model.write_text("mathach = b0\nb0 = g00 + u0\n")
    data = tmp_path / "empty.csv"
    data.write_text("")
    assert main(["fit", str(model), "--data", str(data), "--cluster", "school"]) == 2
    assert "is empty" in capsys.readouterr().err


def test_cli_piped_into_head_has_no_broken_pipe():
    cmd = f"{sys.executable} -m mlmwrap.cli demo | head -n 2"
    out = subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=120)
    assert "BrokenPipeError" not in out.stderr and "Traceback" not in out.stderr
    assert len(out.stdout.splitlines()) == 2


@pytest.mark.filterwarnings("ignore")
def test_profile_intervals_of_the_three_effect_fit_against_lme4(hsb):
    """lme4's confint(method = "profile") on the same fit (reference/issue11_confint_singular.R).

    The fit sits next to the boundary (cor(u1, u2) = -0.97): lme4 returns the bounds -1 and
    +1 for every correlation, 0 for the slopes' SD, Inf for one SD's upper limit (its profile
    never climbs back), and lme4's spline-interpolated profile is itself only accurate to a
    few per mille there. Tolerance: 2% relative where lme4's limit is finite; the bounds
    exactly.
    """
    ref = json.loads(
        (Path(__file__).parent / "reference" / "issue11_confint_singular.json").read_text()
    )
    data = hsb[hsb["school"].isin(ref["schools"])]
    eq = "mathach = b0 + b1*cwc(ses) + b2*minority\nb0 = g00 + u0\nb1 = g10 + u1\nb2 = g20 + u2"
    res = mlmwrap.fit(eq, data, cluster="school")
    assert res.deviance == pytest.approx(ref["deviance"], abs=1e-3)
    ours = res.confint()
    names = ["sd(u0)", "cor(u0,u1)", "cor(u0,u2)", "sd(u1)", "cor(u1,u2)", "sd(u2)", "sigma",
             "g00", "g10", "g20"]  # fmt: skip
    for name, lo, hi in zip(names, ref["confint"]["lower"], ref["confint"]["upper"], strict=True):
        for ours_value, theirs in ((ours.loc[name, "lower"], lo), (ours.loc[name, "upper"], hi)):
            if theirs == "Inf":
                assert ours_value > ours.loc[name, "estimate"]
            elif abs(theirs) in (0.0, 1.0):
                assert ours_value == pytest.approx(theirs, abs=1e-6)
            else:
                assert ours_value == pytest.approx(theirs, rel=2e-2)
