"""mlmwrap: multilevel models written as level-1 and level-2 equations.

The package is a pipeline, one stage a folder, data flowing one way (``docs/architecture.md``):
``language`` (text -> ModelSpec -> reduced form) -> ``model`` (design, engine, fitted
numbers) -> ``analysis`` (what is computed from a fit) -> ``report`` (what is shown) ->
``api`` (:func:`fit`, :func:`build_up`, the results facade) -> ``cli``.

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

from mlmwrap import datasets
from mlmwrap._version import __version__
from mlmwrap.analysis import variance_explained
from mlmwrap.analysis.compare import compare
from mlmwrap.analysis.describe import icc, within_between
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

__all__ = [
    "fit",
    "compare",
    "build_up",
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
