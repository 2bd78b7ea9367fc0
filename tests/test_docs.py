"""The documentation site builds in strict mode: a broken page, link or reference fails."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytest.importorskip("mkdocs")
pytest.importorskip("mkdocstrings")
pytest.importorskip("mkdocs_jupyter")
pytest.importorskip("material")


def test_site_builds_strictly(tmp_path):
    env = dict(os.environ, MLMWRAP_DOCS_CACHE=str(tmp_path / "cache"), NO_MKDOCS_2_WARNING="1")
    site = tmp_path / "site"
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", "mkdocs.yml", "-d", site],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    pages = {p.parent.name for p in site.rglob("index.html")}
    for page in ("equations", "centering", "model-building", "inference", "reporting", "api"):
        assert page in pages, page
    # The README's tested text is on the pages, the API reference has the docstrings ...
    building = (site / "model-building" / "index.html").read_text()
    assert "side_by_side" in building and "J (clusters)" in building
    api = (site / "api" / "index.html").read_text()
    assert "mlmwrap.api.results.MLMResults" in api and "Satterthwaite" in api
    # ... and the notebooks are pages with their stored outputs.
    quickstart = (site / "notebooks" / "quickstart" / "index.html").read_text()
    assert "Fixed effects (gamma)" in quickstart and "12.096" in quickstart
