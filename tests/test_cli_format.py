"""``mlmwrap fit/demo --format text|markdown|json|latex``."""

import json
import re
import shutil
import subprocess

import numpy as np
import pytest

import mlmwrap
from mlmwrap.cli import DEMO_EQUATIONS, main
from mlmwrap.report.export import from_json

# lme4 names of the reduced-form terms (reference/hsb_lme4.json, model 'isao').
LME4_TERMS = {
    "g00": "(Intercept)",
    "g01": "meanses",
    "g02": "sector",
    "g10": "cwc_ses",
    "g11": "meanses:cwc_ses",
    "g12": "sector:cwc_ses",
}


@pytest.fixture(scope="module")
def files(tmp_path_factory, hsb):
    folder = tmp_path_factory.mktemp("cli")
    (folder / "model.txt").write_text(DEMO_EQUATIONS)
    hsb.to_csv(folder / "hsb.csv", index=False)
    return folder


def run_fit(files, *extra):
    return main(
        [
            "fit",
            str(files / "model.txt"),
            "--data",
            str(files / "hsb.csv"),
            "--cluster",
            "school",
            *extra,
        ]
    )


def test_demo_json_is_valid_and_matches_lme4(capsys, lme4_hsb):
    assert main(["demo", "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)  # nothing but JSON on stdout
    golden = lme4_hsb["isao"]
    for item in out["fixed"]:
        ref = golden["fixef"][LME4_TERMS[item["gamma"]]]
        # Tolerances of the core's lme4 tests (tests/test_fit_lme4.py).
        assert item["estimate"] == pytest.approx(ref, rel=1e-4)
        assert item["se"] == pytest.approx(golden["se"][LME4_TERMS[item["gamma"]]], rel=1e-3)
    np.testing.assert_allclose(out["tau"]["matrix"], golden["tau"], rtol=1e-3, atol=1e-4)
    assert out["sigma2"] == pytest.approx(golden["sigma2"], rel=1e-3)
    assert out["fit"]["deviance"] == pytest.approx(golden["deviance"], abs=1e-3)
    assert out["method"] == "REML" and out["convergence"]["converged"] is True


def test_fit_markdown_prints_equations_and_both_tables(files, capsys):
    assert run_fit(files, "--format", "markdown", "--ml") == 0
    out = capsys.readouterr().out
    res = mlmwrap.fit(DEMO_EQUATIONS, mlmwrap.datasets.load_hsb(), cluster="school", reml=False)
    assert out.startswith("# Multilevel model of mathach (ML)")
    assert f"b0 = {res.gamma.at['g00', 'estimate']:.3f} + " in out  # equations with estimates
    assert "## Fixed effects" in out and "## Variance components" in out
    rows = [line for line in out.splitlines() if line.startswith("| Intercept |")]
    assert len(rows) == 2  # gamma00 and gamma10
    for row, label in zip(rows, ["g00", "g10"], strict=True):
        assert abs(float(row.split("|")[3]) - res.gamma.at[label, "estimate"]) <= 0.005
    assert "ML estimates" in out and f"Deviance (-2 log-likelihood) = {res.deviance:.2f}" in out


def test_fit_latex_is_a_complete_balanced_document(files, capsys, tmp_path):
    assert run_fit(files, "--format", "latex") == 0
    out = capsys.readouterr().out
    assert out.startswith("\\documentclass{article}")
    assert out.rstrip().endswith("\\end{document}")
    assert out.count("\\begin{table}") == 2 and "\\begin{aligned}" in out
    depth = 0
    for tok in re.findall(r"\\.|[{}]", out):
        depth += {"{": 1, "}": -1}.get(tok, 0)
        assert depth >= 0
    assert depth == 0
    begins = re.findall(r"\\begin\{(\w+)\}", out)
    assert sorted(begins) == sorted(re.findall(r"\\end\{(\w+)\}", out))
    if (
        shutil.which("pdflatex")
        and subprocess.run(
            ["kpsewhich", "booktabs.sty"], capture_output=True, text=True
        ).stdout.strip()
    ):
        (tmp_path / "out.tex").write_text(out)
        done = subprocess.run(
            ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "out.tex"],
            cwd=tmp_path,
            capture_output=True,
            timeout=60,
        )
        assert done.returncode == 0


def test_text_stays_the_default(files, capsys):
    assert run_fit(files) == 0
    default = capsys.readouterr().out
    assert run_fit(files, "--format", "text") == 0
    assert capsys.readouterr().out == default
    assert "Fixed effects (gamma)" in default and "Deviance (REML criterion)" in default


def test_demo_text_still_prints_the_equations_first(capsys):
    assert main(["demo", "--format", "text"]) == 0
    assert capsys.readouterr().out.startswith("Equations:\n")


def test_unknown_format_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as info:
        main(["demo", "--format", "docx"])
    assert info.value.code == 2
    assert "invalid choice: 'docx'" in capsys.readouterr().err


def test_input_errors_still_exit_2_with_nothing_on_stdout(files, tmp_path, capsys):
    bad = tmp_path / "bad.txt"
    bad.write_text("mathach = b0 + b1*cwc(sess) + e\nb0 = g00 + u0\nb1 = g10\n")
    code = main(
        ["fit", str(bad), "--data", str(files / "hsb.csv"), "--cluster", "school"]
        + ["--format", "json"]
    )
    captured = capsys.readouterr()
    assert code == 2 and captured.out == ""
    assert "there is no column 'sess'" in captured.err and "Traceback" not in captured.err


def test_unconverged_fit_exits_1_and_says_so_in_every_format(monkeypatch, files, capsys):
    from mlmwrap.api import fitting

    real_fit = fitting.fit

    def unconverged(*args, **kwargs):
        res = real_fit(*args, **kwargs)
        res.converged = False
        return res

    monkeypatch.setattr(fitting, "fit", unconverged)
    assert run_fit(files, "--format", "json") == 1
    text = capsys.readouterr().out
    assert json.loads(text)["convergence"]["converged"] is False
    assert from_json(text).converged is False
    assert run_fit(files, "--format", "markdown") == 1
    assert "did not converge" in capsys.readouterr().out


def test_df_option_chooses_the_tests(capsys):
    assert main(["demo", "--df", "kenward-roger"]) == 0
    out = capsys.readouterr().out
    assert "Kenward-Roger adjusted" in out and "164.9" in out  # g00's KR df (pbkrtest 164.95)
    assert main(["demo", "--df", "z", "--format", "markdown"]) == 0
    assert "*z*" in capsys.readouterr().out
