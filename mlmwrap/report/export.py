"""The data behind the tables: :class:`TableData`, a tidy DataFrame, and JSON.

Every table of :mod:`mlmwrap.report.tables` is built from a :class:`TableData`, which holds what
the tables show and nothing else. :func:`table_data` takes it from a fit; :func:`from_json`
from the JSON that :func:`to_json` wrote, so a table can be rebuilt later without refitting.

Inference: the gamma table may come with degrees of freedom, either in ``res.gamma`` or
passed as ``gamma=`` (e.g. ``mlmwrap.inference.gamma_table(res, df="kenward-roger")``).
When it has a ``df`` column with finite values, the tables show ``t`` (its ``t`` column,
else estimate/SE), ``df`` and ``p``; otherwise ``z`` and ``p``. Its ``attrs`` may describe
the method: ``"df_method"``, ``"inference"`` (the sentence for the table note) and
``"level"`` (the CI's confidence level, default 0.95).

Examples
--------
>>> import mlmwrap
>>> res = mlmwrap.fit('''
...     mathach = b0 + b1*cwc(ses) + e
...     b0 = g00 + u0
...     b1 = g10 + u1
... ''', data=mlmwrap.datasets.load_hsb(), cluster="school")
>>> tidy = to_frame(res)
>>> tidy.loc[tidy["part"] == "fixed", ["term", "estimate", "se"]].round(3)
  term  estimate     se
0  g00    12.636  0.245
1  g10     2.193  0.128
>>> from_json(to_json(res)).gamma["estimate"].round(3).tolist()
[12.636, 2.193]
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from mlmwrap.errors import MLMError

if TYPE_CHECKING:  # pragma: no cover
    from mlmwrap.api.results import MLMResults

__all__ = ["TableData", "table_data", "to_frame", "to_json", "from_json", "SCHEMA"]

#: Identifies the JSON layout :func:`to_json` writes (bump when it changes).
SCHEMA = "mlmwrap.results/1"
_GAMMA_COLUMNS = ("estimate", "se", "z", "t", "df", "p", "ci_lower", "ci_upper")


# -- the data behind the tables --------------------------------------------------------------
@dataclass(frozen=True)
class TableData:
    """Everything the tables show, from a fit or from JSON.

    Attributes
    ----------
    gamma : pandas.DataFrame
        As ``res.gamma`` (estimate, se, z or t/df, p, ci_lower, ci_upper, beta, level1,
        predictor, term), indexed by gamma label.
    tau, tau_corr : pandas.DataFrame
        As ``res.tau`` and ``res.tau_corr``.
    zero_covariances : tuple of (str, str)
        The covariances fixed at 0 by ``cov(u0, u1) = 0`` lines (empty: tau unstructured).
    random_terms : list of str
        What each random effect multiplies (``'(intercept)'``, ``'cwc(ses)'``).
    sigma2 : float
    residual : str
        The level-1 residual's name as written (``'e'`` or ``'r'``).
    outcome, cluster, method : str
    nobs, n_clusters : int
    deviance, loglik, aic, bic : float
    n_params : int
    icc : float
    icc_name : str
    converged, singular : bool
    hessian_pd : bool or None
    messages : tuple of str
    equations_text, equations_latex, source : str
        The equations with estimates (plain text, LaTeX ``aligned``) and as the user wrote them.
    df_method, inference : str or None
        How the gammas' df were obtained and the sentence that says so (from
        ``gamma.attrs``), when they were.
    level : float
        Confidence level of the CIs.
    version : str
        mlmwrap's version that made the fit.
    """

    gamma: pd.DataFrame
    tau: pd.DataFrame
    tau_corr: pd.DataFrame
    random_terms: list[str]
    sigma2: float
    residual: str
    outcome: str
    cluster: str
    method: str
    nobs: int
    n_clusters: int
    deviance: float
    loglik: float
    aic: float
    bic: float
    n_params: int
    icc: float
    icc_name: str
    converged: bool
    singular: bool
    hessian_pd: bool | None
    messages: tuple[str, ...] = ()
    equations_text: str = ""
    equations_latex: str = ""
    source: str = ""
    df_method: str | None = None
    inference: str | None = None
    level: float = 0.95
    version: str = ""
    cluster_sizes: dict[str, float] = field(default_factory=dict)
    zero_covariances: tuple[tuple[str, str], ...] = ()


def table_data(res: MLMResults | TableData, gamma: pd.DataFrame | None = None) -> TableData:
    """The :class:`TableData` of a fit (a :class:`TableData` is returned as is).

    ``gamma`` replaces ``res.gamma`` (same index; e.g. a table with t-tests and df).
    """
    if gamma is not None:
        gamma = _check_gamma(res, gamma)
    if isinstance(res, TableData):
        if gamma is None:
            return res
        return replace(res, gamma=gamma, **_attrs(gamma))
    from mlmwrap._version import __version__
    from mlmwrap.report.latex import equations

    gamma = res.gamma.copy() if gamma is None else gamma
    terms = list(res.design.random_terms)
    return TableData(
        gamma=gamma,
        tau=res.tau.copy(),
        tau_corr=res.tau_corr.copy(),
        zero_covariances=tuple(res.spec.zero_covariances),
        random_terms=["(intercept)" if t == "(Intercept)" else t for t in terms],
        sigma2=float(res.sigma2),
        residual=res.spec.residual or "e",
        outcome=str(res.outcome),
        cluster=str(res.cluster),
        method=res.method,
        nobs=int(res.nobs),
        n_clusters=int(res.n_clusters),
        deviance=float(res.deviance),
        loglik=float(res.loglik),
        aic=float(res.aic),
        bic=float(res.bic),
        n_params=int(res.n_params),
        icc=float(res.icc),
        icc_name=res.icc_name,
        converged=bool(res.converged),
        singular=bool(res.singular),
        hessian_pd=None if res.hessian_pd is None else bool(res.hessian_pd),
        messages=tuple(res.messages),
        equations_text=equations(res, "text"),
        equations_latex=equations(res, "latex"),
        source=res.spec.source,
        version=__version__,
        **_attrs(gamma),
        cluster_sizes=dict(res.cluster_sizes),
    )


def _attrs(gamma: pd.DataFrame) -> dict[str, Any]:
    level = gamma.attrs.get("level", 0.95)
    method, inference = gamma.attrs.get("df_method"), gamma.attrs.get("inference")
    has_df = "df" in gamma.columns and bool(np.isfinite(gamma["df"]).any())
    if method == "z" and has_df:  # df added to a z table by hand: its description is stale
        method = inference = None
    return {"df_method": method, "inference": inference, "level": float(level)}


def _check_gamma(res: MLMResults | TableData, gamma: pd.DataFrame) -> pd.DataFrame:
    """A replacement gamma table must describe the same gammas with the columns we show."""
    if not isinstance(gamma, pd.DataFrame):
        raise MLMError(f"gamma must be a DataFrame like res.gamma, not {type(gamma).__name__}")
    missing = [c for c in ("estimate", "se", "p", "ci_lower", "ci_upper") if c not in gamma]
    if missing:
        raise MLMError(f"the gamma table lacks the column(s) {', '.join(missing)}")
    if list(gamma.index) != list(res.gamma.index):
        raise MLMError(
            "the gamma table's rows are not this fit's gammas "
            f"({', '.join(map(str, gamma.index))} vs {', '.join(map(str, res.gamma.index))})"
        )
    out = gamma.copy()
    for col in ("beta", "level1", "predictor", "term"):
        if col not in out:
            out[col] = res.gamma[col]
    return out


def uses_df(gamma: pd.DataFrame) -> bool:
    """Whether the gammas come with (finite) degrees of freedom: t-tests, not z."""
    return "df" in gamma.columns and bool(np.isfinite(gamma["df"].to_numpy(float)).any())


def test_statistic(gamma: pd.DataFrame) -> tuple[str, pd.Series]:
    """``('t', t)`` when the gammas have df, else ``('z', z)``; computed if no column."""
    with_df = uses_df(gamma)
    for col in ("t",) if with_df else ("z", "t"):
        if col in gamma.columns:
            return ("t" if with_df else "z"), gamma[col]
    return ("t" if with_df else "z"), gamma["estimate"] / gamma["se"]


# -- the tidy frame ---------------------------------------------------------------------------
def to_frame(res: MLMResults | TableData, gamma: pd.DataFrame | None = None) -> pd.DataFrame:
    """Every estimate in one long (tidy) DataFrame, one row per number.

    Columns
    -------
    part : str
        ``'fixed'`` (gammas), ``'random'`` (variance components) or ``'fit'``.
    term : str
        Fixed: the gamma label (``'g01'``, ``'g02[Catholic]'``). Random: ``'tau00'``,
        ``'tau10'`` (covariance of u1 and u0), ``'sigma2'``, ``'sd(u0)'``, ``'sd(e)'``,
        ``'cor(u1,u0)'``. Fit: ``'deviance'``, ``'loglik'``, ``'aic'``, ``'bic'``,
        ``'icc'``, ``'nobs'``, ``'n_clusters'``, ``'n_params'``.
    estimate : float
    se, statistic, df, p, ci_lower, ci_upper : float
        Fixed rows only (NaN elsewhere); ``statistic`` is z, or t when the gammas have df
        (then ``df`` is filled).
    beta, level1, predictor, effect : str
        Fixed rows: the gamma's beta (``'b1'``), that beta's level-1 predictor, the
        level-2 predictor and the reduced-form term (``'cwc(ses):meanses'``). Random rows:
        ``effect`` is what the random effect multiplies (``'cwc(ses)'``), or both for a
        covariance (``'cwc(ses), (intercept)'``). Fit rows: ``effect`` describes the number.

    ``gamma`` replaces ``res.gamma`` (e.g. a table with t-tests and df).

    Examples
    --------
    >>> import mlmwrap
    >>> res = mlmwrap.fit("mathach = b0 + e\\nb0 = g00 + u0",
    ...                   data=mlmwrap.datasets.load_hsb(), cluster="school")
    >>> tidy = to_frame(res)
    >>> tidy.loc[tidy.part != "fit", ["part", "term", "estimate", "se"]].round(3)
         part    term  estimate     se
    0   fixed     g00    12.637  0.244
    1  random   tau00     8.614    NaN
    2  random  sigma2    39.148    NaN
    3  random  sd(u0)     2.935    NaN
    4  random    sd(e)     6.257    NaN
    """
    d = table_data(res, gamma)
    g = d.gamma
    name, stat = test_statistic(g)
    nan = float("nan")
    rows: list[dict[str, Any]] = []
    for label, row in g.iterrows():
        rows.append(
            {
                "part": "fixed",
                "term": str(label),
                "estimate": float(row["estimate"]),
                "se": float(row["se"]),
                "statistic": float(stat[label]),
                "df": float(row["df"]) if uses_df(g) else nan,
                "p": float(row["p"]),
                "ci_lower": float(row["ci_lower"]),
                "ci_upper": float(row["ci_upper"]),
                "beta": row["beta"],
                "level1": row["level1"],
                "predictor": row["predictor"],
                "effect": row["term"],
            }
        )
    labels = list(d.tau.index)
    idx = [lab[1:] for lab in labels]
    tau = d.tau.to_numpy()

    def random_row(term: str, value: float, effect: str) -> None:
        rows.append({"part": "random", "term": term, "estimate": float(value), "effect": effect})

    fixed = {frozenset(pair) for pair in d.zero_covariances}
    bases = [lab.split("[", 1)[0] for lab in labels]  # u1[Black] is one of u1's effects
    for i in range(len(labels)):
        for j in range(i + 1):
            effect = d.random_terms[i] if i == j else f"{d.random_terms[i]}, {d.random_terms[j]}"
            if frozenset((bases[i], bases[j])) in fixed:
                effect += " (fixed at 0)"
            random_row(f"tau{pair_label(idx[i], idx[j])}", tau[i, j], effect)
    random_row("sigma2", d.sigma2, "(level-1 residual)")
    for i, lab in enumerate(labels):
        random_row(f"sd({lab})", math.sqrt(max(tau[i, i], 0.0)), d.random_terms[i])
    random_row(f"sd({d.residual})", math.sqrt(d.sigma2), "(level-1 residual)")
    corr = d.tau_corr.to_numpy()
    for i in range(len(labels)):
        for j in range(i):
            effect = f"{d.random_terms[i]}, {d.random_terms[j]}"
            random_row(f"cor({labels[i]},{labels[j]})", corr[i, j], effect)
    crit = "REML criterion" if d.method == "REML" else "-2 log-likelihood"
    for term, value, what in [
        ("deviance", d.deviance, f"deviance ({crit})"),
        ("loglik", d.loglik, "log-likelihood" + (" (REML)" if d.method == "REML" else "")),
        ("aic", d.aic, "AIC"),
        ("bic", d.bic, "BIC"),
        ("icc", d.icc, d.icc_name),
        ("nobs", d.nobs, "level-1 units"),
        ("n_clusters", d.n_clusters, f"clusters ({d.cluster})"),
        ("n_params", d.n_params, "estimated parameters"),
    ]:
        rows.append({"part": "fit", "term": term, "estimate": float(value), "effect": what})
    columns = ["part", "term", "estimate", "se", "statistic", "df", "p", "ci_lower"]
    columns += ["ci_upper", "beta", "level1", "predictor", "effect"]
    return pd.DataFrame(rows, columns=columns)


def pair_label(a: str, b: str) -> str:
    return f"{a}{b}" if len(a) == 1 and len(b) == 1 else f"{a},{b}"


# -- JSON -------------------------------------------------------------------------------------
def _clean(x: Any) -> Any:
    """JSON-safe values: NaN and infinities become null, numpy scalars Python numbers."""
    if isinstance(x, dict):
        return {str(k): _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    if isinstance(x, (np.bool_, bool)):
        return bool(x)
    if isinstance(x, (np.integer, int)):
        return int(x)
    if isinstance(x, (np.floating, float)):
        return float(x) if math.isfinite(x) else None
    return x


def _nan(x: Any) -> float:
    return float("nan") if x is None else float(x)


def to_json(
    res: MLMResults | TableData,
    *,
    indent: int | None = 2,
    gamma: pd.DataFrame | None = None,
) -> str:
    """Everything needed to rebuild the tables, as JSON (NaN written as ``null``).

    Keys: ``schema``, ``mlmwrap_version``, ``outcome``, ``cluster``, ``method``, ``nobs``,
    ``n_clusters``, ``cluster_sizes``, ``source`` (the equations as written),
    ``equations`` (``text`` and ``latex`` with estimates), ``inference`` (``statistic``
    ``'z'`` or ``'t'``, ``df_method``, ``description``, ``level``), ``fixed`` (one object
    per gamma with the columns of ``res.gamma``), ``tau`` (``labels``, ``terms``,
    ``matrix``, ``corr``), ``sigma2``, ``residual``, ``fit`` (deviance, loglik, aic, bic,
    n_params, icc, icc_name), ``convergence`` (converged, singular, hessian_pd, messages).
    Numbers are written at full precision. ``gamma`` replaces ``res.gamma`` (as in
    :func:`fixed_table`).

    Examples
    --------
    >>> import json, mlmwrap
    >>> res = mlmwrap.fit("mathach = b0 + e\\nb0 = g00 + u0",
    ...                   data=mlmwrap.datasets.load_hsb(), cluster="school")
    >>> out = json.loads(to_json(res))
    >>> out["fixed"][0]["gamma"], round(out["fixed"][0]["estimate"], 3), out["tau"]["labels"]
    ('g00', 12.637, ['u0'])
    >>> from mlmwrap.report.tables import fixed_table
    >>> fixed_table(from_json(to_json(res))) == fixed_table(res)
    True
    """
    d = table_data(res, gamma)
    g = d.gamma
    fixed = []
    for label, row in g.iterrows():
        item: dict[str, Any] = {"gamma": str(label)}
        for col in ("beta", "level1", "predictor", "term"):
            item[col] = str(row[col])
        for col in _GAMMA_COLUMNS:
            if col in g.columns:
                item[col] = row[col]
        fixed.append(item)
    payload = {
        "schema": SCHEMA,
        "mlmwrap_version": d.version,
        "outcome": d.outcome,
        "cluster": d.cluster,
        "method": d.method,
        "nobs": d.nobs,
        "n_clusters": d.n_clusters,
        "cluster_sizes": d.cluster_sizes,
        "source": d.source,
        "equations": {"text": d.equations_text, "latex": d.equations_latex},
        "inference": {
            "statistic": test_statistic(g)[0],
            "df_method": d.df_method,
            "description": d.inference,
            "level": d.level,
        },
        "fixed": fixed,
        "tau": {
            "labels": list(d.tau.index),
            "terms": d.random_terms,
            "matrix": d.tau.to_numpy().tolist(),
            "corr": d.tau_corr.to_numpy().tolist(),
            "zero_covariances": [list(pair) for pair in d.zero_covariances],
        },
        "sigma2": d.sigma2,
        "residual": d.residual,
        "fit": {
            "deviance": d.deviance,
            "loglik": d.loglik,
            "aic": d.aic,
            "bic": d.bic,
            "n_params": d.n_params,
            "icc": d.icc,
            "icc_name": d.icc_name,
        },
        "convergence": {
            "converged": d.converged,
            "singular": d.singular,
            "hessian_pd": d.hessian_pd,
            "messages": list(d.messages),
        },
    }
    return json.dumps(_clean(payload), indent=indent, allow_nan=False, ensure_ascii=False)


def from_json(text: str) -> TableData:
    """Read what :func:`to_json` wrote back into a :class:`TableData` (for the tables).

    Raises
    ------
    MLMError
        When the text is not JSON from :func:`to_json`.
    """
    if not isinstance(text, str | bytes | bytearray):
        raise MLMError(
            f"from_json() reads the text that to_json() wrote, not a {type(text).__name__}",
            hint="e.g. from_json(open('results.json').read()), or from_json(to_json(res))",
        )
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as err:
        raise MLMError(f"not valid JSON: {err}") from None
    if not isinstance(obj, dict) or obj.get("schema") != SCHEMA:
        found = obj.get("schema") if isinstance(obj, dict) else type(obj).__name__
        raise MLMError(
            f"not an mlmwrap results file (expected schema {SCHEMA!r}, found {found!r}); "
            "write one with mlmwrap.export.to_json(res)"
        )
    try:
        fixed = obj["fixed"]
        gamma = pd.DataFrame(
            {
                col: [_nan(f.get(col)) for f in fixed]
                for col in _GAMMA_COLUMNS
                if all(col in f for f in fixed) and fixed
            }
        )
        for col in ("beta", "level1", "predictor", "term"):
            gamma[col] = [f[col] for f in fixed]
        gamma.index = pd.Index([f["gamma"] for f in fixed], name="gamma")
        inference = obj["inference"]
        for key, attr in [("df_method", "df_method"), ("description", "inference")]:
            if inference.get(key) is not None:
                gamma.attrs[attr] = inference[key]
        gamma.attrs["level"] = float(inference.get("level", 0.95))
        labels = obj["tau"]["labels"]

        def matrix(rows: list) -> pd.DataFrame:
            values = np.array([[_nan(v) for v in r] for r in rows], dtype=float)
            return pd.DataFrame(values.reshape(len(labels), len(labels)), labels, labels)

        fit, conv = obj["fit"], obj["convergence"]
        return TableData(
            gamma=gamma,
            tau=matrix(obj["tau"]["matrix"]),
            tau_corr=matrix(obj["tau"]["corr"]),
            random_terms=list(obj["tau"]["terms"]),
            sigma2=_nan(obj["sigma2"]),
            residual=obj["residual"],
            outcome=obj["outcome"],
            cluster=obj["cluster"],
            method=obj["method"],
            nobs=int(obj["nobs"]),
            n_clusters=int(obj["n_clusters"]),
            deviance=_nan(fit["deviance"]),
            loglik=_nan(fit["loglik"]),
            aic=_nan(fit["aic"]),
            bic=_nan(fit["bic"]),
            n_params=int(fit["n_params"]),
            icc=_nan(fit["icc"]),
            icc_name=fit["icc_name"],
            converged=bool(conv["converged"]),
            singular=bool(conv["singular"]),
            hessian_pd=conv["hessian_pd"],
            messages=tuple(conv["messages"]),
            equations_text=obj["equations"]["text"],
            equations_latex=obj["equations"]["latex"],
            source=obj.get("source", ""),
            df_method=inference.get("df_method"),
            inference=inference.get("description"),
            level=float(inference.get("level", 0.95)),
            version=obj.get("mlmwrap_version", ""),
            cluster_sizes=dict(obj.get("cluster_sizes", {})),
            zero_covariances=tuple(
                (str(a), str(b)) for a, b in obj["tau"].get("zero_covariances", [])
            ),
        )
    except (KeyError, TypeError, ValueError) as err:
        raise MLMError(f"mlmwrap results file is incomplete or damaged: {err!r}") from None
