"""The summary of a three-level fit, in the style of HLM3's output (Raudenbush & Bryk ch. 8).

Formats numbers it is given; computes nothing. Sections: the model as written at each level,
the sample (units per level, and whether level-2 ids repeated across level-3 units), the
final estimation of fixed effects, the variance components of each level and the deviance.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from mlmwrap.api.nested_results import NestedResults

__all__ = ["three_level_summary"]


def _p(p: float) -> str:
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def three_level_summary(res: NestedResults) -> str:
    """Text summary: equations, sample, fixed effects, variance components, deviance."""
    spec = res.spec
    lines = [
        f"Three-level model ({'REML' if res.reml else 'ML'}), outcome {spec.outcome.text()}",
        "",
    ]
    for level in range(1, spec.n_levels + 1):
        lines.append(f"Level-{level} model")
        lines += ["    " + line for line in spec.equation_lines(level)]
    lines += ["", "Reduced form (lme4):", "    " + res.formulas.lme4, ""]
    n2, n3 = res.n_units
    c2, c3 = res.clusters
    lines.append(
        f"Level-1 units: {res.n_obs}   level-2 units ({c2}): {n2}   level-3 units ({c3}): {n3}"
    )
    if res.design.ids_repeat:
        lines.append(
            f"  {c2} ids repeat across {c3} units: each level-2 unit is a "
            f"({c3}, {c2}) pair, as lme4's {c3}/{c2}"
        )
    if res.design.rows_dropped:
        lines.append(f"  {res.design.rows_dropped} rows with missing values dropped")
    lines += ["", "Final estimation of fixed effects"]
    g = res.gamma
    stat = "z" if "z" in g.columns else "t"
    header = (
        f"{'Fixed effect':<16}{'Coefficient':>12}{'Std. error':>12}{stat + '-ratio':>10}"
        f"{'approx. d.f.':>14}{'p-value':>10}"
    )
    lines += [header, "-" * len(header)]
    for label, row in g.iterrows():
        df = f"{row.df:>14.1f}" if "df" in g.columns else f"{'inf':>14}"
        lines.append(
            f"{label:<16}{row.estimate:>12.6f}{row.se:>12.6f}{row[stat]:>10.3f}{df}{_p(row.p):>10}"
        )
    lines += ["", "Final estimation of variance components"]
    header = f"{'Random effect':<16}{'Level':<14}{'Std. dev.':>12}{'Variance':>14}"
    lines += [header, "-" * len(header)]
    for level, (cluster, tau) in enumerate(res.tau_by_level.items(), start=2):
        for lab in tau.index:
            v = float(tau.loc[lab, lab])
            lines.append(f"{lab:<16}{f'{level} ({cluster})':<14}{v**0.5:>12.5f}{v:>14.5f}")
    s2 = res.sigma2
    lines.append(f"{'e':<16}{'1':<14}{s2**0.5:>12.5f}{s2:>14.5f}")
    corr = [
        (
            lab_a,
            lab_b,
            tau.loc[lab_a, lab_b] / (tau.loc[lab_a, lab_a] * tau.loc[lab_b, lab_b]) ** 0.5,
        )
        for tau in res.tau_by_level.values()
        for i, lab_a in enumerate(tau.index)
        for lab_b in tau.index[i + 1 :]
        if tau.loc[lab_a, lab_a] > 0 and tau.loc[lab_b, lab_b] > 0
    ]
    if corr:
        lines.append("Correlations: " + ", ".join(f"{a},{b} {c:.3f}" for a, b, c in corr))
    crit = "REML criterion" if res.reml else "Deviance (-2 log-likelihood)"
    lines += ["", f"{crit} = {res.deviance:.6f}"]
    n_par = len(g) + res.n_variance_parameters
    lines.append(f"Number of estimated parameters = {n_par}")
    for m in res.messages:
        lines.append(f"Note: {m}")
    return "\n".join(lines)
