"""The ``mlmwrap`` command."""

import shutil
import subprocess
import sys

import pytest

from mlmwrap.cli import DEMO_EQUATIONS, main


def test_demo_prints_the_workshop_model(capsys):
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    assert "b1 = g10 + g11*meanses + g12*sector + u1" in out
    assert "Deviance (REML criterion): 46503.664" in out
    assert "estimated by REML" in out


def test_fit_from_files_by_ml(tmp_path, hsb, capsys):
    model = tmp_path / "model.txt"
    model.write_text(DEMO_EQUATIONS)
    data = tmp_path / "hsb.csv"
    hsb.to_csv(data, index=False)
    code = main(["fit", str(model), "--data", str(data), "--cluster", "school", "--ml"])
    assert code == 0
    out = capsys.readouterr().out
    assert "estimated by ML" in out and "-2 log-likelihood): 46496.430" in out


def test_errors_are_short_messages_with_exit_code_2(tmp_path, hsb, capsys):
    model = tmp_path / "model.txt"
    model.write_text("mathach = b0 + b1*cwc(sess) + e\nb0 = g00 + u0\nb1 = g10\n")
    data = tmp_path / "hsb.csv"
    hsb.to_csv(data, index=False)
    assert main(["fit", str(model), "--data", str(data), "--cluster", "school"]) == 2
    err = capsys.readouterr().err
    assert "there is no column 'sess'" in err and "^^^^" in err
    assert "Traceback" not in err
    assert main(["fit", str(tmp_path / "none.txt"), "--data", str(data), "--cluster", "x"]) == 2


@pytest.mark.skipif(shutil.which("mlmwrap") is None, reason="console script not installed")
def test_console_script_is_installed():
    done = subprocess.run(["mlmwrap", "demo"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "46503.664" in done.stdout


def test_module_entry_point_reads_stdin(tmp_path, hsb):
    data = tmp_path / "hsb.csv"
    hsb.to_csv(data, index=False)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mlmwrap.cli",
            "fit",
            "-",
            "--data",
            str(data),
            "--cluster",
            "school",
        ],
        input="mathach = b0 + e\nb0 = g00 + u0\n",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "ICC: 0.180" in done.stdout
