"""Tables for papers (mlmwrap.export): tidy frame, Markdown/LaTeX/HTML tables, JSON."""

import copy
import html
import json
import math
import re
import shutil
import subprocess
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import mlmwrap
from mlmwrap.errors import MLMError
from mlmwrap.report.export import SCHEMA, TableData, from_json, table_data, to_frame, to_json
from mlmwrap.report.latex import latex_escape
from mlmwrap.report.tables import document, fixed_table, format_p, variance_table

ISAO = """\
mathach = b0 + b1*cwc(ses) + e
b0 = g00 + g01*meanses + g02*sector + u0
b1 = g10 + g11*meanses + g12*sector + u1
"""
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
def isao(hsb):
    return mlmwrap.fit(ISAO, hsb, cluster="school", df="z")  # res.gamma holds z-tests


@pytest.fixture(scope="module")
def with_df(isao):
    """The same fit with the columns a df method adds (t, df, p from t) and its name."""
    res = copy.copy(isao)
    g = isao.gamma.copy()
    g["df"] = [157.2, 157.0, 157.0, 154.9, 151.3, 150.0]
    g["t"] = g["estimate"] / g["se"]
    g["p"] = 2 * stats.t.sf(np.abs(g["t"]), g["df"])
    g.attrs = {"df_method": "Satterthwaite"}  # no description: the table derives one
    res.gamma = g
    return res


# -- parsing helpers --------------------------------------------------------------------------
def md_rows(table: str) -> list[list[str]]:
    """The body rows of a Markdown table, split on unescaped '|', unescaped."""
    lines = [line for line in table.splitlines() if line.startswith("|")]
    rows = []
    for line in lines[2:]:
        cells = re.split(r"(?<!\\)\|", line)[1:-1]
        rows.append([re.sub(r"\\(.)", r"\1", c.strip()) for c in cells])
    return rows


def md_header(table: str) -> list[str]:
    return [c.strip() for c in table.splitlines()[0].split("|")[1:-1]]


def close(text: str, value: float, digits: int) -> bool:
    return abs(float(text) - value) <= 0.5 * 10**-digits + 1e-12


def assert_balanced(tex: str) -> None:
    depth = 0
    for tok in re.findall(r"\\.|[{}]", tex):
        depth += {"{": 1, "}": -1}.get(tok, 0)
        assert depth >= 0
    assert depth == 0
    stack = []
    for kind, name in re.findall(r"\\(begin|end)\{([^}]*)\}", tex):
        if kind == "begin":
            stack.append(name)
        else:
            assert stack.pop() == name
    assert not stack
    assert tex.count("$") % 2 == tex.count(r"\$") % 2


# -- Markdown ---------------------------------------------------------------------------------
def test_fixed_markdown_round_trips_to_the_gammas(isao, lme4_hsb):
    table = fixed_table(isao)
    assert md_header(table) == [
        "Fixed effect",
        "Coefficient",
        "Estimate",
        "*SE*",
        "95% CI",
        "*z*",
        "*p*",
    ]
    rows = [r for r in md_rows(table) if r[1]]  # skip the beta headings
    g = isao.gamma
    assert [r[1] for r in rows] == ["γ" + lab[1:] for lab in g.index]
    golden = lme4_hsb["isao"]
    for (label, row), cells in zip(g.iterrows(), rows, strict=True):
        assert close(cells[2], row["estimate"], 2) and close(cells[3], row["se"], 2)
        assert close(cells[2], golden["fixef"][LME4_TERMS[label]], 2)  # lme4's value
        lo, hi = cells[4].strip("[]").split(", ")
        assert close(lo, row["ci_lower"], 2) and close(hi, row["ci_upper"], 2)
        assert close(cells[5], row["z"], 2)
        assert cells[6] == "< .001" and row["p"] < 0.001
    headings = [r[0] for r in md_rows(table) if not r[1]]
    assert headings == ["**Intercept, β0**", "**Slope of cwc(ses), β1**"]


def test_variance_markdown_round_trips_to_tau(isao, lme4_hsb):
    table = variance_table(isao, digits=3)
    assert md_header(table) == ["Random effect", "Parameter", "Variance", "*SD*", "Corr. with u0"]
    rows = md_rows(table)
    tau = isao.tau.to_numpy()
    assert [r[1] for r in rows] == ["τ00", "τ11", "σ²"]
    for i in range(2):
        assert close(rows[i][2], tau[i, i], 3) and close(rows[i][3], math.sqrt(tau[i, i]), 3)
        assert close(rows[i][2], lme4_hsb["isao"]["tau"][i][i], 3)
    assert rows[0][4] == "" and rows[2][4] == ""
    assert rows[1][4].startswith(".")  # no leading zero for a correlation (APA)
    assert close(rows[1][4], isao.tau_corr.iloc[1, 0], 3)
    assert close(rows[2][2], isao.sigma2, 3) and close(rows[2][3], math.sqrt(isao.sigma2), 3)
    assert f"Deviance (REML criterion) = {isao.deviance:.2f}" in table


def test_p_values_in_apa_style(isao, hsb):
    assert format_p(0.0004) == "< .001"
    assert format_p(0.0456) == ".046"
    assert format_p(0.99995) == "> .999"
    assert format_p(float("nan")) == "NA"
    res = mlmwrap.fit(
        "mathach = b0 + b1*female + e\nb0 = g00 + g01*pracad + u0\nb1 = g10", hsb, cluster="school"
    )
    for row, (_, g) in zip(
        [r for r in md_rows(fixed_table(res)) if r[1]], res.gamma.iterrows(), strict=True
    ):
        if g["p"] >= 0.001:
            assert not row[6].startswith("0") and close(row[6], g["p"], 3)


# -- inference hook: z/p or t/df/p ------------------------------------------------------------
def test_fixed_table_uses_t_df_p_when_gamma_has_df(with_df):
    table = fixed_table(with_df)
    assert md_header(table)[5:] == ["*t*", "*df*", "*p*"]
    rows = [r for r in md_rows(table) if r[1]]
    g = with_df.gamma
    for (_, row), cells in zip(g.iterrows(), rows, strict=True):
        assert close(cells[5], row["t"], 2)
        assert float(cells[6]) == pytest.approx(row["df"], abs=0.05)
    assert [r[6] for r in rows[:3]] == ["157.2", "157", "157"]
    assert "Satterthwaite degrees of freedom" in table
    tex = fixed_table(with_df, "latex")
    assert r"\textit{df}" in tex and r"\textit{t}" in tex
    tidy = to_frame(with_df)
    fixed = tidy[tidy.part == "fixed"]
    assert fixed["df"].tolist() == g["df"].tolist()
    assert fixed["p"].tolist() == g["p"].tolist()


def test_t_statistic_computed_when_only_df_is_added(isao):
    res = copy.copy(isao)
    g = isao.gamma.copy()
    g["df"] = 150.0
    res.gamma = g
    rows = [r for r in md_rows(fixed_table(res)) if r[1]]
    assert all(close(r[5], e / s, 2) for r, e, s in zip(rows, g["estimate"], g["se"], strict=True))
    assert "approximate degrees of freedom" in fixed_table(res)
    assert json.loads(to_json(res))["inference"]["statistic"] == "t"


def test_z_table_has_no_df_column(isao):
    assert "*df*" not in fixed_table(isao)
    assert to_frame(isao).query("part == 'fixed'")["df"].isna().all()
    assert json.loads(to_json(isao))["inference"] == {
        "statistic": "z",
        "df_method": "z",
        "description": "z-tests (normal reference, no small-sample correction)",
        "level": 0.95,
    }


def _kr_like(isao) -> pd.DataFrame:
    """A gamma table shaped like mlmwrap.inference.gamma_table's: no z column, t/df, attrs."""
    g = isao.gamma[["estimate", "se", "beta", "level1", "predictor", "term"]].copy()
    g["se"] = g["se"] * 1.01
    g["df"] = 155.5
    g["t"] = g["estimate"] / g["se"]
    g["p"] = 2 * stats.t.sf(np.abs(g["t"]), g["df"])
    crit = stats.t.ppf(0.95, g["df"])
    g["ci_lower"], g["ci_upper"] = g["estimate"] - crit * g["se"], g["estimate"] + crit * g["se"]
    g.attrs.update(
        df_method="kenward-roger",
        inference="t-tests with Kenward-Roger adjusted SEs and degrees of freedom (as pbkrtest)",
        level=0.9,
    )
    return g


def test_gamma_override_from_an_inference_table(isao):
    g = _kr_like(isao)
    table = fixed_table(isao, gamma=g)
    assert md_header(table)[4:] == ["90% CI", "*t*", "*df*", "*p*"]
    rows = [r for r in md_rows(table) if r[1]]
    for (_, row), cells in zip(g.iterrows(), rows, strict=True):
        assert close(cells[3], row["se"], 2) and close(cells[5], row["t"], 2)
        lo, hi = cells[4].strip("[]").split(", ")
        assert close(lo, row["ci_lower"], 2) and close(hi, row["ci_upper"], 2)
    assert "*SE* = standard error (Kenward-Roger adjusted)" in table
    assert "*t* tests with Kenward-Roger adjusted SEs and degrees of freedom" in table
    assert r"90\% CI" in fixed_table(isao, "latex", gamma=g)
    assert "<i>t</i> tests with Kenward-Roger" in fixed_table(isao, "html", gamma=g)
    # The override travels through JSON and back, and res.gamma is untouched.
    text = to_json(isao, gamma=g)
    assert fixed_table(from_json(text)) == table
    assert json.loads(text)["inference"]["level"] == 0.9
    assert "df" not in isao.gamma.columns
    assert to_frame(isao, gamma=g).query("part == 'fixed'")["df"].eq(155.5).all()


def test_infinite_df_means_z_tests(isao):
    g = isao.gamma.copy()
    g["df"] = np.inf
    table = fixed_table(isao, gamma=g)
    assert "*df*" not in table and "*z*" in md_header(table)


def test_gamma_override_is_checked(isao):
    with pytest.raises(MLMError, match="rows are not this fit's gammas"):
        fixed_table(isao, gamma=isao.gamma.iloc[:3])
    with pytest.raises(MLMError, match="lacks the column"):
        fixed_table(isao, gamma=isao.gamma.drop(columns="se"))


# -- LaTeX and HTML ---------------------------------------------------------------------------
@pytest.mark.parametrize("table", [fixed_table, variance_table])
def test_latex_tables_are_balanced_booktabs(isao, with_df, table):
    for res in (isao, with_df):
        tex = table(res, "latex", label="tab:x")
        assert_balanced(tex)
        for cmd in (r"\toprule", r"\midrule", r"\bottomrule", r"\label{tab:x}", r"\caption{"):
            assert cmd in tex
        body = tex.split("\\midrule\n")[1].split("\n\\bottomrule")[0].splitlines()
        header = tex.split("\\toprule\n")[1].split("\n")[0]
        n_cols = len(re.findall(r"(?<!\\)&", header)) + 1
        assert n_cols == len(re.search(r"\\begin\{tabular\}\{(\w+)\}", tex).group(1))
        for line in body:
            if not line.startswith("\\multicolumn"):
                assert len(re.findall(r"(?<!\\)&", line)) + 1 == n_cols, line
            assert line.endswith(" \\\\")
    tex = fixed_table(isao, "latex")
    assert "$-$1.64" in tex and "$<$ .001" in tex and r"95\% CI" in tex


class _TagChecker(HTMLParser):
    VOID = {"br"}

    def __init__(self):
        super().__init__()
        self.stack, self.rows = [], 0

    def handle_starttag(self, tag, attrs):
        if tag not in self.VOID:
            self.stack.append(tag)
        self.rows += tag == "tr"

    def handle_endtag(self, tag):
        assert self.stack.pop() == tag


def test_html_tables_are_well_formed(isao):
    for out, n_rows in [(fixed_table(isao, "html"), 1 + 2 + 6), (variance_table(isao, "html"), 4)]:
        checker = _TagChecker()
        checker.feed(out)
        assert not checker.stack and checker.rows == n_rows
    out = fixed_table(isao, "html")
    assert "&gamma;<sub>12</sub>" in out and "&minus;1.64" in out and "&lt; .001" in out


def test_special_characters_are_escaped(hsb):
    data = hsb.assign(kind=np.where(hsb["sector"] == 1, "50%_pub|lic", "A & B"))
    res = mlmwrap.fit("mathach = b0 + e\nb0 = g00 + g01*kind + u0", data, cluster="school")
    (label,) = [lab for lab in res.gamma.index if lab.startswith("g01[")]
    level = label[4:-1]
    rows = [r for r in md_rows(fixed_table(res)) if r[1]]
    assert rows[1][0] == f"kind[{level}]"  # '|' and '_' escaped, read back intact
    tex = fixed_table(res, "latex")
    assert_balanced(tex)
    row = next(line for line in tex.splitlines() if line.startswith("\\quad kind"))
    assert row.startswith(f"\\quad {latex_escape(f'kind[{level}]')} & ")
    assert re.search(r"(?<!\\)[%_]", row.split(" & ")[0]) is None
    assert f"<td style='text-align:left;padding:0.15em 0.6em'>kind[{html.escape(level)}]</td>" in (
        fixed_table(res, "html")
    )


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex not installed")
def test_latex_document_compiles(isao, with_df, tmp_path):
    probe = subprocess.run(["kpsewhich", "booktabs.sty"], capture_output=True, text=True)
    if not probe.stdout.strip():
        pytest.skip("booktabs.sty not installed")
    for name, res in [("z", isao), ("t", with_df)]:
        (tmp_path / f"{name}.tex").write_text(document(res, "latex"))
        done = subprocess.run(
            ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", f"{name}.tex"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
        log = (tmp_path / f"{name}.log").read_text(errors="replace")
        assert done.returncode == 0, log[-2000:]
        assert "Overfull \\hbox" not in log


# -- tidy frame -------------------------------------------------------------------------------
def test_to_frame_is_tidy_and_matches_the_results(isao):
    tidy = to_frame(isao)
    assert list(tidy.columns) == [
        "part",
        "term",
        "estimate",
        "se",
        "statistic",
        "df",
        "p",
        "ci_lower",
        "ci_upper",
        "beta",
        "level1",
        "predictor",
        "effect",
    ]
    fixed = tidy[tidy.part == "fixed"].set_index("term")
    g = isao.gamma
    assert list(fixed.index) == list(g.index)
    for col in ("estimate", "se", "p", "ci_lower", "ci_upper", "beta", "predictor"):
        assert fixed[col].tolist() == g[col].tolist()
    assert fixed["statistic"].tolist() == g["z"].tolist()
    assert fixed["effect"].tolist() == g["term"].tolist()
    rnd = tidy[tidy.part == "random"].set_index("term")["estimate"]
    tau = isao.tau.to_numpy()
    assert rnd["tau00"] == tau[0, 0] and rnd["tau10"] == tau[1, 0] and rnd["tau11"] == tau[1, 1]
    assert rnd["sigma2"] == isao.sigma2
    assert rnd["sd(u1)"] == pytest.approx(math.sqrt(tau[1, 1]))
    assert rnd["sd(e)"] == pytest.approx(math.sqrt(isao.sigma2))
    assert rnd["cor(u1,u0)"] == pytest.approx(isao.tau_corr.iloc[1, 0])
    fit = tidy[tidy.part == "fit"].set_index("term")["estimate"]
    assert fit["deviance"] == isao.deviance and fit["nobs"] == isao.nobs
    assert fit["n_clusters"] == isao.n_clusters and fit["bic"] == isao.bic
    assert set(tidy.part) == {"fixed", "random", "fit"}


# -- JSON -------------------------------------------------------------------------------------
def test_json_holds_everything_at_full_precision(isao):
    out = json.loads(to_json(isao))
    assert out["schema"] == SCHEMA and out["mlmwrap_version"] == mlmwrap.__version__
    assert (out["method"], out["nobs"], out["n_clusters"]) == ("REML", 7185, 160)
    assert out["cluster"] == "school" and out["source"] == isao.spec.source
    for item, (label, row) in zip(out["fixed"], isao.gamma.iterrows(), strict=True):
        assert item["gamma"] == label
        for col in ("estimate", "se", "z", "p", "ci_lower", "ci_upper"):
            assert item[col] == row[col]
    assert np.array_equal(np.array(out["tau"]["matrix"]), isao.tau.to_numpy())
    assert out["tau"]["labels"] == ["u0", "u1"] and out["tau"]["terms"][1] == "cwc(ses)"
    assert out["sigma2"] == isao.sigma2 and out["fit"]["deviance"] == isao.deviance
    assert out["convergence"] == {
        "converged": True,
        "singular": False,
        "hessian_pd": isao.hessian_pd,
        "messages": list(isao.messages),
    }
    assert "b1 = 2.939 + 1.039*meanses - 1.643*sector + u1" in out["equations"]["text"]
    assert out["equations"]["latex"].startswith("\\begin{aligned}")


def test_json_round_trip_rebuilds_identical_tables(isao, with_df):
    for res in (isao, with_df):
        text = to_json(res)
        back = from_json(text)
        assert isinstance(back, TableData)
        assert to_json(back) == text
        for fmt in ("markdown", "latex", "html"):
            assert fixed_table(back, fmt) == fixed_table(res, fmt)
            assert variance_table(back, fmt) == variance_table(res, fmt)
        assert document(back) == document(res)
        pd.testing.assert_frame_equal(to_frame(back), to_frame(res))


def test_json_writes_nan_as_null(isao):
    res = copy.copy(isao)
    res.tau_corr = isao.tau_corr.copy()
    res.tau_corr.iloc[1, 0] = res.tau_corr.iloc[0, 1] = np.nan
    text = to_json(res)
    assert "NaN" not in text and json.loads(text)["tau"]["corr"][1][0] is None
    assert "| NA |" in variance_table(from_json(text))


# -- warnings reach the tables; bad input ----------------------------------------------------
def test_flags_and_messages_are_never_silent(isao):
    res = copy.copy(isao)
    res.converged, res.singular = False, True
    res.messages = ("the optimizer stopped early",)
    assert "did not converge" in fixed_table(res) and "Singular fit" in variance_table(res)
    assert "did not converge" in fixed_table(res, "latex")
    assert "- the optimizer stopped early" in document(res)
    assert "optimizer stopped early" in document(res, "latex")
    assert json.loads(to_json(res))["convergence"]["converged"] is False


def test_boundary_variance_shows_as_zero_not_as_a_tiny_number(hsb):
    with pytest.warns(mlmwrap.BoundaryWarning):
        res = mlmwrap.fit("mathach = b1*cwc(ses) + e\nb1 = g10 + u1", hsb, cluster="school")
    rows = md_rows(variance_table(res))
    assert rows[0][2:4] == ["0.00", "0.00"] and "Singular fit" in variance_table(res)
    assert to_frame(res).set_index("term").at["tau11", "estimate"] == res.tau.iloc[0, 0]


def test_bad_arguments_raise_mlmerror(isao):
    with pytest.raises(MLMError, match="unknown table format"):
        fixed_table(isao, "docx")
    with pytest.raises(MLMError, match="unknown format"):
        document(isao, "rtf")
    with pytest.raises(MLMError, match="digits"):
        variance_table(isao, digits=-2)
    with pytest.raises(MLMError, match="not valid JSON"):
        from_json("{nope")
    with pytest.raises(MLMError, match="not an mlmwrap results file"):
        from_json('{"a": 1}')
    broken = json.loads(to_json(isao))
    del broken["tau"]
    with pytest.raises(MLMError, match="incomplete"):
        from_json(json.dumps(broken))


def test_results_are_not_modified(isao):
    before = isao.gamma.copy()
    d = table_data(isao)
    d.gamma.loc["g00", "estimate"] = 0.0
    to_frame(isao)
    pd.testing.assert_frame_equal(isao.gamma, before)
