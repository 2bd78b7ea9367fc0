"""Every notebook in notebooks/ runs top to bottom, and the quickstart shows the right numbers.

The kernel runs on the interpreter running pytest (``sys.executable``): the test writes a
``python3`` kernelspec pointing at it into a temporary folder and hands nbclient a kernel
manager that looks only there, so whatever ``python3`` kernelspecs are installed on the
machine (another venv's, a system Jupyter's) are never used. Needs nbformat, nbclient and
ipykernel (the ``test`` extra); skipped without them.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")
from jupyter_client.kernelspec import KernelSpecManager  # noqa: E402
from jupyter_client.manager import KernelManager  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


@pytest.fixture(scope="module")
def kernel_dir(tmp_path_factory) -> Path:
    """A folder holding a ``python3`` kernelspec for this very interpreter."""
    kernels = tmp_path_factory.mktemp("kernels")
    spec = kernels / "python3"
    spec.mkdir()
    (spec / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "Python 3 (pytest)",
                "language": "python",
            }
        )
    )
    return kernels


def execute(path: Path, kernel_dir: Path, monkeypatch) -> nbformat.NotebookNode:
    """Run a notebook in its own folder; raise CellExecutionError on the first failing cell."""
    nb = nbformat.read(path, as_version=4)
    # The kernel imports the mlmwrap of this checkout, as pytest does, installed or not.
    pythonpath = os.environ.get("PYTHONPATH")
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join([str(ROOT)] + ([pythonpath] if pythonpath else []))
    )
    ksm = KernelSpecManager(kernel_dirs=[str(kernel_dir)], ensure_native_kernel=False)
    km = KernelManager(kernel_name="python3", kernel_spec_manager=ksm)
    assert km.kernel_spec.argv[0] == sys.executable
    client = nbclient.NotebookClient(
        nb,
        km=km,
        timeout=120,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
    )
    client.execute()
    return nb


def text_outputs(nb) -> list[str]:
    """Each code cell's printed text and plain-text results, joined per cell."""
    out = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        parts = []
        for o in cell.get("outputs", []):
            if o.output_type == "stream":
                parts.append(o.text)
            elif o.output_type in ("execute_result", "display_data"):
                parts.append(o.data.get("text/plain", ""))
        out.append("".join(parts))
    return out


def test_there_are_notebooks():
    assert NOTEBOOKS, "notebooks/ holds no .ipynb"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs(path, kernel_dir, monkeypatch):
    try:
        nb = execute(path, kernel_dir, monkeypatch)
    except nbclient.exceptions.CellExecutionError as err:
        pytest.fail(f"{path.name}: a cell raised\n{err}", pytrace=False)
    errors = [
        o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"
    ]
    assert not errors
    check_stored_outputs(path, nb)
    if path.name == "quickstart.ipynb":
        check_quickstart(nb)
    if path.name == "workshop.ipynb":
        check_workshop_text(nb)


def check_stored_outputs(path: Path, executed) -> None:
    """The notebook is stored with its outputs (so it renders on a code host), and they are
    the outputs it gives now (rerun ``python notebooks/execute.py`` after a change)."""
    stored = nbformat.read(path, as_version=4)
    code = [c for c in stored.cells if c.cell_type == "code"]
    assert all(c.get("execution_count") for c in code), f"{path.name} is stored unexecuted"
    assert text_outputs(stored) == text_outputs(executed), (
        f"{path.name}: stored outputs are stale; run python notebooks/execute.py"
    )
    for cell in code:  # rich displays carry HTML, never raw LaTeX alone
        for o in cell.get("outputs", []):
            data = o.get("data", {})
            assert "text/latex" not in data or "text/html" in data


def check_workshop_text(nb) -> None:
    prose = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert "Most\nFor the slope" not in prose
    # "For the intercept, 40 of the 160 schools' intervals exclude 0": check the count
    import mlmwrap
    from mlmwrap.cli import DEMO_EQUATIONS

    res = mlmwrap.fit(DEMO_EQUATIONS, mlmwrap.datasets.load_hsb(), cluster="school")
    cc = res.cluster_coefficients()
    for k, expected in (("u0", 40), ("u1", 0)):
        lower, upper = cc[k] - 1.96 * cc[f"{k}_sd"], cc[k] + 1.96 * cc[f"{k}_sd"]
        assert int(((lower > 0) | (upper < 0)).sum()) == expected
    assert "40 of the 160 schools' intervals exclude 0" in prose


def check_quickstart(nb) -> None:
    texts = text_outputs(nb)
    joined = "\n".join(texts)
    # The null model's ICC and variance components (Raudenbush & Bryk 2002, Table 4.2).
    assert "ICC = 0.18" in joined
    assert "tau00  = 8.61" in joined and "sigma2 = 39.15" in joined
    # summary() of the slopes-as-outcomes model carries R&B's Table 4.5 gammas.
    summary = next(t for t in texts if "Fixed effects (gamma)" in t)
    for value in ("12.096", "5.333", "1.226", "2.939", "1.039", "-1.643"):
        assert value in summary, value
    # The HTML display of a result is there.
    html = [
        o.data["text/html"]
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.outputs
        if o.output_type == "execute_result" and "text/html" in o.get("data", {})
    ]
    assert any("mlmwrap-results" in h for h in html)
    # The deviance comparison: lme4's REML deviances of the three models.
    table = next(t for t in texts if "AIC (ML)" in t)
    for deviance in ("47116.79", "46714.23", "46503.66"):
        assert deviance in table, deviance
