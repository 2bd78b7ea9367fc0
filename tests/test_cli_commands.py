"""The ``mlmwrap`` subcommands, run as a researcher runs them: through a subprocess."""

import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

import mlmwrap
from mlmwrap.cli import DEMO_EQUATIONS

NULL = "mathach = b0 + e\nb0 = g00 + u0\n"
RC = "mathach = b0 + b1*cwc(ses) + e\nb0 = g00 + u0\nb1 = g10 + u1\n"


def run(*args, input=None, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "mlmwrap.cli", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        input=input,
        cwd=cwd,
    )


@pytest.fixture(scope="module")
def files(tmp_path_factory, hsb):
    root = tmp_path_factory.mktemp("cli")
    (root / "null.txt").write_text(NULL)
    (root / "rc.txt").write_text(RC)
    (root / "isao.txt").write_text(DEMO_EQUATIONS)
    hsb.to_csv(root / "hsb.csv", index=False)
    # A Stata/SPSS-style export: ';' separated, '.' for a missing value
    stata = hsb.copy()
    stata["ses"] = stata["ses"].astype(object)
    stata.loc[[0, 5], "ses"] = "."
    stata.to_csv(root / "stata.csv", sep=";", index=False)
    return root


def test_version_and_help_are_fast_and_import_no_statistics():
    done = run("--version")
    assert done.returncode == 0 and done.stdout.strip() == f"mlmwrap {mlmwrap.__version__}"
    code = (
        "import sys, time; t = time.perf_counter(); from mlmwrap.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('numpy', 'pandas', 'scipy', 'statsmodels') if m in sys.modules]\n"
        "print(heavy, file=sys.stderr)"
    )
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    assert done.returncode == 0 and "usage: mlmwrap" in done.stdout
    for name in ("fit", "compare", "build-up", "icc", "decompose", "estimates", "residuals"):
        assert name in done.stdout
    assert done.stderr.strip() == "[]"  # --help imports none of them
    assert elapsed < 5  # a generous bound for a loaded machine; measured 0.1 s


def test_import_mlmwrap_does_not_import_statsmodels_or_scipy():
    code = (
        "import sys, mlmwrap\n"
        "print(sorted(m for m in ('statsmodels', 'scipy', 'pandas', 'numpy', 'matplotlib')"
        " if m in sys.modules))\n"
        "mlmwrap.fit\n"
        "print('scipy' in sys.modules, 'statsmodels' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout.splitlines() == ["[]", "True False"], done.stderr


def test_fit_robust_and_exact_p(files):
    done = run(
        "fit",
        files / "isao.txt",
        "--data",
        files / "hsb.csv",
        "--cluster",
        "school",
        "--robust",
        "--exact-p",
    )
    assert done.returncode == 0, done.stderr
    assert "robust SE" in done.stdout and "CR2" in done.stdout and "e-112" in done.stdout
    assert "0.175" in done.stdout  # g00's CR2 SE (clubSandwich 0.1750, test_robust)


def test_sep_and_na_values_read_a_stata_export(files):
    args = ("fit", files / "rc.txt", "--data", files / "stata.csv", "--cluster", "school")
    bad = run(*args)
    assert bad.returncode == 2 and "--sep ';'" in bad.stderr and "Traceback" not in bad.stderr
    done = run(*args, "--sep", ";", "--na-values", ".")
    assert done.returncode == 0, done.stderr
    assert "Dropped: 2 of 7185 rows with missing values (ses 2)" in done.stdout


def test_error_tips_name_flags_not_python_arguments(files):
    done = run(
        "fit",
        files / "rc.txt",
        "--data",
        files / "hsb.csv",
        "--cluster",
        "school",
        "--ml",
        "--df",
        "kenward-roger",
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "--df satterthwaite" in done.stderr and "df=" not in done.stderr
    assert "reml=" not in done.stderr


def test_compare_and_refit_ml(files):
    base = ("--data", files / "hsb.csv", "--cluster", "school")
    done = run("compare", files / "null.txt", files / "isao.txt", *base, "--names", "null", "isao")
    assert done.returncode == 0, done.stderr
    assert "logLik" in done.stdout and "chi2" in done.stdout and "ML (refit)" in done.stdout
    refused = run("compare", files / "null.txt", files / "isao.txt", *base, "--refit-ml", "no")
    assert refused.returncode == 2 and "cannot be compared" in refused.stderr
    assert "--refit-ml auto" in refused.stderr and "--refit-ml yes" in refused.stderr
    assert "refit_ml" not in refused.stderr and "reml=" not in refused.stderr
    csv = run("compare", files / "null.txt", files / "rc.txt", *base, "--format", "csv")
    table = pd.read_csv(pd.io.common.StringIO(csv.stdout), index_col=0)
    assert list(table.columns[:4]) == ["method", "refit", "deviance", "loglik"]


def test_build_up_prints_the_side_by_side_table(files):
    done = run(
        "build-up",
        files / "null.txt",
        files / "rc.txt",
        files / "isao.txt",
        "--data",
        files / "hsb.csv",
        "--cluster",
        "school",
        "--names",
        "A",
        "B",
        "C",
    )
    assert done.returncode == 0, done.stderr
    assert "Fixed effects" in done.stdout and "J (clusters)" in done.stdout
    assert "46503.66" in done.stdout and "Model comparison" in done.stdout
    tex = run(
        "build-up",
        files / "null.txt",
        files / "rc.txt",
        "--data",
        files / "hsb.csv",
        "--cluster",
        "school",
        "--format",
        "latex",
    )
    assert tex.stdout.startswith("\\begin{table}")


def test_icc_and_decompose(files, hsb, tmp_path):
    done = run(
        "icc",
        files / "hsb.csv",
        "--cluster",
        "school",
        "--vars",
        "mathach",
        "ses",
        "--format",
        "csv",
    )
    assert done.returncode == 0, done.stderr
    table = pd.read_csv(pd.io.common.StringIO(done.stdout), index_col=0)
    expected = mlmwrap.icc(hsb, ["mathach", "ses"], cluster="school")
    np.testing.assert_allclose(table["icc"], expected["icc"], rtol=1e-9)
    out = tmp_path / "parts.csv"
    done = run(
        "decompose", files / "hsb.csv", "--cluster", "school", "--vars", "ses", "--output", out
    )
    assert done.returncode == 0, done.stderr
    parts = pd.read_csv(out)
    assert list(parts.columns) == ["school", "ses_within", "ses_between"]
    np.testing.assert_allclose(parts["ses_within"] + parts["ses_between"], hsb["ses"], atol=1e-9)


def test_estimates_and_residuals_files(files, tmp_path):
    base = (files / "rc.txt", "--data", files / "hsb.csv", "--cluster", "school")
    eb = tmp_path / "eb.csv"
    assert run("estimates", *base, "--output", eb).returncode == 0
    schools = pd.read_csv(eb, index_col=0)
    assert len(schools) == 160 and {"u0", "u0_sd", "b1", "b1_ols"} <= set(schools.columns)
    # lme4's coef(rc)$school["1224", ] (reference/issue12_ecosystem.R)
    assert schools.loc[1224, "b0"] == pytest.approx(9.95695304635463, rel=1e-5)
    done = run("residuals", *base)
    rows = pd.read_csv(pd.io.common.StringIO(done.stdout), index_col=0)
    assert len(rows) == 7185 and {"fitted", "residual", "standardized"} <= set(rows.columns)
    np.testing.assert_allclose(rows["mathach"] - rows["fitted"], rows["residual"], atol=1e-9)


def test_plot_to_png_and_pdf(files, tmp_path):
    pytest.importorskip("matplotlib")
    base = (files / "rc.txt", "--data", files / "hsb.csv", "--cluster", "school")
    png, pdf = tmp_path / "eb.png", tmp_path / "res.pdf"
    assert run("plot", *base, "--output", png).returncode == 0
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert run("plot", *base, "--kind", "residuals", "--output", pdf).returncode == 0
    assert pdf.read_bytes()[:4] == b"%PDF"
    bad = run("plot", *base, "--output", tmp_path / "eb.gif")
    assert bad.returncode == 2 and ".png" in bad.stderr


def test_demo_still_works():
    done = run("demo")
    assert done.returncode == 0 and "46503.664" in done.stdout
    html = run("demo", "--format", "html", "--robust").stdout
    assert "mlmwrap-results" in html and "robust SE" in html and "$$" not in html
