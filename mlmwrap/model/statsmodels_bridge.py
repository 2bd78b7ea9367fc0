"""A statsmodels ``MixedLMResults`` at mlmwrap's optimum.

mlmwrap finds the optimum itself (statsmodels' default optimizer stops at wrong answers on
the workshop's own models) and then builds the statsmodels results object at exactly that
point, so everything statsmodels offers on a fit stays available. Two choices differ from
``MixedLM.fit``:

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

from mlmwrap.errors import ConvergenceWarning
from mlmwrap.model.design import Design
from mlmwrap.model.engine import Optimum

__all__ = ["to_statsmodels"]


def to_statsmodels(design: Design, optimum: Optimum) -> MixedLMResultsWrapper:
    """Build ``MixedLMResults`` at ``optimum`` without re-optimizing."""
    exog = pd.DataFrame(design.X, columns=design.fixed_names)
    exog_re = pd.DataFrame(design.Z, columns=design.random_terms)
    endog = pd.Series(design.y, name=design.outcome)
    groups = design.cluster_labels[design.codes]
    model = MixedLM(endog, exog, groups=groups, exog_re=exog_re)
    # State MixedLM.fit would set before computing the Hessian.
    model.reml = optimum.reml
    model.cov_pen = None
    model.fe_pen = None
    model._freepat = None

    scale = optimum.sigma2
    L = optimum.evaluation.L
    params = MixedLMParams.from_components(fe_params=optimum.beta, cov_re=L @ L.T)
    k_fe, k_re2 = model.k_fe, model.k_re2
    pcov = np.full((k_fe + k_re2, k_fe + k_re2), np.nan)
    pcov[:k_fe, :k_fe] = optimum.cov_beta
    pcov[:k_fe, k_fe:] = 0.0
    pcov[k_fe:, :k_fe] = 0.0
    problem = "tau is singular" if optimum.singular else None
    if not optimum.singular:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                hess, _ = model.hessian(params)
                pcov[k_fe:, k_fe:] = np.linalg.inv(-hess[k_fe:, k_fe:])
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
    results.fe_params = pd.Series(optimum.beta, index=design.fixed_names)
    results.cov_re = optimum.tau
    results.vcomp = np.array([])
    results.scale = scale
    results.cov_re_unscaled = L @ L.T
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
