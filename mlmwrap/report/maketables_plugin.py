"""The maketables plug-in protocol: ``maketables.ETable([m1, m2, m3])`` on mlmwrap results.

maketables (the Python community's regression-table package, pyfixest's former ``etable``)
reads any results object that has ``__maketables_coef_table__`` and, optionally,
``__maketables_stat__(key)``, ``__maketables_depvar__``, ``__maketables_var_labels__``,
``__maketables_stat_labels__``, ``__maketables_default_stat_keys__`` and
``__maketables_vcov_info__``. :class:`~mlmwrap.api.results.MLMResults` implements them with
the functions here, so mlmwrap does not import maketables.

Rows are the fixed effects, indexed by their reduced-form term (``cwc(ses) × meanses`` for
``cwc(ses):meanses``), so that the same predictor lines up across models whatever its gamma
label; the labels show ``g11: cwc(ses) × meanses``. The model statistics are N, the
clusters J, each variance component (``var(u0)``, ..., ``sigma2``), the deviance,
log-likelihood, AIC and BIC.

Examples
--------
>>> import mlmwrap
>>> res = mlmwrap.fit("mathach = b0 + b1*cwc(ses) + e\\nb0 = g00 + u0\\nb1 = g10",
...                   mlmwrap.datasets.load_hsb(), cluster="school")
>>> coef_table(res)[["b", "se"]].round(3)
                  b     se
Coefficient
(Intercept)  12.636  0.244
cwc(ses)      2.191  0.109
>>> stat(res, "N"), stat(res, "n_clusters"), round(stat(res, "var(u0)"), 3)
(7185, 160, 8.672)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:  # pragma: no cover
    from mlmwrap.api.results import MLMResults

__all__ = [
    "coef_table",
    "stat",
    "var_labels",
    "stat_labels",
    "default_stat_keys",
    "vcov_info",
]


def _row_key(term: str) -> str:
    # maketables splits names at ":" to label interactions part by part; a term is one row.
    return term.replace(":", " × ")


def coef_table(res: MLMResults) -> pd.DataFrame:
    """The gammas as maketables reads them: ``b``, ``se``, ``t``, ``p``, ``ci95l``,
    ``ci95u`` (and ``df``), indexed by reduced-form term, named ``Coefficient``."""
    g = res.gamma
    stat_col = "t" if "t" in g.columns else "z"
    out = pd.DataFrame(
        {
            "b": g["estimate"].to_numpy(),
            "se": g["se"].to_numpy(),
            "t": g[stat_col].to_numpy(),
            "p": g["p"].to_numpy(),
            "ci95l": g["ci_lower"].to_numpy(),
            "ci95u": g["ci_upper"].to_numpy(),
            "gamma": list(g.index),
        },
        index=pd.Index([_row_key(t) for t in g["term"]], name="Coefficient"),
    )
    if "df" in g.columns:
        out["df"] = g["df"].to_numpy()
    return out


def _variances(res: MLMResults, *, long: bool = False) -> dict[str, float]:
    """``var(u0)`` -> tau00, ...; with ``long`` the keys name the term too
    (``var(u1): cwc(ses)``), so that they read well in a table whose labels come from one
    model (maketables takes the statistics' labels from the first model only)."""
    vc = res.variance_components.iloc[:-1]
    out = {
        (f"var({label}): {term}" if long else f"var({label})"): float(v)
        for label, v, term in zip(vc.index, vc["variance"], vc["term"], strict=True)
    }
    out["sigma2"] = float(res.sigma2)
    return out


def stat(res: MLMResults, key: str) -> Any:
    """A model statistic by maketables' key, or None when mlmwrap has no such statistic."""
    simple = {
        "N": lambda: int(res.nobs),
        "n_clusters": lambda: int(res.n_clusters),
        "deviance": lambda: float(res.deviance),
        "ll": lambda: float(res.loglik),
        "aic": lambda: float(res.aic),
        "bic": lambda: float(res.bic),
        "icc": lambda: float(res.icc),
        "method": lambda: res.method,
        "se_type": lambda: "model-based",
    }
    if key in simple:
        return simple[key]()
    if key in ("r2", "r2_marginal", "r2_conditional"):
        from mlmwrap.analysis.variance_explained import nakagawa_r2

        r = nakagawa_r2(res)
        return r.conditional if key == "r2_conditional" else r.marginal
    return {**_variances(res), **_variances(res, long=True)}.get(key)


def var_labels(res: MLMResults) -> dict[str, str]:
    """Each term's row label: the gamma label and what it multiplies."""
    labels = {}
    for label, g in res.gamma.iterrows():
        key = _row_key(g["term"])
        labels[key] = f"{label}: " + ("intercept" if key == "(Intercept)" else key)
    return labels


def stat_labels(res: MLMResults) -> dict[str, str]:
    """Printable names of the statistics of :func:`default_stat_keys`."""
    labels = {
        "N": "N (level-1 units)",
        "n_clusters": f"J (clusters: {res.cluster})",
        "deviance": "Deviance",
        "ll": "Log-likelihood",
        "aic": "AIC",
        "bic": "BIC",
        "sigma2": "sigma2 (level-1 residual)",
        "r2": "R² marginal (Nakagawa)",
        "r2_conditional": "R² conditional (Nakagawa)",
    }
    return labels


def default_stat_keys(res: MLMResults) -> list[str]:
    """N, J, the variance components, deviance, AIC and BIC."""
    return ["N", "n_clusters", *_variances(res, long=True), "deviance", "aic", "bic"]


def vcov_info(res: MLMResults) -> dict[str, Any]:
    """How the SEs were obtained."""
    return {"vcov_type": "model-based", "clustervar": None, "inference": res.inference}
