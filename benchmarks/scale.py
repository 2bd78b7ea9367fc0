"""Scale ladder: mlmwrap against lme4 on synthetic two-level data, timed in the same run.

For each cell (clusters x rows per cluster, q random coefficients) this prints mlmwrap's fit
time with ``df="z"`` and with Satterthwaite df (medians over ``--repeat`` fits), the peak
memory the fit allocates (tracemalloc: numpy's arrays included) against the input
DataFrame's size, the deviance, and lme4's time and deviance on the same data with the
ratio. Several mlmwrap source trees can be compared in one run (``--src before=/path``),
each timed in its own subprocess.

Usage::

    python benchmarks/scale.py                         # the ladder, this tree
    python benchmarks/scale.py --src before=/work/wt10-before --src after=.
    python benchmarks/scale.py --cells big --lme4-max-rows 0
    python benchmarks/scale.py --parquet 1e7,3e7,1e8   # out-of-core: DuckDB, Polars
    python benchmarks/scale.py --cpu --lme4-cache /tmp/lme4.json --src before=... --src after=.

``--cpu`` times CPU seconds (mlmwrap's and R's user + system time) instead of wall-clock
seconds: steadier on a shared machine. ``--lme4-cache FILE`` keeps lme4's times and
deviances in a JSON file, so that a session times lme4 on each cell once (lme4 takes 10-60 s
per large cell).

Nothing here is asserted: the numbers go in the issue's closing note.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
LADDER = [
    (10_000, 100, 2),
    (10_000, 100, 3),
    (100_000, 10, 1),
    (100_000, 10, 2),
    (100_000, 10, 3),
    (1_000, 1_000, 2),
    (10_000, 20, 3),
]
BIG = [(125_000, 4, q) for q in (1, 2, 3)] + [(100_000, 100, q) for q in (1, 2, 3)]

WORKER = r"""
import json, statistics, sys, time, tracemalloc, warnings
# An editable install's import hook would win over PYTHONPATH: drop it, import from src.
sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in repr(f).lower()]
sys.path.insert(0, {src!r})
sys.path.insert(0, {bench!r})
from scale_data import make_data, equations
import mlmwrap
assert mlmwrap.__file__.startswith({src!r}), mlmwrap.__file__
warnings.simplefilter("ignore")
J, m, q, repeat = {J}, {m}, {q}, {repeat}
data = make_data(J, m, q)
out = {{"rows": len(data), "input_mb": data.memory_usage(deep=True).sum() / 2**20}}
clock = time.process_time if {cpu!r} else time.perf_counter
# One untimed fit first: the first fit of a process pays for lazy imports and for memory
# the allocator has not handed out yet, whichever df is timed first.
mlmwrap.fit(equations(q), data, cluster="g", df="z")
for df in ("z", "satterthwaite"):
    times = []
    for _ in range(repeat):
        t0 = clock()
        res = mlmwrap.fit(equations(q), data, cluster="g", df=df)
        times.append(clock() - t0)
    out[df] = statistics.median(times)
    out["evals"] = res.optimum.n_evaluations
out["deviance"] = res.deviance
tracemalloc.start()
mlmwrap.fit(equations(q), data, cluster="g", df="satterthwaite")
out["peak_mb"] = tracemalloc.get_traced_memory()[1] / 2**20
tracemalloc.stop()
print("RESULT" + json.dumps(out))
"""


def run_mlmwrap(src: str, J: int, m: int, q: int, repeat: int, cpu: bool = False) -> dict:
    env = dict(os.environ, PYTHONPATH=str(Path(src).resolve()))
    code = WORKER.format(
        bench=str(HERE), src=str(Path(src).resolve()), J=J, m=m, q=q, repeat=repeat, cpu=cpu
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False
    )
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT"):
            return json.loads(line[6:])
    raise RuntimeError(proc.stderr[-2000:])


def run_lme4(
    J: int, m: int, q: int, cpu: bool = False, cache: str | None = None
) -> tuple[float, float] | None:
    """lme4's seconds (elapsed, or user + system with ``cpu``) and deviance on one cell."""
    key = f"{J}x{m}x{q}"
    stored = json.loads(Path(cache).read_text()) if cache and Path(cache).exists() else {}
    if key in stored:  # elapsed, cpu, deviance
        elapsed, cpu_seconds, deviance = stored[key]
        return (cpu_seconds if cpu else elapsed), deviance
    sys.path.insert(0, str(HERE))
    from scale_data import lme4_formula, make_data

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "d.csv"
        make_data(J, m, q).to_csv(path, index=False)
        proc = subprocess.run(
            ["Rscript", str(HERE / "scale_lme4.R"), str(path), lme4_formula(q)],
            capture_output=True,
            text=True,
            check=False,
        )
    try:
        elapsed, cpu_seconds, deviance = proc.stdout.split()
    except ValueError:
        return None
    if cache:
        stored = json.loads(Path(cache).read_text()) if Path(cache).exists() else {}
        stored[key] = [float(elapsed), float(cpu_seconds), float(deviance)]
        Path(cache).write_text(json.dumps(stored, indent=1))
    return float(cpu_seconds if cpu else elapsed), float(deviance)


def ladder(args) -> None:
    cells = {
        "ladder": LADDER,
        "big": BIG,
        "all": LADDER + BIG,
        "ladder500k": LADDER + BIG[:3],  # the ladder and 500,000 rows x 125,000 clusters
        "500k": BIG[:3],
    }[args.cells]
    srcs = [
        s.split("=", 1) if "=" in s else (s, s) for s in (args.src or ["this=" + str(HERE.parent)])
    ]
    head = "| clusters x rows | q | lme4 s | " + " | ".join(
        f"{name} z s | {name} Satt s | {name} ratio z / Satt | {name} peak MB (input) | "
        f"{name} dev - lme4"
        for name, _ in srcs
    )
    print(head + " |")
    print("|" + "---|" * (3 + 5 * len(srcs)), flush=True)
    for J, m, q in cells:
        lme4 = run_lme4(J, m, q, args.cpu, args.lme4_cache) if J * m <= args.lme4_max_rows else None
        row = [f"{J:,} x {m:,}", str(q), f"{lme4[0]:.2f}" if lme4 else "-"]
        for _name, src in srcs:
            r = run_mlmwrap(src, J, m, q, args.repeat, args.cpu)
            ratio = f"{r['z'] / lme4[0]:.3f} / {r['satterthwaite'] / lme4[0]:.3f}" if lme4 else "-"
            ddev = f"{r['deviance'] - lme4[1]:.1e}" if lme4 else f"({r['deviance']:.3f})"
            row += [
                f"{r['z']:.2f}",
                f"{r['satterthwaite']:.2f}",
                ratio,
                f"{r['peak_mb']:.0f} ({r['input_mb']:.0f})",
                ddev,
            ]
        print("| " + " | ".join(row) + " |", flush=True)


PARQUET_WORKER = r"""
import json, os, resource, sys, threading, time, warnings
sys.path.insert(0, {bench!r})
from scale_data import equations
import mlmwrap
warnings.simplefilter("ignore")
path, engine = {path!r}, {engine!r}
t0 = time.perf_counter()
if engine == "pandas":  # the in-memory fit of the same rows, for the estimates
    import pandas as pd
    data = pd.read_parquet(path)
    t0 = time.perf_counter()
    res = mlmwrap.fit(equations(2), data, cluster="g", progress=False)
else:
    res = mlmwrap.fit(equations(2), path, cluster="g", engine=engine, progress=False)
seconds = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print("RESULT" + json.dumps({{
    "rows": res.nobs, "clusters": res.n_clusters, "seconds": seconds, "peak_mb": peak,
    "deviance": res.deviance, "gamma": res.gamma["estimate"].tolist(),
    "se": res.gamma["se"].tolist(),
}}))
"""


def write_parquet(path: Path, rows: int) -> None:
    """``rows`` rows (rounded up to whole chunks of about 1M) of the same 100,000 clusters,
    written chunk by chunk, so that the writer never holds the file."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    sys.path.insert(0, str(HERE))
    from scale_data import make_data

    writer = None
    done, k = 0, 0
    while done < rows:
        d = make_data(100_000, 10, 2, seed=7, chunk=k)
        table = pa.Table.from_pandas(d, preserve_index=False)
        writer = writer or pq.ParquetWriter(path, table.schema)
        writer.write_table(table)
        done += len(d)
        k += 1
    writer.close()


def parquet_run(args) -> None:
    """Write large Parquet files, fit each through DuckDB and Polars (each engine in its
    own process, so that peak RSS is that fit's), and in memory where it fits
    (``--inmemory-max-rows``), to compare the estimates. Peak memory should not grow with
    the rows for the engines."""
    sizes = [int(float(x)) for x in args.parquet.split(",")]
    print("| rows | engine | seconds | peak RSS MB | deviance | max rel. diff gamma vs pandas |")
    print("|---|---|---|---|---|---|", flush=True)
    for rows in sizes:
        path = Path(args.parquet_dir) / f"scale_{rows}.parquet"
        made = not path.exists()
        if made:
            write_parquet(path, rows)
        engines = ["duckdb", "polars"] + (["pandas"] if rows <= args.inmemory_max_rows else [])
        out = {}
        for engine in engines:
            code = PARQUET_WORKER.format(bench=str(HERE), path=str(path), engine=engine)
            env = dict(os.environ, PYTHONPATH=str(HERE.parent))
            proc = subprocess.run(
                [sys.executable, "-c", code], env=env, capture_output=True, text=True
            )
            lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT")]
            if not lines:
                print(f"| {rows:,} | {engine} | failed: {proc.stderr[-300:]!r} |", flush=True)
                continue
            out[engine] = json.loads(lines[0][6:])
        ref = out.get("pandas")
        for engine, r in out.items():
            diff = "-"
            if ref is not None and engine != "pandas":
                g, g0 = np.array(r["gamma"]), np.array(ref["gamma"])
                diff = f"{np.max(np.abs(g - g0) / np.abs(g0)):.1e}"
            print(
                f"| {r['rows']:,} | {engine} | {r['seconds']:.1f} | {r['peak_mb']:.0f} | "
                f"{r['deviance']:.6f} | {diff} |",
                flush=True,
            )
        if made and not args.keep:
            path.unlink()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--cells", choices=["ladder", "big", "all", "ladder500k", "500k"], default="ladder"
    )
    parser.add_argument("--src", action="append", help="name=path of an mlmwrap source tree")
    parser.add_argument("--repeat", type=int, default=3, help="fits per cell (median)")
    parser.add_argument(
        "--lme4-max-rows", type=int, default=2_000_000, help="skip lme4 above this many rows"
    )
    parser.add_argument("--cpu", action="store_true", help="CPU seconds instead of wall-clock")
    parser.add_argument("--lme4-cache", help="JSON file that keeps lme4's times across runs")
    parser.add_argument(
        "--parquet", default="", help="rows of Parquet runs, comma-separated (1e7,3e7,1e8)"
    )
    parser.add_argument("--parquet-dir", default=tempfile.gettempdir())
    parser.add_argument(
        "--inmemory-max-rows",
        type=float,
        default=3e7,
        help="also fit in memory (pandas) up to this many rows, to compare the estimates",
    )
    parser.add_argument("--keep", action="store_true", help="keep the Parquet files written")
    args = parser.parse_args()
    start = time.perf_counter()
    if args.parquet:
        parquet_run(args)
    else:
        ladder(args)
    print(f"\n(total {time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
