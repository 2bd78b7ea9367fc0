"""Time mlmwrap's three-level fits against lme4.

The reference models of tests/reference/issue9_three_level.json (lme4's median time of 5
fits is stored there as ``lme4_seconds``; ``--rerun-lme4`` times lme4 again in this run with
Rscript), and a simulated model of 1,000,000 rows in 50,000 level-2 units in 1,000 level-3
units (random intercept and slope at level 2, random intercept at level 3).

    python benchmarks/bench_three_level.py [--large] [--rerun-lme4]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from test_three_level import MODELS  # noqa: E402

import mlmwrap  # noqa: E402


def _median_time(fn, runs: int = 5) -> float:
    fn()  # warm-up
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def reference() -> None:
    golden = json.loads((ROOT / "tests/reference/issue9_three_level.json").read_text())["models"]
    data = {n: pd.read_csv(ROOT / f"tests/data/{n}.csv.gz") for n in ("chem97", "egsingle")}
    print(f"{'model':<28}{'mlmwrap s':>10}{'lme4 s':>10}{'ratio':>8}")
    for key, (name, eqs, clusters, _) in MODELS.items():
        reml = golden[key]["reml"]

        def run(eqs=eqs, name=name, clusters=clusters, reml=reml):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return mlmwrap.fit(eqs, data[name], cluster=clusters, reml=reml).gamma

        ours = _median_time(run)
        theirs = golden[key]["lme4_seconds"]
        print(f"{key:<28}{ours:>10.3f}{theirs:>10.3f}{ours / theirs:>8.2f}")


def large(rerun_lme4: bool) -> None:
    rng = np.random.default_rng(2026)
    n3, n2, n = 1_000, 50_000, 1_000_000
    unit3 = rng.integers(0, n3, n2)
    unit2 = rng.integers(0, n2, n)
    x = rng.normal(size=n)
    y = (
        1
        + 0.5 * x
        + rng.normal(size=n2)[unit2]
        + 0.3 * rng.normal(size=n2)[unit2] * x
        + 0.7 * rng.normal(size=n3)[unit3[unit2]]
        + rng.normal(size=n)
    )
    df = pd.DataFrame({"y": y, "x": x, "c": unit2, "s": unit3[unit2]})
    eqs = "y = p0 + p1*x + e\np0 = b00 + r0\np1 = b10 + r1\nb00 = g000 + u00\nb10 = g100"
    t = time.perf_counter()
    res = mlmwrap.fit(eqs, df, cluster=["c", "s"])
    ours = time.perf_counter() - t
    print(
        f"1,000,000 rows / 50,000 / 1,000 units: mlmwrap {ours:.2f} s, deviance {res.deviance:.4f}"
    )
    if rerun_lme4:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "big.csv"
            df.to_csv(path, index=False)
            script = (
                f"suppressMessages(library(lme4)); d <- read.csv('{path}');"
                "t <- system.time(m <- lmer(y ~ x + (1 + x | s:c) + (1 | s), d))[['elapsed']];"
                "cat(t, deviance(m, REML = TRUE), '\\n')"
            )
            out = subprocess.run(["Rscript", "-e", script], capture_output=True, text=True)
            print("lme4:", out.stdout.strip(), out.stderr.strip()[-200:])


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--large", action="store_true")
    parser.add_argument("--rerun-lme4", action="store_true")
    args = parser.parse_args()
    reference()
    if args.large:
        large(args.rerun_lme4)
