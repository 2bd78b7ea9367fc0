"""mlmwrap: multilevel models written as level-1 and level-2 equations.

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

from . import datasets, export, latex, plots, tables, variance_explained
from .centering import decompose
from .compare import build_up, compare
from .describe import icc, within_between
from .equations import parse_equations
from .errors import (
    BoundaryWarning,
    ConvergenceWarning,
    DataError,
    EquationSyntaxError,
    MLMError,
    PredictionWarning,
    ReliabilityWarning,
    SpecificationError,
)
from .fit import fit
from .results import MLMResults

__version__ = "0.1.0"

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
