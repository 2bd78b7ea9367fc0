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
    evaluate_nested,
    nested_objective,
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
    hessian
        Hessian of the profiled deviance in theta at ``theta`` (central differences of the
        analytic gradient), for the Satterthwaite df (:mod:`mlmwrap.analysis.nested_inference`).
    """

    singular: bool
    hessian_pd: bool | None
    zero_variances: tuple[np.ndarray, ...]
    messages: tuple[str, ...]
    hessian: np.ndarray | None = None


def _hessian(objective, theta: np.ndarray) -> np.ndarray:
    """Central differences of the analytic gradient: ``2 n_theta`` gradients."""
    return hessian_from_gradient(lambda t: objective(t)[1], theta, rel=1e-5, order=2, floor=0.1)


def _polish(objective, theta: np.ndarray, counter: list[int]):
    """Newton steps from the BFGS answer (the surface can be nearly flat along a slope
    variance). The Hessian is reused while its steps keep improving the deviance (near the
    optimum it hardly changes); a step that fails gets a fresh Hessian, and the Hessian
    returned is always one computed at the final theta or within 1e-6 of it."""
    dev, grad = objective(theta)
    if not grad.size:
        return dev, theta, grad, np.zeros((0, 0))
    H, at = _hessian(objective, theta), theta
    for _ in range(12):
        if float(np.max(np.abs(grad))) < 1e-9:
            break
        try:
            step = np.linalg.solve(H, grad)
        except np.linalg.LinAlgError:
            break
        size = float(np.max(np.abs(step)))
        if not np.isfinite(size) or size < 1e-10:
            break
        new_dev, new_grad = objective(theta - step)
        # within rounding noise of the deviance when the gradient shrinks (as the two-level
        # engine: with nearly collinear predictors the deviance is good to ~1e-10 relative)
        noise = 1e-8 * max(1.0, abs(dev))
        if not (new_dev <= dev + noise and np.max(np.abs(new_grad)) < np.max(np.abs(grad))):
            if at is theta:
                break  # a fresh Hessian's step failed: this is the optimum
            H, at = _hessian(objective, theta), theta
            continue
        theta, dev, grad = theta - step, new_dev, new_grad
        if size < 1e-7:
            break
    if float(np.max(np.abs(theta - at))) > 1e-6:
        H = _hessian(objective, theta)
    return dev, theta, grad, H


def verify_nested(stats: NestedStats, reml: bool = True) -> NestedFit:
    """Optimize, polish and check the profiled (RE)ML deviance of a nested model."""
    # BFGS to a loose gradient, then Newton steps (as the two-level engine): past ~1e-4
    # BFGS's line searches fight the deviance's rounding and waste evaluations
    opt = optimize_nested(stats, reml, gtol=1e-4, stall=1e-9)
    counter = [0]
    objective = nested_objective(stats, reml, counter)
    dev, theta, grad, H = _polish(objective, opt.theta, counter)
    n_eval = opt.n_evaluations + counter[0]
    # canonical sign: nonnegative diagonals; theta's entries (and the Hessian) flip with
    # their column
    Ls = stats.split_theta(theta)
    flips = [np.where(np.diag(L) < 0, -1.0, 1.0) for L in Ls]
    sign = stats.join_theta([np.ones_like(L) * f[None, :] for L, f in zip(Ls, flips, strict=True)])
    Ls = [L * f[None, :] for L, f in zip(Ls, flips, strict=True)]
    theta, grad, H = stats.join_theta(Ls), grad * sign, H * np.outer(sign, sign)
    evaluation = evaluate_nested(stats, Ls, reml)
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
        hessian=H,
    )
