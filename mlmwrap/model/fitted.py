"""A fitted model's numbers in the researcher's terms (tau, sigma2, ICC, deviance).

:class:`FittedModel` holds what the model stage computed (the spec, the design, the engine's
optimum) and derives every model-level number once, at construction. The results facade
(:class:`mlmwrap.api.results.MLMResults`) extends it with the gamma table's tests and with
methods that delegate to the analyses and the reports.
"""

from __future__ import annotations

from functools import cached_property

import numpy as np
import pandas as pd

from mlmwrap.language.formulas import Formulas
from mlmwrap.language.spec import ModelSpec
from mlmwrap.model.design import INTERCEPT, Design, SampleInfo
from mlmwrap.model.design_stats import design_cluster_stats
from mlmwrap.model.engine import ClusterStats, Optimum
from mlmwrap.model.tau_pattern import n_tau_parameters, tau_pattern

__all__ = ["FittedModel"]


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


class FittedModel:
    """The model stage's results: tau, sigma2, ICC, deviance and the pieces they came from.

    See :class:`mlmwrap.api.results.MLMResults` for the attributes.
    """

    def __init__(
        self,
        spec: ModelSpec,
        design: Design,
        optimum: Optimum,
        *,
        stats: ClusterStats | None = None,
        data: pd.DataFrame | None = None,
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
        #: One square tau per cluster column (level); two-level models have one.
        self.tau_by_level = {design.cluster: self.tau}
        # cov(u0, u1) = 0 lines: which entries of tau are fixed (not estimated) at 0
        free = tau_pattern(spec, labels)
        fixed = np.zeros((len(labels),) * 2, bool) if free is None else ~(free | free.T)
        self.tau_fixed = pd.DataFrame(fixed, index=labels, columns=labels)

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
        # gammas, the free entries of tau (covariances fixed at 0 are not parameters), sigma2
        self.n_params = len(design.fixed_columns) + n_tau_parameters(spec, labels) + 1
        self.aic = self.deviance + 2 * self.n_params
        self.bic = self.deviance + self.n_params * np.log(self.nobs)

        self.icc, self.icc_name = _icc(spec, optimum.tau, self.sigma2, len(design.fixed_columns))

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
            free = tau_pattern(self.spec, d.random_labels)
            self._stats = design_cluster_stats(d, free=free)
        return self._stats

    @property
    def data(self) -> pd.DataFrame | None:
        """The DataFrame the model was fitted to, as passed (not a copy; never modified)."""
        return self._data

    @property
    def formulas(self) -> Formulas:
        """The reduced form as formulas over :attr:`model_frame`'s columns: ``fixed`` (patsy),
        ``re_formula``, ``groups``, ``lme4`` and the ``derived`` columns they use
        (:class:`~mlmwrap.language.formulas.Formulas`)."""
        return self._design.formulas

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
        :mod:`mlmwrap.model.statsmodels_bridge` for how it differs from ``MixedLM.fit()``.
        """
        from mlmwrap.model.statsmodels_bridge import to_statsmodels

        return to_statsmodels(self._design, self._optimum, self.tau_fixed.to_numpy())

    def __repr__(self) -> str:
        flags = (
            ""
            if self.converged and not self.singular
            else (" [singular]" if self.converged else " [NOT CONVERGED]")
        )
        return (
            f"<{type(self).__name__} {self.outcome}: {len(self.design.fixed_columns)} gammas, "
            f"{len(self.tau)} random effects, {self.method} deviance {self.deviance:.3f}, "
            f"{self.nobs} obs in "
            f"{self.n_clusters} clusters{flags}>"
        )
