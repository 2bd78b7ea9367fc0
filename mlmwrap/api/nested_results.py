"""The results of a three-level fit: a facade over the nested design and its verified optimum.

What works for three levels: ``gamma`` (Satterthwaite df, lmerTest's), ``tau``,
``tau_by_level``, ``sigma2``, ``deviance``, ``formulas``, ``variance_partition()``,
``random_effects(level)``, ``predict()`` (on the estimation sample or new rows),
``compare()``, ``refit()``, ``summary()`` and ``to_json()``. Every other method of
:class:`~mlmwrap.api.results.MLMResults` raises an :class:`~mlmwrap.errors.MLMError`
saying it is not available for three-level models yet (never a wrong number).
"""

from __future__ import annotations

import json
from functools import cached_property

import numpy as np
import pandas as pd
from scipy import stats as sstats

from mlmwrap.analysis.inference import resolve_method
from mlmwrap.analysis.nested_inference import nested_satterthwaite
from mlmwrap.errors import MLMError
from mlmwrap.language.nested_spec import NestedFormulas, NestedSpec
from mlmwrap.model.nested import NestedStats
from mlmwrap.model.nested_design import NestedDesign
from mlmwrap.model.nested_eb import nested_eb
from mlmwrap.model.nested_fit import NestedFit
from mlmwrap.report.latex_three_level import three_level_latex
from mlmwrap.report.plots_three_level import caterpillar_level
from mlmwrap.report.summary_three_level import three_level_summary

__all__ = ["NestedResults"]


class NestedResults:
    """A fitted three-level model (see :func:`mlmwrap.fit`)."""

    def __init__(
        self,
        spec: NestedSpec,
        design: NestedDesign,
        stats: NestedStats,
        fit: NestedFit,
        seconds: float = 0.0,
        messages: tuple[str, ...] = (),
        data: pd.DataFrame | None = None,
        df_method: str = "satterthwaite",
    ) -> None:
        self.spec = spec
        self.data = data  # the caller's DataFrame (not copied), for refits
        self.design = design
        self.stats = stats
        self.optimum = fit
        self.seconds = seconds
        self.messages = messages
        if df_method not in ("satterthwaite", "z"):
            raise MLMError(
                f"df={df_method!r} is not available for three-level models yet",
                expected='"satterthwaite" or "z"',
            )
        self.df_method = df_method

    # -- model-level numbers ----------------------------------------------------------
    @property
    def reml(self) -> bool:
        return self.optimum.reml

    @property
    def method(self) -> str:
        return "REML" if self.reml else "ML"

    @property
    def outcome(self) -> str:
        return str(self.design.formulas.outcome)

    @property
    def n_levels(self) -> int:
        return self.spec.n_levels

    @property
    def clusters(self) -> tuple[str, ...]:
        return self.design.clusters

    @property
    def n_obs(self) -> int:
        return self.design.n_obs

    @property
    def nobs(self) -> int:
        """Level-1 rows used (as ``MLMResults.nobs``)."""
        return self.design.n_obs

    @property
    def n_units(self) -> tuple[int, ...]:
        return self.design.n_units

    @property
    def formulas(self) -> NestedFormulas:
        """The reduced form: patsy fixed formula, each level's random part, lme4 formula."""
        return self.design.formulas

    @property
    def sigma2(self) -> float:
        return float(self.optimum.sigma2)

    @property
    def deviance(self) -> float:
        """lme4's deviance: the REML criterion under REML, -2 log-likelihood under ML."""
        return float(self.optimum.deviance)

    @property
    def loglik(self) -> float:
        return -0.5 * self.deviance

    @property
    def n_variance_parameters(self) -> int:
        """Free entries of every tau plus sigma^2."""
        return int(sum(self.stats.n_theta)) + 1

    @property
    def n_params(self) -> int:
        """Gammas, free tau entries of every level and sigma^2 (lme4's ``df`` of logLik)."""
        return len(self.design.fixed_labels) + self.n_variance_parameters

    @property
    def aic(self) -> float:
        return self.deviance + 2 * self.n_params

    @property
    def bic(self) -> float:
        return self.deviance + self.n_params * float(np.log(self.nobs))

    @property
    def converged(self) -> bool:
        return self.optimum.converged

    @property
    def singular(self) -> bool:
        return self.optimum.singular

    @cached_property
    def tau_by_level(self) -> dict[str, pd.DataFrame]:
        """{cluster column: square tau of that level}, labelled as written (empty when a
        level has no random effect)."""
        out = {}
        for cluster, labels, tau in zip(
            self.clusters, self.design.random_labels, self.optimum.taus, strict=True
        ):
            out[cluster] = pd.DataFrame(tau, index=labels, columns=labels)
        return out

    @cached_property
    def tau(self) -> pd.DataFrame:
        """The block-diagonal covariance of all random effects (level 2, then level 3)."""
        labels = [lab for level in self.design.random_labels for lab in level]
        out = pd.DataFrame(0.0, index=labels, columns=labels)
        for t in self.tau_by_level.values():
            out.loc[t.index, t.columns] = t.to_numpy()
        return out

    @cached_property
    def df(self) -> np.ndarray:
        """The gammas' degrees of freedom: Satterthwaite's (lmerTest's), or infinite for
        ``df="z"``."""
        if self.df_method == "z":
            return np.full(self.stats.p, np.inf)
        return nested_satterthwaite(self.stats, self.optimum)

    @cached_property
    def gamma(self) -> pd.DataFrame:
        """estimate, se (model-based, lme4's), df (Satterthwaite), t, p, 95% CI; for
        ``df="z"`` the column ``t`` is ``z`` and there is no ``df``."""
        est = self.optimum.beta
        se = np.sqrt(np.diag(self.optimum.cov_beta))
        df = self.df
        t = est / se
        p = 2 * sstats.t.sf(np.abs(t), df)
        q = sstats.t.ppf(0.975, df)
        z = self.df_method == "z"
        out = pd.DataFrame(
            {
                "estimate": est,
                "se": se,
                "df": df,
                "z" if z else "t": t,
                "p": p,
                "ci_low": est - q * se,
                "ci_high": est + q * se,
            },
            index=pd.Index(self.design.fixed_labels, name="gamma"),
        )
        if z:
            out = out.drop(columns="df")
        out.attrs["df_method"] = self.df_method
        return out

    def with_inference(self, df: str = "satterthwaite") -> NestedResults:
        """The same fit with its gammas tested another way (no refit): ``"satterthwaite"``
        or ``"z"``."""
        return NestedResults(
            self.spec,
            self.design,
            self.stats,
            self.optimum,
            seconds=self.seconds,
            messages=self.messages,
            data=self.data,
            df_method=resolve_method(df),
        )

    def variance_partition(self) -> pd.Series:
        """Share of the outcome's variance at each level (null model), and the correlation
        of two level-1 units of one level-2 unit / of two level-2 units of one level-3 unit.

        Raises
        ------
        MLMError
            A level has a random slope (the variance then depends on the predictor).
        """
        parts = {}
        for level, tau in enumerate(self.tau_by_level.values(), start=2):
            rand = self.spec.random[level - 2]
            if any(r.expr is not None for r in rand):
                raise MLMError(
                    "the variance partition is defined for random intercepts only; level "
                    f"{level} has a random slope",
                    hint="fit the null model (y = p0 + e, p0 = b00 + r0, b00 = g000 + u00)",
                )
            parts[level] = float(tau.to_numpy().sum()) if len(tau) else 0.0
        total = self.sigma2 + sum(parts.values())
        out = {"level 1": self.sigma2 / total}
        for level, v in parts.items():
            out[f"level {level}"] = v / total
        out["corr same level-2 unit"] = (parts.get(2, 0.0) + parts.get(3, 0.0)) / total
        out["corr same level-3 unit"] = parts.get(3, 0.0) / total
        return pd.Series(out, name="variance partition")

    def r2(self, null=None, *, refit: bool = False) -> pd.Series:
        """Nakagawa & Schielzeth's marginal and conditional R² with the variances they divide
        (``var_random`` summed over the levels, as ``performance::r2_nakagawa``).

        Snijders & Bosker's and Rights & Sterba's measures are not available for three
        levels yet: ``null`` and ``refit`` are accepted for the two-level signature and
        ``.attrs["notes"]`` says so.
        """
        from mlmwrap.analysis.variance_explained import nakagawa_r2

        nak = nakagawa_r2(self)
        out = pd.Series(
            {
                "marginal": nak.marginal,
                "conditional": nak.conditional,
                "var_fixed": nak.var_fixed,
                "var_random": nak.var_random,
                "var_residual": nak.var_residual,
            },
            name="R2",
        )
        out.attrs["notes"] = [
            "Snijders & Bosker's and Rights & Sterba's R² are not available for three-level "
            "models yet"
        ]
        return out

    def variance_explained(self, reference: NestedResults) -> pd.DataFrame:
        """Raudenbush & Bryk's proportional reduction of every variance the two models
        share (sigma^2 and each random effect's variance, by label), against ``reference``
        (fit to the same rows)."""
        from mlmwrap.analysis.shared.samples import check_same_sample

        if not isinstance(reference, NestedResults):
            raise MLMError(
                "the reference of a three-level model must be a three-level model",
                hint="fit the reference with the same cluster list",
            )
        check_same_sample(reference, self, "reference", "res")
        rows = []
        for cluster in self.clusters:
            mine, theirs = self.tau_by_level[cluster], reference.tau_by_level[cluster]
            for lab in mine.index:
                if lab in theirs.index:
                    rows.append(
                        (lab, cluster, float(theirs.loc[lab, lab]), float(mine.loc[lab, lab]))
                    )
        rows.append(("sigma2", "level 1", reference.sigma2, self.sigma2))
        out = pd.DataFrame(rows, columns=["component", "level", "reference", "model"])
        out["reduction"] = (out["reference"] - out["model"]) / out["reference"]
        return out.set_index("component")

    # -- units --------------------------------------------------------------------------
    @cached_property
    def _eb(self):
        d = self.design
        return nested_eb(self.optimum, d.X, d.Zs, d.y, d.codes)

    def random_effects(self, level: int | str = 2) -> pd.DataFrame:
        """Empirical Bayes estimates of one level's random effects, with their conditional
        SDs (``se_r0``...); ``level`` is 2, 3 or the cluster column."""
        if isinstance(level, str):
            if level not in self.clusters:
                raise MLMError(
                    f"'{level}' is not a cluster of this model", expected=" or ".join(self.clusters)
                )
            level = self.clusters.index(level) + 2
        if level not in (2, 3):
            raise MLMError(
                f"level {level}: a three-level model has random effects at levels 2 and 3",
                expected="2 or 3",
            )
        est, cov = self._eb[level - 2]
        labels = self.design.random_labels[level - 2]
        index = self.design.unit_ids[level - 2]
        if level == 2:
            index = pd.MultiIndex.from_tuples(list(index), names=list(reversed(self.clusters)))
        else:
            index = pd.Index(index, name=self.clusters[1])
        out = pd.DataFrame(est, index=index, columns=labels)
        for i, lab in enumerate(labels):
            out[f"se_{lab}"] = np.sqrt(cov[:, i, i])
        return out

    def predict(
        self,
        newdata: pd.DataFrame | None = None,
        *,
        include_random: bool = True,
        detail: bool = False,
    ) -> pd.Series | pd.DataFrame:
        """Predicted outcome: X gamma, plus the EB effects of the units that were in the fit.

        ``newdata=None``: the fitted values of the estimation sample (indexed like its rows).
        New rows are centered with the fit's constants and a unit not in the fit gets the
        fixed part only, said in a :class:`~mlmwrap.errors.PredictionWarning`
        (:mod:`mlmwrap.model.nested_predict`). ``include_random=False``: the fixed part only.
        ``detail=True``: a DataFrame with ``fixed``, ``random``, ``prediction`` and one
        ``known_<cluster>`` column per level.
        """
        from mlmwrap.model.validation import check_flag

        include_random = check_flag(include_random, "include_random")
        detail = check_flag(detail, "detail")
        d = self.design
        effects = [est for est, _ in self._eb]
        if newdata is None:
            fixed = pd.Series(d.X @ self.optimum.beta, index=d.row_index, name="fixed")
            random = np.zeros(len(fixed))
            for est, Z, codes in zip(effects, d.Zs, d.codes, strict=True):
                random = random + np.einsum("nq,nq->n", Z, est[codes])
            random = pd.Series(random, index=d.row_index, name="random")
            known = pd.DataFrame(True, index=d.row_index, columns=list(self.clusters))
        else:
            from mlmwrap.model.nested_predict import predict_nested

            parts = predict_nested(d, self.optimum.beta, effects, newdata)
            fixed, random, known = parts.fixed, parts.random, parts.known
            self._warn_prediction(fixed, known, include_random)
        total = fixed + random if include_random else fixed.copy()
        total.name = "prediction"
        if not detail:
            return total
        out = pd.DataFrame({"fixed": fixed, "random": random, "prediction": total})
        for c in known.columns:
            out[f"known_{c}"] = known[c]
        return out

    def _warn_prediction(self, fixed: pd.Series, known: pd.DataFrame, include_random: bool):
        import warnings

        from mlmwrap.errors import PredictionWarning

        said = []
        missing = int(fixed.isna().sum())
        if missing:
            said.append(f"{missing} rows with a missing predictor or cluster: NaN")
        if include_random:
            ok = fixed.notna()
            for c in known.columns:
                new = int((~known[c] & ok).sum())
                if new:
                    said.append(
                        f"{new} rows in '{c}' units not in the fit: their '{c}' random "
                        "effects are set to 0 (their expected value)"
                    )
        if said:
            warnings.warn("; ".join(said), PredictionWarning, stacklevel=3)

    def refit(
        self,
        equations: str | NestedSpec | None = None,
        *,
        data: pd.DataFrame | None = None,
        reml: bool | None = None,
    ) -> NestedResults:
        """Fit again with some settings changed: ``equations`` (default this model's),
        ``data`` (default the data of this fit) and ``reml``; the clusters stay."""
        from mlmwrap.api.fitting import fit

        if data is None:
            data = self.data
        if data is None:
            raise MLMError(
                "this fit keeps no data to refit on", hint="pass data=, the DataFrame it was fit to"
            )
        return fit(
            self.spec if equations is None else equations,
            data,
            cluster=list(self.clusters),
            reml=self.reml if reml is None else reml,
            df=self.df_method,
        )

    def compare(
        self,
        *larger: NestedResults,
        names: list[str] | None = None,
        refit_ml: bool | str = "auto",
    ):
        """Likelihood-ratio tests of this model against larger nested models, refitting by
        ML where REML deviances are not comparable. See :func:`mlmwrap.compare`."""
        from mlmwrap.analysis.compare import compare

        return compare(self, *larger, names=names, refit_ml=refit_ml)

    # -- report -------------------------------------------------------------------------
    def summary(self) -> str:
        return three_level_summary(self)

    def __str__(self) -> str:
        return self.summary()

    def equations(self, format: str = "text") -> str:
        """The model as written, level by level: ``"text"`` or ``"latex"`` (HLM3 notation:
        pi, beta, gamma; subscripts ijk, jk, k)."""
        if format == "latex":
            return three_level_latex(self.spec, self.design.columns)
        if format == "text":
            return str(self.spec)
        raise MLMError(f"format={format!r}", expected='"text" or "latex"')

    def _repr_html_(self) -> str:
        import html

        return f"<pre>{html.escape(self.summary())}</pre>"

    def caterpillar(self, level: int | str = 2, ax=None):
        """Caterpillar plot of one level's EB estimates (matplotlib Figure)."""
        return caterpillar_level(self, level, ax=ax)

    def fixed_table(self, digits: int = 3) -> pd.DataFrame:
        """The gammas as a table: coefficient, SE, t, df, p (rounded)."""
        g = self.gamma
        stat = "z" if "z" in g.columns else "t"
        cols = {"Coefficient": g.estimate, "SE": g.se, stat: g[stat]}
        if "df" in g.columns:
            cols["df"] = g.df
        cols["p"] = g.p
        return pd.DataFrame(cols).round(digits)

    def variance_table(self, digits: int = 4) -> pd.DataFrame:
        """Variance components of every level: level, variance, SD."""
        rows = [
            (lab, f"{lv} ({c})", float(t.loc[lab, lab]))
            for lv, (c, t) in enumerate(self.tau_by_level.items(), start=2)
            for lab in t.index
        ]
        rows.append(("e", "1", self.sigma2))
        out = pd.DataFrame(rows, columns=["effect", "level", "variance"]).set_index("effect")
        out["sd"] = np.sqrt(out["variance"])
        return out.round(digits)

    def to_json(self, *, indent: int | None = 2) -> str:
        """Gammas, every tau, sigma^2, deviance, formulas and sample as JSON."""
        out = {
            "levels": self.n_levels,
            "clusters": list(self.clusters),
            "reml": self.reml,
            "n_obs": self.n_obs,
            "n_units": list(self.n_units),
            "formulas": {"fixed": self.formulas.fixed, "lme4": self.formulas.lme4},
            "gamma": json.loads(self.gamma.to_json(orient="index")),
            "tau_by_level": {k: v.to_dict() for k, v in self.tau_by_level.items()},
            "sigma2": self.sigma2,
            "deviance": self.deviance,
            "converged": self.converged,
            "singular": self.singular,
            "messages": list(self.messages),
        }
        return json.dumps(out, indent=indent)

    @property
    def statsmodels(self):
        raise MLMError(
            "a three-level model is not a single statsmodels MixedLM, so res.statsmodels is "
            "not available for three-level models",
            hint="check the fit in R with res.formulas.lme4",
        )

    def __getattr__(self, name: str):
        from mlmwrap.api.results import MLMResults

        if not name.startswith("_") and hasattr(MLMResults, name):
            raise MLMError(
                f"res.{name} is not available for three-level models yet",
                hint="available: gamma, tau, tau_by_level, sigma2, deviance, formulas, "
                "variance_partition(), random_effects(level), predict(), compare(), summary(), "
                "fixed_table(), variance_table(), equations(), caterpillar(level), to_json()",
            )
        raise AttributeError(name)
