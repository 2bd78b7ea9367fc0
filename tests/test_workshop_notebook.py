"""notebooks/workshop.ipynb shows the right numbers: R's and the book's.

tests/test_notebooks.py already checks that the notebook runs; this test runs it once more
(with that file's kernel set-up) and checks what its tagged cells print against lme4's golden
numbers (tests/reference/*.json), Raudenbush & Bryk's (2002) published values, and the facts the
workshop notes state (grand-mean centering moves only the intercept; y's within and between
parts add up). The notebook is stored without outputs.

The build-up models' ML deviances are lme4 1.1-31's: reference/workshop_buildup.json, made by
reference/workshop_buildup.R.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

pytest.importorskip("nbformat")
pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")
import nbformat  # noqa: E402
from test_notebooks import execute, kernel_dir  # noqa: E402, F401  (kernel_dir is a fixture)

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "workshop.ipynb"
REFERENCE = Path(__file__).resolve().parent / "reference"

LME4_BUILD_UP_ML_DEVIANCES = tuple(
    f"{d:.3f}" for d in json.loads((REFERENCE / "workshop_buildup.json").read_text())["deviance_ml"]
)
# Raudenbush & Bryk (2002): Table 4.2 (null model) and Table 4.5 (gammas of the ISAO model)
TABLE_4_2 = {"gamma00": 12.64, "tau00": 8.61, "sigma2": 39.15, "ICC": 0.18}
TABLE_4_5 = (12.10, 5.33, 1.23, 2.94, 1.04, -1.64)


@pytest.fixture(scope="module")
def executed(kernel_dir):  # noqa: F811  (the imported fixture)
    with pytest.MonkeyPatch.context() as mp:
        return execute(NOTEBOOK, kernel_dir, mp)


def tagged(nb, tag: str) -> str:
    """The printed text and plain-text results of the one code cell tagged ``tag``."""
    cells = [c for c in nb.cells if tag in c.get("metadata", {}).get("tags", [])]
    assert len(cells) == 1, f"{len(cells)} cells tagged {tag!r}"
    parts = []
    for o in cells[0].outputs:
        if o.output_type == "stream":
            parts.append(o.text)
        elif o.output_type in ("execute_result", "display_data"):
            parts.append(o.data.get("text/plain", ""))
    return "".join(parts)


def table_rows(text: str, n_values: int) -> dict[str, list[float]]:
    """Rows of a printed DataFrame whose last ``n_values`` fields are numbers, by row label."""
    rows = {}
    for line in text.splitlines():
        fields = line.split()
        if len(fields) <= n_values:
            continue
        try:
            values = [float(x) for x in fields[-n_values:]]
        except ValueError:
            continue
        rows[" ".join(fields[:-n_values])] = values
    return rows


def test_stored_with_outputs():
    # Stored executed, so that it renders on a code host (issue 12); test_notebooks.py
    # checks the stored outputs are the current ones.
    nb = nbformat.read(NOTEBOOK, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(c.execution_count for c in code)
    assert sum(bool(c.outputs) for c in code) > len(code) // 2


def test_null_model_and_icc(executed, lme4_hsb):
    text = tagged(executed, "icc")
    null = lme4_hsb["null"]
    icc = json.loads((REFERENCE / "hsb_inference.json").read_text())["icc_null"]["icc"]
    assert f"tau00  = {null['tau'][0][0]:.2f}" in text
    assert f"sigma2 = {null['sigma2']:.2f}" in text
    assert f"ICC = tau00 / (tau00 + sigma2) = {icc:.2f}" in text
    # the published values next to ours, equal to two decimals
    rows = table_rows(tagged(executed, "table42"), 2)
    assert {k: v[0] for k, v in rows.items()} == TABLE_4_2
    assert all(book == ours for book, ours in rows.values())


def test_build_up_deviances_are_lme4s(executed):
    text = tagged(executed, "buildup")
    table = text.split("Variance explained")[0].splitlines()
    for name, deviance in zip(
        ("M1 ", "M2 ", "M3 ", "M4 "), LME4_BUILD_UP_ML_DEVIANCES, strict=True
    ):
        row = next(line for line in table if line.startswith(name))
        assert "ML" in row and deviance in row.split(), (name, row)


def test_grand_mean_centering_moves_only_the_intercept(executed):
    rows = table_rows(tagged(executed, "grand"), 5)  # g00 g10 tau00 sigma2 deviance
    assert set(rows) == {"ses", "cgm(ses)", "center(ses, -1)"}
    assert len({tuple(v[1:]) for v in rows.values()}) == 1
    assert rows["center(ses, -1)"][0] < rows["cgm(ses)"][0] - 2


@pytest.mark.parametrize("tag", ["effects", "effects-cgm"])
def test_within_between_contextual_effects_are_lme4s(executed, tag):
    golden = json.loads((REFERENCE / "hsb_inference.json").read_text())["effects_ses"]
    lines = tagged(executed, tag).splitlines()
    for effect in ("within", "between", "contextual"):
        fields = next(line for line in lines if effect in line.split()).split()
        i = fields.index(effect)
        assert fields[i + 1 : i + 3] == [
            f"{golden[effect]:.3f}",
            f"{golden[effect + '_se']:.3f}",
        ], (tag, effect)


def test_y_decomposition_adds_up(executed):
    text = tagged(executed, "decompose")
    assert "max within-school SD of between  = 0.0e+00" in text
    total = re.search(r"= ([\d.]+) \+ ([\d.]+) = ([\d.]+);  var\(y\) = ([\d.]+)", text)
    within, between, added, var_y = map(float, total.groups())
    assert added == var_y and abs(within + between - var_y) <= 0.0015
    assert float(re.search(r"within \+ between\)\|\s+= (\S+)", text).group(1)) < 1e-9


def test_isao_gammas_match_table_4_5_and_lme4(executed, lme4_hsb):
    rows = table_rows(tagged(executed, "table45"), 3)  # book, mlmwrap, difference
    assert list(rows) == ["g00", "g01", "g02", "g10", "g11", "g12"]
    assert [v[0] for v in rows.values()] == list(TABLE_4_5)
    # lme4's order: (Intercept), meanses, sector, cwc_ses, meanses:cwc_ses, sector:cwc_ses
    assert [v[1] for v in rows.values()] == [
        round(x, 2) for x in lme4_hsb["isao"]["fixef"].values()
    ]
    assert all(v[2] == 0 for v in rows.values())


def test_reporting_views(executed):
    outputs = [o for c in executed.cells if c.cell_type == "code" for o in c.outputs]
    markdown = [o.data["text/markdown"] for o in outputs if "text/markdown" in o.get("data", {})]
    assert any("| γ00 |" in m for m in markdown) and any("| τ00 |" in m for m in markdown)
    figures = [
        c
        for c in executed.cells
        if c.cell_type == "code" and any("image/png" in o.get("data", {}) for o in c.outputs)
    ]
    assert len(figures) == 2  # the within/between plot and the caterpillar plot
    printed = "\n".join(o.get("text", "") for o in outputs)
    assert "b0 = 12.096 + 5.333*meanses + 1.226*sector + u0" in printed
