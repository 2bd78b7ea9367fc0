"""Time two checkouts of mlmwrap on the same fits, interleaved, in one run.

Usage::

    python benchmarks/bench_versions.py OLD_CHECKOUT NEW_CHECKOUT [--repeat N] [--rows R]

Each round runs every model once with each checkout, in a fresh subprocess whose
``PYTHONPATH`` points at that checkout, in alternating order; a run is the median of five
calls of ``mlmwrap.fit`` in one process for the HSB models (as ``bench_hsb.py`` times them:
no warm-up call) and one call for the large fit. The table shows the median over ``N``
rounds and the ratio new / old. Interleaving keeps a busy machine's noise out of the ratio
as far as possible; ``--cpu`` times CPU seconds instead, steadier still.

The models: the eight HSB reference models (as ``bench_hsb.py`` fits them, Satterthwaite
df) and a synthetic 1,000,000-row fit in 10,000 clusters (random intercept and slope, five
fixed effects; ``--rows`` changes its size), with ``df="z"`` and with Satterthwaite df.
Each subprocess reports the seconds ``mlmwrap.fit`` took (not the interpreter start).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

HSB_MODELS = {
    "null": ("mathach = b0 + e\nb0 = g00 + u0", True),
    "means_as_outcomes": ("mathach = b0 + e\nb0 = g00 + g01*meanses + u0", True),
    "random_coefficient": ("mathach = b0 + b1*cwc(ses) + e\nb0 = g00 + u0\nb1 = g10 + u1", True),
    "isao": (
        "mathach = b0 + b1*cwc(ses) + e\nb0 = g00 + g01*meanses + g02*sector + u0\n"
        "b1 = g10 + g11*meanses + g12*sector + u1",
        True,
    ),
    "isao_ml": (
        "mathach = b0 + b1*cwc(ses) + e\nb0 = g00 + g01*meanses + g02*sector + u0\n"
        "b1 = g10 + g11*meanses + g12*sector + u1",
        False,
    ),
    "rancova_cgm": ("mathach = b0 + b1*cgm(ses) + e\nb0 = g00 + u0\nb1 = g10", True),
    "within_between": (
        "mathach = b0 + b1*cwc(ses) + e\nb0 = g00 + g01*cmean(ses) + u0\nb1 = g10",
        True,
    ),
    "contextual": (
        "mathach = b0 + b1*cgm(ses) + e\nb0 = g00 + g01*cmean(ses) + u0\nb1 = g10",
        True,
    ),
}

CHILD = r"""
import json, sys, time, warnings
import numpy as np, pandas as pd
import mlmwrap
job = json.loads(sys.argv[1])
if job["kind"] == "hsb":
    data = mlmwrap.datasets.load_hsb()
    equations, reml, cluster, df = job["equations"], job["reml"], "school", "satterthwaite"
else:
    rng = np.random.default_rng(1)
    n, J = job["rows"], job["clusters"]
    g = rng.integers(0, J, n)
    x = rng.normal(size=(n, 4))
    u = rng.normal(size=(J, 2)) * [1.0, 0.3]
    y = 1 + x @ [0.5, -0.2, 0.1, 0.3] + u[g, 0] + u[g, 1] * x[:, 0] + rng.normal(size=n)
    data = pd.DataFrame({"y": y, "g": g, **{f"x{k}": x[:, k] for k in range(4)}})
    equations = ("y = b0 + b1*x0 + b2*x1 + b3*x2 + b4*x3 + e\nb0 = g00 + u0\n"
                 "b1 = g10 + u1\nb2 = g20\nb3 = g30\nb4 = g40")
    reml, cluster, df = True, "g", job["df"]
seconds = []
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    for _ in range(job["calls"]):  # as bench_hsb.py: no warm-up, the median of the calls
        start = time.process_time() if job["cpu"] else time.perf_counter()
        res = mlmwrap.fit(equations, data, cluster=cluster, reml=reml, df=df)
        seconds.append((time.process_time() if job["cpu"] else time.perf_counter()) - start)
print(json.dumps({"seconds": sorted(seconds)[len(seconds) // 2], "deviance": res.deviance}))
"""


def run(checkout: Path, job: dict) -> dict:
    env = dict(os.environ, PYTHONPATH=str(checkout))
    out = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(job)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        cwd="/",
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("old", type=Path)
    parser.add_argument("new", type=Path)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--clusters", type=int, default=10_000)
    parser.add_argument(
        "--cpu",
        action="store_true",
        help="time CPU seconds of the process (all threads) instead of wall-clock seconds: "
        "steadier on a machine shared with other work",
    )
    args = parser.parse_args()

    jobs = {
        name: {"kind": "hsb", "equations": eqs, "reml": reml, "calls": 5}
        for name, (eqs, reml) in HSB_MODELS.items()
    }
    size = f"{args.rows:,} x {args.clusters:,}"
    for df in ("z", "satterthwaite"):
        jobs[f"{size} q=2, df={df}"] = {
            "kind": "large",
            "rows": args.rows,
            "clusters": args.clusters,
            "df": df,
            "calls": 1,
        }
    times: dict[str, dict[str, list[float]]] = {n: {"old": [], "new": []} for n in jobs}
    deviance: dict[str, dict[str, float]] = {n: {} for n in jobs}
    for job in jobs.values():
        job["cpu"] = args.cpu
    for k in range(args.repeat):
        for name, job in jobs.items():
            order = ("old", "new") if k % 2 == 0 else ("new", "old")
            for which in order:
                out = run(args.old if which == "old" else args.new, job)
                times[name][which].append(out["seconds"])
                deviance[name][which] = out["deviance"]
    print("CPU seconds" if args.cpu else "wall-clock seconds")
    print(f"{'model':<32} {'old s':>8} {'new s':>8} {'new/old':>8} {'dev new-old':>12}")
    for name in jobs:
        old = statistics.median(times[name]["old"])
        new = statistics.median(times[name]["new"])
        ddev = deviance[name]["new"] - deviance[name]["old"]
        print(f"{name:<32} {old:8.3f} {new:8.3f} {new / old:8.2f} {ddev:12.2e}")
    hsb_old = sum(statistics.median(times[n]["old"]) for n in HSB_MODELS)
    hsb_new = sum(statistics.median(times[n]["new"]) for n in HSB_MODELS)
    print(f"{'HSB total':<32} {hsb_old:8.3f} {hsb_new:8.3f} {hsb_new / hsb_old:8.2f}")


if __name__ == "__main__":
    main()
