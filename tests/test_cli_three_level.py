"""Three-level models from the command line: ``--cluster`` lists the level-2 unit, then the
level-3 unit. Numbers are checked against lme4's (reference/issue9_three_level.json)."""

import json
import subprocess
import sys

import pandas as pd
import pytest
from conftest import DATA, REFERENCE

GROWTH = (
    "math = p0 + p1*year + e\np0 = b00 + r0\np1 = b10 + r1\nb00 = g000 + u00\nb10 = g100 + u10\n"
)
GROWTH_PRED = (
    "math = p0 + p1*year + e\np0 = b00 + b01*black + r0\np1 = b10 + b11*black + r1\n"
    "b00 = g000 + g001*lowinc + u00\nb01 = g010\nb10 = g100 + g101*lowinc + u10\nb11 = g110\n"
)


def run(*args):
    return subprocess.run(
        [sys.executable, "-m", "mlmwrap.cli", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
    )


def run3(files, command, *equations, extra=()):
    """``mlmwrap COMMAND EQUATIONS --data eg.csv --cluster childid schoolid EXTRA``."""
    paths = [files / e for e in equations]
    return run(
        command, *paths, "--data", files / "eg.csv", "--cluster", "childid", "schoolid", *extra
    )


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli3")
    (root / "growth.txt").write_text(GROWTH)
    (root / "pred.txt").write_text(GROWTH_PRED)
    pd.read_csv(DATA / "egsingle.csv.gz").to_csv(root / "eg.csv", index=False)
    return root


@pytest.fixture(scope="module")
def golden():
    return json.loads((REFERENCE / "issue9_three_level.json").read_text())["models"]


def test_fit_json_matches_lme4(files, golden):
    done = run3(files, "fit", "growth.txt", extra=("--format", "json"))
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["clusters"] == ["childid", "schoolid"] and out["n_units"] == [1721, 60]
    assert out["deviance"] == pytest.approx(golden["eg_growth"]["deviance"], abs=1e-3)


@pytest.mark.parametrize("fmt", ["text", "markdown", "latex", "html"])
def test_fit_formats_show_every_level(files, fmt):
    done = run3(files, "fit", "growth.txt", extra=("--format", fmt))
    assert done.returncode == 0, done.stderr
    assert "u00" in done.stdout and "schoolid" in done.stdout and "g100" in done.stdout
    if fmt == "latex":
        assert r"\gamma_{100}" in done.stdout and done.stdout.rstrip().endswith(r"\end{document}")
    if fmt == "markdown":
        assert "| g000 |" in done.stdout and "< .001" in done.stdout


def test_build_up_refits_by_ml(files, golden):
    done = run3(files, "build-up", "growth.txt", "pred.txt", extra=("--names", "growth", "pred"))
    assert done.returncode == 0, done.stderr
    assert "ML (refit)" in done.stdout and "PRV tau_u00" in done.stdout
    want = f"{golden['eg_growth_pred_ml']['deviance']:.3f}"
    assert want in done.stdout


def test_mistakes_are_one_message(files):
    one = run("fit", files / "growth.txt", "--data", files / "eg.csv", "--cluster", "childid")
    assert one.returncode == 2 and "cluster must list the level-2 and the level-3" in one.stderr
    assert "Traceback" not in one.stderr
    robust = run3(files, "fit", "growth.txt", extra=("--robust",))
    assert robust.returncode == 2 and "not available for three-level" in robust.stderr
    kr = run3(files, "fit", "growth.txt", extra=("--df", "kenward-roger"))
    assert kr.returncode == 2 and "tip: use --df satterthwaite" in kr.stderr
