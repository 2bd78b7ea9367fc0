"""The covariance pattern of tau the equations ask for, as the engine's mask of free entries.

``cov(u0, u1) = 0`` lines split the random effects into blocks
(:attr:`mlmwrap.language.spec.ModelSpec.tau_blocks`); the engine restricts the relative
covariance factor ``L`` to those blocks (:func:`mlmwrap.model.engine.block_pattern`), so theta
holds only the free entries and tau has exact zeros between blocks.

Examples
--------
>>> from mlmwrap.language.equations import parse_equations
>>> spec = parse_equations("y = b0 + b1*x + e\\nb0 = g00 + u0\\nb1 = g10 + u1\\ncov(u0, u1) = 0")
>>> tau_pattern(spec, ["u0", "u1"]).astype(int)
array([[1, 0],
       [0, 1]])
>>> n_tau_parameters(spec, ["u0", "u1"])
2
"""

from __future__ import annotations

import numpy as np

from mlmwrap.language.spec import ModelSpec, covariance_blocks
from mlmwrap.model.design import random_effect_base
from mlmwrap.model.engine import block_pattern, theta_indices

__all__ = ["tau_pattern", "n_tau_parameters"]


def tau_pattern(spec: ModelSpec, random_labels: list[str]) -> np.ndarray | None:
    """Boolean ``(q, q)`` mask of the free entries of ``L`` (``None``: tau unstructured).

    ``random_labels`` are the design's random effects in column order (``u1[Black]`` for a
    category of a categorical level-1 predictor counts as ``u1``); covariances of effects
    not among them are ignored.
    """
    # A categorical level-1 predictor's random effects (u1[Black], u1[White]) are one uK
    # of the equations: a cov(u0, u1) = 0 line applies to each of them, and their own
    # covariances are free.
    positions: dict[str, list[int]] = {}
    for i, label in enumerate(random_labels):
        positions.setdefault(random_effect_base(label), []).append(i)
    blocks = covariance_blocks(list(positions), spec.zero_covariances)
    return block_pattern([[i for u in b for i in positions[u]] for b in blocks], len(random_labels))


def n_tau_parameters(spec: ModelSpec, random_labels: list[str]) -> int:
    """Distinct free entries of tau: variances plus the covariances not fixed at 0."""
    q = len(random_labels)
    return len(theta_indices(q, tau_pattern(spec, random_labels))[0])
