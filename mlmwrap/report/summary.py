"""Plain-text and HTML reports of a fit. Formatting only: every number comes from the results."""

from __future__ import annotations

import html
import re
import warnings
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from mlmwrap.analysis.effects import effects_section
from mlmwrap.analysis.latent import reliability_section
from mlmwrap.analysis.shared.display import html_table
from mlmwrap.errors import MLMError
from mlmwrap.model.aggregate.rowless import RowsUnavailableError
from mlmwrap.report.mathml import equations_mathml

if TYPE_CHECKING:  # pragma: no cover
    from mlmwrap.api.results import MLMResults

__all__ = ["summary_text", "summary_html", "format_p", "P_FORMATS"]

#: How p-values are printed: APA style (``<.001`` below .001) or exact.
P_FORMATS = ("apa", "exact")


def _reliability_lines(res: MLMResults) -> list[str]:
    """The reliability section, or a line saying why a fit from per-cluster sums has none."""
    try:
        return reliability_section(res, res.cluster_mean_reliability())
    except RowsUnavailableError:
        return [
            "Reliability of cluster means: not computed (the model was fitted from",
            "  per-cluster sums of a lazy frame or file, without the rows); fit a pandas",
            "  sample to check it",
        ]


def format_p(p: float, p_format: str = "apa") -> str:
    """A p-value as the summary prints it.

    ``"apa"``: three decimals, ``<.001`` below .001. ``"exact"``: three decimals down to
    .001, then two significant digits in scientific notation.

    Examples
    --------
    >>> format_p(0.0312), format_p(2.2e-40), format_p(2.2e-40, "exact")
    ('0.031', '<.001', '2.2e-40')
    """
    if not np.isfinite(p):
        return "NA"
    if p >= 0.001:
        return f"{p:.3f}"
    return f"{p:.1e}" if p_format == "exact" else "<.001"


def _check_p_format(p_format: str) -> None:
    if p_format not in P_FORMATS:
        raise MLMError(
            f"p_format must be one of {', '.join(map(repr, P_FORMATS))}, not {p_format!r}",
            hint="p_format='exact' prints p-values below .001 as e.g. 2.2e-40",
        )


def _plain_names(res: MLMResults):
    """A function that drops the level subscripts (``_ij``, ``_j``) from names in a label,
    as the typeset equations do: each name written with a suffix the data lacks becomes the
    data column it stands for (``ses_ij`` -> ``ses``)."""
    renames = {k: v for k, v in res.design.columns.items() if k != v}
    if not renames:
        return lambda text: text
    pattern = re.compile(
        r"(?<![\w.])("
        + "|".join(re.escape(k) for k in sorted(renames, key=len, reverse=True))
        + r")(?![\w])"
    )
    return lambda text: pattern.sub(lambda m: renames[m.group(1)], str(text))


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
    # One verdict that agrees with the warnings below it: the Hessian is "checked" only
    # where it was found positive definite.
    if res.converged and res.hessian_pd:
        lines.append("Converged: yes (gradient and Hessian checked at the optimum)")
    elif res.converged and res.hessian_pd is None:
        lines.append("Converged: yes (gradient checked; a boundary fit has no interior Hessian)")
    elif res.converged:
        lines.append(
            "Converged: the gradient is zero, but the Hessian is not positive definite -- "
            "the variance parameters are not well identified"
        )
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
        f"Multilevel model of {_plain_names(res)(res.outcome)}, estimated by {res.method}",
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


def _robust_columns(res: MLMResults) -> pd.DataFrame | None:
    """CR2 robust SEs and p-values, or None (with the reason in the summary) if undefined."""
    try:
        return res.robust()
    except (MLMError, np.linalg.LinAlgError, ValueError):
        return None


def summary_text(res: MLMResults, *, p_format: str = "apa", robust: bool = False) -> str:
    """The report :meth:`MLMResults.summary` returns.

    ``p_format``: ``"apa"`` (``<.001``) or ``"exact"`` (:func:`format_p`). ``robust``: add
    CR2 cluster-robust SEs and their Satterthwaite p-values (as HLM prints robust SEs
    beside the model-based ones; :func:`mlmwrap.analysis.robust.robust_table`).
    """
    _check_p_format(p_format)
    plain = _plain_names(res)
    spec = res.spec
    out = _header(res)
    out.append("")
    out.append("Level 1:   " + plain(spec.level1_text()))
    for i, line in enumerate(spec.level2_text().splitlines()):
        out.append(("Level 2:   " if i == 0 else "           ") + plain(line))
    out.extend(_wrap("Mixed:     ", plain(spec.reduced_text())))
    out.extend(_formula_lines(res))
    out.append("")

    g = res.gamma
    rob = _robust_columns(res) if robust else None
    width = max([len(str(i)) for i in g.index] + [5])
    pred_w = max([len(plain(p)) for p in g["predictor"]] + [9])
    p_w = max([len(format_p(p, p_format)) for p in g["p"]] + [6])
    stat, has_df = _test_columns(g)
    df_head = f" {'df':>7}" if has_df else ""
    rob_head = ""
    if rob is not None:
        rp_w = max([len(format_p(p, p_format)) for p in rob["p"]] + [8])
        rob_head = f"   {'robust SE':>9} {'robust p':>{rp_w}}"
    out.append("Fixed effects (gamma)")
    out.append(
        f"  {'':<{width}}  {'predictor':<{pred_w}}  {'estimate':>9} {'SE':>8}{df_head} "
        f"{stat:>8} {'p':>{p_w}}   {'95% CI':<18}{rob_head}".rstrip()
    )
    current_beta = None
    for label, row in g.iterrows():
        if row["beta"] != current_beta:
            current_beta = row["beta"]
            level1 = plain(row["level1"])
            what = "intercept" if row["level1"] == "(intercept)" else f"slope of {level1}"
            out.append(f"  {current_beta} ({what})")
        df_cell = f" {_num(row['df'], 7, 1)}" if has_df else ""
        ci = f"[{row['ci_lower']:.3f}, {row['ci_upper']:.3f}]"
        rob_cell = ""
        if rob is not None:
            r = rob.loc[label]
            rob_cell = f"   {_num(r['se'], 9)} {format_p(r['p'], p_format):>{rp_w}}"
        out.append(
            f"  {label:<{width}}  {plain(row['predictor']):<{pred_w}}  {_num(row['estimate'])} "
            f"{_num(row['se'], 8)}{df_cell} {_num(row[stat], 8, 2)} "
            f"{format_p(row['p'], p_format):>{p_w}}   {ci:<18}{rob_cell}".rstrip()
        )
    for beta in res.spec.zero_mean_betas:
        what = f"slope of {beta.predictor.text()}" if beta.predictor is not None else "intercept"
        out.append(f"  {beta.label} ({what}): mean fixed at 0 (random effect {beta.u_label} only)")
    kind = "Kenward-Roger adjusted" if res.df_method == "kenward-roger" else "model-based"
    out.append(f"  SE: {kind}; {res.inference}")
    if rob is not None:
        out.append("  robust SE: CR2 cluster-robust, p from t-tests with Satterthwaite df")
    elif robust:
        out.append("  robust SE: could not be computed for this model")
    out.append("")

    vc = res.variance_components
    corr = res.tau_corr
    labels = list(corr.index)
    term_w = max([len(plain(t)) for t in vc["term"]] + [4])
    lab_w = max([len(str(lab)) for lab in vc.index] + [6])  # u1[Black] for a category
    cor_w = max([len(lab) for lab in labels[:-1]] + [7])
    lead = f"  {'':<{lab_w}} {'term':<{term_w}} {'variance':>10} {'SD':>8}"
    corr_labels = labels[:-1]  # lower triangle: u1 with u0, u2 with u0 and u1, ...
    title = "Variance components (tau, sigma2)"
    if corr_labels:
        title = f"{title:<{len(lead) + 3}}correlations"
    out.append(title)
    out.append(lead + ("   " + " ".join(f"{lab:>{cor_w}}" for lab in corr_labels)).rstrip())
    for i, (label, row) in enumerate(vc.iterrows()):
        line = (
            f"  {label:<{lab_w}} {plain(row['term']):<{term_w}} {_num(row['variance'], 10)} "
            f"{_num(row['sd'], 8)}"
        )
        if 0 < i < len(labels):
            fixed = res.tau_fixed.to_numpy()
            line += "   " + " ".join(
                f"{'0':>{cor_w}}" if fixed[i, j] else _num(corr.iloc[i, j], cor_w) for j in range(i)
            )
        out.append(line)
    if res.tau_fixed.to_numpy().any():
        zero = ", ".join(f"({a}, {b})" for a, b in res.spec.zero_covariances)
        out.append(f"  fixed at 0 (not estimated): the covariances of {zero}")
    out.extend(_variance_test_lines(res, p_format))
    out.append("")
    for section in (
        effects_section(res),
        _reliability_lines(res),
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


def _variance_tests(res: MLMResults) -> pd.DataFrame | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return res.variance_tests()
    except (MLMError, np.linalg.LinAlgError, ValueError):
        return None


def _variance_test_lines(res: MLMResults, p_format: str = "apa") -> list[str]:
    """HLM's chi-square tests of tau and reliabilities, when they can be computed."""
    vt = _variance_tests(res)
    if vt is None:
        return []
    p_w = max([len(format_p(p, p_format)) for p in vt["p"]] + [6])
    lab_w = max([len(str(lab)) for lab in vt.index] + [6])
    lines = [
        "",
        _variance_test_title(res, vt),
        f"  {'':<{lab_w}} {'chi2':>10} {'df':>5} {'p':>{p_w}}   reliability",
    ]
    for label, row in vt.iterrows():
        df = f"{int(row['df']):>5}" if np.isfinite(row["df"]) else f"{'NA':>5}"
        p = format_p(row["p"], p_format)
        lines.append(
            f"  {label:<{lab_w}} {_num(row['chi2'], 10, 2)} {df} {p:>{p_w}}   "
            f"{_num(row['reliability'], 11)}"
        )
    return lines


def _variance_test_title(res: MLMResults, vt: pd.DataFrame) -> str:
    used = int(vt["clusters_used"].min())
    return (
        f"Chi-square tests of tau = 0 (HLM; per-cluster OLS, {used} of {res.n_clusters} clusters)"
    )


def summary_html(res: MLMResults, *, p_format: str = "apa", robust: bool = False) -> str:
    """HTML for a notebook, with every statistic of :func:`summary_text`: header, equations
    (readable text and typeset), gammas, variance components, HLM's chi-square tests, the
    within/between effects and reliability sections, ICC, deviance, AIC, BIC, status."""
    _check_p_format(p_format)
    plain = _plain_names(res)
    spec = res.spec
    reduced = _wrap("", plain(spec.reduced_text()))
    eqs = "\n".join(
        [plain(spec.level1_text()), plain(spec.level2_text()), "", *reduced, *_formula_lines(res)]
    )
    parts = [
        "<div class='mlmwrap-results'>",
        "<p>" + "<br>".join(html.escape(line) for line in _header(res)) + "</p>",
        f"<pre>{html.escape(eqs)}</pre>",
    ]
    # Typeset with the estimates as MathML, which browsers render without MathJax or a
    # network; without latex2mathml only the readable <pre> above, never LaTeX source.
    mathml = equations_mathml(res)
    if mathml is not None:
        parts.append(mathml)
    g = res.gamma
    rob = _robust_columns(res) if robust else None
    stat, has_df = _test_columns(g)
    rows = []
    for label, row in g.iterrows():
        cells = [
            str(label),
            row["beta"],
            plain(row["predictor"]),
            f"{row['estimate']:.3f}",
            f"{row['se']:.3f}",
            *([f"{row['df']:.1f}"] if has_df else []),
            f"{row[stat]:.2f}",
            format_p(row["p"], p_format),
            f"[{row['ci_lower']:.3f}, {row['ci_upper']:.3f}]",
        ]
        if rob is not None:
            r = rob.loc[label]
            cells += [f"{r['se']:.3f}", format_p(r["p"], p_format)]
        rows.append(cells)
    heads = ["gamma", "beta", "predictor", "estimate", "SE", *(["df"] if has_df else [])]
    heads += [stat, "p", "95% CI"] + (["robust SE", "robust p"] if rob is not None else [])
    parts.append(html_table(heads, rows, "Fixed effects (gamma)", n_text=3))
    kind = "Kenward-Roger adjusted" if res.df_method == "kenward-roger" else "model-based"
    note = f"SE: {kind}; {res.inference}"
    if rob is not None:
        note += "; robust SE: CR2 cluster-robust, p from t-tests with Satterthwaite df"
    parts.append(f"<p><small>{html.escape(note)}</small></p>")
    vc = res.variance_components
    corr = res.tau_corr
    labels = list(corr.index)
    vrows = []
    for i, (label, row) in enumerate(vc.iterrows()):
        cells = [str(label), plain(row["term"]), f"{row['variance']:.3f}", f"{row['sd']:.3f}"]
        cors = [
            f"{corr.iloc[i, j]:.3f}" if i < len(labels) and j < i else ""
            for j in range(len(labels) - 1)
        ]
        vrows.append(cells + cors)
    heads = ["", "term", "variance", "SD"] + [f"corr. {lab}" for lab in labels[:-1]]
    parts.append(html_table(heads, vrows, "Variance components (tau, sigma2)", n_text=2))
    vt = _variance_tests(res)
    if vt is not None:
        trows = [
            [
                str(label),
                f"{row['chi2']:.2f}",
                str(int(row["df"])) if np.isfinite(row["df"]) else "NA",
                format_p(row["p"], p_format),
                f"{row['reliability']:.3f}",
            ]
            for label, row in vt.iterrows()
        ]
        heads = ["", "chi2", "df", "p", "reliability"]
        parts.append(html_table(heads, trows, _variance_test_title(res, vt), n_text=1))
    for section in (
        effects_section(res),
        _reliability_lines(res),
    ):
        if section:
            parts.append(f"<pre>{html.escape(chr(10).join(section))}</pre>")
    crit = "REML criterion" if res.reml else "-2 log-likelihood"
    foot = [
        f"{res.icc_name}: {res.icc:.4f}" if np.isfinite(res.icc) else res.icc_name,
        f"Deviance ({crit}): {res.deviance:.3f}; parameters: {res.n_params}; "
        f"AIC {res.aic:.3f}; BIC {res.bic:.3f}",
        *_status_lines(res),
    ]
    parts.append("<p>" + "<br>".join(html.escape(f) for f in foot) + "</p></div>")
    return "".join(parts)
