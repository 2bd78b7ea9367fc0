"""The build-up strategy for three-level models: fit each model by ML, test each against the
previous one (likelihood ratio), and show how the variance at every level changes.

Rows with a missing value in any model's variables are dropped for every model first, so
the deviances are comparable.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy import stats as sstats

from mlmwrap.api.fitting_nested import fit_nested
from mlmwrap.api.nested_results import NestedResults
from mlmwrap.errors import MLMError
from mlmwrap.language.levels import parse_model
from mlmwrap.language.nested_spec import NestedSpec
from mlmwrap.model.nested_design import _resolve

__all__ = ["build_up_nested"]


def build_up_nested(
    models: list, data: pd.DataFrame, clusters: list[str], names: list[str] | None = None
) -> pd.DataFrame:
    """One row per model: ML deviance, parameters, chi2/df/p against the previous model,
    sigma^2 and the variance of each level's random intercept.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(5)
    >>> s = np.repeat(np.arange(30), 40); c = np.repeat(np.arange(240), 5)
    >>> x = rng.normal(size=1200)
    >>> y = 0.5 * x + rng.normal(size=30)[s] + rng.normal(size=240)[c] + rng.normal(size=1200)
    >>> df = pd.DataFrame({"y": y, "x": x, "c": c, "s": s})
    >>> null = "y = p0 + e\\np0 = b00 + r0\\nb00 = g000 + u00"
    >>> slope = "y = p0 + p1*x + e\\np0 = b00 + r0\\np1 = b10\\nb00 = g000 + u00\\nb10 = g100"
    >>> t = build_up_nested([null, slope], df, ["c", "s"], ["null", "+x"])
    >>> t[["n_parameters", "df"]]
           n_parameters   df
    model
    null              4  NaN
    +x                5  1.0
    >>> bool(t.loc["+x", "p"] < 1e-10)
    True
    """
    specs = [parse_model(m) if isinstance(m, str) else m for m in models]
    if not all(isinstance(s, NestedSpec) for s in specs):
        raise MLMError(
            "build_up mixes two- and three-level models",
            hint="give every model in the HLM3 notation (p, b, g)",
        )
    used = list(
        dict.fromkeys([c for s in specs for c in _resolve(s, data).values()] + list(clusters))
    )
    frame = data.loc[data[used].notna().all(axis=1)]
    labels = names or [f"model {i + 1}" for i in range(len(specs))]
    rows = []
    prev: NestedResults | None = None
    for label, spec in zip(labels, specs, strict=True):
        with warnings.catch_warnings(record=True):
            res = fit_nested(spec, frame, list(clusters), reml=False)
        k = len(res.gamma) + res.n_variance_parameters
        row = {
            "model": label,
            "deviance": res.deviance,
            "n_parameters": k,
            "chi2": np.nan,
            "df": np.nan,
            "p": np.nan,
            "sigma2": res.sigma2,
        }
        for cluster, tau in res.tau_by_level.items():
            first = tau.index[0] if len(tau) else None
            intercept = first if first is not None and first in ("r0", "u00") else None
            row[f"tau_{cluster}"] = float(tau.loc[intercept, intercept]) if intercept else np.nan
        if prev is not None:
            dk = k - (len(prev.gamma) + prev.n_variance_parameters)
            chi2 = prev.deviance - res.deviance
            row.update(
                chi2=chi2, df=dk, p=float(sstats.chi2.sf(max(chi2, 0.0), dk)) if dk > 0 else np.nan
            )
        rows.append(row)
        prev = res
    return pd.DataFrame(rows).set_index("model")
