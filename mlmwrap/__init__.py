"""mlmwrap: multilevel models written as level-1 and level-2 equations.

The package is a pipeline, one stage a folder, data flowing one way (``docs/architecture.md``):
``language`` (text -> ModelSpec -> reduced form) -> ``model`` (design, engine, fitted
numbers) -> ``analysis`` (what is computed from a fit) -> ``report`` (what is shown) ->
``api`` (:func:`fit`, :func:`build_up`, the results facade) -> ``cli``.

``import mlmwrap`` is cheap: the public names below are loaded on first use (PEP 562), so
the command line's ``--help`` and scripts that only need the errors do not import numpy,
pandas, scipy or statsmodels.

Examples
--------
>>> import mlmwrap
>>> res = mlmwrap.fit('''
...     mathach = b0 + e
...     b0 = g00 + u0
... ''', data=mlmwrap.datasets.load_hsb(), cluster="school")
>>> round(res.icc, 3)
0.18
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from mlmwrap._version import __version__

if TYPE_CHECKING:  # pragma: no cover
    from mlmwrap import datasets
    from mlmwrap.analysis.compare import compare
    from mlmwrap.analysis.describe import describe, icc, within_between
    from mlmwrap.analysis.variance_explained import variance_explained
    from mlmwrap.api.build_up import build_up
    from mlmwrap.api.fitting import fit
    from mlmwrap.api.results import MLMResults
    from mlmwrap.errors import (
        BoundaryWarning,
        ConvergenceWarning,
        DataError,
        EquationSyntaxError,
        MLMError,
        PredictionWarning,
        ReliabilityWarning,
        SpecificationError,
    )
    from mlmwrap.language.equations import parse_equations
    from mlmwrap.model.centering import decompose
    from mlmwrap.report import export, latex, plots, tables

# public name -> (module, attribute); attribute None means the module itself.
_LAZY: dict[str, tuple[str, str | None]] = {
    "fit": ("mlmwrap.api.fitting", "fit"),
    "build_up": ("mlmwrap.api.build_up", "build_up"),
    "MLMResults": ("mlmwrap.api.results", "MLMResults"),
    "compare": ("mlmwrap.analysis.compare", "compare"),
    "describe": ("mlmwrap.analysis.describe", "describe"),
    "icc": ("mlmwrap.analysis.describe", "icc"),
    "within_between": ("mlmwrap.analysis.describe", "within_between"),
    "variance_explained": ("mlmwrap.analysis.variance_explained", "variance_explained"),
    "decompose": ("mlmwrap.model.centering", "decompose"),
    "parse_equations": ("mlmwrap.language.equations", "parse_equations"),
    "datasets": ("mlmwrap.datasets", None),
    "plots": ("mlmwrap.report.plots", None),
    "export": ("mlmwrap.report.export", None),
    "tables": ("mlmwrap.report.tables", None),
    "latex": ("mlmwrap.report.latex", None),
    **{
        name: ("mlmwrap.errors", name)
        for name in (
            "MLMError",
            "EquationSyntaxError",
            "SpecificationError",
            "DataError",
            "ConvergenceWarning",
            "BoundaryWarning",
            "PredictionWarning",
            "ReliabilityWarning",
        )
    },
}

__all__ = [
    "fit",
    "compare",
    "build_up",
    "describe",
    "variance_explained",
    "parse_equations",
    "datasets",
    "MLMResults",
    "MLMError",
    "EquationSyntaxError",
    "SpecificationError",
    "DataError",
    "ConvergenceWarning",
    "BoundaryWarning",
    "PredictionWarning",
    "ReliabilityWarning",
    "decompose",
    "icc",
    "within_between",
    "plots",
    "export",
    "tables",
    "latex",
    "__version__",
]


def __getattr__(name: str) -> Any:
    """Import a public name on first use and keep it (PEP 562)."""
    try:
        module, attribute = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'mlmwrap' has no attribute {name!r}") from None
    value = importlib.import_module(module)
    if attribute is not None:
        value = getattr(value, attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
