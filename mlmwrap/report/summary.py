"""Plain-text and HTML reports of a fit. Formatting only: every number comes from the results."""

from __future__ import annotations

import html
import warnings
from typing import TYPE_CHECKING

import numpy as np

from mlmwrap.analysis.effects import effects_section
from mlmwrap.analysis.latent import reliability_section
from mlmwrap.analysis.shared.display import html_table
from mlmwrap.errors import MLMError
from mlmwrap.report.latex import equations_html

if TYPE_CHECKING:  # pragma: no cover
    from mlmwrap.api.results import MLMResults

__all__ = ["summary_text", "summary_html"]


def _p(p: float) -> str:
    return "<.001" if p < 0.001 else f"{p:.3f}"


def _num(x: float, width: int = 9, digits: int = 3) -> str:
    return f"{x:{width}.{digits}f}" if np.isfinite(x) else f"{'NA':>{width}}"


def _test_columns(gamma) -> tuple[str, bool]:
    """The test statistic's column ('t' or 'z') and whether there are df to show."""
    stat = "t" if "t" in gamma.columns else "z"
    has_df = "df" in gamma.columns and bool(np.isfinite(gamma["df"]).any())
    return stat, has_df


def _wrap(prefix: str, text: str, width: int = 92) -> list[str]:
    """Break a long equation before a '+' so that each line fits ``width``."""
    lines, current = [], prefix
    for i, piece in enumerate(text.split(" + ")):
        chunk = piece if i == 0 else " + " + piece
        if len(current) + len(chunk) > width and current.strip():
            lines.append(current.rstrip())
            current = " " * (len(prefix) + 2) + chunk.lstrip()
        else:
            current += chunk
    lines.append(current)
    return lines


def _status_lines(res: MLMResults) -> list[str]:
    lines = []
    if res.converged:
        lines.append("Converged: yes (gradient and Hessian checked at the optimum)")
    else:
        lines.append("Converged: NO -- do not trust these estimates")
    if res.singular:
        lines.append(
            "Singular fit: tau is on the boundary (a variance of 0 or a correlation of +-1)"
        )
    for message in res.messages:
        lines.append(f"Warning: {message}")
    return lines


def _header(res: MLMResults) -> list[str]:
    s = res.sample
    cs = res.cluster_sizes
    lines = [
        f"Multilevel model of {res.outcome}, estimated by {res.method}",
        f"Observations: {res.nobs} in {res.n_clusters} clusters ({res.cluster}); "
        f"cluster size min {cs['min']}, mean {cs['mean']:.1f}, max {cs['max']}",
    ]
    if s.rows_dropped:
        detail = ", ".join(f"{k} {v}" for k, v in s.dropped_by_variable.items())
        lines.append(
            f"Dropped: {s.rows_dropped} of {s.rows_total} rows with missing values ({detail}); "
            f"{s.clusters_dropped} of {s.clusters_total} clusters"
        )
    return lines


def _formula_lines(res: MLMResults) -> list[str]:
    """The reduced form as the formulas statsmodels and lme4 take (``res.formulas``)."""
    f = res.formulas
    return [
        *_wrap("Mixed (formula): ", f.fixed),
        f"                 re_formula {f.re_formula!r}, groups {f.groups!r}",
        *_wrap("lme4:            ", f.lme4),
    ]


def summary_text(res: MLMResults) -> str:
    """The report :meth:`MLMResults.summary` returns."""
    spec = res.spec
    out = _header(res)
    out.append("")
    out.append("Level 1:   " + spec.level1_text())
    for i, line in enumerate(spec.level2_text().splitlines()):
        out.append(("Level 2:   " if i == 0 else "           ") + line)
    out.extend(_wrap("Mixed:     ", spec.reduced_text()))
    out.extend(_formula_lines(res))
    out.append("")

    g = res.gamma
    width = max([len(str(i)) for i in g.index] + [5])
    pred_w = max([len(str(p)) for p in g["predictor"]] + [9])
    stat, has_df = _test_columns(g)
    df_head = f" {'df':>7}" if has_df else ""
    out.append("Fixed effects (gamma)")
    out.append(
        f"  {'':<{width}}  {'predictor':<{pred_w}}  {'estimate':>9} {'SE':>8}{df_head} "
        f"{stat:>8} {'p':>6}   95% CI"
    )
    current_beta = None
    for label, row in g.iterrows():
        if row["beta"] != current_beta:
            current_beta = row["beta"]
            what = "intercept" if row["level1"] == "(intercept)" else f"slope of {row['level1']}"
            out.append(f"  {current_beta} ({what})")
        df_cell = f" {_num(row['df'], 7, 1)}" if has_df else ""
        out.append(
            f"  {label:<{width}}  {row['predictor']:<{pred_w}}  {_num(row['estimate'])} "
            f"{_num(row['se'], 8)}{df_cell} {_num(row[stat], 8, 2)} {_p(row['p']):>6}   "
            f"[{row['ci_lower']:.3f}, {row['ci_upper']:.3f}]"
        )
    for beta in res.spec.zero_mean_betas:
        what = f"slope of {beta.predictor.text()}" if beta.predictor is not None else "intercept"
        out.append(f"  {beta.label} ({what}): mean fixed at 0 (random effect {beta.u_label} only)")
    kind = "Kenward-Roger adjusted" if res.df_method == "kenward-roger" else "model-based"
    out.append(f"  SE: {kind}; {res.inference}")
    out.append("")

    vc = res.variance_components
    corr = res.tau_corr
    labels = list(corr.index)
    term_w = max([len(t) for t in vc["term"]] + [4])
    lead = f"  {'':<6} {'term':<{term_w}} {'variance':>10} {'SD':>8}"
    corr_labels = labels[:-1]  # lower triangle: u1 with u0, u2 with u0 and u1, ...
    title = "Variance components (tau, sigma2)"
    if corr_labels:
        title = f"{title:<{len(lead) + 3}}correlations"
    out.append(title)
    out.append(lead + ("   " + " ".join(f"{lab:>7}" for lab in corr_labels)).rstrip())
    for i, (label, row) in enumerate(vc.iterrows()):
        line = (
            f"  {label:<6} {row['term']:<{term_w}} {_num(row['variance'], 10)} {_num(row['sd'], 8)}"
        )
        if 0 < i < len(labels):
            fixed = res.tau_fixed.to_numpy()
            line += "   " + " ".join(
                f"{'0':>7}" if fixed[i, j] else _num(corr.iloc[i, j], 7) for j in range(i)
            )
        out.append(line)
    if res.tau_fixed.to_numpy().any():
        zero = ", ".join(f"({a}, {b})" for a, b in res.spec.zero_covariances)
        out.append(f"  fixed at 0 (not estimated): the covariances of {zero}")
    out.extend(_variance_test_lines(res))
    out.append("")
    for section in (
        effects_section(res),
        reliability_section(res, res.cluster_mean_reliability()),
    ):
        if section:
            out.extend(section)
            out.append("")
    out.append(f"{res.icc_name}: {res.icc:.4f}" if np.isfinite(res.icc) else f"{res.icc_name}")
    crit = "REML criterion" if res.reml else "-2 log-likelihood"
    out.append(
        f"Deviance ({crit}): {res.deviance:.3f}   parameters: {res.n_params}   "
        f"AIC: {res.aic:.3f}   BIC: {res.bic:.3f}"
    )
    out.extend(_status_lines(res))
    return "\n".join(out)


def _variance_test_lines(res: MLMResults) -> list[str]:
    """HLM's chi-square tests of tau and reliabilities, when they can be computed."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            vt = res.variance_tests()
    except (MLMError, np.linalg.LinAlgError, ValueError):
        return []
    used = int(vt["clusters_used"].min())
    lines = [
        "",
        f"Chi-square tests of tau = 0 (HLM; per-cluster OLS, {used} of {res.n_clusters} clusters)",
        f"  {'':<6} {'chi2':>10} {'df':>5} {'p':>6}   reliability",
    ]
    for label, row in vt.iterrows():
        df = f"{int(row['df']):>5}" if np.isfinite(row["df"]) else f"{'NA':>5}"
        p = _p(row["p"]) if np.isfinite(row["p"]) else "NA"
        lines.append(
            f"  {label:<6} {_num(row['chi2'], 10, 2)} {df} {p:>6}   {_num(row['reliability'], 11)}"
        )
    return lines


def summary_html(res: MLMResults) -> str:
    """HTML for a notebook: header, equations, gamma table, variance components, status."""
    spec = res.spec
    reduced = _wrap("", spec.reduced_text())
    eqs = "\n".join([spec.level1_text(), spec.level2_text(), "", *reduced, *_formula_lines(res)])
    parts = [
        "<div class='mlmwrap-results'>",
        "<p>" + "<br>".join(html.escape(line) for line in _header(res)) + "</p>",
        f"<pre>{html.escape(eqs)}</pre>",
        # Typeset with the estimates (MathJax in notebooks); the <pre> above stays readable
        # where there is no MathJax.
        equations_html(res),
    ]
    g = res.gamma
    stat, has_df = _test_columns(g)
    rows = [
        [
            str(label),
            row["beta"],
            row["predictor"],
            f"{row['estimate']:.3f}",
            f"{row['se']:.3f}",
            *([f"{row['df']:.1f}"] if has_df else []),
            f"{row[stat]:.2f}",
            _p(row["p"]),
            f"[{row['ci_lower']:.3f}, {row['ci_upper']:.3f}]",
        ]
        for label, row in g.iterrows()
    ]
    heads = ["gamma", "beta", "predictor", "estimate", "SE", *(["df"] if has_df else [])]
    parts.append(html_table([*heads, stat, "p", "95% CI"], rows, "Fixed effects (gamma)", n_text=3))
    parts.append(f"<p><small>{html.escape(res.inference)}</small></p>")
    vc = res.variance_components
    corr = res.tau_corr
    labels = list(corr.index)
    vrows = []
    for i, (label, row) in enumerate(vc.iterrows()):
        cells = [str(label), row["term"], f"{row['variance']:.4f}", f"{row['sd']:.4f}"]
        cors = [
            f"{corr.iloc[i, j]:.3f}" if i < len(labels) and j < i else ""
            for j in range(len(labels) - 1)
        ]
        vrows.append(cells + cors)
    heads = ["", "term", "variance", "SD"] + [f"corr. {lab}" for lab in labels[:-1]]
    parts.append(html_table(heads, vrows, "Variance components (tau, sigma2)", n_text=2))
    crit = "REML criterion" if res.reml else "-2 log-likelihood"
    foot = [
        f"{res.icc_name}: {res.icc:.4f}" if np.isfinite(res.icc) else res.icc_name,
        f"Deviance ({crit}): {res.deviance:.3f}; AIC {res.aic:.3f}; BIC {res.bic:.3f}",
        *_status_lines(res),
    ]
    parts.append("<p>" + "<br>".join(html.escape(f) for f in foot) + "</p></div>")
    return "".join(parts)
