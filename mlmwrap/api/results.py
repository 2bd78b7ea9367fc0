"""The results of a fit, in the researcher's terms (gamma, tau, sigma2, ICC).

:class:`MLMResults` is a facade: the model-level numbers come from
:class:`~mlmwrap.model.fitted.FittedModel`, the gamma table's tests from
:mod:`mlmwrap.analysis.inference`, and every other method delegates to an analysis
(:mod:`mlmwrap.analysis`) or a report (:mod:`mlmwrap.report`). Every number is computed once;
the display methods only format. The statsmodels results object is built on first access to
:attr:`MLMResults.statsmodels`.
"""

from __future__ import annotations

import copy
from functools import cached_property

import numpy as np
import pandas as pd

from mlmwrap.analysis.inference import gamma_table
from mlmwrap.language.spec import ModelSpec
from mlmwrap.model.design import Design
from mlmwrap.model.engine import ClusterStats, Optimum
from mlmwrap.model.fitted import FittedModel

__all__ = ["MLMResults"]


class MLMResults(FittedModel):
    """A fitted two-level model.

    Attributes
    ----------
    gamma : pandas.DataFrame
        Fixed effects, indexed by gamma label (``g00``, ``g01``, ``g02[Catholic]``; a
        categorical level-1 predictor ``b1*C(ethnicity)`` gives ``g10[Black]``, ...).
        Columns: ``estimate``; ``se`` (model-based, ``sqrt(diag(sigma2 (X'V^-1 X)^-1))``
        as lme4 and HLM report it); ``z`` (estimate / se); ``p`` (two-sided, standard
        normal); ``ci_lower``, ``ci_upper`` (95% Wald); ``beta`` (the level-1 coefficient
        the gamma belongs to); ``level1`` (that beta's level-1 predictor); ``predictor``
        (the level-2 predictor, ``(constant)`` for ``gK0``); ``term`` (the reduced-form
        term, as in the mixed model's design).
    tau : pandas.DataFrame
        Covariance matrix of the random effects, index and columns the random effects
        as written (``u0``, ``u1``); a random categorical level-1 predictor has one per
        non-reference category (``u1[Black]``, ``u1[White]``).
    tau_corr : pandas.DataFrame
        The same as correlations (NaN where a variance is 0).
    tau_by_level : dict
        Cluster column -> that level's tau (for a two-level model, ``{cluster: tau}``).
    tau_fixed : pandas.DataFrame
        Boolean, like ``tau``: True where a covariance is fixed at 0 by a line
        ``cov(u0, u1) = 0`` (not estimated; ``tau`` holds an exact 0 there).
    sigma2 : float
        Level-1 residual variance.
    icc : float
        For a model with no predictors and a random intercept only, the intraclass
        correlation tau00 / (tau00 + sigma2). For any other model the same ratio of
        *residual* variances, the residual ICC (:attr:`icc_name` says which).
    deviance : float
        -2 log-likelihood (ML) or the REML criterion (REML), with lme4's constants.
    loglik, aic, bic : float
        ``-deviance / 2``; ``deviance + 2k``; ``deviance + k log(n)`` with ``k`` the number
        of parameters (gammas, tau's distinct entries not fixed at 0, sigma2). Under REML
        they use the REML criterion, as lme4 does: compare models that differ in their fixed
        part only when fitted by ML.
    nobs, n_clusters : int
    cluster_sizes : dict
        ``min``, ``mean``, ``max`` rows per cluster.
    sample : SampleInfo
        Rows and clusters in the data, used and dropped by listwise deletion.
    converged, singular : bool
        Whether the optimum was verified, and whether tau is singular (a variance on the
        boundary at 0 or a correlation of +-1).
    hessian_pd : bool or None
        Whether the deviance's Hessian is positive definite at the optimum (None for a
        singular fit, where it is not defined).
    messages : tuple of str
        Every warning issued by the fit, in words.

    Examples
    --------
    >>> import mlmwrap
    >>> res = mlmwrap.fit('''
    ...     mathach = b0 + b1*cwc(ses) + e
    ...     b0 = g00 + u0
    ...     b1 = g10 + u1
    ... ''', data=mlmwrap.datasets.load_hsb(), cluster="school")
    >>> res  # doctest: +ELLIPSIS
    <MLMResults mathach: 2 gammas, 2 random effects, REML deviance 46714.234, ...>
    >>> res.tau.round(3)
           u0     u1
    u0  8.681  0.047
    u1  0.047  0.694
    >>> res.variance_components.round(3)
               variance     sd               term
    component
    u0            8.681  2.946        (intercept)
    u1            0.694  0.833           cwc(ses)
    e            36.700  6.058  (level-1 residual)
    """

    def __init__(
        self,
        spec: ModelSpec,
        design: Design,
        optimum: Optimum,
        *,
        stats: ClusterStats | None = None,
        data: pd.DataFrame | None = None,
        df: str = "z",
        seconds: float = float("nan"),
        messages: tuple[str, ...] = (),
    ) -> None:
        super().__init__(
            spec, design, optimum, stats=stats, data=data, seconds=seconds, messages=messages
        )
        self.gamma = gamma_table(self, df="z")
        self.df_method = "z"
        self.inference = self.gamma.attrs["inference"]
        if df != "z":
            try:
                self._set_inference(df)
            except (np.linalg.LinAlgError, FloatingPointError, ValueError) as err:
                self.messages = (
                    *self.messages,
                    f"the {df} degrees of freedom could not be computed ({err}); the gammas are "
                    "tested with z-tests instead",
                )

    def _set_inference(self, df: str) -> None:
        """Replace the gamma table's tests (mlmwrap.inference.gamma_table)."""
        table = gamma_table(self, df=df)
        self.gamma = table
        self.df_method = table.attrs["df_method"]
        self.inference = table.attrs["inference"]

    def with_inference(self, df: str = "satterthwaite") -> MLMResults:
        """The same fit with its gammas tested another way (no refit).

        ``df`` is ``"satterthwaite"``, ``"kenward-roger"``, ``"hlm"`` or ``"z"``; see
        :func:`mlmwrap.analysis.inference.gamma_table`.
        """
        new = copy.copy(self)
        new._set_inference(df)
        return new

    def robust(self, level: float = 0.95) -> pd.DataFrame:
        """CR2 cluster-robust SEs with Satterthwaite df beside the model-based SEs, as HLM
        and clubSandwich report them (:func:`mlmwrap.analysis.robust.robust_table`)."""
        from mlmwrap.analysis.robust import robust_table

        return robust_table(self, level=level)

    def confint(
        self, method: str = "profile", level: float = 0.95, gammas: bool = True
    ) -> pd.DataFrame:
        """Confidence intervals for the SDs, correlations and sigma (and the gammas):
        profile likelihood (lme4's default) or Wald on a boundary-respecting scale
        (:func:`mlmwrap.analysis.intervals.variance_intervals`)."""
        from mlmwrap.analysis.intervals import variance_intervals
        from mlmwrap.model.validation import check_flag

        return variance_intervals(
            self, method=method, level=level, gammas=check_flag(gammas, "gammas")
        )

    def refit(
        self,
        equations: str | ModelSpec | None = None,
        *,
        data: pd.DataFrame | None = None,
        reml: bool | None = None,
        df: str | None = None,
    ) -> MLMResults:
        """Fit again with some of the settings changed (the others as in this fit).

        ``equations`` (default: this model's), ``data`` (default: the data of this fit,
        or its model frame when it has none), ``reml`` and ``df``. The analyses that need
        another fit (ML refits for comparisons, null models for R²) call this.
        """
        from mlmwrap.api.fitting import fit

        if data is None:
            data = self.data if self.data is not None else self.model_frame
        return fit(
            self.spec if equations is None else equations,
            data,
            cluster=self.cluster,
            reml=self.reml if reml is None else reml,
            df=self.df_method if df is None else df,
        )

    # -- within, between and contextual effects (mlmwrap.effects, mlmwrap.latent) ---------
    @cached_property
    def _effects(self) -> pd.DataFrame:
        from mlmwrap.analysis.effects import effects

        return effects(self)

    def effects(self) -> pd.DataFrame:
        """Within, between and contextual effects of every decomposed predictor, with SE, z,
        p, CI and the gammas they come from (:func:`mlmwrap.analysis.effects.effects`)."""
        return self._effects.copy()

    def effect_weights(self) -> pd.DataFrame:
        """The effects' linear combinations of the gammas as a matrix
        (:func:`mlmwrap.analysis.effects.effect_weights`)."""
        from mlmwrap.analysis.effects import effect_weights

        return effect_weights(self)

    @cached_property
    def _cluster_mean_reliability(self) -> pd.DataFrame:
        from mlmwrap.analysis.latent import cluster_mean_reliability

        return cluster_mean_reliability(self)

    def cluster_mean_reliability(self) -> pd.DataFrame:
        """Reliability of each ``cmean(x)`` predictor as a measure of the cluster's true mean
        (:func:`mlmwrap.analysis.latent.cluster_mean_reliability`)."""
        return self._cluster_mean_reliability.copy()

    def corrected_effects(self) -> pd.DataFrame:
        """Between and contextual effects corrected for unreliable cluster means
        (Grilli & Rampichini 2011; :func:`mlmwrap.analysis.latent.corrected_effects`)."""
        from mlmwrap.analysis.latent import corrected_effects

        return corrected_effects(self)

    # -- comparison and variance explained (mlmwrap.compare, mlmwrap.variance_explained) --
    def r2(self, null: MLMResults | None = None, *, refit: bool = False) -> pd.Series:
        """Nakagawa & Schielzeth (with their variance parts), Snijders & Bosker and Rights &
        Sterba R². Nothing is refit unless asked: Snijders & Bosker's measures need ``null``
        (the empty model) or ``refit=True``.

        See :func:`mlmwrap.analysis.variance_explained.r2` for each measure.
        """
        from mlmwrap.analysis.variance_explained import r2

        return r2(self, null=null, refit=refit)

    def variance_explained(self, reference: MLMResults) -> pd.DataFrame:
        """Raudenbush & Bryk's proportional reduction in each variance component.

        See :func:`mlmwrap.analysis.variance_explained.proportional_reduction`.
        """
        from mlmwrap.analysis.variance_explained import proportional_reduction

        return proportional_reduction(self, reference)

    def compare(
        self,
        *larger: MLMResults,
        names: list[str] | None = None,
        refit_ml: bool | str = "auto",
    ):
        """Likelihood-ratio tests of this model against larger nested models.

        See :func:`mlmwrap.compare` (``refit_ml``: ``"auto"``, ``True`` or ``False``).
        """
        from mlmwrap.analysis.compare import compare

        return compare(self, *larger, names=names, refit_ml=refit_ml)

    # -- per-cluster estimates, predictions, HLM's tests, figures ----------------------------
    def cluster_coefficients(self) -> pd.DataFrame:
        """Per-cluster empirical Bayes effects (with posterior SDs) and coefficients, OLS
        estimates and their reliabilities
        (:func:`mlmwrap.analysis.cluster.cluster_coefficients`)."""
        from mlmwrap.analysis.cluster import cluster_coefficients

        return cluster_coefficients(self)

    def coef(self) -> pd.DataFrame:
        """lme4's ``coef()``: each cluster's gammas plus its EB effects, one column per
        reduced-form term (:func:`mlmwrap.analysis.cluster.coef`)."""
        from mlmwrap.analysis.cluster import coef

        return coef(self)

    def posterior_covariances(self) -> pd.DataFrame:
        """Each cluster's posterior covariance of its EB effects, indexed (cluster, effect),
        columns the random effects (:func:`mlmwrap.analysis.cluster.posterior_covariances`)."""
        from mlmwrap.analysis.cluster import posterior_covariances

        return posterior_covariances(self)

    def reliabilities(self) -> pd.Series:
        """HLM's reliability of each random coefficient
        (:func:`mlmwrap.analysis.cluster.reliabilities`)."""
        from mlmwrap.analysis.cluster import reliabilities

        return reliabilities(self)

    @cached_property
    def _variance_tests(self) -> pd.DataFrame:
        from mlmwrap.analysis.hlm_tests import variance_tests

        return variance_tests(self)

    def variance_tests(self) -> pd.DataFrame:
        """HLM's chi-square test of each variance component, with reliabilities
        (:func:`mlmwrap.analysis.hlm_tests.variance_tests`)."""
        return self._variance_tests.copy()

    def predict(
        self, newdata: pd.DataFrame | None = None, random: bool = True, detail: bool = False
    ):
        """Predictions: the fixed part plus, for clusters in the fit, their EB effects
        (:func:`mlmwrap.analysis.predict.predict`)."""
        from mlmwrap.analysis.predict import predict
        from mlmwrap.model.validation import check_flag

        random, detail = check_flag(random, "random"), check_flag(detail, "detail")
        return predict(self, newdata, random=random, detail=detail)

    def residuals(self) -> pd.DataFrame:
        """Fitted values and level-1 residuals of every row used, as HLM's level-1 residual
        file (:func:`mlmwrap.analysis.residuals.residuals`)."""
        from mlmwrap.analysis.residuals import residuals

        return residuals(self)

    @cached_property
    def plot(self):
        """Figures: ``res.plot.caterpillar()``, ``.spaghetti()``, ``.residuals()``,
        ``.random_effects_qq()``, ``.within_between("ses")`` (:mod:`mlmwrap.report.plots`)."""
        from mlmwrap.report.plots import ResultPlots

        return ResultPlots(self)

    # -- reporting: equations and tables (mlmwrap.latex, mlmwrap.export) -----------------
    def equations(self, format: str = "text", *, digits: int = 3, width: int | None = None) -> str:
        """The level-1, level-2 and reduced-form equations with the estimates substituted,
        with tau and sigma2 beneath: ``format`` "text", "latex" or "html"
        (:func:`mlmwrap.report.latex.equations`)."""
        from mlmwrap.report.latex import equations

        return equations(self, format, digits=digits, width=width)

    def _repr_latex_(self) -> str:
        from mlmwrap.report.latex import repr_latex

        return repr_latex(self)

    def to_frame(self, gamma: pd.DataFrame | None = None) -> pd.DataFrame:
        """Every estimate in one tidy DataFrame (:func:`mlmwrap.report.export.to_frame`)."""
        from mlmwrap.report.export import to_frame

        return to_frame(self, gamma)

    def fixed_table(
        self,
        format: str = "markdown",
        *,
        digits: int = 2,
        label: str | None = None,
        gamma: pd.DataFrame | None = None,
    ) -> str:
        """APA-style fixed-effects table as Markdown, LaTeX (booktabs) or HTML
        (:func:`mlmwrap.report.tables.fixed_table`)."""
        from mlmwrap.report.tables import fixed_table

        return fixed_table(self, format, digits=digits, label=label, gamma=gamma)

    def variance_table(
        self, format: str = "markdown", *, digits: int = 2, label: str | None = None
    ) -> str:
        """APA-style variance-components table: variances, SDs, correlations
        (:func:`mlmwrap.report.tables.variance_table`)."""
        from mlmwrap.report.tables import variance_table

        return variance_table(self, format, digits=digits, label=label)

    def report(
        self, format: str = "markdown", *, digits: int = 2, gamma: pd.DataFrame | None = None
    ) -> str:
        """Equations and both tables as one Markdown, LaTeX or HTML document
        (:func:`mlmwrap.report.tables.document`); ``"text"`` is :meth:`summary`."""
        if format == "text":
            return self.summary()
        from mlmwrap.report.tables import document

        return document(self, format, digits=digits, gamma=gamma)

    def to_json(self, *, indent: int | None = 2, gamma: pd.DataFrame | None = None) -> str:
        """Everything needed to rebuild the tables, as JSON; read it back with
        :func:`mlmwrap.report.export.from_json`."""
        from mlmwrap.report.export import to_json

        return to_json(self, indent=indent, gamma=gamma)

    # -- the maketables plug-in protocol (mlmwrap.report.maketables_plugin) ----------------
    @property
    def __maketables_coef_table__(self) -> pd.DataFrame:
        from mlmwrap.report.maketables_plugin import coef_table

        return coef_table(self)

    def __maketables_stat__(self, key: str):
        from mlmwrap.report.maketables_plugin import stat

        return stat(self, key)

    @property
    def __maketables_depvar__(self) -> str:
        return str(self.outcome)

    @property
    def __maketables_var_labels__(self) -> dict[str, str]:
        from mlmwrap.report.maketables_plugin import var_labels

        return var_labels(self)

    @property
    def __maketables_stat_labels__(self) -> dict[str, str]:
        from mlmwrap.report.maketables_plugin import stat_labels

        return stat_labels(self)

    @property
    def __maketables_default_stat_keys__(self) -> list[str]:
        from mlmwrap.report.maketables_plugin import default_stat_keys

        return default_stat_keys(self)

    @property
    def __maketables_vcov_info__(self) -> dict:
        from mlmwrap.report.maketables_plugin import vcov_info

        return vcov_info(self)

    # -- display ------------------------------------------------------------------------
    def summary(self, *, p_format: str = "apa", robust: bool = False) -> str:
        """Plain-text report in the style of HLM's output.

        ``p_format="exact"`` prints p-values below .001 exactly (``2.2e-40``) instead of
        ``<.001``; ``robust=True`` adds CR2 cluster-robust SEs and p-values beside the
        model-based ones (:func:`mlmwrap.report.summary.summary_text`).
        """
        from mlmwrap.report.summary import summary_text

        return summary_text(self, p_format=p_format, robust=robust)

    def __str__(self) -> str:
        return self.summary()

    def _repr_html_(self) -> str:
        from mlmwrap.report.summary import summary_html

        return summary_html(self)
