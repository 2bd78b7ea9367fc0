"""The results of a fit, in the researcher's terms (gamma, tau, sigma2, ICC).

Every number is computed once, when the results are built; the display methods
(:meth:`MLMResults.summary`, ``_repr_html_``) only format. The statsmodels results object
is built on first access to :attr:`MLMResults.statsmodels`.
"""

from __future__ import annotations

import copy
from functools import cached_property

import numpy as np
import pandas as pd

from .design import INTERCEPT, Design, SampleInfo
from .engine import ClusterStats, Optimum
from .inference import gamma_table
from .spec import ModelSpec

__all__ = ["MLMResults"]


def _icc(spec: ModelSpec, tau: np.ndarray, sigma2: float, n_gammas: int) -> tuple[float, str]:
    """The ICC (null model) or residual ICC, and its name; NaN without a random intercept."""
    intercept = spec.betas[0]
    if intercept.predictor is not None or not intercept.random:
        return float("nan"), "ICC: not defined (the model has no random intercept)"
    icc = float(tau[0, 0] / (tau[0, 0] + sigma2))
    if len(spec.betas) == 1 and n_gammas == 1:
        return icc, "ICC"
    if any(b.random and b.predictor is not None for b in spec.betas):
        return icc, "residual ICC (at level-1 predictors = 0)"
    return icc, "residual ICC"


class MLMResults:
    """A fitted two-level model.

    Attributes
    ----------
    gamma : pandas.DataFrame
        Fixed effects, indexed by gamma label (``g00``, ``g01``, ``g02[Catholic]``).
        Columns: ``estimate``; ``se`` (model-based, ``sqrt(diag(sigma2 (X'V^-1 X)^-1))``
        as lme4 and HLM report it); ``z`` (estimate / se); ``p`` (two-sided, standard
        normal); ``ci_lower``, ``ci_upper`` (95% Wald); ``beta`` (the level-1 coefficient
        the gamma belongs to); ``level1`` (that beta's level-1 predictor); ``predictor``
        (the level-2 predictor, ``(constant)`` for ``gK0``); ``term`` (the reduced-form
        term, as in the mixed model's design).
    tau : pandas.DataFrame
        Covariance matrix of the random effects, index and columns the random effects
        as written (``u0``, ``u1``).
    tau_corr : pandas.DataFrame
        The same as correlations (NaN where a variance is 0).
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
        of parameters (gammas, tau's distinct entries, sigma2). Under REML they use the
        REML criterion, as lme4 does: compare models that differ in their fixed part only
        when fitted by ML.
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
        self.spec = spec
        self._design = design
        self._optimum = optimum
        self._stats = stats
        self._data = data
        self.method = "REML" if optimum.reml else "ML"
        self.reml = optimum.reml
        self.seconds = seconds
        self.messages = messages
        self.converged = optimum.converged
        self.singular = optimum.singular
        self.hessian_pd = optimum.hessian_pd

        self.sigma2 = float(optimum.sigma2)
        labels = design.random_labels
        self.tau = pd.DataFrame(optimum.tau, index=labels, columns=labels)
        sd = np.sqrt(np.clip(np.diag(optimum.tau), 0.0, None))
        with np.errstate(invalid="ignore", divide="ignore"):
            corr = optimum.tau / np.outer(sd, sd)
        # A variance at the boundary (0 up to rounding) has no correlation to speak of.
        at_zero = optimum.zero_variances
        corr[at_zero[:, None] | at_zero[None, :]] = np.nan
        np.fill_diagonal(corr, 1.0)
        self.tau_corr = pd.DataFrame(corr, index=labels, columns=labels)
        self.gamma = gamma_table(self, df="z")

        self.nobs = design.n_obs
        self.n_clusters = design.n_clusters
        sizes = design.cluster_sizes
        self.cluster_sizes = {
            "min": int(sizes.min()),
            "mean": float(sizes.mean()),
            "max": int(sizes.max()),
        }
        self.sample: SampleInfo = design.sample
        self.cluster = design.cluster
        self.outcome = design.outcome

        self.deviance = float(optimum.deviance)
        self.loglik = -0.5 * self.deviance
        q = len(labels)
        self.n_params = len(self.gamma) + q * (q + 1) // 2 + 1
        self.aic = self.deviance + 2 * self.n_params
        self.bic = self.deviance + self.n_params * np.log(self.nobs)

        self.icc, self.icc_name = _icc(spec, optimum.tau, self.sigma2, len(self.gamma))

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
        :func:`mlmwrap.inference.gamma_table`.
        """
        new = copy.copy(self)
        new._set_inference(df)
        return new

    def robust(self, level: float = 0.95) -> pd.DataFrame:
        """CR2 cluster-robust SEs with Satterthwaite df beside the model-based SEs, as HLM
        and clubSandwich report them (:func:`mlmwrap.robust.robust_table`)."""
        from .robust import robust_table

        return robust_table(self, level=level)

    def confint(
        self, method: str = "profile", level: float = 0.95, gammas: bool = True
    ) -> pd.DataFrame:
        """Confidence intervals for the SDs, correlations and sigma (and the gammas):
        profile likelihood (lme4's default) or Wald on a boundary-respecting scale
        (:func:`mlmwrap.intervals.variance_intervals`)."""
        from .intervals import variance_intervals

        return variance_intervals(self, method=method, level=level, gammas=gammas)

    # -- tables ---------------------------------------------------------------------------
    @property
    def variance_components(self) -> pd.DataFrame:
        """Variance and SD of each random effect and of the level-1 residual.

        Columns ``variance``, ``sd`` and ``term`` (what the random effect multiplies).
        """
        labels = list(self.tau.index) + [self.spec.residual or "e"]
        variances = list(np.diag(self.tau.to_numpy())) + [self.sigma2]
        terms = list(self._design.random_terms) + ["(level-1 residual)"]
        return pd.DataFrame(
            {
                "variance": variances,
                "sd": np.sqrt(np.clip(variances, 0.0, None)),
                "term": ["(intercept)" if t == INTERCEPT else t for t in terms],
            },
            index=pd.Index(labels, name="component"),
        )

    @property
    def cov_gamma(self) -> pd.DataFrame:
        """Model-based covariance matrix of the gammas, ``sigma2 (X'V^-1 X)^-1``."""
        labels = self.gamma.index
        return pd.DataFrame(self._optimum.cov_beta, index=labels, columns=labels)

    # -- within, between and contextual effects (mlmwrap.effects, mlmwrap.latent) ---------
    @cached_property
    def _effects(self) -> pd.DataFrame:
        from .effects import effects

        return effects(self)

    def effects(self) -> pd.DataFrame:
        """Within, between and contextual effects of every decomposed predictor, with SE, z,
        p, CI and the gammas they come from (:func:`mlmwrap.effects.effects`)."""
        return self._effects.copy()

    @cached_property
    def _cluster_mean_reliability(self) -> pd.DataFrame:
        from .latent import cluster_mean_reliability

        return cluster_mean_reliability(self)

    def cluster_mean_reliability(self) -> pd.DataFrame:
        """Reliability of each ``cmean(x)`` predictor as a measure of the cluster's true mean
        (:func:`mlmwrap.latent.cluster_mean_reliability`)."""
        return self._cluster_mean_reliability.copy()

    def corrected_effects(self) -> pd.DataFrame:
        """Between and contextual effects corrected for unreliable cluster means
        (Grilli & Rampichini 2011; :func:`mlmwrap.latent.corrected_effects`)."""
        from .latent import corrected_effects

        return corrected_effects(self)

    # -- comparison and variance explained (mlmwrap.compare, mlmwrap.variance_explained) --
    def r2(self) -> pd.Series:
        """Nakagawa & Schielzeth, Snijders & Bosker and Rights & Sterba R².

        See :func:`mlmwrap.variance_explained.r2` for each measure and when it is defined.
        """
        from .variance_explained import r2

        return r2(self)

    def variance_explained(self, reference: MLMResults) -> pd.DataFrame:
        """Raudenbush & Bryk's proportional reduction in each variance component.

        See :func:`mlmwrap.variance_explained.proportional_reduction`.
        """
        from .variance_explained import proportional_reduction

        return proportional_reduction(self, reference)

    def compare(self, *larger: MLMResults, names: list[str] | None = None):
        """Likelihood-ratio tests of this model against larger nested models.

        See :func:`mlmwrap.compare`.
        """
        from .compare import compare

        return compare(self, *larger, names=names)

    # -- per-cluster estimates, predictions, HLM's tests, figures ----------------------------
    def cluster_coefficients(self) -> pd.DataFrame:
        """Per-cluster empirical Bayes effects (with posterior SDs) and coefficients, OLS
        estimates and their reliabilities; see :func:`mlmwrap.cluster.cluster_coefficients`."""
        from .cluster import cluster_coefficients

        return cluster_coefficients(self)

    def reliabilities(self) -> pd.Series:
        """HLM's reliability of each random coefficient (:func:`mlmwrap.cluster.reliabilities`)."""
        from .cluster import reliabilities

        return reliabilities(self)

    @cached_property
    def _variance_tests(self) -> pd.DataFrame:
        from .hlm_tests import variance_tests

        return variance_tests(self)

    def variance_tests(self) -> pd.DataFrame:
        """HLM's chi-square test of each variance component, with reliabilities
        (:func:`mlmwrap.hlm_tests.variance_tests`)."""
        return self._variance_tests.copy()

    def predict(
        self, newdata: pd.DataFrame | None = None, random: bool = True, detail: bool = False
    ):
        """Predictions: the fixed part plus, for clusters in the fit, their EB effects
        (:func:`mlmwrap.predict.predict`)."""
        from .predict import predict

        return predict(self, newdata, random=random, detail=detail)

    @cached_property
    def plot(self):
        """Figures: ``res.plot.caterpillar()``, ``.spaghetti()``, ``.residuals()``,
        ``.random_effects_qq()``, ``.within_between("ses")`` (:mod:`mlmwrap.plots`)."""
        from .plots import ResultPlots

        return ResultPlots(self)

    # -- reporting: equations and tables (mlmwrap.latex, mlmwrap.export) -----------------
    def equations(self, format: str = "text", *, digits: int = 3, width: int | None = None) -> str:
        """The level-1, level-2 and reduced-form equations with the estimates substituted,
        with tau and sigma2 beneath: ``format`` "text", "latex" or "html"
        (:func:`mlmwrap.latex.equations`)."""
        from .latex import equations

        return equations(self, format, digits=digits, width=width)

    def _repr_latex_(self) -> str:
        from .latex import repr_latex

        return repr_latex(self)

    def to_frame(self, gamma: pd.DataFrame | None = None) -> pd.DataFrame:
        """Every estimate in one tidy DataFrame (:func:`mlmwrap.export.to_frame`)."""
        from .export import to_frame

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
        (:func:`mlmwrap.tables.fixed_table`)."""
        from .tables import fixed_table

        return fixed_table(self, format, digits=digits, label=label, gamma=gamma)

    def variance_table(
        self, format: str = "markdown", *, digits: int = 2, label: str | None = None
    ) -> str:
        """APA-style variance-components table: variances, SDs, correlations
        (:func:`mlmwrap.tables.variance_table`)."""
        from .tables import variance_table

        return variance_table(self, format, digits=digits, label=label)

    def report(
        self, format: str = "markdown", *, digits: int = 2, gamma: pd.DataFrame | None = None
    ) -> str:
        """Equations and both tables as one Markdown, LaTeX or HTML document
        (:func:`mlmwrap.tables.document`)."""
        from .tables import document

        return document(self, format, digits=digits, gamma=gamma)

    def to_json(self, *, indent: int | None = 2, gamma: pd.DataFrame | None = None) -> str:
        """Everything needed to rebuild the tables, as JSON; read it back with
        :func:`mlmwrap.export.from_json`."""
        from .export import to_json

        return to_json(self, indent=indent, gamma=gamma)

    # -- for extensions: the pieces a fit was computed from -----------------------------
    @property
    def design(self) -> Design:
        """Row-level arrays (``y``, ``X``, ``Z``, cluster codes) and the gamma map."""
        return self._design

    @property
    def optimum(self) -> Optimum:
        """The engine's optimum: ``L``, ``A``, ``beta``, ``sigma2``, convergence checks."""
        return self._optimum

    @property
    def cluster_stats(self) -> ClusterStats:
        """Per-cluster cross-products of ``[X, Z, y]`` (computed on first use if needed)."""
        if self._stats is None:
            d = self._design
            self._stats = ClusterStats.from_arrays(d.X, d.Z, d.y, d.codes)
        return self._stats

    @property
    def data(self) -> pd.DataFrame | None:
        """The DataFrame the model was fitted to, as passed (not a copy; never modified)."""
        return self._data

    @property
    def model_frame(self) -> pd.DataFrame:
        """The model's columns on the estimation sample (after listwise deletion), indexed
        like the caller's rows."""
        return self._design.frame

    # -- statsmodels --------------------------------------------------------------------
    @cached_property
    def statsmodels(self):
        """The fit as a statsmodels ``MixedLMResults`` (built on first access).

        Its fixed effects, ``cov_re`` and ``scale`` are mlmwrap's estimates; see
        :mod:`mlmwrap.sm_bridge` for how it differs from ``MixedLM.fit()``.
        """
        from .sm_bridge import to_statsmodels

        return to_statsmodels(self._design, self._optimum)

    # -- display ------------------------------------------------------------------------
    def summary(self) -> str:
        """Plain-text report in the style of HLM's output."""
        from .report import summary_text

        return summary_text(self)

    def __str__(self) -> str:
        return self.summary()

    def __repr__(self) -> str:
        flags = (
            ""
            if self.converged and not self.singular
            else (" [singular]" if self.converged else " [NOT CONVERGED]")
        )
        return (
            f"<MLMResults {self.outcome}: {len(self.gamma)} gammas, {len(self.tau)} random "
            f"effects, {self.method} deviance {self.deviance:.3f}, {self.nobs} obs in "
            f"{self.n_clusters} clusters{flags}>"
        )

    def _repr_html_(self) -> str:
        from .report import summary_html

        return summary_html(self)
