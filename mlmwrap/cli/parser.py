"""The command line's grammar: subcommands and flags (argparse only, so ``--help`` is fast)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from mlmwrap._version import __version__

__all__ = ["build_parser", "DEMO_EQUATIONS", "FORMATS", "DF_METHODS", "PLOT_KINDS"]

#: Output formats of ``--format``.
FORMATS = ("text", "markdown", "json", "latex", "html")

#: How the gammas are tested (``--df``).
DF_METHODS = ("satterthwaite", "kenward-roger", "hlm", "z")

#: Figures of ``mlmwrap plot --kind``.
PLOT_KINDS = ("caterpillar", "spaghetti", "residuals", "random-effects-qq")

#: The workshop's intercepts- and slopes-as-outcomes model on the HSB data.
DEMO_EQUATIONS = """\
mathach = b0 + b1*cwc(ses) + e
b0 = g00 + g01*meanses + g02*sector + u0
b1 = g10 + g11*meanses + g12*sector + u1
"""


def _csv_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--sep", default=",", help="field separator of the CSV file (default ',')")
    p.add_argument(
        "--na-values",
        nargs="+",
        metavar="TEXT",
        default=None,
        help="extra strings that mean a missing value, e.g. --na-values . -99 (Stata, SPSS)",
    )


def _data_options(p: argparse.ArgumentParser, *, data_required: bool = True) -> None:
    p.add_argument("--data", required=data_required, help="CSV file, one row per level-1 unit")
    p.add_argument(
        "--cluster",
        required=data_required,
        nargs="+",
        metavar="COLUMN",
        help="column identifying the clusters; for three levels the level-2 unit, then the "
        "level-3 unit (--cluster school lea)",
    )
    _csv_options(p)


def _fit_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--ml", action="store_true", help="full maximum likelihood (default REML)")
    p.add_argument(
        "--df",
        choices=DF_METHODS,
        default="satterthwaite",
        help="how the gammas are tested (default: t-tests with Satterthwaite df)",
    )


def _format_option(p: argparse.ArgumentParser, choices: Sequence[str] = FORMATS) -> None:
    p.add_argument(
        "--format",
        choices=choices,
        default="text",
        help="output: " + ", ".join(choices) + " (default text)",
    )


def _output_option(p: argparse.ArgumentParser, what: str, required: bool = False) -> None:
    p.add_argument(
        "--output",
        "-o",
        required=required,
        metavar="FILE",
        help=f"{what} (default: standard output)" if not required else what,
    )


def build_parser() -> argparse.ArgumentParser:
    """The ``mlmwrap`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="mlmwrap",
        description="Fit multilevel models written as level-1 and level-2 equations.",
        epilog="Run 'mlmwrap COMMAND --help' for a command's flags.",
    )
    parser.add_argument("--version", action="version", version=f"mlmwrap {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("fit", help="fit the equations in a text file to a CSV file")
    p.add_argument("equations", help="text file with the equations ('-' reads stdin)")
    _data_options(p)
    _fit_options(p)
    p.add_argument("--robust", action="store_true", help="add CR2 cluster-robust SE columns")
    p.add_argument("--exact-p", action="store_true", help="print exact p-values (not '<.001')")
    _format_option(p)

    p = sub.add_parser("demo", help="fit the workshop's model to the bundled HSB data")
    _fit_options(p)
    p.add_argument("--robust", action="store_true", help="add CR2 cluster-robust SE columns")
    p.add_argument("--exact-p", action="store_true", help="print exact p-values (not '<.001')")
    _format_option(p)

    for name, what in (
        ("compare", "likelihood-ratio tests of nested models, smallest first"),
        ("build-up", "fit nested models, compare them and show them side by side"),
    ):
        p = sub.add_parser(name, help=what)
        p.add_argument("equations", nargs="+", help="text files with the equations, one a model")
        _data_options(p)
        _fit_options(p)
        p.add_argument("--names", nargs="+", help="a name per model (default M1, M2, ...)")
        if name == "compare":
            p.add_argument(
                "--refit-ml",
                choices=("auto", "yes", "no"),
                default="auto",
                help="refit REML fits by ML before testing: auto (when the fixed parts "
                "differ, default), yes, or no",
            )
            _format_option(p, ("text", "markdown", "html", "csv"))
        else:
            _format_option(p, ("text", "markdown", "latex", "html"))

    p = sub.add_parser("icc", help="ICCs, reliabilities and design effects of variables")
    p.add_argument("data", help="CSV file, one row per level-1 unit")
    p.add_argument("--cluster", required=True, help="column identifying the clusters")
    p.add_argument("--vars", nargs="+", required=True, metavar="COLUMN", help="variables")
    _csv_options(p)
    _format_option(p, ("text", "markdown", "csv"))

    p = sub.add_parser(
        "decompose", help="split variables into within- and between-cluster parts (CSV)"
    )
    p.add_argument("data", help="CSV file, one row per level-1 unit")
    p.add_argument("--cluster", required=True, help="column identifying the clusters")
    p.add_argument("--vars", nargs="+", required=True, metavar="COLUMN", help="variables")
    _csv_options(p)
    _output_option(p, "CSV file to write")

    p = sub.add_parser(
        "estimates", help="per-cluster EB and OLS estimates, reliabilities (HLM's level-2 file)"
    )
    p.add_argument("equations", help="text file with the equations ('-' reads stdin)")
    _data_options(p)
    _fit_options(p)
    _output_option(p, "CSV file to write")

    p = sub.add_parser(
        "residuals", help="per-row fitted values and level-1 residuals (HLM's level-1 file)"
    )
    p.add_argument("equations", help="text file with the equations ('-' reads stdin)")
    _data_options(p)
    _fit_options(p)
    _output_option(p, "CSV file to write")

    p = sub.add_parser("plot", help="a figure of a fit, to PNG, PDF or SVG")
    p.add_argument("equations", help="text file with the equations ('-' reads stdin)")
    _data_options(p)
    _fit_options(p)
    p.add_argument("--kind", choices=PLOT_KINDS, default="caterpillar", help="which figure")
    _output_option(p, "image file to write (.png, .pdf or .svg)", required=True)
    return parser
