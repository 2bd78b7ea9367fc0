"""A statsmodels ``MixedLMResults`` at mlmwrap's optimum.

mlmwrap finds the optimum itself (statsmodels' default optimizer stops at wrong answers on
the workshop's own models) and then builds the statsmodels results object at exactly that
point, so everything statsmodels offers on a fit stays available. The model is
``MixedLM.from_formula`` with the reduced form's formulas (``res.formulas``) on
``res.model_frame``, so ``res.statsmodels.model.formula`` is the reduced form and statsmodels'
own ``predict`` and formula machinery work. Two choices differ from ``MixedLM.fit``:

- the fixed effects are mlmwrap's GLS estimates at the optimum, also when tau is singular
  (``MixedLM.get_fe_params`` pseudo-inverts a singular tau and then returns wrong
  gammas, statsmodels issue #10239);
- the fixed-effect block of ``cov_params()`` is the conventional model-based
  ``sigma2 * (X' V^-1 X)^-1`` that lme4, nlme, SAS and HLM report, with zero covariance
  between fixed effects and variance parameters (as in lme4), so ``bse_fe`` equals the
  standard errors in ``res.gamma``. The variance-parameter block comes from statsmodels'
  analytic Hessian.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from statsmodels.regression.mixed_linear_model import (
    MixedLM,
    MixedLMParams,
    MixedLMResults,
    MixedLMResultsWrapper,
)

from mlmwrap.errors import ConvergenceWarning, MLMError
from mlmwrap.model.design import Design
from mlmwrap.model.engine import Optimum

__all__ = ["to_statsmodels", "statsmodels_model"]


def statsmodels_model(design: Design) -> MixedLM:
    """``MixedLM.from_formula`` with the design's formulas on its model frame."""
    f = design.formulas
    frame = design.frame.reset_index(drop=True)
    return MixedLM.from_formula(f.fixed, data=frame, re_formula=f.re_formula, groups=f.groups)


def _free_packed(k_re: int, re: np.ndarray, tau_fixed: np.ndarray | None) -> np.ndarray:
    """Which of statsmodels' packed ``cov_re`` entries (lower triangle, row by row) are
    free; ``re[i]`` is statsmodels' index of mlmwrap's random effect ``i``."""
    rows, cols = np.tril_indices(k_re)
    free = np.ones(len(rows), bool)
    if tau_fixed is not None:
        fixed_sm = np.zeros((k_re, k_re), bool)
        fixed_sm[np.ix_(re, re)] = tau_fixed
        free = ~fixed_sm[rows, cols]
    return np.flatnonzero(free)


def _positions(names: list[str], wanted: list[str], what: str) -> np.ndarray:
    """Where each of ``wanted`` sits among statsmodels' column ``names``."""
    missing = [w for w in wanted if w not in names]
    if missing or len(names) != len(wanted):
        raise MLMError(
            f"statsmodels' formula design has the {what} columns {names}, not {wanted}",
            hint="a categorical interaction without its main effect is coded differently by "
            "patsy; res.gamma and every mlmwrap table are unaffected",
        )
    return np.array([names.index(w) for w in wanted])


def to_statsmodels(
    design: Design, optimum: Optimum, tau_fixed: np.ndarray | None = None
) -> MixedLMResultsWrapper:
    """Build ``MixedLMResults`` at ``optimum`` without re-optimizing.

    ``tau_fixed`` (boolean, like tau) marks covariances fixed at 0 (``cov(u0, u1) = 0``):
    they are not parameters, so their rows of ``cov_params()`` are 0 and the other variance
    parameters' covariance is the inverse of the Hessian over the free ones only.
    """
    model = statsmodels_model(design)
    fe = _positions(list(model.exog_names), design.patsy_fixed_names, "fixed")
    # statsmodels names a random intercept after the groups column.
    re_names = [
        design.formulas.groups if n == "Intercept" else n for n in design.patsy_random_names
    ]
    re = _positions(list(model.data.exog_re_names), re_names, "random")
    # State MixedLM.fit would set before computing the Hessian.
    model.reml = optimum.reml
    model.cov_pen = None
    model.fe_pen = None
    model._freepat = None

    scale = optimum.sigma2
    # mlmwrap's columns are in gamma order; statsmodels' in patsy's: permute into its order.
    beta = np.empty(len(fe))
    beta[fe] = optimum.beta
    cov_beta = np.empty((len(fe), len(fe)))
    cov_beta[np.ix_(fe, fe)] = optimum.cov_beta
    L = optimum.evaluation.L
    psi = np.empty((len(re), len(re)))
    psi[np.ix_(re, re)] = L @ L.T
    params = MixedLMParams.from_components(fe_params=beta, cov_re=psi)
    k_fe, k_re2 = model.k_fe, model.k_re2
    pcov = np.full((k_fe + k_re2, k_fe + k_re2), np.nan)
    pcov[:k_fe, :k_fe] = cov_beta
    pcov[:k_fe, k_fe:] = 0.0
    pcov[k_fe:, :k_fe] = 0.0
    problem = "tau is singular" if optimum.singular else None
    if not optimum.singular:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                hess, _ = model.hessian(params)
                free = _free_packed(len(re), re, tau_fixed)
                block = np.zeros((k_re2, k_re2))
                block[np.ix_(free, free)] = np.linalg.inv(-hess[k_fe:, k_fe:][np.ix_(free, free)])
                pcov[k_fe:, k_fe:] = block
            except (np.linalg.LinAlgError, ValueError) as err:
                problem = f"statsmodels' Hessian could not be inverted ({err})"
    if problem:
        warnings.warn(
            f"res.statsmodels: {problem}, so the standard errors of the variance parameters "
            "(bse_re) are NaN; the gammas' standard errors are unaffected",
            ConvergenceWarning,
            stacklevel=4,  # user code -> cached_property -> statsmodels -> here
        )

    packed = params.get_packed(use_sqrt=False, has_fe=True)
    results = MixedLMResults(model, packed, pcov / scale)
    results.params_object = params
    results.fe_params = pd.Series(beta, index=model.exog_names)
    results.cov_re = psi * scale
    results.vcomp = np.array([])
    results.scale = scale
    results.cov_re_unscaled = psi
    results.method = "REML" if optimum.reml else "ML"
    results.converged = optimum.converged
    results.hist = None
    results.reml = optimum.reml
    results.cov_pen = None
    results.k_fe = k_fe
    results.k_re = model.k_re
    results.k_re2 = k_re2
    results.k_vc = model.k_vc
    results.use_sqrt = model.use_sqrt
    results.freepat = None
    return MixedLMResultsWrapper(results)
