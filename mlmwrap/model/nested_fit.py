"""A verified optimum of a nested model: several starts, Newton polish, gradient and Hessian.

:func:`mlmwrap.model.nested.search_starts` finds the optimum from several starts; here it
is polished with Newton steps on a finite-difference Hessian of the analytic gradient
(:func:`mlmwrap.model.numdiff.hessian_from_gradient`) and checked as the two-level engine
checks its own: the Newton step the gradient implies must be negligible where the Hessian is
positive definite, and a boundary (a diagonal entry of some level's ``L`` below lme4's
``isSingular`` tolerance) is reported rather than failed.

All of it runs in the engine's units (:class:`mlmwrap.model.nested.NestedUnits`: every
column of every level's Z, of X and of y at RMS 1), as the two-level engine does
(:mod:`mlmwrap.model.scaling`): the starts, the finite-difference steps, the convergence
tolerances and the singular and zero-variance tests apply to the unit-free ``L_s``, so
rescaling the outcome or a predictor changes the answer only by the implied factors. The
optimum, its evaluation and its Hessian are mapped back to the data's units exactly.

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
    canonical_signs,
    evaluate_nested,
    nested_objective,
    search_starts,
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
        analytic gradient in the engine's units, mapped back), for the Satterthwaite df
        (:mod:`mlmwrap.analysis.nested_inference`).
    """

    singular: bool
    hessian_pd: bool | None
    zero_variances: tuple[np.ndarray, ...]
    messages: tuple[str, ...]
    hessian: np.ndarray | None = None


def _hessian(objective, theta: np.ndarray) -> np.ndarray:
    """Central differences of the analytic gradient: ``2 n_theta`` gradients."""
    return hessian_from_gradient(lambda t: objective(t)[1], theta, rel=1e-5, order=2, floor=0.1)


def _accept(dev, grad, new_dev, new_grad) -> bool:
    """A step is kept when the deviance does not rise beyond its rounding noise and the
    gradient shrinks (as the two-level engine: with nearly collinear predictors the deviance
    is good to ~1e-10 relative, while the analytic gradient still points the right way)."""
    noise = 1e-8 * max(1.0, abs(dev))
    return bool(new_dev <= dev + noise and np.max(np.abs(new_grad)) < np.max(np.abs(grad)))


def _polish(objective, theta: np.ndarray, hess_inv: np.ndarray | None):
    """Newton steps from the BFGS answer (the surface can be nearly flat along a slope
    variance).

    First quasi-Newton steps with BFGS's own inverse Hessian (one gradient each), then
    Newton steps with a finite-difference Hessian, reused while its steps keep improving
    the deviance (near the optimum it hardly changes); a failed step gets a fresh one. The
    Hessian returned is always one computed at the final theta or within 1e-6 of it.
    Returns ``(deviance, theta, gradient, Hessian, the gradient's size at the start)``.
    """
    dev, grad = objective(theta)
    if not grad.size:
        return dev, theta, grad, np.zeros((0, 0)), 0.0
    start_gnorm = float(np.max(np.abs(grad)))
    if hess_inv is not None and np.all(np.isfinite(hess_inv)):
        for _ in range(6):
            step = hess_inv @ grad
            size = float(np.max(np.abs(step)))
            if not np.isfinite(size) or size < 1e-7:
                break
            new_dev, new_grad = objective(theta - step)
            if not _accept(dev, grad, new_dev, new_grad):
                break
            theta, dev, grad = theta - step, new_dev, new_grad
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
        if not _accept(dev, grad, new_dev, new_grad):
            if at is theta:
                break  # a fresh Hessian's step failed: this is the optimum
            H, at = _hessian(objective, theta), theta
            continue
        theta, dev, grad = theta - step, new_dev, new_grad
        if size < 1e-7:
            break
    if float(np.max(np.abs(theta - at))) > 1e-6:
        H = _hessian(objective, theta)
    return dev, theta, grad, H, start_gnorm


def verify_nested(stats: NestedStats, reml: bool = True) -> NestedFit:
    """Optimize, polish and check the profiled (RE)ML deviance of a nested model.

    Everything runs on the rescaled model (every column at RMS 1,
    :class:`~mlmwrap.model.nested.NestedUnits`), so no step or tolerance depends on the
    data's units; theta, the evaluation and the Hessian are mapped back exactly.
    """
    units = stats.units()
    scaled = stats.rescaled(units)
    counter = [0]
    objective = nested_objective(scaled, reml, counter)
    # BFGS until it stalls, then Newton steps (as the two-level engine): past that point
    # BFGS's line searches fight the deviance's rounding and waste evaluations
    _, theta, hess_inv = search_starts(scaled, objective, gtol=1e-4, stall=1e-9)
    dev, theta, grad, H, start_gnorm = _polish(objective, theta, hess_inv)
    sign = canonical_signs(scaled, theta)  # a Newton step may have crossed zero
    theta, grad, H = theta * sign, grad * sign, H * np.outer(sign, sign)
    Ls = scaled.split_theta(theta)  # the unit-free L_s of each level
    evaluation = units.original(evaluate_nested(scaled, Ls, reml), reml, stats.n_obs)
    gnorm = float(np.max(np.abs(grad))) if grad.size else 0.0
    # singular: a zero on the diagonal of L_s; a variance is 0 only when its row of L_s is
    # (otherwise a correlation is +-1). On L_s, so that the verdicts are free of units.
    singular = bool(any((np.abs(np.diag(L)) < SINGULAR_TOL).any() for L in Ls))
    zero = tuple(np.sqrt(np.sum(L**2, axis=1)) < SINGULAR_TOL for L in Ls)
    messages: list[str] = []
    hessian_pd: bool | None = None
    if singular:  # no interior Hessian to judge: the gradient, polished or as BFGS left it
        converged = gnorm < 1e-3 or (np.isfinite(dev) and start_gnorm < 1e-2)
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
    # theta = theta_s * units.theta, so the Hessian in the data's theta is D H_s D with
    # D = 1 / units.theta (the deviances differ by a constant).
    d = 1.0 / units.theta
    return NestedFit(
        evaluation=evaluation,
        theta=theta * units.theta,
        reml=reml,
        converged=bool(converged),
        singular=singular,
        hessian_pd=hessian_pd,
        gradient_norm=gnorm,
        n_evaluations=counter[0],
        zero_variances=zero,
        messages=tuple(messages),
        hessian=H * np.outer(d, d),
        units=units,
    )
