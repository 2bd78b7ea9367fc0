"""The variance table of the build-up strategy for three-level models (see
:func:`mlmwrap.build_up`): sigma^2 and the random-intercept variance of every level, and
Raudenbush & Bryk's proportional reduction of each against the previous model."""

from __future__ import annotations

import numpy as np
import pandas as pd

from mlmwrap.analysis.variance_explained import nakagawa_r2
from mlmwrap.api.nested_results import NestedResults

__all__ = ["nested_variance"]


def _intercept_variances(res: NestedResults) -> dict[str, float]:
    """{"tau_r0": ..., "tau_u00": ...}: each level's random-intercept variance (NaN at a level
    without a random intercept), keyed by the labels as written in the model."""
    out = {}
    for level, (random, tau) in enumerate(
        zip(res.spec.random, res.tau_by_level.values(), strict=True), start=2
    ):
        intercept = [r.label for r in random if r.expr is None]
        name = intercept[0] if intercept else ("r0" if level == 2 else "u00")
        out[f"tau_{name}"] = float(tau.loc[name, name]) if intercept else np.nan
    return out


def nested_variance(fits: list[NestedResults], labels: list[str]) -> pd.DataFrame:
    """One row per model: ``sigma2``, each level's intercept variance (``tau_r0``,
    ``tau_u00``, labelled as written) and their proportional reduction against the
    previous model (``sigma2_reduction``, ``tau_r0_reduction``, ...; NaN for the first
    model), and Nakagawa's marginal and conditional R² with their changes. Estimates as fit
    (REML by default).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> import mlmwrap
    >>> rng = np.random.default_rng(5)
    >>> s = np.repeat(np.arange(30), 40); c = np.repeat(np.arange(240), 5)
    >>> x = rng.normal(size=1200)
    >>> y = 0.5 * x + rng.normal(size=30)[s] + rng.normal(size=240)[c] + rng.normal(size=1200)
    >>> df = pd.DataFrame({"y": y, "x": x, "c": c, "s": s})
    >>> null = mlmwrap.fit("y = p0 + e\\np0 = b00 + r0\\nb00 = g000 + u00", df, ["c", "s"])
    >>> slope = mlmwrap.fit(
    ...     "y = p0 + p1*x + e\\np0 = b00 + r0\\np1 = b10\\nb00 = g000 + u00\\nb10 = g100",
    ...     df, ["c", "s"])
    >>> t = nested_variance([null, slope], ["null", "+x"])
    >>> list(t.columns[:6])
    ['sigma2', 'tau_r0', 'tau_u00', 'sigma2_reduction', 'tau_r0_reduction', 'tau_u00_reduction']
    >>> list(t.columns[6:])
    ['r2_marginal', 'delta_r2_marginal', 'r2_conditional', 'delta_r2_conditional']
    >>> bool(t.loc["+x", "sigma2_reduction"] > 0.1)
    True
    """
    rows = [{"sigma2": r.sigma2, **_intercept_variances(r)} for r in fits]
    table = pd.DataFrame(rows, index=pd.Index(labels, name="model"))
    components = list(table.columns)
    for col in components:
        previous = table[col].shift(1)
        table[f"{col}_reduction"] = (previous - table[col]) / previous
    r2 = [nakagawa_r2(r) for r in fits]
    table["r2_marginal"] = [r.marginal for r in r2]
    table["delta_r2_marginal"] = table["r2_marginal"].diff()
    table["r2_conditional"] = [r.conditional for r in r2]
    table["delta_r2_conditional"] = table["r2_conditional"].diff()
    return table
