"""The caterpillar plot of one level of a three-level model: EB estimates, ranked, +-1.96 SD.

Takes the estimates the results object computed (``res.random_effects(level)``); draws only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from mlmwrap.errors import MLMError
from mlmwrap.report.plots import POINT_STYLE, figure_axes

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

    from mlmwrap.api.nested_results import NestedResults

__all__ = ["caterpillar_level"]


def caterpillar_level(res: NestedResults, level: int | str = 2, ax: Any = None) -> Figure:
    """One panel per random effect of ``level`` (2, 3 or the cluster column)."""
    table = res.random_effects(level)
    labels = [c for c in table.columns if not c.startswith("se_")]
    if not labels:
        raise MLMError(f"level {level} has no random effect to plot")
    name = table.index.names[-1] if level in (2, res.clusters[0]) else table.index.name
    fig, axes = figure_axes(ax, len(labels), (5.0, 3.6))
    for a, label in zip(axes, labels, strict=True):
        est = table[label].to_numpy()
        sd = table[f"se_{label}"].to_numpy()
        order = np.argsort(est, kind="stable")
        a.errorbar(
            np.arange(1, len(est) + 1),
            est[order],
            yerr=1.96 * sd[order],
            elinewidth=0.8,
            ecolor="0.6",
            **POINT_STYLE,
        )
        a.axhline(0.0, color="tab:red", lw=1)
        a.set_title(f"{label}: {name} effects")
        a.set_xlabel(f"{name} units, ranked by {label}")
        a.set_ylabel(label)
    fig.tight_layout()
    return fig
