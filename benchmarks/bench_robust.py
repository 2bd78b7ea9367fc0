"""Time and peak memory of ``res.robust()`` (CR2 SEs) at 2,000 and 50,000 clusters.

Usage::

    python benchmarks/bench_robust.py [--clusters 2000 50000] [--old]

Simulated two-level data (cluster sizes 5 to 40, a random intercept and slope, one
level-2 predictor); for each number of clusters it fits the model, then times one call of
``mlmwrap.analysis.robust.cr2_vcov`` and records its peak memory with ``tracemalloc``
(numpy's allocations are traced). ``--old`` also runs the loop-over-clusters version of
``cr2_vcov`` this package had before issue 11 (reproduced below), at up to 5,000 clusters
only: it forms a J x J matrix per gamma (20 GB each at 50,000 clusters).

Measured (2 shared cores): 2,000 clusters (45,757 rows): new 0.14 s / 9 MB peak, old
1.03 s / 93 MB (same numbers); 50,000 clusters (1.1 million rows): new 3.4 s / 180 MB.
"""

from __future__ import annotations

import argparse
import time
import tracemalloc
import warnings

import numpy as np
import pandas as pd

import mlmwrap
from mlmwrap.analysis.robust import _inv_sqrt_psd, cr2_vcov

EQ = "y = b0 + b1*x\nb0 = g00 + g01*w + u0\nb1 = g10 + u1"


def simulate(n_clusters: int, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    sizes = rng.integers(5, 41, size=n_clusters)
    g = np.repeat(np.arange(n_clusters), sizes)
    w = rng.normal(size=n_clusters)
    u = rng.normal(size=(n_clusters, 2)) * [1.0, 0.3]
    x = rng.normal(size=len(g))
    y = 1 + 0.5 * w[g] + u[g, 0] + (0.4 + u[g, 1]) * x + rng.normal(size=len(g))
    return pd.DataFrame({"cluster": g, "y": y, "x": x, "w": w[g]})


def old_cr2_vcov(res):
    """The loop-over-clusters version with a J x J matrix per gamma (before issue 11)."""
    d, ev = res.design, res.optimum.evaluation
    L, M = ev.L, np.linalg.inv(ev.A)
    p = M.shape[0]
    M_chol = np.linalg.cholesky(M)
    resid = d.y - d.X @ ev.beta
    order = np.argsort(d.codes, kind="stable")
    bounds = np.r_[0, np.cumsum(np.bincount(d.codes, minlength=res.n_clusters))]
    J = res.n_clusters
    comp, g2, h = np.empty((J, p)), np.empty((J, p)), np.empty((J, p, p))
    for j in range(J):
        rows = order[bounds[j] : bounds[j + 1]]
        X, Zl = d.X[rows], d.Z[rows] @ L
        V = Zl @ Zl.T + np.eye(len(rows))
        Dt = np.linalg.cholesky(V)
        G = Dt.T @ (V - X @ M @ X.T) @ Dt
        A = Dt @ _inv_sqrt_psd(G) @ Dt.T
        E = X.T @ np.linalg.inv(V) @ A
        comp[j] = E @ resid[rows]
        ME = M @ E
        g2[j] = np.sum((ME @ Dt) ** 2, axis=1)
        h[j] = ME @ X @ M_chol
    df = np.empty(p)
    for i in range(p):
        P = np.diag(g2[:, i]) - h[:, i, :] @ h[:, i, :].T
        df[i] = np.trace(P) ** 2 / np.sum(P**2)
    return M @ (comp.T @ comp) @ M, df


def measure(func, res) -> tuple[float, float, tuple]:
    tracemalloc.start()
    start = time.perf_counter()
    out = func(res)
    seconds = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return seconds, peak, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clusters", type=int, nargs="+", default=[2000, 50000])
    parser.add_argument("--old", action="store_true", help="also time the old version")
    args = parser.parse_args()
    print(f"{'clusters':>9} {'rows':>9} {'version':>8} {'seconds':>8} {'peak MB':>8}")
    for J in args.clusters:
        data = simulate(J)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = mlmwrap.fit(EQ, data, cluster="cluster")
        s, mb, (v_new, df_new) = measure(cr2_vcov, res)
        print(f"{J:>9} {len(data):>9} {'new':>8} {s:>8.2f} {mb:>8.1f}")
        if args.old and J <= 5000:
            s, mb, (v_old, df_old) = measure(old_cr2_vcov, res)
            same = np.allclose(v_old, v_new, rtol=1e-9) and np.allclose(df_old, df_new, rtol=1e-9)
            print(f"{J:>9} {len(data):>9} {'old':>8} {s:>8.2f} {mb:>8.1f}   same: {same}")


if __name__ == "__main__":
    main()
