"""The package's layout: one-way imports between the pipeline's stages, and the public API."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import mlmwrap

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_hold():
    """import-linter's contracts in pyproject.toml: layers, independent analyses, pure language."""
    lint_imports = Path(sys.executable).with_name("lint-imports")  # import-linter's command
    run = subprocess.run(
        [str(lint_imports), "--config", "pyproject.toml", "--no-cache"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "0 broken" in run.stdout
    assert run.stdout.count("KEPT") >= 3


def test_public_api_of_0_1_is_still_importable():
    names = [
        "fit", "compare", "build_up", "variance_explained", "parse_equations", "datasets",
        "MLMResults", "MLMError", "EquationSyntaxError", "SpecificationError", "DataError",
        "ConvergenceWarning", "BoundaryWarning", "PredictionWarning", "ReliabilityWarning",
        "decompose", "icc", "within_between", "plots", "export", "tables", "latex",
        "__version__",
    ]  # fmt: skip
    missing = [n for n in names if not hasattr(mlmwrap, n)]
    assert missing == []
    assert callable(mlmwrap.fit) and callable(mlmwrap.build_up) and callable(mlmwrap.compare)
    assert callable(mlmwrap.export.to_json) and callable(mlmwrap.tables.fixed_table)
