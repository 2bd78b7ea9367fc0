"""Speed and correctness of mlmwrap against plain statsmodels and lme4 on the HSB models.

Usage::

    python benchmarks/bench_hsb.py [--repeat N] [--sm-repeat M]

What it measures
----------------
For each of the eight HSB models in ``tests/reference/hsb_lme4.json`` (null,
means_as_outcomes, random_coefficient, isao, isao_ml (ML), rancova_cgm, within_between,
contextual) it fits the model

* with ``mlmwrap.fit(equations, hsb, cluster="school", reml=...)``: the median wall-clock
  time of N calls (default 5; no warm-up call, so the first call's one-off costs count
  only as much as a median lets them). This covers parsing the equations, building the
  design, the optimization and the standard errors. The statsmodels results object that
  ``res.statsmodels`` returns is built lazily on first access and is *not* in this time;
  its one-off cost is the ``+sm obj`` column.
* with plain statsmodels defaults: ``smf.mixedlm(formula, data, groups="school",
  re_formula=...).fit(reml=...)`` and no other arguments, on the data prepared as
  ``hsb_lme4.R`` prepares it (``cm_ses``, ``cwc_ses``, ``cgm_ses``). It is slow, so its
  time is the median of M runs (default M = min(N, 2)).

and compares both with lme4: timed in the same run on this machine when ``Rscript`` with
lme4 is installed (``benchmarks/lme4_times.R``, median of N ``lmer`` calls after one
warm-up call), otherwise ``lme4_seconds`` from the JSON (R's median of 5 on the machine
that made the reference).

How to read the table
---------------------
``sm/mlm`` is how many times slower plain statsmodels is than mlmwrap on this machine;
``mlm/lme4`` is mlmwrap's time over lme4's (below 1: mlmwrap is faster; only a rough
guide when lme4's times come from the JSON).
``dev`` columns are deviance - lme4's deviance (REML criterion for REML fits, -2 logLik
for ML; 0 means the same optimum, positive means the fit stopped at a worse point than
lme4's). ``ok`` is ``yes`` when the fit reached lme4's optimum: deviance < lme4's + 1e-3.
``conv`` is what the fitter itself claims (``converged``). ``warn`` counts the warnings
the fit issued (they are suppressed while timing and listed below the table).

statsmodels' deviance is ``-2 * result.llf``. Its ``MixedLM.loglike`` carries the same
constants as lme4: ML ``-n/2 (1 + log(2 pi r2 / n))`` and REML ``-(n-p)/2 (1 + log(2 pi
r2 / (n-p))) - log det(X'V^-1 X)/2`` with V relative to sigma^2, as lme4's REML criterion
(Bates et al. 2015, section 3). Checked here on the null model (statsmodels converges to
lme4's answer there): ``-2 * llf`` equals lme4's deviance to 4e-6 under REML, and
statsmodels' and mlmwrap's ML deviances agree to 2e-6, so no offset is applied. The
script re-checks this on every run (``offset check`` line).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "tests" / "reference" / "hsb_lme4.json"

# The equations of tests/test_fit_lme4.py (HSB_MODELS and ISAO), copied so that the
# benchmark does not depend on the test suite.
ISAO = """
mathach = b0 + b1*cwc(ses) + e
b0 = g00 + g01*meanses + g02*sector + u0
b1 = g10 + g11*meanses + g12*sector + u1
"""

# name -> (mlmwrap equations, statsmodels fixed formula, statsmodels re_formula)
MODELS = {
    "null": ("mathach = b0 + e\nb0 = g00 + u0", "mathach ~ 1", "1"),
    "means_as_outcomes": (
        "mathach = b0 + e\nb0 = g00 + g01*meanses + u0",
        "mathach ~ meanses",
        "1",
    ),
    "random_coefficient": (
        "mathach = b0 + b1*cwc(ses) + e\nb0 = g00 + u0\nb1 = g10 + u1",
        "mathach ~ cwc_ses",
        "~cwc_ses",
    ),
    "isao": (
        ISAO,
        "mathach ~ meanses + sector + cwc_ses + cwc_ses:meanses + cwc_ses:sector",
        "~cwc_ses",
    ),
    "isao_ml": (
        ISAO,
        "mathach ~ meanses + sector + cwc_ses + cwc_ses:meanses + cwc_ses:sector",
        "~cwc_ses",
    ),
    "rancova_cgm": (
        "mathach = b0 + b1*cgm(ses) + e\nb0 = g00 + u0\nb1 = g10",
        "mathach ~ cgm_ses",
        "1",
    ),
    "within_between": (
        "mathach = b0 + b1*cwc(ses) + e\nb0 = g00 + g01*cmean(ses) + u0\nb1 = g10",
        "mathach ~ cwc_ses + cm_ses",
        "1",
    ),
    "contextual": (
        "mathach = b0 + b1*cgm(ses) + e\nb0 = g00 + g01*cmean(ses) + u0\nb1 = g10",
        "mathach ~ cgm_ses + cm_ses",
        "1",
    ),
}

TOL = 1e-3  # deviance within TOL of lme4's (or lower) counts as reaching lme4's optimum


def _import_mlmwrap():
    try:
        import mlmwrap
    except ImportError:  # run from a checkout without `pip install -e .`
        sys.path.insert(0, str(ROOT))
        import mlmwrap
    return mlmwrap


def prepare(hsb):
    """The columns hsb_lme4.R adds: school mean, group- and grand-mean-centred ses."""
    d = hsb.copy()
    d["cm_ses"] = d.groupby("school")["ses"].transform("mean")
    d["cwc_ses"] = d["ses"] - d["cm_ses"]
    d["cgm_ses"] = d["ses"] - d["ses"].mean()
    return d


def timed(fn, repeat):
    """Median wall-clock seconds of `repeat` calls, the last result and its warnings."""
    times, caught, result = [], [], None
    for _ in range(repeat):
        with warnings.catch_warnings(record=True) as rec:
            warnings.simplefilter("always")
            t0 = time.perf_counter()
            result = fn()
            times.append(time.perf_counter() - t0)
        caught = rec  # warnings of the last run (every run is the same fit)
    messages = sorted({f"{w.category.__name__}: {str(w.message).splitlines()[0]}" for w in caught})
    return statistics.median(times), result, messages


def lme4_here(repeat: int) -> dict[str, float] | None:
    """lme4's median seconds per model measured now, on this machine; None without R/lme4."""
    import shutil
    import subprocess

    if shutil.which("Rscript") is None:
        return None
    mlmwrap = _import_mlmwrap()
    csv = Path(mlmwrap.datasets.__file__).with_name("hsb.csv")
    script = Path(__file__).with_name("lme4_times.R")
    try:
        done = subprocess.run(
            ["Rscript", str(script), str(csv), str(repeat)],
            capture_output=True,
            text=True,
            timeout=600,
            check=True,
        )
    except (subprocess.SubprocessError, OSError):
        return None
    times = {}
    for line in done.stdout.splitlines():
        name, seconds, _deviance = line.split()
        times[name] = float(seconds)
    return times if set(times) == set(MODELS) else None


def fit_statsmodels(data, formula, re_formula, reml):
    import statsmodels.formula.api as smf

    model = smf.mixedlm(formula, data, groups="school", re_formula=re_formula)
    return model.fit(reml=reml)


def offset_check(data, ref):
    """statsmodels' -2 llf minus lme4's deviance, null model, REML, started at lme4's optimum.

    Started there, statsmodels stays there (the model is one-dimensional and well
    conditioned), so any difference is a difference in constants, not in optimum.
    """
    import numpy as np
    import statsmodels.formula.api as smf
    from statsmodels.regression.mixed_linear_model import MixedLMParams

    r = ref["null"]
    start = MixedLMParams.from_components(
        fe_params=np.array([r["fixef"]["(Intercept)"]]),
        cov_re=np.array([[r["tau"][0][0] / r["sigma2"]]]),
    )
    model = smf.mixedlm("mathach ~ 1", data, groups="school")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitted = model.fit(reml=True, start_params=start)
    return -2.0 * fitted.llf - r["deviance"]


def run(repeat: int = 5, sm_repeat: int | None = None) -> list[dict]:
    import numpy as np
    import pandas as pd
    import scipy
    import statsmodels

    mlmwrap = _import_mlmwrap()
    sm_repeat = min(repeat, 2) if sm_repeat is None else sm_repeat
    ref = json.loads(REFERENCE.read_text())
    hsb = mlmwrap.datasets.load_hsb()
    data = prepare(hsb)

    print(
        f"python {platform.python_version()}, numpy {np.__version__}, "
        f"scipy {scipy.__version__}, pandas {pd.__version__}, "
        f"statsmodels {statsmodels.__version__}, mlmwrap {mlmwrap.__version__}; "
        f"{platform.machine()} {platform.system()}"
    )
    lme4_times = lme4_here(repeat)
    lme4_source = (
        f"median of {repeat} lmer() calls run now on this machine (Rscript lme4_times.R)"
        if lme4_times
        else "median of 5 from hsb_lme4.json (another machine: R/lme4 not found here)"
    )
    print(
        f"mlmwrap: median of {repeat} fits; statsmodels defaults: median of {sm_repeat} "
        f"fit(s); lme4: {lme4_source}"
    )
    print(
        f"offset check: statsmodels -2 llf at lme4's null optimum - lme4 deviance = "
        f"{offset_check(data, ref):+.2e} (no correction applied)"
    )
    print()

    rows = []
    for name, (equations, formula, re_formula) in MODELS.items():
        r = ref[name]
        reml = r["reml"]
        t_m, res, w_m = timed(
            lambda eq=equations, reml=reml: mlmwrap.fit(eq, hsb, cluster="school", reml=reml),
            repeat,
        )
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res.statsmodels  # noqa: B018 - build the lazy statsmodels object once
        t_obj = time.perf_counter() - t0
        t_s, sm, w_s = timed(
            lambda f=formula, re=re_formula, reml=reml: fit_statsmodels(data, f, re, reml),
            sm_repeat,
        )
        dev_s = -2.0 * sm.llf
        rows.append(
            {
                "model": name + ("" if reml else " (ML)"),
                "lme4_s": lme4_times[name] if lme4_times else r["lme4_seconds"],
                "mlm_s": t_m,
                "mlm_obj_s": t_obj,
                "sm_s": t_s,
                "mlm_dev": res.deviance - r["deviance"],
                "mlm_conv": bool(res.converged),
                "mlm_warn": w_m,
                "sm_dev": dev_s - r["deviance"],
                "sm_conv": bool(sm.converged),
                "sm_warn": w_s,
            }
        )
    print_table(rows)
    return rows


def _ok(dev_diff: float) -> str:
    return "yes" if dev_diff < TOL else "NO"


def print_table(rows: list[dict]) -> None:
    head = (
        f"{'model':<24}{'lme4 s':>8}{'mlm s':>8}{'+sm obj':>8}{'sm s':>8}"
        f"{'sm/mlm':>8}{'mlm/lme4':>9} | {'mlm ok':>6}{'dev':>10}{'conv':>6}{'warn':>5}"
        f" | {'sm ok':>6}{'dev':>10}{'conv':>6}{'warn':>5}"
    )
    print(head)
    print("-" * len(head))
    for r in rows:
        print(
            f"{r['model']:<24}{r['lme4_s']:>8.3f}{r['mlm_s']:>8.3f}{r['mlm_obj_s']:>8.3f}"
            f"{r['sm_s']:>8.2f}{r['sm_s'] / r['mlm_s']:>8.1f}{r['mlm_s'] / r['lme4_s']:>9.2f}"
            f" | {_ok(r['mlm_dev']):>6}{_dev(r['mlm_dev']):>10}{_yn(r['mlm_conv']):>6}"
            f"{len(r['mlm_warn']):>5}"
            f" | {_ok(r['sm_dev']):>6}{_dev(r['sm_dev']):>10}{_yn(r['sm_conv']):>6}"
            f"{len(r['sm_warn']):>5}"
        )
    print()
    for label, key in (("mlmwrap", "mlm_warn"), ("statsmodels", "sm_warn")):
        for r in rows:
            for msg in r[key]:
                print(f"  {label} warning, {r['model']}: {msg[:110]}")

    n = len(rows)
    mlm_ok = sum(r["mlm_dev"] < TOL for r in rows)
    sm_ok = sum(r["sm_dev"] < TOL for r in rows)
    sm_wrong_claim = sum(r["sm_dev"] >= TOL and r["sm_conv"] for r in rows)
    tot_m = sum(r["mlm_s"] for r in rows)
    tot_s = sum(r["sm_s"] for r in rows)
    tot_l = sum(r["lme4_s"] for r in rows)
    print()
    print(
        f"Summary: mlmwrap reached lme4's optimum on {mlm_ok}/{n} models, statsmodels "
        f"defaults on {sm_ok}/{n} ({sm_wrong_claim} of its misses claimed convergence); "
        f"total time mlmwrap {tot_m:.2f} s, statsmodels {tot_s:.1f} s "
        f"({tot_s / tot_m:.0f}x), lme4 {tot_l:.2f} s."
    )


def _dev(diff: float) -> str:
    return f"{round(diff, 4) + 0.0:+.4f}"  # + 0.0: no "-0.0000"


def _yn(flag: bool) -> str:
    return "yes" if flag else "no"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="mlmwrap fits per model (median)")
    parser.add_argument(
        "--sm-repeat",
        type=int,
        default=None,
        help="statsmodels fits per model (median); default min(repeat, 2)",
    )
    args = parser.parse_args(argv)
    if args.repeat < 1 or (args.sm_repeat is not None and args.sm_repeat < 1):
        parser.error("repeats must be >= 1")
    run(args.repeat, args.sm_repeat)
    return 0


if __name__ == "__main__":
    sys.exit(main())
