"""Shared fixtures: the bundled HSB data and the lme4 reference numbers."""

import json
import os
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import settings

import mlmwrap

# CI runs the property tests on a fixed sequence of examples, so a submission cannot fail
# on an unlucky draw; local runs keep exploring new examples.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

REFERENCE = Path(__file__).parent / "reference"
DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def hsb() -> pd.DataFrame:
    return mlmwrap.datasets.load_hsb()


@pytest.fixture(scope="session")
def lme4_hsb() -> dict:
    """lme4 1.1-31 fits of eight HSB models (reference/hsb_lme4.R made it)."""
    return json.loads((REFERENCE / "hsb_lme4.json").read_text())


@pytest.fixture(scope="session")
def lme4_extra() -> dict:
    """More lme4 fits: ML versions, q = 3, listwise deletion, categorical, boundary
    (reference/lme4_extra.R made it)."""
    return json.loads((REFERENCE / "lme4_extra.json").read_text())


@pytest.fixture(scope="session")
def boundary_data() -> pd.DataFrame:
    """Simulated data whose intercept variance is estimated as 0 (data/make_boundary.py)."""
    return pd.read_csv(DATA / "boundary.csv")
