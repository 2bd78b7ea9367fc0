"""Time mlmwrap's three-level fits against lme4 and lmerTest, in the same run.

The reference models of tests/reference/issue9_three_level.json (Chem97, egsingle). Each
side runs in its own process and fits one model on request: R (benchmarks/three_level_lme4.R:
``lme4::lmer``, and ``lmerTest::lmer`` + ``summary(ddf = "Satterthwaite")``) and mlmwrap
(``fit(...).gamma`` with ``df="z"`` and with the default Satterthwaite df). For every model
the sides take turns, round after round, so that the load of a shared machine falls on all
of them alike; the table shows medians over the rounds, the ratios mlmwrap / R, and the
deviance difference mlmwrap - lme4 (each side's own fit in this run).

``--baseline PATH`` adds a second mlmwrap column from another checkout (for instance
``git worktree add /tmp/main-ref main``), timed in the same rounds: before and after.

``--large``: a simulated model of 1,000,000 rows in 50,000 level-2 units in 1,000 level-3
units (random intercept and slope at level 2, random intercept at level 3), one fit each
(mlmwrap, the baseline if given, then lme4 in the same run; ``--skip-lme4-large`` leaves
lme4 out: it takes minutes).

    python benchmarks/bench_three_level.py [--rounds 5] [--models eg_growth,...]
        [--baseline /tmp/main-ref] [--large] [--skip-lme4-large]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests/reference/issue9_three_level.json"
DATA = ROOT / "tests/data"


# -- one side per process ------------------------------------------------------------------
def worker(root: Path) -> None:
    """Serve fits of mlmwrap from ``root``: reads ``key method`` lines, prints
    ``seconds deviance`` (``nan nan`` when that checkout cannot fit it)."""
    sys.path.insert(0, str(root))
    sys.path.insert(0, str(ROOT / "tests"))
    import pandas as pd
    from test_three_level import MODELS  # this checkout's equations, for both sides

    import mlmwrap

    assert Path(mlmwrap.__file__).resolve().is_relative_to(root.resolve()), mlmwrap.__file__
    golden = json.loads(GOLDEN.read_text())["models"]
    data = {n: pd.read_csv(DATA / f"{n}.csv.gz") for n in ("chem97", "egsingle")}
    print("ready", flush=True)
    for line in sys.stdin:
        if line.strip() == "quit":
            break
        key, method = line.split()
        name, eqs, clusters, _ = MODELS[key]
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                t = time.perf_counter()
                extra = {} if method == "satterthwaite" else {"df": method}
                res = mlmwrap.fit(
                    eqs, data[name], cluster=clusters, reml=golden[key]["reml"], **extra
                )
                _ = res.gamma  # the table with its tests (Satterthwaite df or z)
                seconds = time.perf_counter() - t
            print(seconds, repr(res.deviance), flush=True)
        except Exception:  # an older checkout without df="z" for three levels
            print("nan nan", flush=True)


class _Server:
    def __init__(self, cmd: list[str], env: dict | None = None, ready: bool = True):
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env
        )
        if ready:
            assert self.proc.stdout.readline().strip() == "ready"

    def ask(self, line: str) -> list[str]:
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        return self.proc.stdout.readline().split()

    def close(self) -> None:
        self.proc.stdin.write("quit\n")
        self.proc.stdin.flush()
        self.proc.wait()


def _python_server(root: Path) -> _Server:
    env = dict(os.environ, PYTHONPATH=str(root))
    return _Server([sys.executable, __file__, "--worker", str(root)], env=env)


def reference(rounds: int, keys: list[str], baseline: Path | None) -> None:
    r = _Server(
        ["Rscript", str(ROOT / "benchmarks/three_level_lme4.R"), str(GOLDEN), str(DATA)],
        ready=False,
    )
    ours = _python_server(ROOT)
    before = _python_server(baseline) if baseline else None
    rows = []
    rng = np.random.default_rng(9)
    tasks = [("R", "")] + [
        (side, method)
        for side in ("ours", "before")[: 2 if before else 1]
        for method in ("z", "satterthwaite")
    ]
    for key in keys:
        times: dict[str, list[float]] = {}
        devs: dict[str, float] = {}
        for rnd in range(rounds + 1):  # round 0 warms every side up
            sample = {}
            for i in rng.permutation(len(tasks)):  # a new order every round
                side, method = tasks[i]
                if side == "R":
                    _, t_lme4, t_lmertest, dev_lme4 = r.ask(key)
                    sample["lme4"], sample["lmerTest"] = float(t_lme4), float(t_lmertest)
                    devs["lme4"] = float(dev_lme4)
                    continue
                t, dev = (ours if side == "ours" else before).ask(f"{key} {method}")
                sample[f"{side}_{method}"] = float(t)
                devs[f"{side}_{method}"] = float(dev)
            if rnd:
                for k, v in sample.items():
                    times.setdefault(k, []).append(v)
        med = {k: float(np.median(v)) for k, v in times.items()}
        rows.append((key, med, devs))
        _print_row(key, med, devs, baseline is not None)
    r.close()
    ours.close()
    if before is not None:
        before.close()
    worst_z = max(m["ours_z"] / m["lme4"] for _, m, _ in rows)
    worst_s = max(m["ours_satterthwaite"] / m["lmerTest"] for _, m, _ in rows)
    print(f"worst ratio: z / lme4 {worst_z:.2f}, Satterthwaite / lmerTest {worst_s:.2f}")


_HEADER_PRINTED = [False]


def _print_row(key: str, m: dict, devs: dict, with_before: bool) -> None:
    cols = [
        ("lme4 s", m["lme4"]),
        ("z s", m["ours_z"]),
        ("z/lme4", m["ours_z"] / m["lme4"]),
        ("lmerTest s", m["lmerTest"]),
        ("Satt s", m["ours_satterthwaite"]),
        ("Satt/lmerT", m["ours_satterthwaite"] / m["lmerTest"]),
    ]
    if with_before:
        cols += [
            ("before z", m["before_z"]),
            ("before Satt", m["before_satterthwaite"]),
            ("before/lmerT", m["before_satterthwaite"] / m["lmerTest"]),
        ]
    cols.append(("dev z-lme4", devs["ours_z"] - devs["lme4"]))
    cols.append(("dev S-lme4", devs["ours_satterthwaite"] - devs["lme4"]))
    if with_before:
        cols.append(("dev bef-lme4", devs["before_satterthwaite"] - devs["lme4"]))
    if not _HEADER_PRINTED[0]:
        print(f"{'model':<26}" + "".join(f"{name:>13}" for name, _ in cols))
        _HEADER_PRINTED[0] = True
    cells = []
    for name, v in cols:
        cells.append(f"{v:>13.1e}" if name.startswith("dev") else f"{v:>13.3f}")
    print(f"{key:<26}" + "".join(cells), flush=True)


# -- 1,000,000 rows ----------------------------------------------------------------------------
LARGE_EQS = "y = p0 + p1*x + e\np0 = b00 + r0\np1 = b10 + r1\nb00 = g000 + u00\nb10 = g100"


def _large_data():
    import pandas as pd

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
    return pd.DataFrame({"y": y, "x": x, "c": unit2, "s": unit3[unit2]})


def large_worker(root: Path) -> None:
    """The 1,000,000-row fit with mlmwrap from ``root``; prints JSON."""
    sys.path.insert(0, str(root))
    import mlmwrap

    df = _large_data()
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _ = mlmwrap.fit(LARGE_EQS, df.iloc[:20_000], cluster=["c", "s"]).gamma  # imports
        for method in ("z", "satterthwaite"):
            t = time.perf_counter()
            try:
                extra = {} if method == "satterthwaite" else {"df": method}
                res = mlmwrap.fit(LARGE_EQS, df, cluster=["c", "s"], **extra)
                _ = res.gamma
                out[method] = [time.perf_counter() - t, res.deviance]
            except Exception:  # an older checkout without df="z" for three levels
                out[method] = [float("nan"), float("nan")]
    print(json.dumps(out))


def large(skip_lme4: bool, baseline: Path | None) -> None:
    roots = {"mlmwrap": ROOT} | ({"before": baseline} if baseline else {})
    for label, root in roots.items():
        env = dict(os.environ, PYTHONPATH=str(root))
        cmd = [sys.executable, __file__, "--large-worker", str(root)]
        res = json.loads(subprocess.run(cmd, capture_output=True, text=True, env=env).stdout)
        print(
            f"1,000,000 rows / 50,000 / 1,000 units, {label}: z {res['z'][0]:.2f} s, "
            f"Satterthwaite {res['satterthwaite'][0]:.2f} s, "
            f"REML deviance {res['satterthwaite'][1]:.6f}",
            flush=True,
        )
        if label == "mlmwrap":
            ours = res
    if skip_lme4:
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big.csv"
        _large_data().to_csv(path, index=False)
        script = (
            f"suppressMessages(library(lme4)); d <- read.csv('{path}');"
            "t <- system.time(m <- lmer(y ~ x + (1 + x | s:c) + (1 | s), d))[['elapsed']];"
            "cat(t, sprintf('%.6f', REMLcrit(m)), '\\n')"
        )
        res_r = subprocess.run(["Rscript", "-e", script], capture_output=True, text=True)
    t_r, dev_r = (float(v) for v in res_r.stdout.split()[:2])
    print(
        f"lme4 {t_r:.2f} s, REML deviance {dev_r:.6f}: mlmwrap z / lme4 "
        f"{ours['z'][0] / t_r:.3f}, Satterthwaite / lme4 {ours['satterthwaite'][0] / t_r:.3f}, "
        f"deviance mlmwrap - lme4 {ours['satterthwaite'][1] - dev_r:+.1e}"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--models", default="", help="comma-separated keys (default: all)")
    parser.add_argument("--baseline", type=Path, default=None)
    parser.add_argument("--large", action="store_true")
    parser.add_argument("--skip-lme4-large", action="store_true")
    parser.add_argument("--no-reference", action="store_true")
    parser.add_argument("--worker", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--large-worker", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker is not None:
        worker(args.worker)
        sys.exit()
    if args.large_worker is not None:
        large_worker(args.large_worker)
        sys.exit()
    sys.path.insert(0, str(ROOT / "tests"))
    from test_three_level import MODELS

    keys = args.models.split(",") if args.models else list(MODELS)
    if not args.no_reference:
        reference(args.rounds, keys, args.baseline)
    if args.large:
        large(args.skip_lme4_large, args.baseline)
