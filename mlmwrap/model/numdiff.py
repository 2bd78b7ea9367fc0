"""Numerical derivatives by central differences, for the smooth and cheap deviance.

The nested engine's Newton polish and convergence check, the Wald intervals and the
fallbacks of Satterthwaite's degrees of freedom take derivatives this way (the two-level
engine's Hessian is analytic, :mod:`mlmwrap.model.kernel`); with an analytic gradient at
hand a Hessian is the Jacobian of the gradient (:func:`hessian_from_gradient`).

Examples
--------
>>> import numpy as np
>>> f = lambda x: x[0] ** 2 * x[1] + np.exp(x[1])
>>> numeric_hessian(f, np.array([1.0, 0.0])).round(6)
array([[0., 2.],
       [2., 1.]])
>>> grad = lambda x: np.array([2 * x[0] * x[1], x[0] ** 2 + np.exp(x[1])])
>>> hessian_from_gradient(grad, np.array([1.0, 0.0])).round(6)
array([[0., 2.],
       [2., 1.]])
"""

from __future__ import annotations

import numpy as np

__all__ = ["numeric_hessian", "numeric_jacobian", "hessian_from_gradient"]


def hessian_from_gradient(
    grad, x: np.ndarray, rel: float = 5e-3, order: int = 4, floor: float = 0.1
) -> np.ndarray:
    """Hessian as the (symmetrized) Jacobian of an analytic gradient: 2k or 4k gradient
    calls, not ~4k^2 function values."""
    return _symmetric(numeric_jacobian(grad, x, rel=rel, order=order, floor=floor))


def _symmetric(H: np.ndarray) -> np.ndarray:
    return 0.5 * (H + H.T)


def _steps(x: np.ndarray, rel: float, floor: float = 0.1, scale=None) -> np.ndarray:
    # ``scale``: the typical size of each entry (default 1), so that the floor for entries
    # at or near 0 follows the entry's units.
    return rel * np.maximum(np.abs(x), floor * (1.0 if scale is None else np.asarray(scale)))


def numeric_hessian(f, x: np.ndarray, rel: float = 5e-3, scale=None) -> np.ndarray:
    """Hessian of a scalar function by central differences, one Richardson step; the step
    for ``x_i`` is ``rel * max(|x_i|, 0.1 * scale_i)`` (``scale`` default 1).

    The deviance is smooth and cheap; two step sizes cancel the O(h^2) error, which keeps the
    second derivatives good to ~1e-7 relative where one step size would give ~1e-5.
    """
    x = np.asarray(x, dtype=float)
    k = len(x)
    f0 = f(x)

    def at(h: np.ndarray) -> np.ndarray:
        H = np.empty((k, k))
        for i in range(k):
            ei = np.zeros(k)
            ei[i] = h[i]
            H[i, i] = (f(x + ei) - 2.0 * f0 + f(x - ei)) / h[i] ** 2
            for j in range(i):
                ej = np.zeros(k)
                ej[j] = h[j]
                H[i, j] = H[j, i] = (
                    f(x + ei + ej) - f(x + ei - ej) - f(x - ei + ej) + f(x - ei - ej)
                ) / (4.0 * h[i] * h[j])
        return H

    h = _steps(x, rel, 0.1, scale)
    H = (4.0 * at(h / 2.0) - at(h)) / 3.0
    return 0.5 * (H + H.T)


def numeric_jacobian(
    f, x: np.ndarray, rel: float = 1e-4, order: int = 4, floor: float = 0.1
) -> np.ndarray:
    """Jacobian (outputs x inputs) of an array-valued function by central differences of
    second or fourth order; the step for ``x_i`` is ``rel * max(|x_i|, floor)``."""
    x = np.asarray(x, dtype=float)
    h = _steps(x, rel, floor)
    cols = []
    for i in range(len(x)):
        e = np.zeros(len(x))
        e[i] = h[i]
        d1 = np.ravel(f(x + e)) - np.ravel(f(x - e))
        if order == 2:
            cols.append(d1 / (2.0 * h[i]))
            continue
        d2 = np.ravel(f(x + 2 * e)) - np.ravel(f(x - 2 * e))
        cols.append((8.0 * d1 - d2) / (12.0 * h[i]))
    return np.column_stack(cols)
