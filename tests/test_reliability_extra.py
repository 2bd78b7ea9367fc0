"""Issue 11 leftovers: results flags must be booleans; the CLI piped into a reader that is
gone exits quietly (before: "[Errno 32] Broken pipe" and exit status 2)."""

import subprocess
import sys

import pytest

import mlmwrap


@pytest.fixture(scope="module")
def res(hsb):
    return mlmwrap.fit("mathach = b0 + b1*ses\nb0 = g00 + u0\nb1 = g10", hsb, cluster="school")


def test_confint_and_predict_flags_must_be_booleans(res):
    with pytest.raises(mlmwrap.MLMError, match="gammas must be True or False"):
        res.confint(method="wald", gammas="yes")
    with pytest.raises(mlmwrap.MLMError, match="random must be True or False"):
        res.predict(random="no")
    with pytest.raises(mlmwrap.MLMError, match="detail must be True or False"):
        res.predict(detail=1)


def test_cli_piped_into_a_closed_reader():
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlmwrap.cli", "demo"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    proc.stdout.close()  # the reader is gone before anything is written
    _, err = proc.communicate()
    assert proc.returncode == 0 and err.decode() == ""
