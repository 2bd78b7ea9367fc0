"""A verified optimum of a nested model: several starts, Newton polish, gradient and Hessian.

:func:`mlmwrap.model.nested.optimize_nested` finds the optimum from several starts; here it
is polished with Newton steps on a finite-difference Hessian of the analytic gradient
(:func:`mlmwrap.model.numdiff.hessian_from_gradient`) and checked as the two-level engine
checks its own: the Newton step the gradient implies must be negligible where the Hessian is
positive definite, and a boundary (a diagonal entry of some level's ``L`` below lme4's
``isSingular`` tolerance on theta) is reported rather than failed.

Examples
--------
>>> import numpy as np
>>> from mlmwrap.model.nested import NestedStats
>>> rng = np.random.default_rng(1)
>>> c3 = np.repeat(np.arange(20), 30); c2 = np.repeat(np.arange(100), 6)
>>> y = rng.normal(size=20)[c3] + rng.normal(size=100)[c2] + rng.normal(size=600)
>>> one = np.ones((600, 1))
>>> stats = NestedStats.from_arrays(one, [one, one], y, [c2, c3])
>>> fit = verify_nested(stats, reml=True)
>>> fit.converged, fit.singular, fit.hessian_pd
(True, False, True)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mlmwrap.model.engine import SINGULAR_TOL
from mlmwrap.model.nested import (
    NestedOptimum,
    NestedStats,
    deviance_and_gradient,
    evaluate_nested,
    optimize_nested,
)
from mlmwrap.model.numdiff import hessian_from_gradient

__all__ = ["NestedFit", "verify_nested"]


@dataclass(frozen=True)
class NestedFit(NestedOptimum):
    """The checked optimum: :class:`~mlmwrap.model.nested.NestedOptimum` (evaluation,
    theta, deviance, beta, sigma2, taus, cov_beta) plus the checks.

    Attributes
    ----------
    singular, hessian_pd
        ``hessian_pd`` is ``None`` at a boundary (no interior Hessian to judge).
    zero_variances
        Per level: which random effects have a variance estimated as 0.
    messages
        Warnings for the user.
    """

    singular: bool
    hessian_pd: bool | None
    zero_variances: tuple[np.ndarray, ...]
    messages: tuple[str, ...]


def _grad(stats: NestedStats, reml: bool):
    def g(theta: np.ndarray) -> np.ndarray:
        with np.errstate(all="ignore"):
            return deviance_and_gradient(stats, theta, reml)[1]

    return g


def verify_nested(stats: NestedStats, reml: bool = True) -> NestedFit:
    """Optimize, polish and check the profiled (RE)ML deviance of a nested model."""
    # BFGS to a loose gradient, then Newton steps (as the two-level engine): past ~1e-4
    # BFGS's line searches fight the deviance's rounding and waste evaluations
    opt = optimize_nested(stats, reml, gtol=1e-4)
    theta, dev = opt.theta, opt.deviance
    grad_fn = _grad(stats, reml)
    n_eval = opt.n_evaluations
    for _ in range(5):  # Newton polish
        grad = grad_fn(theta)
        if not grad.size or np.max(np.abs(grad)) < 1e-9:
            break
        H = hessian_from_gradient(grad_fn, theta)
        n_eval += 4 * len(theta)
        try:
            step = np.linalg.solve(H, grad)
        except np.linalg.LinAlgError:
            break
        trial = theta - step
        try:
            new_dev = deviance_and_gradient(stats, trial, reml)[0]
        except np.linalg.LinAlgError:
            break
        if not np.isfinite(new_dev) or new_dev > dev:
            break
        theta, dev = trial, new_dev
    Ls = [L * np.where(np.diag(L) < 0, -1.0, 1.0)[None, :] for L in stats.split_theta(theta)]
    theta = stats.join_theta(Ls)
    evaluation = evaluate_nested(stats, Ls, reml)
    grad = grad_fn(theta)
    gnorm = float(np.max(np.abs(grad))) if grad.size else 0.0
    # singular: a zero on the diagonal of L; a variance is 0 only when its row of L is
    # (otherwise a correlation is +-1)
    singular = bool(any((np.abs(np.diag(L)) < SINGULAR_TOL).any() for L in Ls))
    zero = tuple(np.sqrt(np.sum(L**2, axis=1)) < SINGULAR_TOL for L in Ls)
    messages: list[str] = []
    hessian_pd: bool | None = None
    if singular:
        converged = gnorm < 1e-3 or bool(opt.converged)
    else:
        H = hessian_from_gradient(grad_fn, theta) if grad.size else np.eye(0)
        eigen = np.linalg.eigvalsh(H) if H.size else np.array([1.0])
        hessian_pd = bool(eigen.min() > 0)
        if hessian_pd:
            newton = float(np.max(np.abs(np.linalg.solve(H, grad)))) if grad.size else 0.0
            converged = newton < 1e-5 and gnorm < 1e-2
        else:
            converged = gnorm < 1e-3
            messages.append(
                "the Hessian of the deviance is not positive definite at the estimates: "
                "the variance parameters are not well identified"
            )
    if not converged:
        messages.insert(
            0,
            f"the optimizer stopped with a gradient of {gnorm:.2g}; the estimates may not be "
            "the optimum",
        )
    return NestedFit(
        evaluation=evaluation,
        theta=theta,
        reml=reml,
        converged=bool(converged),
        singular=singular,
        hessian_pd=hessian_pd,
        gradient_norm=gnorm,
        n_evaluations=n_eval,
        zero_variances=zero,
        messages=tuple(messages),
    )
