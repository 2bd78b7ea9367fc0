"""The R reference models of issue4b_inference.R and helpers that line mlmwrap's tables up
with R's coefficient order (shared by test_inference.py and test_robust.py)."""

import json
from pathlib import Path

import numpy as np
import pandas as pd

REFERENCE = Path(__file__).parent / "reference"
GOLDEN = json.loads((REFERENCE / "hsb_inference.json").read_text())
EXTRA = json.loads((REFERENCE / "issue4b_inference.json").read_text())

ISAO = """
mathach = b0 + b1*cwc(ses) + e
b0 = g00 + g01*meanses + g02*sector + u0
b1 = g10 + g11*meanses + g12*sector + u1
"""
# The models of issue4b_inference.R, as equations: (equations, data, cluster, reml)
CASES = {
    "isao_ml": (ISAO, "hsb", "school", False),
    "ri": (
        "mathach = b0 + b1*cwc(ses)\nb0 = g00 + g01*meanses + u0\nb1 = g10",
        "hsb",
        "school",
        True,
    ),
    "three_random": (
        "mathach = b0 + b1*cwc(ses) + b2*female + b3*minority\nb0 = g00 + g01*sector + u0\n"
        "b1 = g10 + u1\nb2 = g20 + u2\nb3 = g30 + u3",
        "hsb",
        "school",
        True,
    ),
    "boundary_slope": (
        "y = b0 + b1*x\nb0 = g00 + g01*w + u0\nb1 = g10 + u1",
        "boundary",
        "cluster",
        True,
    ),
}


def _norm(term: str) -> frozenset:
    return frozenset(term.replace("cwc(ses)", "cwc_ses").split(":"))


def in_r_order(table: pd.DataFrame, r_terms: list[str]) -> pd.DataFrame:
    """Rows of an mlmwrap table in the order of R's coefficient names."""
    mine = [_norm(t) for t in table["term"]]
    return table.iloc[[mine.index(_norm(t)) for t in r_terms]]


def assert_p_close(p, ref):
    p, ref = np.asarray(p, float), np.asarray(ref, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        ok = (np.abs(p - ref) <= 1e-6) | (np.abs(p / ref - 1) <= 1e-3)
    assert ok.all(), (p, ref)
