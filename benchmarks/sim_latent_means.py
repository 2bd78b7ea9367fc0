"""Monte-Carlo check of the cluster-mean (Lüdtke et al. 2008) bias and its correction.

Data: J clusters of n members; x_ij = xi_j + d_ij with ICC(x) = var(xi) / var(x);
y_ij = WITHIN * (x_ij - xi_j) + BETWEEN * xi_j + u_j + e_ij. The model fitted is

    y = b0 + b1*cwc(x) + e
    b0 = g00 + g01*cmean(x) + u0
    b1 = g10

whose g01 estimates the between effect with the *observed* cluster means. The script
prints, for the uncorrected (manifest) and corrected (mlmwrap.latent.corrected_effects)
between and contextual effects: the number of replications, the mean bias and its
Monte-Carlo standard error, the median bias, the empirical SD, the mean reported SE and the
coverage of the 95% interval.

Run from the repo root:
    python benchmarks/sim_latent_means.py [reps] [seed] [--clusters J] [--size n] [--icc r]
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import mlmwrap  # noqa: E402
from mlmwrap.analysis.latent import corrected_effects  # noqa: E402

WITHIN = 0.2
BETWEEN = 0.8
EQUATIONS = """
y = b0 + b1*cwc(x) + e
b0 = g00 + g01*cmean(x) + u0
b1 = g10
"""


def simulate(
    rng: np.random.Generator,
    n_clusters: int = 200,
    size: int = 5,
    icc_x: float = 0.1,
    tau_y: float = 0.2,
    sigma2_y: float = 1.0,
) -> pd.DataFrame:
    """One data set with known within (0.2) and between (0.8) effects of x."""
    xi = rng.normal(0.0, np.sqrt(icc_x), n_clusters)
    codes = np.repeat(np.arange(n_clusters), size)
    x = xi[codes] + rng.normal(0.0, np.sqrt(1.0 - icc_x), len(codes))
    u = rng.normal(0.0, np.sqrt(tau_y), n_clusters)
    y = (
        WITHIN * (x - xi[codes])
        + BETWEEN * xi[codes]
        + u[codes]
        + rng.normal(0.0, np.sqrt(sigma2_y), len(codes))
    )
    return pd.DataFrame({"y": y, "x": x, "cluster": codes})


def replicate(reps: int, seed: int, **design) -> pd.DataFrame:
    """Uncorrected and corrected between/contextual estimates and SEs, one row per data set."""
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(reps):
        data = simulate(rng, **design)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # boundary fits are expected now and then
            res = mlmwrap.fit(EQUATIONS, data, cluster="cluster", df="z")
        corr = corrected_effects(res).loc["x"]
        unc = res.gamma
        rows.append(
            {
                "between_uncorrected": unc.loc["g01", "estimate"],
                "between_uncorrected_se": unc.loc["g01", "se"],
                "between_corrected": corr.loc["between", "estimate"],
                "between_corrected_se": corr.loc["between", "se"],
                "contextual_uncorrected": corr.loc["contextual", "uncorrected"],
                "contextual_corrected": corr.loc["contextual", "estimate"],
                "contextual_corrected_se": corr.loc["contextual", "se"],
                "reliability": corr.loc["between", "reliability"],
            }
        )
    return pd.DataFrame(rows)


def summarize(draws: pd.DataFrame) -> pd.DataFrame:
    """Mean bias, its Monte-Carlo SE, median bias, empirical SD, mean SE and 95% coverage."""
    truth = {"between": BETWEEN, "contextual": BETWEEN - WITHIN}
    out = {}
    for effect, true in truth.items():
        for which in ("uncorrected", "corrected"):
            est = draws[f"{effect}_{which}"]
            se_col = f"{effect}_{which}_se"
            se = draws[se_col] if se_col in draws else None
            row = {
                "reps": len(est),
                "truth": true,
                "mean_bias": est.mean() - true,
                "mc_se": est.std(ddof=1) / np.sqrt(len(est)),
                "median_bias": est.median() - true,
                "empirical_sd": est.std(ddof=1),
            }
            if se is not None:
                row["mean_se"] = se.mean()
                row["coverage_95"] = float(np.mean(np.abs(est - true) <= 1.959964 * se))
            out[f"{effect} {which}"] = row
    return pd.DataFrame(out).T


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reps", nargs="?", type=int, default=1000)
    parser.add_argument("seed", nargs="?", type=int, default=20080301)
    parser.add_argument("--clusters", type=int, default=200, help="J (default 200)")
    parser.add_argument("--size", type=int, default=5, help="n per cluster (default 5)")
    parser.add_argument("--icc", type=float, default=0.1, help="ICC of x (default 0.10)")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    draws = replicate(
        args.reps, args.seed, n_clusters=args.clusters, size=args.size, icc_x=args.icc
    )
    table = summarize(draws)
    print(
        f"J = {args.clusters} clusters of n = {args.size}, ICC(x) = {args.icc:.2f}, "
        f"within = {WITHIN}, between = {BETWEEN}; {args.reps} replications, seed {args.seed}"
    )
    print(f"mean reliability of the cluster means: {draws['reliability'].mean():.3f}")
    with pd.option_context("display.width", 120):
        print(table.round(4).to_string())
    print(f"{time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
